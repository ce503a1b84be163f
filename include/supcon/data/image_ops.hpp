#pragma once
/// \file image_ops.hpp
/// Deterministic operations on one image: resize, crop, flip, colour
/// adjustments, blur, normalisation. The random augmentations (augment.hpp)
/// draw parameters and call these.
///
/// Every function takes an image `img` of shape (C, H, W) with C = 1
/// (grayscale) or C = 3 (RGB), values in [0, 1] unless stated, and returns a
/// new image; none modifies its argument. Colour operations clamp to [0, 1],
/// as torchvision does on float images.

#include <algorithm>
#include <cmath>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon::data {

/// Throws ShapeError naming `what` unless `img` is (C, H, W) with C in {1, 3}, H, W > 0.
template <class T>
void check_image(const Tensor<T>& img, const char* what) {
  require<ShapeError>(img.rank() == 3 && (img.dim(0) == 1 || img.dim(0) == 3) && img.dim(1) > 0 &&
                          img.dim(2) > 0,
                      what, ": expected an image (C, H, W) with C = 1 or 3, got shape ",
                      shape_str(img.shape()));
}

/// Bilinear resize of the region rows [top, top + h), columns [left, left + w)
/// of `img` to (C, oh, ow). Pixel centres are aligned (PyTorch's
/// align_corners=False): output pixel (oy, ox) samples the region at
/// y = (oy + 0.5) * h / oh - 0.5, clamped to the region, so the result equals
/// cropping first and resizing after. Requires the region inside the image.
template <class T>
Tensor<T> resize_region(const Tensor<T>& img, index_t top, index_t left, index_t h, index_t w,
                        index_t oh, index_t ow) {
  check_image(img, "resize_region");
  const index_t C = img.dim(0), H = img.dim(1), W = img.dim(2);
  require<ValueError>(top >= 0 && left >= 0 && h > 0 && w > 0 && top + h <= H && left + w <= W,
                      "resize_region: region (top ", top, ", left ", left, ", ", h, "x", w,
                      ") outside the ", H, "x", W, " image");
  require<ValueError>(oh > 0 && ow > 0, "resize_region: output size ", oh, "x", ow,
                      " must be positive");
  // Precompute, per output column, the two source columns and their weights.
  std::vector<index_t> x0(static_cast<std::size_t>(ow)), x1(x0.size());
  std::vector<T> wx(x0.size());
  for (index_t ox = 0; ox < ow; ++ox) {
    const double sx = std::clamp((ox + 0.5) * double(w) / double(ow) - 0.5, 0.0, double(w - 1));
    const index_t i0 = static_cast<index_t>(sx);
    x0[ox] = left + i0;
    x1[ox] = left + std::min(i0 + 1, w - 1);
    wx[ox] = static_cast<T>(sx - double(i0));
  }
  Tensor<T> out({C, oh, ow});
  for (index_t oy = 0; oy < oh; ++oy) {
    const double sy = std::clamp((oy + 0.5) * double(h) / double(oh) - 0.5, 0.0, double(h - 1));
    const index_t j0 = static_cast<index_t>(sy);
    const index_t y0 = top + j0, y1 = top + std::min(j0 + 1, h - 1);
    const T wy = static_cast<T>(sy - double(j0));
    for (index_t c = 0; c < C; ++c) {
      const T* r0 = img.data() + (c * H + y0) * W;
      const T* r1 = img.data() + (c * H + y1) * W;
      T* o = out.data() + (c * oh + oy) * ow;
      for (index_t ox = 0; ox < ow; ++ox) {
        const T a = r0[x0[ox]] + wx[ox] * (r0[x1[ox]] - r0[x0[ox]]);
        const T b = r1[x0[ox]] + wx[ox] * (r1[x1[ox]] - r1[x0[ox]]);
        o[ox] = a + wy * (b - a);
      }
    }
  }
  return out;
}

/// Bilinear resize of the whole image to (C, oh, ow).
template <class T>
Tensor<T> resize_bilinear(const Tensor<T>& img, index_t oh, index_t ow) {
  check_image(img, "resize_bilinear");
  return resize_region(img, 0, 0, img.dim(1), img.dim(2), oh, ow);
}

/// The (C, h, w) crop with top-left corner (top, left), copied. Requires it inside the image.
template <class T>
Tensor<T> crop(const Tensor<T>& img, index_t top, index_t left, index_t h, index_t w) {
  return resize_region(img, top, left, h, w, h, w);  // same size: samples exactly each pixel
}

