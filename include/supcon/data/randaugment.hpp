#pragma once
/// \file randaugment.hpp
/// RandAugment (Cubuk et al., 2020): N operations drawn uniformly with
/// replacement from a fixed set, each applied at one shared magnitude M.
///
/// The set and the magnitude ranges follow the paper and torchvision: with
/// m = M / 30 in [0, 1] and a random sign s for the signed operations,
///   rotate 30 m s degrees, shear_x/shear_y 0.3 m s, translate_x/translate_y
///   0.45 m s of the side, brightness/contrast/color/sharpness factor 1 + 0.9 m s,
///   posterize to 8 - floor(4 m) bits, solarize above 1 - m,
///   identity, autocontrast, equalize (no magnitude).
/// Geometric operations use nearest-neighbour sampling and fill uncovered
/// pixels with 0. Images are (C, H, W) with values in [0, 1].

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/rng.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/data/image_ops.hpp"

namespace supcon::data {

/// Affine warp about the image centre: output pixel p (column x, row y, both
/// relative to the centre) takes the input at A p + t with A = [[a, b], [c, d]],
/// the nearest pixel, or 0 outside the image. (A, t) is the inverse map.
template <class T>
Tensor<T> warp_affine(const Tensor<T>& img, double a, double b, double c, double d, double tx,
                      double ty) {
  check_image(img, "warp_affine");
  const index_t C = img.dim(0), H = img.dim(1), W = img.dim(2);
  const double cx = (W - 1) * 0.5, cy = (H - 1) * 0.5;
  Tensor<T> out(img.shape());
  for (index_t y = 0; y < H; ++y)
    for (index_t x = 0; x < W; ++x) {
      const double px = x - cx, py = y - cy;
      const index_t sx = std::lround(a * px + b * py + tx + cx);
      const index_t sy = std::lround(c * px + d * py + ty + cy);
      if (sx < 0 || sx >= W || sy < 0 || sy >= H) continue;
      for (index_t ch = 0; ch < C; ++ch) out(ch, y, x) = img(ch, sy, sx);
    }
  return out;
}

/// Rotation by `degrees` counter-clockwise (as seen on screen, rows going down).
template <class T>
Tensor<T> rotate(const Tensor<T>& img, double degrees) {
  const double r = degrees * 3.14159265358979323846 / 180, cs = std::cos(r), sn = std::sin(r);
  // inverse of a counter-clockwise turn in (x right, y down) coordinates
  return warp_affine(img, cs, -sn, sn, cs, 0.0, 0.0);
}

/// Per channel, stretches [min, max] to [0, 1]; a flat channel stays as it is.
template <class T>
Tensor<T> autocontrast(const Tensor<T>& img) {
  check_image(img, "autocontrast");
  const index_t hw = img.dim(1) * img.dim(2);
  Tensor<T> out = img;
  for (index_t c = 0; c < img.dim(0); ++c) {
    T* p = out.data() + c * hw;
    const auto [mn, mx] = std::minmax_element(p, p + hw);
    const T lo = *mn, span = *mx - *mn;
    if (span <= T(0)) continue;
    for (index_t k = 0; k < hw; ++k) p[k] = (p[k] - lo) / span;
  }
  return out;
}

/// Per-channel histogram equalisation on 256 levels: each level maps to its
/// cumulative frequency, so the output levels are spread evenly.
template <class T>
Tensor<T> equalize(const Tensor<T>& img) {
  check_image(img, "equalize");
  const index_t hw = img.dim(1) * img.dim(2);
  Tensor<T> out(img.shape());
  for (index_t c = 0; c < img.dim(0); ++c) {
    std::vector<int> level(static_cast<std::size_t>(hw));
    std::vector<index_t> hist(256, 0);
    for (index_t k = 0; k < hw; ++k) {
      level[k] = static_cast<int>(std::lround(std::clamp(double(img[c * hw + k]), 0.0, 1.0) * 255));
      ++hist[level[k]];
    }
    // The darkest level present maps to 0, the others to the fraction of the
    // remaining pixels at or below them, so the brightest maps to 1.
    index_t first = 0;
    while (hist[first] == 0) ++first;
    const index_t rest = hw - hist[first];
    std::vector<double> lut(256, 0.0);
    index_t cum = 0;
    for (index_t v = first + 1; v < 256; ++v) {
      cum += hist[v];
      lut[v] = rest > 0 ? double(cum) / double(rest) : 0.0;
    }
    for (index_t k = 0; k < hw; ++k)
      out[c * hw + k] = rest > 0 ? static_cast<T>(lut[level[k]]) : img[c * hw + k];
  }
  return out;
}

/// Keeps the top `bits` bits (1..8) of the 8-bit value of every pixel.
template <class T>
Tensor<T> posterize(const Tensor<T>& img, int bits) {
  require(bits >= 1 && bits <= 8, "posterize: bits must be in [1, 8], got ", bits);
  const int mask = (0xFF << (8 - bits)) & 0xFF;
  Tensor<T> out(img.shape());
  for (index_t k = 0; k < img.size(); ++k) {
    const int v = static_cast<int>(std::lround(std::clamp(double(img[k]), 0.0, 1.0) * 255));
    out[k] = static_cast<T>((v & mask) / 255.0);
  }
  return out;
}

/// Inverts every value at or above `threshold`: x >= threshold ? 1 - x : x.
template <class T>
Tensor<T> solarize(const Tensor<T>& img, double threshold) {
  Tensor<T> out(img.shape());
  for (index_t k = 0; k < img.size(); ++k) out[k] = img[k] >= threshold ? T(1) - img[k] : img[k];
  return out;
}

/// Sharpness: blends with a smoothed image (3x3 kernel, 5 at the centre, 1
/// elsewhere, / 13); border pixels keep their value. f = 1 is the identity,
/// f < 1 blurs, f > 1 sharpens.
template <class T>
Tensor<T> adjust_sharpness(const Tensor<T>& img, double f) {
  check_image(img, "adjust_sharpness");
  const index_t C = img.dim(0), H = img.dim(1), W = img.dim(2);
  Tensor<T> smooth = img;
  for (index_t c = 0; c < C; ++c)
    for (index_t y = 1; y + 1 < H; ++y)
      for (index_t x = 1; x + 1 < W; ++x) {
        double s = 4 * double(img(c, y, x));
        for (index_t dy = -1; dy <= 1; ++dy)
          for (index_t dx = -1; dx <= 1; ++dx) s += double(img(c, y + dy, x + dx));
        smooth(c, y, x) = static_cast<T>(s / 13);
      }
  return blend(img, smooth, f);
}

/// The operations of RandAugment, in a fixed order (the draw picks an index).
enum class RandAugmentOp {
  identity, autocontrast, equalize, rotate, solarize, color, posterize, contrast,
  brightness, sharpness, shear_x, shear_y, translate_x, translate_y
};
/// Number of RandAugment operations.
inline constexpr int randaugment_op_count = 14;

/// Applies `op` at magnitude `m` in [0, 1] with sign `s` (+1 or -1).
template <class T>
Tensor<T> apply_randaugment_op(const Tensor<T>& img, RandAugmentOp op, double m, double s) {
  const double f = 1 + 0.9 * m * s;  // enhancement factor in [0.1, 1.9]
  const double H = double(img.dim(1)), W = double(img.dim(2));
  switch (op) {
    case RandAugmentOp::identity: return img;
    case RandAugmentOp::autocontrast: return autocontrast(img);
    case RandAugmentOp::equalize: return equalize(img);
    case RandAugmentOp::rotate: return rotate(img, 30 * m * s);
    case RandAugmentOp::solarize: return solarize(img, 1 - m);
    case RandAugmentOp::color: return adjust_saturation(img, f);
    case RandAugmentOp::posterize: return posterize(img, 8 - static_cast<int>(4 * m));
    case RandAugmentOp::contrast: return adjust_contrast(img, f);
    case RandAugmentOp::brightness: return adjust_brightness(img, f);
    case RandAugmentOp::sharpness: return adjust_sharpness(img, f);
    case RandAugmentOp::shear_x: return warp_affine(img, 1.0, 0.3 * m * s, 0.0, 1.0, 0.0, 0.0);
    case RandAugmentOp::shear_y: return warp_affine(img, 1.0, 0.0, 0.3 * m * s, 1.0, 0.0, 0.0);
    case RandAugmentOp::translate_x: return warp_affine(img, 1.0, 0.0, 0.0, 1.0, 0.45 * m * s * W, 0.0);
    case RandAugmentOp::translate_y: return warp_affine(img, 1.0, 0.0, 0.0, 1.0, 0.0, 0.45 * m * s * H);
  }
  return img;
}

/// RandAugment: `n` operations drawn uniformly (with replacement), each at
/// magnitude `magnitude` in [0, 30] and a random sign.
template <class T>
Tensor<T> rand_augment(const Tensor<T>& img, int n, int magnitude, Rng& rng) {
  check_image(img, "rand_augment");
  require(n >= 0, "rand_augment: number of operations must be >= 0, got ", n);
  require(magnitude >= 0 && magnitude <= 30, "rand_augment: magnitude must be in [0, 30], got ",
          magnitude);
  Tensor<T> x = img;
  for (int i = 0; i < n; ++i) {
    const auto op = static_cast<RandAugmentOp>(rng.below(randaugment_op_count));
    const double sign = rng.bernoulli(0.5) ? 1.0 : -1.0;
    x = apply_randaugment_op(x, op, magnitude / 30.0, sign);
  }
  return x;
}

}  // namespace supcon::data
