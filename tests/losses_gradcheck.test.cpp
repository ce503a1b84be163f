// Central-difference gradient checks of both SupCon implementations, in double,
// for every combination of options, views and pairing (losses_common.hpp).
#include <catch2/catch.hpp>
#include <functional>
#include <supcon/losses/supcon_fused.hpp>
#include <supcon/losses/supcon_reference.hpp>
#include <supcon/testing/gradcheck.hpp>

#include "losses_common.hpp"

using namespace supcon;

namespace {

// Worst relative error of `loss`'s gradient over all combinations; `name` gets the worst one.
template <class Loss>
double worst_gradient_error(const Loss& loss, std::string& name) {
  double worst = 0;
  std::uint64_t seed = 1;
  for (const losses_test::Combo& c : losses_test::all_combos()) {
    // Not normalised: the gradient is checked with respect to raw features.
    Tensor<double> f = losses_test::random_features<double>(5 * c.views, 3, seed++, false);
    const Pairing p = c.pairing();
    const LossResult<double> r = loss(f, p, c.opt);
    std::function<double(const Tensor<double>&)> value = [&](const Tensor<double>& x) {
      return loss(x, p, c.opt).value;
    };
    // eps = 1e-5 balances truncation (eps^2) against rounding (ulp(L) / eps)
    const Tensor<double> numeric = testing::numeric_gradient(value, f, 1e-5);
    // floor 1e-3: near-zero entries are compared in absolute terms
    const double err = testing::max_relative_error(r.grad, numeric, 1e-3);
    if (err > worst) worst = err, name = c.name();
  }
  return worst;
}

}  // namespace

TEST_CASE("The reference gradient matches central differences for every option combination") {
  std::string name;
  const double err = worst_gradient_error(
      [](const Tensor<double>& f, const Pairing& p, const SupConOptions& o) {
        return supcon_loss_reference(f, p, o);
      },
      name);
  INFO("worst combination: " << name);
  CHECK(err < 1e-6);
}

TEST_CASE("The fused gradient matches central differences for every option combination") {
  std::string name;
  const double err = worst_gradient_error(
      [](const Tensor<double>& f, const Pairing& p, const SupConOptions& o) {
        return supcon_loss_fused(f, p, o, 4);  // tiles of 4 columns: N is 5, 10 or 15
      },
      name);
  INFO("worst combination: " << name);
  CHECK(err < 1e-6);
}

TEST_CASE("A wrong gradient would be caught: the check rejects a gradient off by 0.1 percent") {
  Tensor<double> f = losses_test::random_features<double>(10, 3, 7, false);
  const Pairing p = losses_test::five_labels();
  std::function<double(const Tensor<double>&)> value = [&](const Tensor<double>& x) {
    return supcon_loss_reference(x, p, {}).value;
  };
  Tensor<double> off = supcon_loss_reference(f, p, {}).grad;
  for (double& g : off) g *= 1.001;
  CHECK(testing::max_relative_error(off, testing::numeric_gradient(value, f), 1e-3) > 1e-4);
}
