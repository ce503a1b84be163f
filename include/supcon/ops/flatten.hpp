#pragma once
/// \file flatten.hpp
/// Flatten (N, d1, d2, ...) -> (N, d1*d2*...), and back. Row-major storage
/// makes both a change of shape only.

#include "supcon/core/tensor.hpp"

namespace supcon::ops {

/// Forward. x has rank >= 1; returns its data with shape (N, prod of the rest).
template <class T>
Tensor<T> flatten_forward(const Tensor<T>& x) {
  require<ShapeError>(x.rank() >= 1, "flatten: x needs a batch dimension, got ", shape_str(x.shape()));
  return x.reshaped({x.dim(0), x.dim(0) == 0 ? 0 : x.size() / x.dim(0)});
}

/// Backward: dy (N, prod) takes back the forward input's shape.
template <class T>
Tensor<T> flatten_backward(const Tensor<T>& dy, const Shape& x_shape) {
  require<ShapeError>(dy.size() == numel_of(x_shape) && dy.rank() == 2 && !x_shape.empty() &&
                          dy.dim(0) == x_shape[0],
                      "flatten_backward: dy has shape ", shape_str(dy.shape()),
                      ", which is not the flattening of ", shape_str(x_shape));
  return dy.reshaped(x_shape);
}

}  // namespace supcon::ops
