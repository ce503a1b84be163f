#pragma once
/// \file loader.hpp
/// The batch loader: per-epoch shuffling, batching, V augmented views per
/// sample, decoding and augmentation in parallel over samples (OpenMP).
///
/// Reproducibility: the order of epoch e is a permutation drawn from a
/// generator seeded by (seed, e) alone, and the views of dataset image i in
/// epoch e come from `Rng(seed, e * N + i)`. Nothing depends on the thread
/// count, on earlier batches or on earlier epochs, so a run resumed at
/// (epoch, batch) produces exactly the batches of the uninterrupted run.

#include <algorithm>
#include <cstdint>
#include <exception>
#include <utility>
#include <vector>

#include "supcon/config.hpp"
#include "supcon/core/error.hpp"
#include "supcon/core/rng.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/data/augment.hpp"
#include "supcon/data/dataset.hpp"

namespace supcon::data {

/// Options of a Loader.
struct LoaderOptions {
  index_t batch_size = 256;  ///< B, samples per batch (>= 1)
  index_t views = 2;         ///< V, augmented views per sample (>= 1)
  bool shuffle = true;       ///< a new random order every epoch; false = dataset order
  bool drop_last = true;     ///< drop the final batch when it has fewer than B samples
  std::uint64_t seed = 0;    ///< seeds the order and every augmentation
};

/// One batch.
template <class T>
struct Batch {
  /// (V * B, C, H, W), view-major: rows [v * B, (v + 1) * B) hold view v of
  /// samples 0 .. B-1, so row r is sample r mod B in view r / B.
  Tensor<T> images;
  std::vector<std::int64_t> labels;  ///< (B), the label of each sample
  std::vector<index_t> indices;      ///< (B), the dataset index of each sample
  index_t views = 1;                 ///< V
  /// B, the number of samples (the last batch may be smaller when drop_last is false).
  index_t batch_size() const { return static_cast<index_t>(labels.size()); }
};

/// Serves the batches of one epoch at a time from a data set it does not own
/// (`ds` must outlive the loader). Thread-safe for concurrent `batch` calls.
template <class T>
class Loader {
 public:
  /// `transform` turns a (C, H, W) image in [0, 1] into one view; an empty
  /// transform passes images through unchanged (every view then equal).
  /// Throws ValueError for batch_size or views < 1 or an empty data set.
  Loader(const Dataset& ds, Transform<T> transform, LoaderOptions opt)
      : ds_(&ds), transform_(std::move(transform)), opt_(opt) {
    require(opt.batch_size >= 1, "loader: batch_size must be >= 1, got ", opt.batch_size);
    require(opt.views >= 1, "loader: views must be >= 1, got ", opt.views);
    require(ds.size() > 0, "loader: the data set is empty");
    set_epoch(0);
  }

  /// Selects epoch `epoch` (>= 0): its sample order and augmentation streams.
  void set_epoch(std::int64_t epoch) {
    require(epoch >= 0, "loader: epoch must be >= 0, got ", epoch);
    epoch_ = epoch;
    const index_t n = ds_->size();
    order_.resize(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) order_[static_cast<std::size_t>(i)] = i;
    if (opt_.shuffle) {
      // A seed apart from the augmentation streams (seed, e * N + i).
      Rng rng(opt_.seed ^ 0x5DEECE66DA3B1F27ULL, static_cast<std::uint64_t>(epoch));
      rng.shuffle(order_);
    }
  }
  std::int64_t epoch() const { return epoch_; }

  /// Number of batches in an epoch: floor(N / B) with drop_last, else ceil(N / B).
  index_t num_batches() const {
    const index_t n = ds_->size(), b = opt_.batch_size;
    return opt_.drop_last ? n / b : (n + b - 1) / b;
  }

  /// The dataset indices of the current epoch, in the order they are served.
  const std::vector<index_t>& order() const { return order_; }
  const LoaderOptions& options() const { return opt_; }

  /// Batch `b` (0 <= b < num_batches()) of the current epoch. Decodes and
  /// augments the samples in parallel; an error in any sample (e.g. an
  /// unreadable image) is rethrown here, the one of the lowest sample first.
  Batch<T> batch(index_t b) const { return batch(b, 0, 1); }

  /// Part `part` of `parts` of batch `b`: its samples at positions
  /// [part * B / parts, (part + 1) * B / parts), with the same views as in the
  /// whole batch (data-parallel training: rank r of K loads part r of K).
  /// Requires 0 <= part < parts (ValueError).
  Batch<T> batch(index_t b, index_t part, index_t parts) const {
    require(b >= 0 && b < num_batches(), "loader: batch ", b, " out of range [0, ",
            num_batches(), ")");
    require(parts >= 1 && part >= 0 && part < parts, "loader: part ", part, " of ", parts, " is out of range");
    const index_t whole = std::min(opt_.batch_size, ds_->size() - b * opt_.batch_size);
    const index_t first = b * opt_.batch_size + part * whole / parts;
    const index_t B = b * opt_.batch_size + (part + 1) * whole / parts - first;
    require(B >= 1, "loader: part ", part, " of ", parts, " of a batch of ", whole, " samples is empty");
    const index_t V = opt_.views;
    Batch<T> out;
    out.views = V;
    out.indices.assign(order_.begin() + first, order_.begin() + first + B);
    out.labels.resize(static_cast<std::size_t>(B));
    // views[s * V + v] is view v of sample s; shapes are checked after the loop.
    std::vector<Tensor<T>> views(static_cast<std::size_t>(B * V));
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(B));
    const std::uint64_t n = static_cast<std::uint64_t>(ds_->size());
#pragma omp parallel for schedule(dynamic)
    for (index_t s = 0; s < B; ++s) {
      try {
        const index_t i = out.indices[static_cast<std::size_t>(s)];
        Sample<T> smp = ds_->get<T>(i);
        out.labels[static_cast<std::size_t>(s)] = smp.label;
        Rng rng(opt_.seed, static_cast<std::uint64_t>(epoch_) * n + static_cast<std::uint64_t>(i));
        for (index_t v = 0; v < V; ++v)
          views[static_cast<std::size_t>(s * V + v)] =
              transform_ ? transform_(smp.image, rng) : smp.image;
      } catch (...) {
        errors[static_cast<std::size_t>(s)] = std::current_exception();
      }
    }
    for (const auto& e : errors)
      if (e) std::rethrow_exception(e);
    const Shape shape = views[0].shape();
    require<ShapeError>(shape.size() == 3, "loader: the transform must give (C, H, W) views, got ",
                        shape_str(shape));
    for (const auto& t : views)
      require<ShapeError>(t.shape() == shape, "loader: the transform gave views of shapes ",
                          shape_str(shape), " and ", shape_str(t.shape()),
                          "; every view must have the same size");
    const index_t per = numel_of(shape);
    out.images.resize({V * B, shape[0], shape[1], shape[2]});
#pragma omp parallel for
    for (index_t s = 0; s < B; ++s)
      for (index_t v = 0; v < V; ++v) {
        const Tensor<T>& t = views[static_cast<std::size_t>(s * V + v)];
        std::copy(t.begin(), t.end(), out.images.data() + (v * B + s) * per);
      }
    return out;
  }

 private:
  const Dataset* ds_;
  Transform<T> transform_;
  LoaderOptions opt_;
  std::int64_t epoch_ = 0;
  std::vector<index_t> order_;
};

}  // namespace supcon::data
