#pragma once
/// \file pool.hpp
/// Pooling with PyTorch's semantics (floor mode): max pooling, average pooling
/// with count_include_pad = true (every window divides by K*K, padding counts
/// as zeros) and global average pooling (N, C, H, W) -> (N, C).
/// As in PyTorch, the padding may be at most half the kernel, so that every
/// window overlaps the image. Backward derivations: docs/backprop.md, "Pooling".

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "supcon/core/tensor.hpp"
#include "supcon/ops/im2col.hpp"

namespace supcon::ops {

namespace detail {
/// Checks a pooling input and returns {OH, OW}.
template <class T>
std::pair<index_t, index_t> pool_check(const Tensor<T>& x, index_t kernel, index_t stride,
                                       index_t padding, const char* what) {
  require<ShapeError>(x.rank() == 4, what, ": x must be (N, C, H, W), got ", shape_str(x.shape()));
  require<ValueError>(padding <= kernel / 2, what, ": padding ", padding,
                      " must be at most half the kernel ", kernel);
  return {window_output_size(x.dim(2), kernel, stride, padding, what),
          window_output_size(x.dim(3), kernel, stride, padding, what)};
}
}  // namespace detail

/// Max pooling forward. x is (N, C, H, W); y is resized to (N, C, OH, OW) and
/// assigned the maximum of each window (padding never wins); argmax receives,
/// for each element of y, the flat index into x of the element that won
/// (the first one in row-major order on ties, as PyTorch).
template <class T>
void maxpool2d_forward(const Tensor<T>& x, index_t kernel, index_t stride, index_t padding,
                       Tensor<T>& y, std::vector<index_t>& argmax) {
  const auto ohw = detail::pool_check(x, kernel, stride, padding, "maxpool2d");
  const index_t OH = ohw.first, OW = ohw.second;
  const index_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  y.resize({N, C, OH, OW});
  argmax.resize(static_cast<std::size_t>(y.size()));
#pragma omp parallel for schedule(static)
  for (index_t nc = 0; nc < N * C; ++nc) {
    const T* plane = x.data() + nc * H * W;
    for (index_t oh = 0; oh < OH; ++oh)
      for (index_t ow = 0; ow < OW; ++ow) {
        T best = -std::numeric_limits<T>::infinity();
        index_t at = -1;
        for (index_t i = 0; i < kernel; ++i) {
          const index_t ih = oh * stride - padding + i;
          if (ih < 0 || ih >= H) continue;
          for (index_t j = 0; j < kernel; ++j) {
            const index_t iw = ow * stride - padding + j;
            if (iw < 0 || iw >= W) continue;
            const T v = plane[ih * W + iw];
            // A NaN wins, so it propagates as in PyTorch.
            if (at < 0 || v > best || std::isnan(v)) {
              best = v;
              at = ih * W + iw;
            }
          }
        }
        const index_t k = (nc * OH + oh) * OW + ow;
        y[k] = best;
        argmax[static_cast<std::size_t>(k)] = nc * H * W + at;
      }
  }
}

/// Max pooling backward: each dy goes to the input element that won its
/// window. dx is resized to `x_shape` and ASSIGNED.
template <class T>
void maxpool2d_backward(const Tensor<T>& dy, const std::vector<index_t>& argmax,
                        const Shape& x_shape, Tensor<T>& dx) {
  require<ShapeError>(static_cast<std::size_t>(dy.size()) == argmax.size(),
                      "maxpool2d_backward: dy has ", dy.size(), " elements, the forward output had ",
                      argmax.size());
  dx.resize(x_shape);
  dx.zero();
  // forward: y[k] = x[argmax[k]]; windows may overlap, hence +=
  for (index_t k = 0; k < dy.size(); ++k) dx[argmax[static_cast<std::size_t>(k)]] += dy[k];
}

/// Average pooling forward, count_include_pad = true. x is (N, C, H, W);
/// y is resized to (N, C, OH, OW) and assigned
///   y[n,c,oh,ow] = (1 / K^2) sum over the window of x (padding counts as 0).
template <class T>
void avgpool2d_forward(const Tensor<T>& x, index_t kernel, index_t stride, index_t padding,
                       Tensor<T>& y) {
  const auto ohw = detail::pool_check(x, kernel, stride, padding, "avgpool2d");
  const index_t OH = ohw.first, OW = ohw.second;
  const index_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const T inv_area = T(1) / static_cast<T>(kernel * kernel);
  y.resize({N, C, OH, OW});
#pragma omp parallel for schedule(static)
  for (index_t nc = 0; nc < N * C; ++nc) {
    const T* plane = x.data() + nc * H * W;
    for (index_t oh = 0; oh < OH; ++oh)
      for (index_t ow = 0; ow < OW; ++ow) {
        T acc = 0;
        for (index_t i = 0; i < kernel; ++i) {
          const index_t ih = oh * stride - padding + i;
          if (ih < 0 || ih >= H) continue;
          for (index_t j = 0; j < kernel; ++j) {
            const index_t iw = ow * stride - padding + j;
            if (iw >= 0 && iw < W) acc += plane[ih * W + iw];
          }
        }
        y[(nc * OH + oh) * OW + ow] = acc * inv_area;
      }
  }
}

/// Average pooling backward: every input of a window receives dy / K^2.
/// dy is (N, C, OH, OW); dx is resized to `x_shape` (N, C, H, W) and ASSIGNED.
template <class T>
void avgpool2d_backward(const Tensor<T>& dy, const Shape& x_shape, index_t kernel, index_t stride,
                        index_t padding, Tensor<T>& dx) {
  dx.resize(x_shape);
  const auto ohw = detail::pool_check(dx, kernel, stride, padding, "avgpool2d_backward");
  const index_t OH = ohw.first, OW = ohw.second;
  const index_t N = x_shape[0], C = x_shape[1], H = x_shape[2], W = x_shape[3];
  require<ShapeError>(dy.shape() == Shape{N, C, OH, OW}, "avgpool2d_backward: dy has shape ",
                      shape_str(dy.shape()), ", expected ", shape_str({N, C, OH, OW}));
  const T inv_area = T(1) / static_cast<T>(kernel * kernel);
  dx.zero();
#pragma omp parallel for schedule(static)
  for (index_t nc = 0; nc < N * C; ++nc) {
    T* plane = dx.data() + nc * H * W;
    for (index_t oh = 0; oh < OH; ++oh)
      for (index_t ow = 0; ow < OW; ++ow) {
        // forward: y = (1/K^2) sum_window x
        const T g = dy[(nc * OH + oh) * OW + ow] * inv_area;
        for (index_t i = 0; i < kernel; ++i) {
          const index_t ih = oh * stride - padding + i;
          if (ih < 0 || ih >= H) continue;
          for (index_t j = 0; j < kernel; ++j) {
            const index_t iw = ow * stride - padding + j;
            if (iw >= 0 && iw < W) plane[ih * W + iw] += g;
          }
        }
      }
  }
}

/// Global average pooling forward. x is (N, C, H, W); y is resized to (N, C)
/// and assigned the mean of each H*W plane.
template <class T>
void global_avgpool_forward(const Tensor<T>& x, Tensor<T>& y) {
  require<ShapeError>(x.rank() == 4 && x.dim(2) * x.dim(3) > 0,
                      "global_avgpool: x must be (N, C, H, W) with H, W > 0, got ", shape_str(x.shape()));
  const index_t N = x.dim(0), C = x.dim(1), S = x.dim(2) * x.dim(3);
  y.resize({N, C});
  y.vec().noalias() = x.matrix(N * C, S).rowwise().mean();
}

/// Global average pooling backward: dx[n,c,h,w] = dy[n,c] / (H*W).
/// dy is (N, C); dx is resized to `x_shape` and ASSIGNED.
template <class T>
void global_avgpool_backward(const Tensor<T>& dy, const Shape& x_shape, Tensor<T>& dx) {
  require<ShapeError>(x_shape.size() == 4 && dy.shape() == Shape{x_shape[0], x_shape[1]},
                      "global_avgpool_backward: dy has shape ", shape_str(dy.shape()),
                      ", expected (N, C) of input ", shape_str(x_shape));
  const index_t S = x_shape[2] * x_shape[3];
  dx.resize(x_shape);
  // forward: y = mean over the plane
  dx.matrix(dy.size(), S) = (dy.vec() / static_cast<T>(S)).replicate(1, S);
}

}  // namespace supcon::ops
