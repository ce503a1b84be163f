#pragma once
/// \file sgd.hpp
/// Stochastic gradient descent with momentum (Polyak, 1964), optionally in
/// Nesterov's form (Sutskever, Martens, Dahl and Hinton, ICML 2013), with L2
/// weight decay; the update of torch.optim.SGD.
///
/// For parameter w with gradient g, momentum mu, dampening d, weight decay
/// lambda and learning rate lr, step t = 0, 1, ...:
///
///   g  <- g + lambda w                      (weight decay as an L2 gradient)
///   b  <- g                        if t = 0 (the buffer starts at the gradient)
///   b  <- mu b + (1 - d) g         if t > 0
///   u  <- g + mu b   (Nesterov)    or   u <- b   (classical)
///   w  <- w - lr u
///
/// With mu = 0 there is no buffer and u = g. The learning rate multiplies the
/// update outside the buffer, so changing lr between steps rescales the whole
/// step at once (unlike LARS, see lars.hpp). Derivation and references:
/// docs/optim.md.
///
/// State: "momentum.<i>" (only when mu > 0) and the step count.

#include <string>
#include <vector>

#include "supcon/optim/optimizer.hpp"

namespace supcon {

/// Options of SGD, with torch.optim.SGD's defaults except lr (which has none there).
struct SgdOptions {
  double lr = 0.1;          ///< >= 0
  double momentum = 0;      ///< mu in [0, 1)
  double dampening = 0;     ///< d in [0, 1]
  double weight_decay = 0;  ///< lambda >= 0
  bool nesterov = false;    ///< requires momentum > 0 and dampening = 0
  /// false: every parameter is decayed (one torch param group).
  /// true: parameters with decay == false (biases, batch-norm) are not decayed,
  /// the usual two-group recipe.
  bool exclude_no_decay = false;
};

/// Throws ValueError naming the option when `o` is out of range.
inline void validate(const SgdOptions& o) {
  require_in_range(o.lr, 0, false, HUGE_VAL, true, "SGD", "lr");
  require_in_range(o.momentum, 0, false, 1, true, "SGD", "momentum");
  require_in_range(o.dampening, 0, false, 1, false, "SGD", "dampening");
  require_in_range(o.weight_decay, 0, false, HUGE_VAL, true, "SGD", "weight_decay");
  require(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
          "SGD: nesterov requires momentum > 0 and dampening = 0, got momentum ", o.momentum,
          " and dampening ", o.dampening);
}

template <class T>
class Sgd : public Optimizer<T> {
 public:
  Sgd(std::vector<Parameter<T>*> params, const SgdOptions& o)
      : Optimizer<T>((validate(o), std::move(params)), o.lr, "SGD"), o_(o) {
    if (o_.momentum > 0) momentum_ = this->zeros_like_params();
  }

  std::string name() const override { return "sgd"; }
  const SgdOptions& options() const { return o_; }

  std::vector<NamedTensor<T>> state_tensors() override {
    std::vector<NamedTensor<T>> out;
    this->append_slot("momentum", momentum_, out);
    return out;
  }

  void step() override {
    this->check_grads();
    const T lr = static_cast<T>(this->lr_), mu = static_cast<T>(o_.momentum);
    const T keep = static_cast<T>(1 - o_.dampening);
    const bool first = this->steps_ == 0;
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      Parameter<T>& p = *this->params_[i];
      const bool decayed = p.decay || !o_.exclude_no_decay;
      const T wd = decayed ? static_cast<T>(o_.weight_decay) : T(0);
      T* w = p.value.data();
      const T* dw = p.grad.data();
      T* b = momentum_.empty() ? nullptr : momentum_[i].data();
      const index_t n = p.value.size();
#pragma omp parallel for if (n > kOptimParallelMin)
      for (index_t k = 0; k < n; ++k) {
        T g = dw[k] + wd * w[k];
        if (b) {
          b[k] = first ? g : mu * b[k] + keep * g;
          g = o_.nesterov ? g + mu * b[k] : b[k];
        }
        w[k] -= lr * g;
      }
    }
    ++this->steps_;
  }

 private:
  SgdOptions o_;
  std::vector<Tensor<T>> momentum_;  // parallel to params_; empty when momentum == 0
};

}  // namespace supcon
