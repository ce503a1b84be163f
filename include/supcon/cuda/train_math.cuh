#pragma once
/// \file train_math.cuh
/// The arithmetic the GPU training path adds to the layers' (layer_math.cuh):
/// max pooling (the ImageNet stem's 3x3/2), L2 row normalisation (the
/// projection's output) and LARS, one element, window or row at a time, as
/// __host__ __device__ functions. The header compiles with nvcc and with any
/// C++17 compiler, so tests/cuda_train_math.test.cpp runs these very
/// functions over the kernels' grids on the CPU and compares them with
/// ops/pool.hpp, ops/normalize.hpp and optim/lars.hpp.

#include <cmath>
#include <cstdint>

#include "supcon/cuda/layer_math.cuh"

namespace supcon::cuda {

// ---------------------------------------------------------------------------
// Max pooling, PyTorch's floor mode (ops::maxpool2d_forward): a (H, W) plane
// gives (OH, OW) windows of K x K at stride s, padding p (never a winner).

/// Geometry of a max pooling on (N*C) planes of (H, W).
struct PoolGeom {
  std::int64_t H, W, K, stride, pad, OH, OW;
};

/// The winner of window (oh, ow) of `plane` as a flat index h*W + w into the
/// plane: the largest value, the first in row-major order on ties, and a NaN
/// wins (it propagates), as ops::maxpool2d_forward.
template <class T>
SUPCON_HD std::int64_t maxpool_argmax(const T* plane, const PoolGeom& g, std::int64_t oh, std::int64_t ow) {
  T best = T(0);
  std::int64_t at = -1;
  for (std::int64_t i = 0; i < g.K; ++i) {
    const std::int64_t ih = oh * g.stride - g.pad + i;
    if (ih < 0 || ih >= g.H) continue;
    for (std::int64_t j = 0; j < g.K; ++j) {
      const std::int64_t iw = ow * g.stride - g.pad + j;
      if (iw < 0 || iw >= g.W) continue;
      const T v = plane[ih * g.W + iw];
      if (at < 0 || v > best || v != v) {  // v != v: NaN
        best = v;
        at = ih * g.W + iw;
      }
    }
  }
  return at;
}

/// Backward as a gather, for pixel (h, w) of one plane: the sum of dy over
/// the windows whose winner it is. forward: y[k] = x[argmax[k]]. The windows
/// are visited in increasing (oh, ow), the order in which
/// ops::maxpool2d_backward scatters, so both round alike. `dy` and `argmax`
/// point at the plane's (OH, OW) entries.
template <class T>
SUPCON_HD T maxpool_grad_entry(const T* dy, const std::int64_t* argmax, const PoolGeom& g, std::int64_t h,
                               std::int64_t w) {
  // window oh covers rows [oh s - p, oh s - p + K): those holding h
  auto first = [&](std::int64_t t) { return t <= 0 ? std::int64_t(0) : (t + g.stride - 1) / g.stride; };
  const std::int64_t oh0 = first(h + g.pad - g.K + 1), ow0 = first(w + g.pad - g.K + 1);
  const std::int64_t oh1 = (h + g.pad) / g.stride, ow1 = (w + g.pad) / g.stride;
  const std::int64_t me = h * g.W + w;
  T acc = T(0);
  for (std::int64_t oh = oh0; oh <= oh1 && oh < g.OH; ++oh)
    for (std::int64_t ow = ow0; ow <= ow1 && ow < g.OW; ++ow) {
      const std::int64_t k = oh * g.OW + ow;
      if (argmax[k] == me) acc += dy[k];
    }
  return acc;
}

// ---------------------------------------------------------------------------
// L2 normalisation of a row of D values (ops/normalize.hpp):
// y = x / max(||x||, eps).

/// ||x|| of one row, the squares summed in order in T.
template <class T>
SUPCON_HD T row_norm(const T* x, std::int64_t D) {
  using std::sqrt;
  T ss = T(0);
  for (std::int64_t d = 0; d < D; ++d) ss += x[d] * x[d];
  return sqrt(ss);
}

/// Forward of one row: y (D) assigned; returns ||x|| (not clamped), which the backward needs.
template <class T>
SUPCON_HD T l2_normalize_row(const T* x, std::int64_t D, T eps, T* y) {
  const T norm = row_norm(x, D), den = norm > eps ? norm : eps;
  for (std::int64_t d = 0; d < D; ++d) y[d] = x[d] / den;
  return norm;
}

/// Backward of one row from the forward's output y and norm; dx (D) assigned.
///   ||x|| >= eps:  forward y = x / ||x||  =>  dx = (dy - y <y, dy>) / ||x||
///   ||x|| <  eps:  forward y = x / eps    =>  dx = dy / eps
template <class T>
SUPCON_HD void l2_normalize_grad_row(const T* dy, const T* y, T norm, T eps, std::int64_t D, T* dx) {
  if (norm < eps) {
    for (std::int64_t d = 0; d < D; ++d) dx[d] = dy[d] / eps;
    return;
  }
  T ydy = T(0);
  for (std::int64_t d = 0; d < D; ++d) ydy += y[d] * dy[d];
  for (std::int64_t d = 0; d < D; ++d) dx[d] = (dy[d] - ydy * y[d]) / norm;
}

// ---------------------------------------------------------------------------
// LARS (optim/lars.hpp), per parameter tensor: the two norms in double, the
// trust ratio, then one update per entry.

/// Adds one entry to the norms' sums: a += w^2, b += (grad + wd w)^2, in
/// double (wd in double as the CPU's trust_ratio).
template <class T>
SUPCON_HD void lars_norms_push(Sums2& s, T w, T grad, double wd) {
  const double wv = static_cast<double>(w), g = static_cast<double>(grad) + wd * wv;
  s.a += wv * wv;
  s.b += g * g;
}

/// The trust ratio eta ||w|| / ||g + wd w|| from the sums; 1 when either norm
/// is 0 or the parameter is not decayed (biases, batch norm).
SUPCON_HD inline double lars_trust_ratio(const Sums2& s, bool decay, double eta) {
  using std::sqrt;
  if (!decay || !(s.a > 0) || !(s.b > 0)) return 1.0;
  return eta * sqrt(s.a) / sqrt(s.b);
}

/// One entry, in T: g = grad + wd w;  v <- mu v + scaled_lr g;  w <- w - v,
/// with scaled_lr = lr * trust ratio rounded to T and wd = 0 when not decayed.
template <class T>
SUPCON_HD void lars_update(T& w, T grad, T& v, T mu, T wd, T scaled_lr) {
  const T g = grad + wd * w;
  v = mu * v + scaled_lr * g;
  w -= v;
}

}  // namespace supcon::cuda
