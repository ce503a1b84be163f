#pragma once
/// \file augment.hpp
/// Random augmentations and the views of contrastive training.
///
/// A transform is a plain function of (image, Rng&) -> image. `make_augment`
/// builds the paper's pipeline from an AugmentConfig:
///   random resized crop -> horizontal flip -> colour jitter (with probability
///   p, in random order) -> random grayscale -> Gaussian blur (optional) ->
///   normalisation,
/// or, when `randaugment_ops > 0`, RandAugment in place of colour jitter and
/// grayscale (the stronger augmentation of the paper's appendix).
/// Two views are the random transform applied twice with one Rng (`multi_view`).
/// All randomness comes from the Rng argument, so a seeded Rng reproduces the
/// views exactly.

#include <array>
#include <cmath>
#include <functional>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/rng.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/data/image_ops.hpp"
#include "supcon/data/randaugment.hpp"

namespace supcon::data {

/// A random transform: image (C, H, W) and a generator in, image out.
template <class T>
using Transform = std::function<Tensor<T>(const Tensor<T>&, Rng&)>;

/// Every option of the augmentation pipeline. Probabilities lie in [0, 1];
/// the jitter strengths follow torchvision's ColorJitter: brightness, contrast
/// and saturation factors are drawn from [max(0, 1 - s), 1 + s], the hue
/// shift from [-hue, hue] with hue <= 0.5.
struct AugmentConfig {
  index_t out_height = 32;  ///< output size of the crop (and of every view)
  index_t out_width = 32;
  bool crop = true;  ///< random resized crop; false = plain resize to the output size
  double crop_scale_min = 0.2, crop_scale_max = 1.0;        ///< fraction of the image area
  double crop_ratio_min = 3.0 / 4, crop_ratio_max = 4.0 / 3;  ///< width / height
  double flip_p = 0.5;                                       ///< horizontal flip
  double jitter_p = 0.8;  ///< probability of applying colour jitter at all
  double brightness = 0.4, contrast = 0.4, saturation = 0.4, hue = 0.1;
  double grayscale_p = 0.2;  ///< random grayscale (RGB only)
  double blur_p = 0.0;       ///< Gaussian blur; sigma uniform in [blur_sigma_min, blur_sigma_max]
  double blur_sigma_min = 0.1, blur_sigma_max = 2.0;
  index_t blur_kernel = 0;      ///< odd kernel size; 0 = about a tenth of the output size
  int randaugment_ops = 0;      ///< N of RandAugment; 0 = off (use colour jitter)
  int randaugment_magnitude = 9;  ///< M of RandAugment, in [0, 30]
  std::vector<double> mean, stddev;  ///< per-channel normalisation; empty = none

