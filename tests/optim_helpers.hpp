#pragma once
// Shared by tests/optim_*.test.cpp: replaying PyTorch trajectories, and a small
// least-squares problem with an analytic gradient for convergence tests.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <string>
#include <supcon/core/module.hpp>
#include <supcon/core/npy.hpp>
#include <supcon/optim/optimizer.hpp>
#include <vector>

namespace optim_test {

using supcon::index_t;
using supcon::Parameter;
using supcon::Tensor;

inline std::string fixture(const std::string& name) {
  return std::string(SUPCON_TEST_DATA_DIR) + "/optim/" + name + ".npy";
}

/// Slice s of a (S, ...) tensor as a tensor of the trailing shape.
inline Tensor<double> row(const Tensor<double>& t, index_t s) {
  supcon::Shape tail(t.shape().begin() + 1, t.shape().end());
  const index_t n = supcon::numel_of(tail);
  return Tensor<double>(tail, std::vector<double>(t.data() + s * n, t.data() + (s + 1) * n));
}

/// The two fixture parameters: p0 (3, 4) and p1 (5,); p1 is marked as a bias
/// (decay == false) when `p1_is_bias`.
struct TwoParams {
  Parameter<double> p0, p1;
  explicit TwoParams(bool p1_is_bias) {
    p0.value = supcon::load_npy<double>(fixture("init_p0"));
    p1.value = supcon::load_npy<double>(fixture("init_p1"));
    p0.grad = Tensor<double>(p0.value.shape());
    p1.grad = Tensor<double>(p1.value.shape());
    p1.decay = !p1_is_bias;
  }
  std::vector<Parameter<double>*> list() { return {&p0, &p1}; }
};

/// Largest |a - b| / max(1, |b|) over the elements.
inline double max_diff(const Tensor<double>& a, const Tensor<double>& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (index_t k = 0; k < a.size(); ++k)
    worst = std::max(worst, std::abs(a[k] - b[k]) / std::max(1.0, std::abs(b[k])));
  return worst;
}

/// Replays the fixture's gradients and learning rates through `opt` (built on
/// ps) and checks both parameters after every step against <name>_p0 / _p1.
inline void check_trajectory(supcon::Optimizer<double>& opt, TwoParams& ps,
                             const std::string& name) {
  const Tensor<double> g0 = supcon::load_npy<double>(fixture("grads_p0"));
  const Tensor<double> g1 = supcon::load_npy<double>(fixture("grads_p1"));
  const Tensor<double> lrs = supcon::load_npy<double>(fixture("lrs"));
  const Tensor<double> want0 = supcon::load_npy<double>(fixture(name + "_p0"));
  const Tensor<double> want1 = supcon::load_npy<double>(fixture(name + "_p1"));
  for (index_t s = 0; s < lrs.size(); ++s) {
    opt.set_lr(lrs[s]);
    ps.p0.grad = row(g0, s);
    ps.p1.grad = row(g1, s);
    opt.step();
    INFO(name << ", after step " << s + 1);
    CHECK(max_diff(ps.p0.value, row(want0, s + 1)) < 1e-12);
    CHECK(max_diff(ps.p1.value, row(want1, s + 1)) < 1e-12);
  }
}

/// f(w, c) = 1/(2n) ||A w + c 1 - y||^2 with A (8, 4) fixed, y = A w* + c*, so
/// the minimum is 0 at (w*, c*). w is decayed, c is a bias (decay == false).
struct LeastSquares {
  static constexpr index_t n = 8, d = 4;
  Tensor<double> A{n, d}, y{n};
  Parameter<double> w{{d}}, c{{1}, false};

  LeastSquares() {
    const double w_star[d] = {1.5, -2.0, 0.5, 3.0};
    const double c_star = -0.7;
    for (index_t i = 0; i < n; ++i) {
      for (index_t j = 0; j < d; ++j) A(i, j) = std::sin(double(3 * i + 5 * j + 1));
      y[i] = c_star;
      for (index_t j = 0; j < d; ++j) y[i] += A(i, j) * w_star[j];
    }
    for (index_t j = 0; j < d; ++j) w.value[j] = 0.1 * double(j) - 0.2;
  }
  std::vector<Parameter<double>*> list() { return {&w, &c}; }

  /// Returns f and ADDS its gradient into w.grad and c.grad.
  double loss_and_grad() {
    double f = 0;
    for (index_t i = 0; i < n; ++i) {
      double r = c.value[0] - y[i];
      for (index_t j = 0; j < d; ++j) r += A(i, j) * w.value[j];
      f += r * r / (2 * n);
      for (index_t j = 0; j < d; ++j) w.grad[j] += A(i, j) * r / n;
      c.grad[0] += r / n;
    }
    return f;
  }

  /// Runs `steps` iterations with lr_of(step) and returns the final loss.
  double minimise(supcon::Optimizer<double>& opt, int steps,
                  const std::function<double(int)>& lr_of) {
    for (int s = 0; s < steps; ++s) {
      opt.zero_grad();
      loss_and_grad();
      opt.set_lr(lr_of(s));
      opt.step();
    }
    opt.zero_grad();
    return loss_and_grad();
  }
};

}  // namespace optim_test
