#pragma once
/// \file activation.hpp
/// ReLU, forward and backward (docs/backprop.md, "ReLU").

#include <algorithm>

#include "supcon/config.hpp"
#include "supcon/core/tensor.hpp"

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

}  // namespace supcon::ops
