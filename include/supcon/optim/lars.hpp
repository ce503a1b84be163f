#pragma once
/// \file lars.hpp
/// LARS, layer-wise adaptive rate scaling (You, Gitman and Ginsburg, "Large
/// Batch Training of Convolutional Networks", arXiv:1708.03888, 2017), in the
/// form used to train SimCLR and SupCon with large batches.
///
/// Each parameter tensor w (one "layer") gets its own learning rate, scaled by
/// the trust ratio between the norm of the weights and the norm of their
/// decayed gradient. For gradient g, weight decay lambda, trust coefficient
/// eta, momentum mu and learning rate lr:
///
///   g     <- g + lambda w                              (decay == true only)
///   ratio  = eta ||w|| / ||g||   if ||w|| > 0 and ||g|| > 0, else 1
///   ratio  = 1                                         (decay == false)
///   v     <- mu v + lr ratio g
///   w     <- w - v
///
/// Parameters with decay == false (biases, batch-norm affine) get neither the
/// weight decay nor the adaptation: plain momentum SGD at rate lr. The paper's
/// Algorithm 1 writes the ratio as eta ||w|| / (||g|| + lambda ||w||) with g
/// the undecayed gradient; dividing by the norm of the decayed gradient, as
/// above, is the variant of the SimCLR code that SupCon trains with.
///
/// Unlike sgd.hpp, lr sits inside the velocity v ("classical" momentum): a
/// change of lr affects only the new contributions. Norms are computed in
/// one thread, so results do not depend on the thread count.
///
/// State: "momentum.<i>" (the velocity v) and the step count.

#include <cmath>
#include <string>
#include <vector>

#include "supcon/optim/optimizer.hpp"

namespace supcon {

/// Options of LARS, with the defaults of the SimCLR / SupCon code.
struct LarsOptions {
  double lr = 0.1;                   ///< >= 0
  double momentum = 0.9;             ///< mu in [0, 1)
  double weight_decay = 1e-6;        ///< lambda >= 0, on decay == true parameters only
  double trust_coefficient = 0.001;  ///< eta > 0
};

/// Throws ValueError naming the option when `o` is out of range.
inline void validate(const LarsOptions& o) {
  require_in_range(o.lr, 0, false, HUGE_VAL, true, "LARS", "lr");
  require_in_range(o.momentum, 0, false, 1, true, "LARS", "momentum");
  require_in_range(o.weight_decay, 0, false, HUGE_VAL, true, "LARS", "weight_decay");
  require_in_range(o.trust_coefficient, 0, true, HUGE_VAL, true, "LARS", "trust_coefficient");
}

template <class T>
class Lars : public Optimizer<T> {
 public:
  Lars(std::vector<Parameter<T>*> params, const LarsOptions& o)
      : Optimizer<T>((validate(o), std::move(params)), o.lr, "LARS"), o_(o) {
    velocity_ = this->zeros_like_params();
  }

  std::string name() const override { return "lars"; }
  const LarsOptions& options() const { return o_; }

  std::vector<NamedTensor<T>> state_tensors() override {
    std::vector<NamedTensor<T>> out;
    this->append_slot("momentum", velocity_, out);
    return out;
  }

  /// The trust ratio step() would use for parameter i with the current gradient.
  double trust_ratio(std::size_t i) const {
    const Parameter<T>& p = *this->params_.at(i);
    if (!p.decay) return 1.0;
    const double wd = o_.weight_decay;
    double ww = 0, gg = 0;
    for (index_t k = 0; k < p.value.size(); ++k) {
      const double w = static_cast<double>(p.value[k]);
      const double g = static_cast<double>(p.grad[k]) + wd * w;
      ww += w * w;
      gg += g * g;
    }
    if (ww > 0 && gg > 0) return o_.trust_coefficient * std::sqrt(ww) / std::sqrt(gg);
    return 1.0;
  }

  void step() override {
    this->check_grads();
    const T mu = static_cast<T>(o_.momentum);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      Parameter<T>& p = *this->params_[i];
      const T wd = p.decay ? static_cast<T>(o_.weight_decay) : T(0);
      const T scaled_lr = static_cast<T>(this->lr_ * trust_ratio(i));
      T* w = p.value.data();
      const T* dw = p.grad.data();
      T* v = velocity_[i].data();
      const index_t n = p.value.size();
#pragma omp parallel for if (n > kOptimParallelMin)
      for (index_t k = 0; k < n; ++k) {
        const T g = dw[k] + wd * w[k];
        v[k] = mu * v[k] + scaled_lr * g;
        w[k] -= v[k];
      }
    }
    ++this->steps_;
  }

 private:
  LarsOptions o_;
  std::vector<Tensor<T>> velocity_;  // parallel to params_
};

}  // namespace supcon