/// Mirror image: out(c, y, x) = img(c, y, W - 1 - x).
template <class T>
Tensor<T> hflip(const Tensor<T>& img) {
  check_image(img, "hflip");
  const index_t W = img.dim(2), rows = img.dim(0) * img.dim(1);
  Tensor<T> out(img.shape());
  for (index_t r = 0; r < rows; ++r)
    std::reverse_copy(img.data() + r * W, img.data() + (r + 1) * W, out.data() + r * W);
  return out;
}

/// Luma (1, H, W) = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601); a copy for C = 1.
template <class T>
Tensor<T> luma(const Tensor<T>& img) {
  check_image(img, "luma");
  const index_t hw = img.dim(1) * img.dim(2);
  if (img.dim(0) == 1) return img;
  Tensor<T> out({1, img.dim(1), img.dim(2)});
  for (index_t k = 0; k < hw; ++k)
    out[k] = T(0.299) * img[k] + T(0.587) * img[hw + k] + T(0.114) * img[2 * hw + k];
  return out;
}

/// Grayscale with the same number of channels: every channel holds the luma.
template <class T>
Tensor<T> to_grayscale(const Tensor<T>& img) {
  const Tensor<T> y = luma(img);
  Tensor<T> out(img.shape());
  const index_t hw = y.size();
  for (index_t c = 0; c < img.dim(0); ++c) std::copy(y.begin(), y.end(), out.data() + c * hw);
  return out;
}

/// clamp(f * a + (1 - f) * b, 0, 1), with b broadcast over channels when it has one.
template <class T>
Tensor<T> blend(const Tensor<T>& a, const Tensor<T>& b, double f) {
  Tensor<T> out(a.shape());
  const index_t nb = b.size();
  for (index_t k = 0; k < a.size(); ++k)
    out[k] = std::clamp(static_cast<T>(f * a[k] + (1 - f) * b[k % nb]), T(0), T(1));
  return out;
}

/// Brightness: clamp(f * img). f = 1 is the identity, 0 gives black. Requires f >= 0.
template <class T>
Tensor<T> adjust_brightness(const Tensor<T>& img, double f) {
  check_image(img, "adjust_brightness");
  require(f >= 0, "adjust_brightness: factor must be >= 0, got ", f);
  return blend(img, Tensor<T>({1}, T(0)), f);
}

/// Contrast: blend with the mean luma of the image. f = 1 is the identity, 0 a flat grey.
template <class T>
Tensor<T> adjust_contrast(const Tensor<T>& img, double f) {
  check_image(img, "adjust_contrast");
  require(f >= 0, "adjust_contrast: factor must be >= 0, got ", f);
  const Tensor<T> y = luma(img);
  const T mean = static_cast<T>(y.vec().template cast<double>().mean());
  return blend(img, Tensor<T>({1}, mean), f);
}

/// Saturation: blend with the grayscale image. f = 1 is the identity, 0 grey.
/// Grayscale images are returned unchanged.
template <class T>
Tensor<T> adjust_saturation(const Tensor<T>& img, double f) {
  check_image(img, "adjust_saturation");
  require(f >= 0, "adjust_saturation: factor must be >= 0, got ", f);
  if (img.dim(0) == 1) return img;
  return blend(img, luma(img), f);
}

/// Hue: rotates the hue of every pixel by `shift` turns, shift in [-0.5, 0.5],
/// through HSV (saturation and value unchanged). Grayscale images are returned unchanged.
template <class T>
Tensor<T> adjust_hue(const Tensor<T>& img, double shift) {
  check_image(img, "adjust_hue");
  require(shift >= -0.5 && shift <= 0.5, "adjust_hue: shift must be in [-0.5, 0.5], got ", shift);
  if (img.dim(0) == 1) return img;
  const index_t hw = img.dim(1) * img.dim(2);
  Tensor<T> out(img.shape());
  for (index_t k = 0; k < hw; ++k) {
    const double r = img[k], g = img[hw + k], b = img[2 * hw + k];
    const double mx = std::max({r, g, b}), mn = std::min({r, g, b}), d = mx - mn;
    // hue in turns [0, 1): which channel is largest picks the sextant.
    double h = 0;
    if (d > 0) {
      if (mx == r) h = (g - b) / d;
      else if (mx == g) h = 2 + (b - r) / d;
      else h = 4 + (r - g) / d;
      h /= 6;
    }
    h = h + shift;
    h -= std::floor(h);
    // back to RGB: v = mx, chroma d, the sextant gives which channel is which.
    const double hp = h * 6;
    const int sextant = static_cast<int>(hp) % 6;
    const double frac = hp - std::floor(hp);
    const double p = mn, q = mx - d * frac, t = mn + d * frac;
    double o[3];
    switch (sextant) {
      case 0: o[0] = mx, o[1] = t, o[2] = p; break;
      case 1: o[0] = q, o[1] = mx, o[2] = p; break;
      case 2: o[0] = p, o[1] = mx, o[2] = t; break;
      case 3: o[0] = p, o[1] = q, o[2] = mx; break;
      case 4: o[0] = t, o[1] = p, o[2] = mx; break;
      default: o[0] = mx, o[1] = p, o[2] = q; break;
    }
    for (int c = 0; c < 3; ++c) out[c * hw + k] = static_cast<T>(o[c]);
  }
  return out;
}