  /// SupCon's CIFAR-10 augmentation (32x32 RGB) with CIFAR-10's channel statistics.
  static AugmentConfig cifar10() {
    AugmentConfig c;
    c.mean = {0.4914, 0.4822, 0.4465};
    c.stddev = {0.2023, 0.1994, 0.2010};
    return c;
  }
  /// The same for CIFAR-100's channel statistics.
  static AugmentConfig cifar100() {
    AugmentConfig c;
    c.mean = {0.5071, 0.4867, 0.4408};
    c.stddev = {0.2675, 0.2565, 0.2761};
    return c;
  }
  /// 28x28 grayscale (Fashion-MNIST): crop, flip, brightness and contrast jitter.
  static AugmentConfig fashion_mnist() {
    AugmentConfig c;
    c.out_height = c.out_width = 28;
    c.saturation = c.hue = 0;
    c.grayscale_p = 0;
    c.mean = {0.2860};
    c.stddev = {0.3530};
    return c;
  }
  /// No randomness: resize to the output size and normalise (evaluation).
  AugmentConfig deterministic() const {
    AugmentConfig c = *this;
    c.crop = false;
    c.flip_p = c.jitter_p = c.grayscale_p = c.blur_p = 0;
    c.randaugment_ops = 0;
    return c;
  }
};

/// Throws ValueError naming the option that is out of range.
inline void validate(const AugmentConfig& c) {
  auto prob = [](double p, const char* name) {
    require(p >= 0 && p <= 1, "augment: ", name, " must be a probability in [0, 1], got ", p);
  };
  require(c.out_height > 0 && c.out_width > 0, "augment: output size ", c.out_height, "x",
          c.out_width, " must be positive");
  require(c.crop_scale_min > 0 && c.crop_scale_min <= c.crop_scale_max && c.crop_scale_max <= 1,
          "augment: crop scale must satisfy 0 < min <= max <= 1, got (", c.crop_scale_min, ", ",
          c.crop_scale_max, ")");
  require(c.crop_ratio_min > 0 && c.crop_ratio_min <= c.crop_ratio_max,
          "augment: crop ratio must satisfy 0 < min <= max, got (", c.crop_ratio_min, ", ",
          c.crop_ratio_max, ")");
  prob(c.flip_p, "flip_p");
  prob(c.jitter_p, "jitter_p");
  prob(c.grayscale_p, "grayscale_p");
  prob(c.blur_p, "blur_p");
  require(c.brightness >= 0 && c.contrast >= 0 && c.saturation >= 0,
          "augment: brightness, contrast and saturation must be >= 0");
  require(c.hue >= 0 && c.hue <= 0.5, "augment: hue must be in [0, 0.5], got ", c.hue);
  require(c.blur_sigma_min > 0 && c.blur_sigma_min <= c.blur_sigma_max,
          "augment: blur sigma must satisfy 0 < min <= max");
  require(c.blur_kernel == 0 || c.blur_kernel % 2 == 1, "augment: blur_kernel must be odd or 0, got ",
          c.blur_kernel);
  require(c.randaugment_ops >= 0, "augment: randaugment_ops must be >= 0, got ", c.randaugment_ops);
  require(c.randaugment_magnitude >= 0 && c.randaugment_magnitude <= 30,
          "augment: randaugment_magnitude must be in [0, 30], got ", c.randaugment_magnitude);
  require(c.mean.size() == c.stddev.size(), "augment: mean has ", c.mean.size(),
          " values but stddev has ", c.stddev.size());
  for (double s : c.stddev) require(s > 0, "augment: stddev values must be positive, got ", s);
}

/// A crop rectangle: rows [top, top + height), columns [left, left + width).
struct CropBox {
  index_t top, left, height, width;
};

/// torchvision's RandomResizedCrop parameters for an H x W image: up to 10
/// attempts draw an area fraction uniformly from [scale_min, scale_max] and a
/// log-uniform aspect ratio w/h from [ratio_min, ratio_max], and keep the first
/// box that fits; otherwise the largest centred box whose ratio is clamped to
/// the range. The box always lies inside the image.
inline CropBox sample_resized_crop(index_t H, index_t W, double scale_min, double scale_max,
                                   double ratio_min, double ratio_max, Rng& rng) {
  const double area = double(H) * double(W);
  const double lr0 = std::log(ratio_min), lr1 = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(scale_min, scale_max);
    const double aspect = std::exp(rng.uniform(lr0, lr1));
    const index_t w = std::lround(std::sqrt(target * aspect));
    const index_t h = std::lround(std::sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= W && h <= H) {
      const index_t top = static_cast<index_t>(rng.below(static_cast<std::uint64_t>(H - h + 1)));
      const index_t left = static_cast<index_t>(rng.below(static_cast<std::uint64_t>(W - w + 1)));
      return {top, left, h, w};
    }
  }
  const double in_ratio = double(W) / double(H);
  index_t w = W, h = H;
  if (in_ratio < ratio_min) h = std::max<index_t>(1, std::lround(W / ratio_min));
  else if (in_ratio > ratio_max) w = std::max<index_t>(1, std::lround(H * ratio_max));
  h = std::min(h, H);
  w = std::min(w, W);
  return {(H - h) / 2, (W - w) / 2, h, w};
}

