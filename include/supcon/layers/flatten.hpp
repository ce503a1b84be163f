#pragma once
/// \file flatten.hpp
/// Flatten<T>: (N, d1, d2, ...) -> (N, d1*d2*...), and dy back to the input
/// shape (ops/flatten.hpp).

#include <string>

#include "supcon/core/module.hpp"
#include "supcon/layers/common.hpp"
#include "supcon/ops/flatten.hpp"

namespace supcon {

template <class T>
class Flatten : public Module<T> {
 public:
  /// x has rank >= 1; returns (N, prod of the other dimensions).
  Tensor<T> forward(const Tensor<T>& x) override {
    require<ShapeError>(x.rank() >= 1, name(), ": expected input (N, ...), got ", shape_str(x.shape()));
    x_shape_ = x.shape();
    Tensor<T> y = ops::flatten_forward(x);
    y_shape_ = y.shape();
    cached_ = true;
    return y;
  }
  Tensor<T> backward(const Tensor<T>& dy) override {
    detail::require_backward(cached_, dy, y_shape_, name());
    return ops::flatten_backward(dy, x_shape_);
  }
  std::string name() const override { return "Flatten"; }

 private:
  Shape x_shape_, y_shape_;
  bool cached_ = false;
};

}  // namespace supcon