/// Gaussian blur with standard deviation `sigma` (pixels) and an odd kernel
/// size `ksize`, separable, with reflected borders. Requires sigma > 0 and
/// ksize odd and smaller than twice the image side.
template <class T>
Tensor<T> gaussian_blur(const Tensor<T>& img, double sigma, index_t ksize) {
  check_image(img, "gaussian_blur");
  const index_t C = img.dim(0), H = img.dim(1), W = img.dim(2);
  require(sigma > 0, "gaussian_blur: sigma must be positive, got ", sigma);
  require(ksize >= 1 && ksize % 2 == 1, "gaussian_blur: kernel size must be odd, got ", ksize);
  const index_t r = ksize / 2;
  require(r < H && r < W, "gaussian_blur: kernel size ", ksize, " too large for a ", H, "x", W,
          " image");
  std::vector<double> k(static_cast<std::size_t>(ksize));
  double sum = 0;
  for (index_t i = -r; i <= r; ++i) sum += k[i + r] = std::exp(-0.5 * (i * i) / (sigma * sigma));
  for (auto& v : k) v /= sum;
  // reflect without repeating the edge: -1 -> 1, n -> n - 2
  auto reflect = [](index_t i, index_t n) { return i < 0 ? -i : (i >= n ? 2 * n - 2 - i : i); };
  Tensor<T> tmp(img.shape()), out(img.shape());
  for (index_t c = 0; c < C; ++c)
    for (index_t y = 0; y < H; ++y)
      for (index_t x = 0; x < W; ++x) {
        double a = 0;
        for (index_t i = -r; i <= r; ++i) a += k[i + r] * img(c, y, reflect(x + i, W));
        tmp(c, y, x) = static_cast<T>(a);
      }
  for (index_t c = 0; c < C; ++c)
    for (index_t y = 0; y < H; ++y)
      for (index_t x = 0; x < W; ++x) {
        double a = 0;
        for (index_t i = -r; i <= r; ++i) a += k[i + r] * tmp(c, reflect(y + i, H), x);
        out(c, y, x) = static_cast<T>(a);
      }
  return out;
}

/// Per-channel normalisation: out(c) = (img(c) - mean[c]) / std[c], in place.
/// Requires one mean and one positive std per channel.
template <class T>
void normalize_inplace(Tensor<T>& img, const std::vector<double>& mean,
                       const std::vector<double>& stddev) {
  check_image(img, "normalize");
  const index_t C = img.dim(0), hw = img.dim(1) * img.dim(2);
  require(static_cast<index_t>(mean.size()) == C && static_cast<index_t>(stddev.size()) == C,
          "normalize: need ", C, " mean and std values, got ", mean.size(), " and ", stddev.size());
  for (index_t c = 0; c < C; ++c) {
    require(stddev[c] > 0, "normalize: std of channel ", c, " must be positive, got ", stddev[c]);
    for (index_t k = 0; k < hw; ++k)
      img[c * hw + k] = static_cast<T>((img[c * hw + k] - mean[c]) / stddev[c]);
  }
}

/// Inverse of normalize_inplace: out(c) = img(c) * std[c] + mean[c] (for display).
template <class T>
Tensor<T> denormalize(const Tensor<T>& img, const std::vector<double>& mean,
                      const std::vector<double>& stddev) {
  check_image(img, "denormalize");
  const index_t C = img.dim(0), hw = img.dim(1) * img.dim(2);
  require(static_cast<index_t>(mean.size()) == C && static_cast<index_t>(stddev.size()) == C,
          "denormalize: need ", C, " mean and std values, got ", mean.size(), " and ",
          stddev.size());
  Tensor<T> out(img.shape());
  for (index_t c = 0; c < C; ++c)
    for (index_t k = 0; k < hw; ++k)
      out[c * hw + k] = static_cast<T>(img[c * hw + k] * stddev[c] + mean[c]);
  return out;
}

}  // namespace supcon::data
