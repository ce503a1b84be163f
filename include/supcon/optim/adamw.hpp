#pragma once
/// \file adamw.hpp
/// AdamW: Adam (Kingma and Ba, ICLR 2015) with decoupled weight decay
/// (Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019);
/// the update of torch.optim.AdamW (without amsgrad).
///
/// For gradient g, rates beta1 and beta2, weight decay lambda, epsilon eps and
/// learning rate lr, at step t = 1, 2, ... (t counts this step):
///
///   w <- w (1 - lr lambda)                   (decay, applied to w, not to g)
///   m <- beta1 m + (1 - beta1) g             (first moment)
///   v <- beta2 v + (1 - beta2) g^2           (second moment, element-wise)
///   w <- w - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
///
/// The two factors 1 - beta^t undo the bias of moments started at zero. Since
/// the decay multiplies w directly, it is not rescaled by sqrt(v) as an L2
/// term in g would be: that is the "decoupling". docs/optim.md has the details.
///
/// State: "exp_avg.<i>" (m), "exp_avg_sq.<i>" (v) and the step count t.

#include <cmath>
#include <string>
#include <vector>

#include "supcon/optim/optimizer.hpp"

namespace supcon {

/// Options of AdamW, with torch.optim.AdamW's defaults.
struct AdamWOptions {
  double lr = 1e-3;            ///< >= 0
  double beta1 = 0.9;          ///< in [0, 1)
  double beta2 = 0.999;        ///< in [0, 1)
  double eps = 1e-8;           ///< > 0
  double weight_decay = 1e-2;  ///< lambda >= 0
  /// false: every parameter is decayed (one torch param group); true:
  /// parameters with decay == false (biases, batch-norm) are not decayed.
  bool exclude_no_decay = false;
};

/// Throws ValueError naming the option when `o` is out of range.
inline void validate(const AdamWOptions& o) {
  require_in_range(o.lr, 0, false, HUGE_VAL, true, "AdamW", "lr");
  require_in_range(o.beta1, 0, false, 1, true, "AdamW", "beta1");
  require_in_range(o.beta2, 0, false, 1, true, "AdamW", "beta2");
  require_in_range(o.eps, 0, true, HUGE_VAL, true, "AdamW", "eps");
  require_in_range(o.weight_decay, 0, false, HUGE_VAL, true, "AdamW", "weight_decay");
}

template <class T>
class AdamW : public Optimizer<T> {
 public:
  AdamW(std::vector<Parameter<T>*> params, const AdamWOptions& o)
      : Optimizer<T>((validate(o), std::move(params)), o.lr, "AdamW"), o_(o) {
    exp_avg_ = this->zeros_like_params();
    exp_avg_sq_ = this->zeros_like_params();
  }

  std::string name() const override { return "adamw"; }
  const AdamWOptions& options() const { return o_; }

  std::vector<NamedTensor<T>> state_tensors() override {
    std::vector<NamedTensor<T>> out;
    this->append_slot("exp_avg", exp_avg_, out);
    this->append_slot("exp_avg_sq", exp_avg_sq_, out);
    return out;
  }

  void step() override {
    this->check_grads();
    const double t = static_cast<double>(this->steps_ + 1);
    const double lr = this->lr_;
    const T b1 = static_cast<T>(o_.beta1), b2 = static_cast<T>(o_.beta2);
    const T step_size = static_cast<T>(lr / (1 - std::pow(o_.beta1, t)));
    const T bc2_sqrt = static_cast<T>(std::sqrt(1 - std::pow(o_.beta2, t)));
    const T eps = static_cast<T>(o_.eps);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      Parameter<T>& p = *this->params_[i];
      const bool decayed = p.decay || !o_.exclude_no_decay;
      const T shrink = static_cast<T>(1 - lr * (decayed ? o_.weight_decay : 0.0));
      T* w = p.value.data();
      const T* dw = p.grad.data();
      T* m = exp_avg_[i].data();
      T* v = exp_avg_sq_[i].data();
      const index_t n = p.value.size();
#pragma omp parallel for if (n > kOptimParallelMin)
      for (index_t k = 0; k < n; ++k) {
        const T g = dw[k];
        w[k] *= shrink;
        m[k] = b1 * m[k] + (1 - b1) * g;
        v[k] = b2 * v[k] + (1 - b2) * g * g;
        w[k] -= step_size * (m[k] / (std::sqrt(v[k]) / bc2_sqrt + eps));
      }
    }
    ++this->steps_;
  }

 private:
  AdamWOptions o_;
  std::vector<Tensor<T>> exp_avg_;     // m, parallel to params_
  std::vector<Tensor<T>> exp_avg_sq_;  // v, parallel to params_
};

}  // namespace supcon
