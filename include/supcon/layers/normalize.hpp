#pragma once
/// \file normalize.hpp
/// L2Normalize<T>: rows of (N, D) to unit length, y = x / max(||x||, eps),
/// as PyTorch's F.normalize(x, dim=1) with eps = 1e-12 by default
/// (math in ops/normalize.hpp). This is how contrastive features are put on
/// the unit sphere before the loss.

#include <string>

#include "supcon/core/module.hpp"
#include "supcon/layers/common.hpp"
#include "supcon/ops/normalize.hpp"

namespace supcon {

template <class T>
class L2Normalize : public Module<T> {
 public:
  explicit L2Normalize(double eps = 1e-12) : eps_(static_cast<T>(eps)) {
    require<ValueError>(eps > 0 && eps_ > 0, "L2Normalize: eps must be > 0 in this precision, got ", eps);
  }

  /// x is (N, D); returns (N, D) with unit rows (rows shorter than eps are divided by eps).
  Tensor<T> forward(const Tensor<T>& x) override {
    detail::require_input(x, 2, -1, "(N, D)", name());
    ops::l2_normalize_forward(x, eps_, y_, norms_);
    cached_ = true;
    return y_;
  }
  Tensor<T> backward(const Tensor<T>& dy) override {
    detail::require_backward(cached_, dy, y_.shape(), name());
    Tensor<T> dx;
    ops::l2_normalize_backward(dy, y_, norms_, eps_, dx);
    return dx;
  }
  std::string name() const override { return "L2Normalize"; }

 private:
  T eps_;
  Tensor<T> y_, norms_;
  bool cached_ = false;
};

}  // namespace supcon
