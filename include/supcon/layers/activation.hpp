#pragma once
/// \file activation.hpp
/// ReLU<T>: y = max(x, 0) element-wise, any shape (math in ops/activation.hpp).
/// Caches one byte per entry, whether x was positive, for the backward.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "supcon/core/module.hpp"
#include "supcon/layers/common.hpp"
#include "supcon/ops/activation.hpp"

namespace supcon {

template <class T>
class ReLU : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override {
    Tensor<T> y;
    ops::relu_forward_mask(x, y, positive_);
    shape_ = x.shape();
    cached_ = true;
    return y;
  }
  /// relu(a + b), a residual join and this ReLU in one pass: as forward(a + b),
  /// written over a. a and b have the same shape.
  Tensor<T> forward_sum(Tensor<T>&& a, const Tensor<T>& b) {
    ops::add_relu_forward_mask(a, b, positive_);
    shape_ = a.shape();
    cached_ = true;
    return std::move(a);
  }
  /// For a caller that computes this ReLU inside its own pass (a residual
  /// block's last batch norm, the join and this ReLU in one): records a
  /// forward of the given shape and returns the mask to fill, one byte per
  /// entry, set where the ReLU's input is positive.
  std::vector<std::uint8_t>& mask_for_fused_forward(const Shape& shape) {
    shape_ = shape;
    cached_ = true;
    return positive_;
  }
  Tensor<T> backward(const Tensor<T>& dy) override {
    Tensor<T> dx;
    ops::relu_backward_mask(dy, backward_mask(dy), dx);
    return dx;
  }
  /// The mask of the latest forward, one byte per entry, set where the input
  /// was positive: backward(dy) is dy where it is set, 0 elsewhere. Checks dy
  /// as backward does, for callers that apply the mask inside their own pass
  /// (the residual blocks, in batch norm's backward and the skip path's sum).
  const std::uint8_t* backward_mask(const Tensor<T>& dy) const {
    detail::require_backward(cached_, dy, shape_, name());
    return positive_.data();
  }
  std::string name() const override { return "ReLU"; }

 private:
  // one byte per entry (x > 0) rather than a copy of y: a quarter of the memory traffic in float
  std::vector<std::uint8_t> positive_;
  Shape shape_;
  bool cached_ = false;
};

}  // namespace supcon
