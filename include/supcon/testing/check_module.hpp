#pragma once
/// \file check_module.hpp
/// Numerical checks of any Module<T>'s backward, for the library's layers and
/// for users' own: run them in double.
///
/// `check_module(m, x)` draws a random dy of the output's shape and compares
/// the analytic gradients of f = <m.forward(x), dy> (dx from backward, and
/// every parameter's grad) with central differences, one element at a time.
/// `check_accumulates(m, x)` pre-fills every grad with random values and checks
/// that backward ADDS its gradient to them (and that dx does not depend on
/// them), as the Module contract requires.
///
/// Both leave the module as they found it: parameter values, grads and state
/// buffers (e.g. batch-norm running statistics) are restored on return.
///
/// Errors are relative, per tensor: max_k |a_k - b_k| / max(|a_k|, |b_k|, floor * M)
/// where M is the largest |a_k| or |b_k| of that tensor. The floor keeps
/// entries that are (nearly) zero, where only rounding noise differs, from
/// dominating; an error in any entry above floor * M is measured in full.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "supcon/core/module.hpp"
#include "supcon/core/rng.hpp"
#include "supcon/testing/gradcheck.hpp"

namespace supcon::testing {

/// Options of check_module / check_accumulates.
struct CheckOptions {
  double eps = 1e-5;         ///< central-difference step
  double floor = 1e-3;       ///< relative floor of the error's denominator (see above)
  std::uint64_t seed = 1;    ///< seed of dy and of the pre-filled grads
  bool check_input = true;   ///< also check dx
};

/// Worst relative error of one tensor.
struct TensorCheck {
  std::string name;  ///< "input" or the parameter's state_dict key
  Shape shape;
  double error = 0;
};

/// What a check found: one entry for the input and one per parameter.
struct ModuleCheckReport {
  std::string module;  ///< the module's name()
  std::vector<TensorCheck> tensors;

  /// Largest error over all tensors (0 when there is none).
  double worst() const {
    double w = 0;
    for (const auto& t : tensors) w = std::max(w, t.error);
    return w;
  }
  /// True when every tensor's error is at most `tolerance` (and not NaN).
  bool passed(double tolerance) const {
    for (const auto& t : tensors)
      if (!(t.error <= tolerance)) return false;
    return true;
  }
  /// One line per tensor: "  weight (8, 3, 3, 3)  max rel error 1.2e-09".
  std::string str() const {
    std::ostringstream os;
    os << module << '\n';
    for (const auto& t : tensors)
      os << "  " << t.name << ' ' << shape_str(t.shape) << "  max rel error " << t.error << '\n';
    return os.str();
  }
};

namespace detail {

/// Error of `a` against `b` with the relative floor described above.
template <class T>
double scaled_error(const Tensor<T>& a, const Tensor<T>& b, double floor) {
  double m = 0;
  for (index_t k = 0; k < a.size(); ++k)
    m = std::max({m, std::abs(static_cast<double>(a[k])), std::abs(static_cast<double>(b[k]))});
  return max_relative_error(a, b, std::max(floor * m, 1e-300));
}

template <class T>
T dot(const Tensor<T>& a, const Tensor<T>& b) {
  require<ShapeError>(a.shape() == b.shape(), "check_module: the output shape changed from ",
                      shape_str(b.shape()), " to ", shape_str(a.shape()));
  return a.vec().dot(b.vec());
}

/// Saves every state tensor and parameter grad; restore() puts them back.
template <class T>
class ModuleSnapshot {
 public:
  explicit ModuleSnapshot(Module<T>& m) : params_(m.parameter_list()) {
    m.state("", state_);
    for (const auto& s : state_) values_.push_back(*s.tensor);
    for (Parameter<T>* p : params_) grads_.push_back(p->grad);
  }
  void restore() {
    for (std::size_t i = 0; i < state_.size(); ++i) *state_[i].tensor = values_[i];
    for (std::size_t i = 0; i < params_.size(); ++i) params_[i]->grad = grads_[i];
  }
  /// state_dict key of a parameter, or "parameter <i>" when it has none.
  std::string name_of(std::size_t i) const {
    for (const auto& s : state_)
      if (s.tensor == &params_[i]->value) return s.name;
    return "parameter " + std::to_string(i);
  }
  const std::vector<Parameter<T>*>& params() const { return params_; }

