// LARS: a PyTorch LARS's trajectory, the trust ratio, biases left alone, convergence.
#include <supcon/optim/lars.hpp>
#include <supcon/optim/schedule.hpp>

#include "optim_helpers.hpp"

using optim_test::LeastSquares;
using optim_test::TwoParams;
using supcon::index_t;
using supcon::Lars;
using supcon::LarsOptions;
using supcon::Parameter;
using supcon::Tensor;

TEST_CASE("LARS follows a PyTorch LARS step by step, with a bias excluded from adaptation") {
  LarsOptions o;
  o.momentum = 0.9;
  o.weight_decay = 0.05;
  o.trust_coefficient = 0.02;
  TwoParams ps(true);
  Lars<double> opt(ps.list(), o);
  optim_test::check_trajectory(opt, ps, "lars");
}

TEST_CASE("The trust ratio is eta ||w|| / ||g + wd w|| for decayed parameters and 1 for biases") {
  TwoParams ps(true);
  ps.p0.grad.fill(0.5);
  ps.p1.grad.fill(0.5);
  LarsOptions o;
  o.weight_decay = 0.1;
  o.trust_coefficient = 0.01;
  Lars<double> opt(ps.list(), o);
  double ww = 0, gg = 0;
  for (index_t k = 0; k < ps.p0.value.size(); ++k) {
    const double w = ps.p0.value[k], g = 0.5 + 0.1 * w;
    ww += w * w;
    gg += g * g;
  }
  CHECK(opt.trust_ratio(0) == Approx(0.01 * std::sqrt(ww / gg)).epsilon(1e-14));
  CHECK(opt.trust_ratio(1) == 1.0);
}

TEST_CASE("The trust ratio falls back to 1 when the weights or the gradient are zero") {
  Parameter<double> p({4});
  Lars<double> opt({&p}, LarsOptions{});
  p.grad.fill(1.0);
  CHECK(opt.trust_ratio(0) == 1.0);  // w = 0, e.g. a freshly zeroed layer
  p.value.fill(1.0);
  p.grad.zero();
  LarsOptions o;
  o.weight_decay = 0;
  Lars<double> opt0({&p}, o);
  CHECK(opt0.trust_ratio(0) == 1.0);
}

TEST_CASE("A LARS step does not depend on the scale of the gradient") {
  // Without weight decay the step is lr eta ||w|| g / ||g||: multiplying g by
  // 1000 (a larger batch sum, a larger loss scale) leaves it unchanged.
  Parameter<double> a({3}), b({3});
  for (index_t k = 0; k < 3; ++k) {
    a.value[k] = b.value[k] = 1.0 + double(k);
    a.grad[k] = 0.3 - 0.2 * double(k);
    b.grad[k] = 1000 * a.grad[k];
  }
  LarsOptions o;
  o.weight_decay = 0;
  Lars<double> oa({&a}, o), ob({&b}, o);
  oa.step();
  ob.step();
  for (index_t k = 0; k < 3; ++k) CHECK(a.value[k] == Approx(b.value[k]).epsilon(1e-14));
  CHECK(a.value[0] != 1.0);
}

TEST_CASE("LARS with a cosine schedule drives a least-squares problem to near-zero loss") {
  // The adapted step has length ~ lr eta ||w||, whatever ||g||: it needs the
  // learning rate to decay to settle, which the cosine schedule provides.
  LeastSquares prob;
  LarsOptions o;
  o.weight_decay = 0;
  o.trust_coefficient = 0.01;
  Lars<double> opt(prob.list(), o);
  supcon::LrSchedule s;
  s.lr = 1.0;
  s.total = 4000;
  const double start = prob.loss_and_grad();
  const double end = prob.minimise(opt, 4000, [&](int t) { return supcon::lr_at(s, t); });
  CHECK(start > 1.0);
  CHECK(end < 1e-8);
}

TEST_CASE("LARS refuses out-of-range options and names the option") {
  TwoParams ps(false);
  auto make = [&](LarsOptions o) { Lars<double> opt(ps.list(), o); };
  LarsOptions o;
  o.trust_coefficient = 0;
  CHECK_THROWS_WITH(make(o), Catch::Contains("LARS: trust_coefficient must be in (0"));
  o = {};
  o.momentum = 1.5;
  CHECK_THROWS_WITH(make(o), Catch::Contains("LARS: momentum"));
  o = {};
  o.weight_decay = -1e-4;
  CHECK_THROWS_WITH(make(o), Catch::Contains("LARS: weight_decay"));
  o = {};
  o.lr = -1;
  CHECK_THROWS_WITH(make(o), Catch::Contains("LARS: lr"));
}
