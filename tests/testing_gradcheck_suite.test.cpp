// The gradient-check suite that `supcon gradcheck` runs: every check passes,
// the list covers what it claims, selection by name and group, and the
// checks do fail on a wrong gradient.
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <supcon/testing/gradcheck_suite.hpp>

using namespace supcon;
using testing::GradCheck;
using testing::GradCheckResult;

namespace {

// A Linear layer whose backward returns dx one percent too large.
class SkewedLinear : public Linear<double> {
 public:
  using Linear<double>::Linear;
  Tensor<double> backward(const Tensor<double>& dy) override {
    Tensor<double> dx = Linear<double>::backward(dy);
    dx.vec() *= 1.01;
    return dx;
  }
};

}  // namespace

TEST_CASE("Every check of the gradcheck suite passes") {
  const std::vector<GradCheck> checks = testing::gradcheck_suite();
  const std::vector<GradCheckResult> results = testing::run_gradchecks(checks);
  REQUIRE(results.size() == checks.size());
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const GradCheckResult& r = results[i];
    CHECK(r.name == checks[i].name);
    INFO(r.name << ": " << checks[i].what << ", max rel error " << r.max_rel_error << ", tolerance " << r.tolerance);
    CHECK(r.passed);
    CHECK(r.max_rel_error >= 0);
  }
}

TEST_CASE("The suite checks every layer, both blocks with and without projection, a network and the losses") {
  std::set<std::string> names, groups;
  std::size_t count = 0;
  for (const GradCheck& c : testing::gradcheck_suite()) {
    names.insert(c.name);
    groups.insert(c.group);
    ++count;
    CHECK(c.tolerance > 0);
    CHECK(c.tolerance <= 1e-6);
    CHECK_FALSE(c.what.empty());
  }
  CHECK(names.size() == count);  // unique names
  CHECK(groups == std::set<std::string>{"layers", "blocks", "network", "losses"});
  for (const char* n : {"linear", "conv2d_3x3_s1_p1", "conv2d_3x3_s2_p1", "conv2d_1x1_s2_p0", "batchnorm1d_train",
                        "batchnorm1d_eval", "batchnorm2d_train", "batchnorm2d_eval", "relu", "maxpool2d",
                        "avgpool2d", "global_avgpool", "flatten", "l2normalize", "basic_block_identity",
                        "basic_block_projection", "bottleneck_identity", "bottleneck_projection", "resnet18_head",
                        "supcon_out", "supcon_in", "simclr", "cross_entropy"}) {
    INFO(n);
    CHECK(names.count(n) == 1);
  }
}

TEST_CASE("A check that throws makes run_gradchecks rethrow after the others ran") {
  int ran = 0;
  std::vector<GradCheck> checks = {{"ok", "layers", "returns 0", 1e-7, [&ran] {
                                      ++ran;
                                      return 0.0;
                                    }},
                                   {"bad", "layers", "throws", 1e-7, []() -> double { throw ShapeError("bad shape"); }}};
  CHECK_THROWS_AS(testing::run_gradchecks(checks), ShapeError);
  CHECK(ran == 1);
}

TEST_CASE("Checks are selected by name, by group or all at once") {
  const auto all = testing::select_gradchecks("all");
  CHECK(all.size() == testing::gradcheck_suite().size());
  const auto one = testing::select_gradchecks("bottleneck_projection");
  REQUIRE(one.size() == 1);
  CHECK(one[0].name == "bottleneck_projection");
  const auto blocks = testing::select_gradchecks("blocks");
  CHECK(blocks.size() == 4);
  for (const GradCheck& c : blocks) CHECK(c.group == "blocks");
}

TEST_CASE("An unknown check name is a ValueError that lists the valid names") {
  CHECK_THROWS_AS(testing::select_gradchecks("conv3d"), ValueError);
  CHECK_THROWS_WITH(testing::select_gradchecks("conv3d"),
                    Catch::Contains("unknown check 'conv3d'") && Catch::Contains("all, layers, blocks") &&
                        Catch::Contains("resnet18_head") && Catch::Contains("cross_entropy_smoothing"));
}

TEST_CASE("A loss gradient one percent off fails the loss check") {
  const std::vector<std::int64_t> y = {0, 2, 1};
  auto skewed = [&](const Tensor<double>& z) {
    LossResult<double> r = cross_entropy(z, y);
    r.grad.vec() *= 1.01;
    return r;
  };
  const double err = testing::detail::loss_error(skewed, testing::detail::gaussian({3, 3}, 1));
  CHECK(err == Approx(0.01).epsilon(0.05));  // |1.01 g - g| / (1.01 |g|)
  CHECK(err > 1e-7);
}

TEST_CASE("A backward one percent off fails both the full and the probing module check") {
  Rng rng(2);
  SkewedLinear m(4, 3, true, rng);
  const Tensor<double> x = testing::detail::gaussian({2, 4}, 3);
  CHECK(testing::check_module(m, x).worst() > 1e-3);
  CHECK(testing::detail::probe_module(m, x, 4, 5) > 1e-3);
  // the parameters' gradients are untouched by the skew, so they still pass
  testing::CheckOptions params_only;
  params_only.check_input = false;
  CHECK(testing::check_module(m, x, params_only).worst() < 1e-7);
}

TEST_CASE("probe_module leaves the parameters' gradients as it found them") {
  Rng rng(4);
  Linear<double> m(3, 2, true, rng);
  for (Parameter<double>* p : m.parameter_list()) p->grad.fill(0.25);
  testing::detail::probe_module(m, testing::detail::gaussian({2, 3}, 6), 3, 7);
  for (Parameter<double>* p : m.parameter_list())
    for (double g : p->grad) CHECK(g == 0.25);
}
