// AdamW: torch.optim.AdamW's trajectories, bias correction, decoupled decay, convergence.
#include <supcon/optim/adamw.hpp>

#include "optim_helpers.hpp"

using optim_test::LeastSquares;
using optim_test::TwoParams;
using supcon::AdamW;
using supcon::AdamWOptions;
using supcon::index_t;
using supcon::Parameter;
using supcon::Tensor;

TEST_CASE("AdamW follows torch.optim.AdamW step by step, learning-rate changes included") {
  AdamWOptions o;
  std::string name;
  bool bias = false;
  o.lr = 0.1;
  SECTION("defaults") { name = "adamw"; }
  SECTION("other betas and eps, biases excluded from weight decay") {
    name = "adamw_groups";
    o.beta1 = 0.8;
    o.beta2 = 0.99;
    o.eps = 1e-6;
    o.weight_decay = 0.3;
    o.exclude_no_decay = true;
    bias = true;
  }
  TwoParams ps(bias);
  AdamW<double> opt(ps.list(), o);
  optim_test::check_trajectory(opt, ps, name);
}

TEST_CASE("Bias correction makes the first AdamW step lr times the sign of the gradient") {
  // At t = 1, m / (1 - beta1) = g and v / (1 - beta2) = g^2, so the step is
  // lr g / (|g| + eps): about lr in each coordinate, whatever the scale of g.
  Parameter<double> p({3});
  p.grad = Tensor<double>({3}, std::vector<double>{1e-3, -40.0, 2.5});
  AdamWOptions o;
  o.lr = 0.01;
  o.weight_decay = 0;
  o.eps = 1e-12;
  AdamW<double> opt({&p}, o);
  opt.step();
  CHECK(p.value[0] == Approx(-0.01).epsilon(1e-8));
  CHECK(p.value[1] == Approx(0.01).epsilon(1e-8));
  CHECK(p.value[2] == Approx(-0.01).epsilon(1e-8));
}

TEST_CASE("AdamW's weight decay shrinks the weights by 1 - lr wd, not through the moments") {
  // With a zero gradient the moments stay zero and the Adam part of the step
  // is 0 / eps = 0; an L2 term in g would instead be normalised by sqrt(v).
  Parameter<double> p({2});
  p.value = Tensor<double>({2}, std::vector<double>{2.0, -4.0});
  AdamWOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.5;
  AdamW<double> opt({&p}, o);
  opt.step();
  opt.step();
  CHECK(p.value[0] == Approx(2.0 * 0.95 * 0.95).epsilon(1e-15));
  CHECK(p.value[1] == Approx(-4.0 * 0.95 * 0.95).epsilon(1e-15));
}

TEST_CASE("AdamW drives a least-squares problem to near-zero loss") {
  LeastSquares prob;
  AdamWOptions o;
  o.weight_decay = 0;
  AdamW<double> opt(prob.list(), o);
  const double start = prob.loss_and_grad();
  const double end = prob.minimise(opt, 3000, [](int t) { return 0.05 * (1.0 - t / 3000.0); });
  CHECK(start > 1.0);
  CHECK(end < 1e-10);
}

TEST_CASE("AdamW keeps two moments per parameter under stable names") {
  TwoParams ps(false);
  AdamW<double> opt(ps.list(), AdamWOptions{});
  const auto st = opt.state_tensors();
  REQUIRE(st.size() == 4);
  CHECK(st[0].name == "exp_avg.0");
  CHECK(st[3].name == "exp_avg_sq.1");
  CHECK(st[3].tensor->shape() == ps.p1.value.shape());
}

TEST_CASE("AdamW refuses out-of-range options and names the option") {
  TwoParams ps(false);
  auto make = [&](AdamWOptions o) { AdamW<double> opt(ps.list(), o); };
  AdamWOptions o;
  o.beta1 = 1.0;
  CHECK_THROWS_WITH(make(o), Catch::Contains("AdamW: beta1"));
  o = {};
  o.beta2 = -0.1;
  CHECK_THROWS_WITH(make(o), Catch::Contains("AdamW: beta2"));
  o = {};
  o.eps = 0;
  CHECK_THROWS_WITH(make(o), Catch::Contains("AdamW: eps"));
  o = {};
  o.lr = std::nan("");
  CHECK_THROWS_WITH(make(o), Catch::Contains("AdamW: lr"));
  o = {};
  o.weight_decay = -1;
  CHECK_THROWS_WITH(make(o), Catch::Contains("AdamW: weight_decay"));
}
