#pragma once
/// \file dataset.hpp
/// Image data sets: what every data set answers, and the in-memory one that
/// the IDX and CIFAR readers fill.
///
/// A data set holds N images of one size (C, H, W) with 8-bit pixels and an
/// integer label in [0, num_classes) per image. `get<T>(i)` returns image i as
/// a Tensor<T> of shape (C, H, W) with values in [0, 1] (pixel / 255) and its
/// label. Pixels stay 8-bit in memory (Fashion-MNIST's 60,000 training images
/// take 47 MB, not 188 MB as float) and are converted per sample.
///
/// Requirement on implementations: `read_pixels` and `label` are safe to call
/// from several threads at once (the loader calls them under OpenMP).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon::data {

/// One image with its label.
template <class T>
struct Sample {
  Tensor<T> image;     ///< (C, H, W), values in [0, 1]
  std::int64_t label;  ///< in [0, num_classes)
};

/// What every image data set answers. One level of virtual calls: the loader
/// holds a `const Dataset&` and does not care where the pixels come from.
class Dataset {
 public:
  virtual ~Dataset() = default;

  /// N, the number of images.
  virtual index_t size() const = 0;
  /// C (1 for grayscale, 3 for RGB), H and W of every image.
  virtual index_t channels() const = 0;
  virtual index_t height() const = 0;
  virtual index_t width() const = 0;
  /// Number of classes; every label lies in [0, num_classes()).
  virtual std::int64_t num_classes() const = 0;
  /// Label of image i, 0 <= i < size().
  virtual std::int64_t label(index_t i) const = 0;
  /// Writes the C*H*W pixels of image i, channel-major (CHW), into `out`.
  virtual void read_pixels(index_t i, std::uint8_t* out) const = 0;

  /// Image i as (C, H, W) values in [0, 1], with its label.
  template <class T>
  Sample<T> get(index_t i) const {
    check_index(i);
    Sample<T> s{Tensor<T>({channels(), height(), width()}), label(i)};
    read_into(i, s.image.data());
    return s;
  }

  /// Writes image i as C*H*W values in [0, 1] into `out` (assigned, not accumulated).
  template <class T>
  void read_into(index_t i, T* out) const {
    const index_t n = channels() * height() * width();
    std::vector<std::uint8_t> px(static_cast<std::size_t>(n));
    read_pixels(i, px.data());
    for (index_t k = 0; k < n; ++k) out[k] = static_cast<T>(px[static_cast<std::size_t>(k)]) / T(255);
  }

  /// Shape (C, H, W) of one image.
  Shape image_shape() const { return {channels(), height(), width()}; }

  /// Throws ValueError when i is not a valid image index.
  void check_index(index_t i) const {
    require(i >= 0 && i < size(), "data set index ", i, " out of range [0, ", size(), ")");
  }
};

/// Images held in memory as 8-bit pixels, (N, C, H, W) row-major.
class InMemoryDataset : public Dataset {
 public:
  InMemoryDataset() = default;
  /// `pixels` holds n*C*H*W bytes, `labels` n labels in [0, num_classes).
  /// Throws ShapeError / ValueError when they do not fit together.
  InMemoryDataset(std::vector<std::uint8_t> pixels, std::vector<std::int64_t> labels, index_t c,
                  index_t h, index_t w, std::int64_t num_classes)
      : pixels_(std::move(pixels)), labels_(std::move(labels)), c_(c), h_(h), w_(w),
        classes_(num_classes) {
    require<ShapeError>(c > 0 && h > 0 && w > 0, "InMemoryDataset: image size (", c, ", ", h, ", ",
                        w, ") must be positive");
    require<ShapeError>(static_cast<index_t>(pixels_.size()) ==
                            static_cast<index_t>(labels_.size()) * c * h * w,
                        "InMemoryDataset: ", pixels_.size(), " pixel bytes do not hold ",
                        labels_.size(), " images of (", c, ", ", h, ", ", w, ")");
    require(num_classes > 0, "InMemoryDataset: num_classes must be positive, got ", num_classes);
    for (std::size_t k = 0; k < labels_.size(); ++k)
      require(labels_[k] >= 0 && labels_[k] < num_classes, "InMemoryDataset: label ", labels_[k],
              " of image ", k, " outside [0, ", num_classes, ")");
  }

  index_t size() const override { return static_cast<index_t>(labels_.size()); }
  index_t channels() const override { return c_; }
  index_t height() const override { return h_; }
  index_t width() const override { return w_; }
  std::int64_t num_classes() const override { return classes_; }
  std::int64_t label(index_t i) const override {
    check_index(i);
    return labels_[static_cast<std::size_t>(i)];
  }
  void read_pixels(index_t i, std::uint8_t* out) const override {
    check_index(i);
    const index_t n = c_ * h_ * w_;
    const std::uint8_t* src = pixels_.data() + i * n;
    std::copy(src, src + n, out);
  }

  /// All labels, in image order.
  const std::vector<std::int64_t>& labels() const { return labels_; }
  /// All pixels, (N, C, H, W) row-major.
  const std::vector<std::uint8_t>& pixels() const { return pixels_; }

  /// Every image as one (N, C, H, W) tensor in [0, 1] (for evaluation passes).
  template <class T>
  Tensor<T> images() const {
    Tensor<T> out({size(), c_, h_, w_});
    for (index_t k = 0; k < out.size(); ++k)
      out[k] = static_cast<T>(pixels_[static_cast<std::size_t>(k)]) / T(255);
    return out;
  }

 private:
  std::vector<std::uint8_t> pixels_;
  std::vector<std::int64_t> labels_;
  index_t c_ = 0, h_ = 0, w_ = 0;
  std::int64_t classes_ = 0;
};

/// The images at `indices` of `ds`, in that order, copied into memory (e.g. the
/// first 1,000 images for a quick run, or a class-balanced subset).
inline InMemoryDataset subset(const Dataset& ds, const std::vector<index_t>& indices) {
  const index_t n = ds.channels() * ds.height() * ds.width();
  std::vector<std::uint8_t> px(indices.size() * static_cast<std::size_t>(n));
  std::vector<std::int64_t> labels(indices.size());
  for (std::size_t k = 0; k < indices.size(); ++k) {
    ds.check_index(indices[k]);
    ds.read_pixels(indices[k], px.data() + k * static_cast<std::size_t>(n));
    labels[k] = ds.label(indices[k]);
  }
  return InMemoryDataset(std::move(px), std::move(labels), ds.channels(), ds.height(), ds.width(),
                         ds.num_classes());
}

/// The first min(n, size) images of `ds`.
inline InMemoryDataset head(const Dataset& ds, index_t n) {
  require(n >= 0, "head: n must be >= 0, got ", n);
  std::vector<index_t> idx(static_cast<std::size_t>(std::min(n, ds.size())));
  for (std::size_t k = 0; k < idx.size(); ++k) idx[k] = static_cast<index_t>(k);
  return subset(ds, idx);
}

}  // namespace supcon::data
