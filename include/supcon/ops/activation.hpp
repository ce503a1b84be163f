#pragma once
/// \file activation.hpp
/// ReLU, forward and backward (docs/backprop.md, "ReLU").

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "supcon/config.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/ops/masked_avx512.hpp"

namespace supcon::ops {

/// Forward. x has any shape; y is resized to it and assigned y = max(x, 0).
template <class T>
void relu_forward(const Tensor<T>& x, Tensor<T>& y) {
  y.resize_for_overwrite(x.shape());
  parallel_ranges(x.size(), [&](index_t b, index_t e) {
    VectorMap<T>(y.data() + b, e - b) = ConstVectorMap<T>(x.data() + b, e - b).cwiseMax(T(0));
  });
}

/// Backward from the forward's OUTPUT y (y > 0 exactly where x > 0; the
/// derivative at 0 is taken as 0, as in PyTorch). dy has y's shape; dx is
/// resized and ASSIGNED: dx = dy where y > 0, else 0.
template <class T>
void relu_backward(const Tensor<T>& dy, const Tensor<T>& y, Tensor<T>& dx) {
  require<ShapeError>(dy.shape() == y.shape(), "relu_backward: dy has shape ", shape_str(dy.shape()),
                      ", expected ", shape_str(y.shape()));
  dx.resize_for_overwrite(y.shape());
  // forward: y = max(x, 0)
  parallel_ranges(y.size(), [&](index_t b, index_t e) {
    VectorMap<T>(dx.data() + b, e - b) =
        (ConstVectorMap<T>(y.data() + b, e - b).array() > T(0)).select(ConstVectorMap<T>(dy.data() + b, e - b), T(0));
  });
}

namespace detail {
// Entries [b, e) of the passes below: in float, runs of 16 through the
// AVX-512 loops of ops/masked_avx512.hpp (which says why), the rest here.
// The pointers are __restrict and plain arguments: a byte store may alias
// anything, so otherwise the compiler reloads the pointers after each store.
template <class T>
void relu_mask_range(const T* __restrict x, T* __restrict y, std::uint8_t* __restrict mask, index_t b, index_t e) {
  if constexpr (std::is_same_v<T, float>) b = avx512::relu_mask(x, y, mask, b, e);
  for (index_t i = b; i < e; ++i) {
    const T v = x[i];
    y[i] = v <= T(0) ? T(0) : v;  // a NaN stays NaN
    mask[i] = v > T(0);
  }
}
template <class T>
void add_relu_mask_range(T* __restrict a, const T* __restrict b, std::uint8_t* __restrict mask, index_t lo,
                         index_t hi) {
  if constexpr (std::is_same_v<T, float>) lo = avx512::add_relu_mask(a, b, mask, lo, hi);
  for (index_t i = lo; i < hi; ++i) {
    const T v = a[i] + b[i];
    a[i] = v <= T(0) ? T(0) : v;
    mask[i] = v > T(0);
  }
}
/// dx = g, or dx += g with `add`, for g = dy where the mask is set, else 0.
template <class T>
void relu_mask_grad_range(const T* __restrict dy, const std::uint8_t* __restrict mask, T* __restrict dx, index_t b,
                          index_t e, bool add = false) {
  if constexpr (std::is_same_v<T, float>) b = avx512::mask_grad(dy, mask, dx, b, e, add);
  for (index_t i = b; i < e; ++i) {
    const T d = dy[i];  // loaded whatever the mask, so that the select needs no masked load
    const T g = mask[i] != 0 ? d : T(0);
    dx[i] = add ? dx[i] + g : g;
  }
}
}  // namespace detail

/// Forward that keeps, instead of y, one byte per entry for the backward:
/// mask = (x > 0). y as relu_forward, and a NaN in x stays NaN in y.
template <class T>
void relu_forward_mask(const Tensor<T>& x, Tensor<T>& y, std::vector<std::uint8_t>& mask) {
  y.resize_for_overwrite(x.shape());
  mask.resize(static_cast<std::size_t>(x.size()));
  parallel_ranges(x.size(),
                  [&](index_t b, index_t e) { detail::relu_mask_range(x.data(), y.data(), mask.data(), b, e); });
}

/// relu(a + b) with its mask, in place of a: the residual join and the ReLU
/// after it in one pass. a and b have the same shape (ShapeError otherwise);
/// a becomes y = max(a + b, 0) and mask = (a + b > 0), as relu_forward_mask
/// of the sum would give, a NaN included.
template <class T>
void add_relu_forward_mask(Tensor<T>& a, const Tensor<T>& b, std::vector<std::uint8_t>& mask) {
  require<ShapeError>(a.shape() == b.shape(), "residual join: shapes ", shape_str(a.shape()), " and ",
                      shape_str(b.shape()), " differ");
  mask.resize(static_cast<std::size_t>(a.size()));
  parallel_ranges(a.size(), [&](index_t lo, index_t hi) {
    detail::add_relu_mask_range(a.data(), b.data(), mask.data(), lo, hi);
  });
}

/// Backward from the forward's mask (x > 0): dx is resized to dy's shape and
/// ASSIGNED dx = dy where the mask is set, else 0. mask holds dy.size() bytes.
template <class T>
void relu_backward_mask(const Tensor<T>& dy, const std::uint8_t* mask, Tensor<T>& dx) {
  dx.resize_for_overwrite(dy.shape());
  // forward: y = max(x, 0)
  parallel_ranges(dy.size(),
                  [&](index_t b, index_t e) { detail::relu_mask_grad_range(dy.data(), mask, dx.data(), b, e); });
}

/// relu_backward_mask added into dx instead of assigned: dx += dy where the
/// mask is set. dx has dy's shape (ShapeError otherwise). A residual join
/// y = relu(m + x) sends this gradient to x; adding it where it is formed
/// saves writing it out and reading it back.
template <class T>
void relu_backward_mask_add(const Tensor<T>& dy, const std::uint8_t* mask, Tensor<T>& dx) {
  require<ShapeError>(dx.shape() == dy.shape(), "relu_backward_mask_add: dx has shape ", shape_str(dx.shape()),
                      ", expected ", shape_str(dy.shape()));
  // forward: y = max(x, 0), x a term of the sum
  parallel_ranges(dy.size(),
                  [&](index_t b, index_t e) { detail::relu_mask_grad_range(dy.data(), mask, dx.data(), b, e, true); });
}

}  // namespace supcon::ops
