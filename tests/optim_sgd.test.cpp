// SGD: PyTorch's trajectories, convergence, options, state and refusals.
#include <supcon/optim/sgd.hpp>

#include "optim_helpers.hpp"

using optim_test::LeastSquares;
using optim_test::TwoParams;
using supcon::index_t;
using supcon::Parameter;
using supcon::Sgd;
using supcon::SgdOptions;
using supcon::Tensor;

TEST_CASE("SGD follows torch.optim.SGD step by step, learning-rate changes included") {
  SgdOptions o;
  std::string name;
  bool bias = false;
  SECTION("plain") { name = "sgd_plain"; }
  SECTION("momentum with dampening and weight decay") {
    name = "sgd_momentum";
    o.momentum = 0.9;
    o.dampening = 0.25;  // not applied at the first step: the buffer starts at g
    o.weight_decay = 0.01;
  }
  SECTION("nesterov") {
    name = "sgd_nesterov";
    o.momentum = 0.8;
    o.nesterov = true;
    o.weight_decay = 5e-3;
  }
  SECTION("biases excluded from weight decay, as a second param group") {
    name = "sgd_groups";
    o.momentum = 0.9;
    o.weight_decay = 0.1;
    o.exclude_no_decay = true;
    bias = true;
  }
  TwoParams ps(bias);
  Sgd<double> opt(ps.list(), o);
  optim_test::check_trajectory(opt, ps, name);
}

TEST_CASE("SGD with Nesterov momentum drives a least-squares problem to zero loss") {
  LeastSquares prob;
  SgdOptions o;
  o.momentum = 0.9;
  o.nesterov = true;
  Sgd<double> opt(prob.list(), o);
  const double start = prob.loss_and_grad();
  const double end = prob.minimise(opt, 2000, [](int) { return 0.05; });
  CHECK(start > 1.0);
  CHECK(end < 1e-12);
}

TEST_CASE("Without momentum SGD keeps no state and one step is w - lr (g + wd w)") {
  Parameter<double> p({2});
  p.value = Tensor<double>({2}, std::vector<double>{1.0, -2.0});
  p.grad = Tensor<double>({2}, std::vector<double>{0.5, 0.25});
  SgdOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.2;
  Sgd<double> opt({&p}, o);
  CHECK(opt.state_tensors().empty());
  opt.step();
  CHECK(p.value[0] == Approx(1.0 - 0.1 * (0.5 + 0.2 * 1.0)).epsilon(1e-15));
  CHECK(p.value[1] == Approx(-2.0 - 0.1 * (0.25 + 0.2 * -2.0)).epsilon(1e-15));
  CHECK(opt.steps() == 1);
}

TEST_CASE("SGD names its momentum buffers by parameter index") {
  TwoParams ps(false);
  SgdOptions o;
  o.momentum = 0.9;
  Sgd<double> opt(ps.list(), o);
  const auto st = opt.state_tensors();
  REQUIRE(st.size() == 2);
  CHECK(st[0].name == "momentum.0");
  CHECK(st[1].name == "momentum.1");
  CHECK(st[1].tensor->shape() == ps.p1.value.shape());
}

TEST_CASE("SGD refuses out-of-range options and names the option") {
  TwoParams ps(false);
  auto make = [&](SgdOptions o) { Sgd<double> opt(ps.list(), o); };
  SgdOptions o;
  o.lr = -0.1;
  CHECK_THROWS_WITH(make(o), Catch::Contains("SGD") && Catch::Contains("lr"));
  o = {};
  o.momentum = 1.0;
  CHECK_THROWS_WITH(make(o), Catch::Contains("momentum must be in [0, 1)"));
  o.momentum = -0.5;
  CHECK_THROWS_WITH(make(o), Catch::Contains("momentum"));
  o = {};
  o.nesterov = true;
  CHECK_THROWS_WITH(make(o), Catch::Contains("nesterov requires momentum > 0"));
  o.momentum = 0.9;
  o.dampening = 0.1;
  CHECK_THROWS_WITH(make(o), Catch::Contains("nesterov") && Catch::Contains("dampening"));
  o = {};
  o.weight_decay = std::nan("");
  CHECK_THROWS_WITH(make(o), Catch::Contains("weight_decay"));
  o = {};
  Sgd<double> opt(ps.list(), o);
  CHECK_THROWS_WITH(opt.set_lr(-1), Catch::Contains("lr must be finite and >= 0"));
  CHECK_THROWS_AS(opt.set_lr(HUGE_VAL), supcon::ValueError);
}

TEST_CASE("A NaN gradient is refused before any parameter changes") {
  TwoParams ps(false);
  SgdOptions o;
  o.momentum = 0.9;
  Sgd<double> opt(ps.list(), o);
  ps.p0.grad.fill(1.0);
  ps.p1.grad[3] = std::nan("");
  const Tensor<double> before = ps.p0.value;
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("parameter 1") && Catch::Contains("NaN"));
  CHECK(optim_test::max_diff(ps.p0.value, before) == 0);
  CHECK(opt.steps() == 0);
}

TEST_CASE("A parameter whose gradient shape differs from its value is refused") {
  Parameter<double> p({3});
  p.grad = Tensor<double>({4});
  CHECK_THROWS_AS(Sgd<double>({&p}, SgdOptions{}), supcon::ShapeError);
  Parameter<double> q({3});
  Sgd<double> opt({&q}, SgdOptions{});
  q.grad = Tensor<double>({2, 2});
  CHECK_THROWS_WITH(opt.step(), Catch::Contains("parameter 0") && Catch::Contains("(2, 2)"));
}

TEST_CASE("SGD in float follows the double trajectory to float precision") {
  Parameter<float> pf({3});
  Parameter<double> pd({3});
  SgdOptions o;
  o.momentum = 0.9;
  o.weight_decay = 1e-4;
  Sgd<float> of({&pf}, o);
  Sgd<double> od({&pd}, o);
  for (int s = 0; s < 20; ++s) {
    for (index_t k = 0; k < 3; ++k) {
      pd.grad[k] = std::cos(double(s + 7 * k));
      pf.grad[k] = static_cast<float>(pd.grad[k]);
    }
    of.step();
    od.step();
  }
  for (index_t k = 0; k < 3; ++k) CHECK(pf.value[k] == Approx(pd.value[k]).epsilon(1e-5));
}
