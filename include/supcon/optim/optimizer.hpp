#pragma once
/// \file optimizer.hpp
/// Optimizer<T>: the small base shared by SGD, LARS and AdamW.
///
/// An optimizer receives the parameters once, as a vector of pointers, and
/// keeps its per-parameter state (momentum buffers, moments) in vectors
/// parallel to it: state i belongs to parameter i, whatever its address. The
/// training loop calls, per iteration,
///
///   opt.set_lr(schedule_value);   // optional, any time
///   opt.step();                   // reads every Parameter::grad, updates value
///   opt.zero_grad();
///
/// Requires: each parameter's grad has the shape of its value; the pointers
/// stay valid for the optimizer's lifetime. step() refuses a NaN or infinite
/// gradient with a ValueError naming the parameter index, before touching any
/// value, so a diverged step never silently poisons the weights.
///
/// Checkpoints: state_tensors() lists the state under stable names
/// ("<slot>.<index>", e.g. "momentum.3") as pointers into the optimizer, so
/// a loader copies saved values straight in; steps() / set_steps() carry the
/// scalar state. See supcon/train/checkpoint.hpp and docs/optim.md.

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/module.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon {

template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter from its current gradient.
  virtual void step() = 0;
  /// Short lowercase name ("sgd", "lars", "adamw"); checkpoints record it.
  virtual std::string name() const = 0;
  /// Pointers to every state tensor under its name "<slot>.<parameter index>".
  virtual std::vector<NamedTensor<T>> state_tensors() = 0;

  /// Sets every parameter's gradient to zero.
  void zero_grad() {
    for (Parameter<T>* p : params_) p->zero_grad();
  }

  /// Learning rate of the next step(). Requires lr finite and >= 0.
  void set_lr(double lr) {
    require(std::isfinite(lr) && lr >= 0, name(), ": lr must be finite and >= 0, got ", lr);
    lr_ = lr;
  }
  double lr() const { return lr_; }

  /// Number of step() calls so far (restored from checkpoints).
  std::int64_t steps() const { return steps_; }
  void set_steps(std::int64_t n) {
    require(n >= 0, name(), ": step count must be >= 0, got ", n);
    steps_ = n;
  }

  const std::vector<Parameter<T>*>& params() const { return params_; }

 protected:
  /// Checks the parameter list; `who` names the optimizer in error messages.
  Optimizer(std::vector<Parameter<T>*> params, double lr, const char* who)
      : params_(std::move(params)) {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      require(params_[i] != nullptr, who, ": parameter ", i, " is a null pointer");
      require<ShapeError>(params_[i]->grad.shape() == params_[i]->value.shape(), who,
                          ": parameter ", i, " has value shape ",
                          shape_str(params_[i]->value.shape()), " but grad shape ",
                          shape_str(params_[i]->grad.shape()));
    }
    require(std::isfinite(lr) && lr >= 0, who, ": lr must be finite and >= 0, got ", lr);
    lr_ = lr;
  }

  /// One zero tensor per parameter, shaped like it: a state slot.
  std::vector<Tensor<T>> zeros_like_params() const {
    std::vector<Tensor<T>> out;
    out.reserve(params_.size());
    for (const Parameter<T>* p : params_) out.emplace_back(p->value.shape());
    return out;
  }

  /// Appends the tensors of one slot as "<slot>.<index>".
  static void append_slot(const std::string& slot, std::vector<Tensor<T>>& tensors,
                          std::vector<NamedTensor<T>>& out) {
    for (std::size_t i = 0; i < tensors.size(); ++i)
      out.push_back({slot + "." + std::to_string(i), &tensors[i]});
  }

  /// Throws before any update when a gradient is not finite or changed shape.
  void check_grads() const {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const Parameter<T>& p = *params_[i];
      require<ShapeError>(p.grad.shape() == p.value.shape(), name(), ": parameter ", i,
                          " has value shape ", shape_str(p.value.shape()), " but grad shape ",
                          shape_str(p.grad.shape()));
      require(p.grad.all_finite(), name(), ": parameter ", i,
              " has a NaN or infinite gradient; step refused");
    }
  }

  std::vector<Parameter<T>*> params_;
  double lr_ = 0;
  std::int64_t steps_ = 0;
};

/// Throws ValueError naming `option` of optimizer `who` unless lo <= v <= hi
/// (lo_open / hi_open make that end strict). NaN always fails.
inline void require_in_range(double v, double lo, bool lo_open, double hi, bool hi_open,
                             const char* who, const char* option) {
  const bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  require(ok, who, ": ", option, " must be in ", lo_open ? "(" : "[", lo, ", ", hi,
          hi_open ? ")" : "]", ", got ", v);
}

/// Elements per parameter above which the element-wise updates use threads.
constexpr index_t kOptimParallelMin = index_t(1) << 15;

}  // namespace supcon