/// Colour jitter as torchvision: draws the four factors, then applies
/// brightness, contrast, saturation and hue in a random order. Saturation and
/// hue leave grayscale images unchanged. A strength of 0 skips that operation.
template <class T>
Tensor<T> color_jitter(const Tensor<T>& img, double brightness, double contrast, double saturation,
                       double hue, Rng& rng) {
  const double fb = rng.uniform(std::max(0.0, 1 - brightness), 1 + brightness);
  const double fc = rng.uniform(std::max(0.0, 1 - contrast), 1 + contrast);
  const double fs = rng.uniform(std::max(0.0, 1 - saturation), 1 + saturation);
  const double fh = rng.uniform(-hue, hue);
  std::vector<int> order = {0, 1, 2, 3};
  rng.shuffle(order);
  Tensor<T> out = img;
  for (int op : order) {
    if (op == 0 && brightness > 0) out = adjust_brightness(out, fb);
    if (op == 1 && contrast > 0) out = adjust_contrast(out, fc);
    if (op == 2 && saturation > 0) out = adjust_saturation(out, fs);
    if (op == 3 && hue > 0) out = adjust_hue(out, fh);
  }
  return out;
}

/// One random view of `img` (C, H, W) under `cfg`: (C, out_height, out_width).
/// Draws from `rng` only; requires cfg valid (see validate) and, when it
/// normalises, one mean per channel.
template <class T>
Tensor<T> augment(const Tensor<T>& img, const AugmentConfig& cfg, Rng& rng) {
  check_image(img, "augment");
  const index_t H = img.dim(1), W = img.dim(2);
  Tensor<T> x;
  if (cfg.crop) {
    const CropBox b = sample_resized_crop(H, W, cfg.crop_scale_min, cfg.crop_scale_max,
                                          cfg.crop_ratio_min, cfg.crop_ratio_max, rng);
    x = resize_region(img, b.top, b.left, b.height, b.width, cfg.out_height, cfg.out_width);
  } else if (H != cfg.out_height || W != cfg.out_width) {
    x = resize_bilinear(img, cfg.out_height, cfg.out_width);
  } else {
    x = img;
  }
  if (cfg.flip_p > 0 && rng.bernoulli(cfg.flip_p)) x = hflip(x);
  if (cfg.randaugment_ops > 0) {
    x = rand_augment(x, cfg.randaugment_ops, cfg.randaugment_magnitude, rng);
  } else {
    if (cfg.jitter_p > 0 && rng.bernoulli(cfg.jitter_p))
      x = color_jitter(x, cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, rng);
    if (x.dim(0) == 3 && cfg.grayscale_p > 0 && rng.bernoulli(cfg.grayscale_p))
      x = to_grayscale(x);
  }
  if (cfg.blur_p > 0 && rng.bernoulli(cfg.blur_p)) {
    index_t k = cfg.blur_kernel;
    if (k == 0) k = std::max<index_t>(3, (std::min(cfg.out_height, cfg.out_width) / 10) | 1);
    k = std::min(k, 2 * std::min(cfg.out_height, cfg.out_width) - 1);  // radius < side
    if (k >= 1) x = gaussian_blur(x, rng.uniform(cfg.blur_sigma_min, cfg.blur_sigma_max), k);
  }
  if (!cfg.mean.empty()) normalize_inplace(x, cfg.mean, cfg.stddev);
  return x;
}

/// The pipeline of `cfg` as a Transform (validates cfg once, here).
template <class T>
Transform<T> make_augment(const AugmentConfig& cfg) {
  validate(cfg);
  return [cfg](const Tensor<T>& img, Rng& rng) { return augment(img, cfg, rng); };
}

/// `views` draws of `transform` on `img`, one after the other from `rng`.
template <class T>
std::vector<Tensor<T>> multi_view(const Transform<T>& transform, const Tensor<T>& img,
                                  index_t views, Rng& rng) {
  require(views >= 1, "multi_view: views must be >= 1, got ", views);
  std::vector<Tensor<T>> out;
  out.reserve(static_cast<std::size_t>(views));
  for (index_t v = 0; v < views; ++v) out.push_back(transform(img, rng));
  return out;
}

/// Two views: the pair of inputs SupCon and SimCLR compare.
template <class T>
std::array<Tensor<T>, 2> two_views(const Transform<T>& transform, const Tensor<T>& img, Rng& rng) {
  Tensor<T> a = transform(img, rng);
  return {std::move(a), transform(img, rng)};
}

}  // namespace supcon::data
