// check_module and check_accumulates themselves: they pass a correct layer,
// catch each kind of wrong backward, and leave the module as they found it.
#include <catch2/catch.hpp>

#include "layers_test_util.hpp"
#include <supcon/layers/batchnorm.hpp>
#include <supcon/layers/linear.hpp>
#include <supcon/testing/check_module.hpp>

using supcon::Parameter;
using supcon::Rng;
using supcon::Tensor;
using supcon::testing::check_accumulates;
using supcon::testing::check_module;

using layers_test::randn;

namespace {
// y = scale * x element-wise, with one parameter `scale` (1,). Its backward can
// be broken on purpose in one of three ways.
enum class Bug { none, wrong_dx, wrong_dscale, overwrites_grad };
class Scale : public supcon::Module<double> {
 public:
  Parameter<double> scale{{1}};
  explicit Scale(Bug bug) : bug_(bug) { scale.value[0] = 1.5; }
  Tensor<double> forward(const Tensor<double>& x) override {
    x_ = x;
    Tensor<double> y = x;
    y.vec() *= scale.value[0];
    return y;
  }
  Tensor<double> backward(const Tensor<double>& dy) override {
    Tensor<double> dx = dy;
    dx.vec() *= scale.value[0] * (bug_ == Bug::wrong_dx ? 1.01 : 1.0);
    const double g = x_.vec().dot(dy.vec()) * (bug_ == Bug::wrong_dscale ? 0.99 : 1.0);
    if (bug_ == Bug::overwrites_grad)
      scale.grad[0] = g;
    else
      scale.grad[0] += g;
    return dx;
  }
  void parameters(std::vector<Parameter<double>*>& out) override { out.push_back(&scale); }
  void state(const std::string& prefix, std::vector<supcon::NamedTensor<double>>& out) override {
    out.push_back({prefix + "scale", &scale.value});
  }
  std::string name() const override { return "Scale"; }

 private:
  Bug bug_;
  Tensor<double> x_;
};
}  // namespace

TEST_CASE("check_module passes a correct backward and names tensors by their state keys") {
  Scale ok(Bug::none);
  const auto report = check_module(ok, randn({3, 4}, 1));
  REQUIRE(report.tensors.size() == 2);
  CHECK(report.tensors[0].name == "input");
  CHECK(report.tensors[1].name == "scale");
  CHECK(report.passed(1e-8));
  CHECK(report.str().find("Scale") == 0);
}

TEST_CASE("check_module flags a wrong input gradient") {
  Scale bad(Bug::wrong_dx);
  const auto report = check_module(bad, randn({3, 4}, 2));
  CHECK(report.tensors[0].error > 1e-3);  // dx is 1% off
  CHECK(report.tensors[1].error < 1e-8);
  CHECK_FALSE(report.passed(1e-6));
}

TEST_CASE("check_module flags a wrong parameter gradient") {
  Scale bad(Bug::wrong_dscale);
  const auto report = check_module(bad, randn({3, 4}, 3));
  CHECK(report.tensors[0].error < 1e-8);
  CHECK(report.tensors[1].error > 1e-3);
}

TEST_CASE("check_accumulates flags a backward that overwrites gradients instead of adding") {
  Scale ok(Bug::none), bad(Bug::overwrites_grad);
  CHECK(check_accumulates(ok, randn({2, 3}, 4)).passed(1e-12));
  // The overwriting backward passes the plain gradient check...
  CHECK(check_module(bad, randn({2, 3}, 4)).passed(1e-8));
  // ...but not the accumulation contract.
  CHECK_FALSE(check_accumulates(bad, randn({2, 3}, 4)).passed(1e-6));
}

TEST_CASE("The checks restore parameters, gradients and batch-norm running statistics") {
  supcon::BatchNorm2d<double> bn(2);
  bn.weight.grad = Tensor<double>({2}, std::vector<double>{0.25, -0.5});
  const Tensor<double> mean_before = bn.running_mean, var_before = bn.running_var;
  const Tensor<double> x = randn({2, 2, 2, 2}, 5);
  check_module(bn, x);
  check_accumulates(bn, x);
  CHECK(bn.running_mean.vec() == mean_before.vec());
  CHECK(bn.running_var.vec() == var_before.vec());
  CHECK(bn.weight.grad[0] == 0.25);
  CHECK(bn.weight.grad[1] == -0.5);
  CHECK(bn.weight.value[0] == 1.0);
}

TEST_CASE("Parameters without a state key are reported by their position") {
  // Linear without bias lists only "weight"; a module that lists no state
  // still gets a report line per parameter.
  class Anonymous : public Scale {
   public:
    Anonymous() : Scale(Bug::none) {}
    void state(const std::string&, std::vector<supcon::NamedTensor<double>>&) override {}
  } m;
  CHECK(check_module(m, randn({2, 2}, 6)).tensors[1].name == "parameter 0");
}
