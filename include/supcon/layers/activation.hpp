#pragma once
/// \file activation.hpp
/// ReLU<T>: y = max(x, 0) element-wise, any shape (math in ops/activation.hpp).
/// Caches its output, from which the backward reads where x was positive.

#include <string>

#include "supcon/core/module.hpp"
#include "supcon/layers/common.hpp"
#include "supcon/ops/activation.hpp"

namespace supcon {

template <class T>
class ReLU : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override {
    ops::relu_forward(x, y_);
    cached_ = true;
    return y_;
  }
  Tensor<T> backward(const Tensor<T>& dy) override {
    detail::require_backward(cached_, dy, y_.shape(), name());
    Tensor<T> dx;
    ops::relu_backward(dy, y_, dx);
    return dx;
  }
  std::string name() const override { return "ReLU"; }

 private:
  Tensor<T> y_;
  bool cached_ = false;
};

}  // namespace supcon