 private:
  std::vector<Parameter<T>*> params_;
  std::vector<NamedTensor<T>> state_;
  std::vector<Tensor<T>> values_, grads_;
};

template <class T>
Tensor<T> random_like(const Shape& shape, Rng& rng) {
  Tensor<T> t(shape);
  for (T& v : t) v = static_cast<T>(rng.normal());
  return t;
}

}  // namespace detail

/// Compares m's dx and parameter gradients with central differences of
/// f = <m.forward(x), dy>, dy ~ N(0, 1). Requires a deterministic forward
/// (in training mode batch norm's output does not depend on its running
/// statistics, so it qualifies). Costs two forwards per checked element:
/// keep x and the parameters small.
template <class T>
ModuleCheckReport check_module(Module<T>& m, const Tensor<T>& x, const CheckOptions& opt = {}) {
  detail::ModuleSnapshot<T> snap(m);
  Rng rng(opt.seed);
  ModuleCheckReport report{m.name(), {}};

  const Tensor<T> dy = detail::random_like<T>(m.forward(x).shape(), rng);
  m.zero_grad();
  const Tensor<T> dx = m.backward(dy);
  const auto& params = snap.params();
  std::vector<Tensor<T>> analytic;
  for (Parameter<T>* p : params) analytic.push_back(p->grad);

  const T eps = static_cast<T>(opt.eps);
  if (opt.check_input) {
    Tensor<T> xp = x;
    std::function<T(const Tensor<T>&)> f = [&](const Tensor<T>& xv) { return detail::dot(m.forward(xv), dy); };
    report.tensors.push_back({"input", x.shape(), detail::scaled_error(dx, numeric_gradient(f, xp, eps), opt.floor)});
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    Tensor<T>& value = params[i]->value;
    // numeric_gradient perturbs its argument in place; perturb the parameter itself.
    std::function<T(const Tensor<T>&)> f = [&](const Tensor<T>&) { return detail::dot(m.forward(x), dy); };
    const Tensor<T> numeric = numeric_gradient(f, value, eps);
    report.tensors.push_back({snap.name_of(i), value.shape(), detail::scaled_error(analytic[i], numeric, opt.floor)});
  }
  snap.restore();
  return report;
}

/// Checks the accumulation contract: with grads pre-filled with G0, one
/// forward + backward must leave G0 + g, where g is what the same backward
/// gives from zero grads; dx must be the same both times. The error of each
/// tensor compares (grad after) - G0 with g, and the two dx.
template <class T>
ModuleCheckReport check_accumulates(Module<T>& m, const Tensor<T>& x, const CheckOptions& opt = {}) {
  detail::ModuleSnapshot<T> snap(m);
  Rng rng(opt.seed);
  ModuleCheckReport report{m.name(), {}};
  const auto& params = snap.params();

  const Tensor<T> dy = detail::random_like<T>(m.forward(x).shape(), rng);
  m.zero_grad();
  const Tensor<T> dx_fresh = m.backward(dy);
  std::vector<Tensor<T>> fresh, prefill;
  for (Parameter<T>* p : params) {
    fresh.push_back(p->grad);
    p->grad = detail::random_like<T>(p->grad.shape(), rng);
    prefill.push_back(p->grad);
  }
  m.forward(x);
  const Tensor<T> dx_again = m.backward(dy);
  report.tensors.push_back({"input", x.shape(), detail::scaled_error(dx_again, dx_fresh, opt.floor)});
  for (std::size_t i = 0; i < params.size(); ++i) {
    Tensor<T> added = params[i]->grad;
    added.vec() -= prefill[i].vec();
    report.tensors.push_back({snap.name_of(i), added.shape(), detail::scaled_error(added, fresh[i], opt.floor)});
  }
  snap.restore();
  return report;
}

}  // namespace supcon::testing
