// Degenerate batches and bad input: finite, documented answers or one clear error.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <supcon/losses/simclr.hpp>
#include <supcon/losses/supcon_fused.hpp>
#include <supcon/losses/supcon_reference.hpp>

#include "losses_common.hpp"

using namespace supcon;
using Catch::Matchers::Contains;

namespace {
// Runs both implementations and checks they give the same finite value.
LossResult<double> both(const Tensor<double>& f, const Pairing& p, const SupConOptions& o) {
  const LossResult<double> ref = supcon_loss_reference(f, p, o);
  const LossResult<double> fus = supcon_loss_fused(f, p, o);
  CHECK(std::isfinite(ref.value));
  CHECK(ref.grad.all_finite());
  CHECK(fus.value == Approx(ref.value).epsilon(1e-12).margin(1e-300));
  return ref;
}
}  // namespace

TEST_CASE("An anchor alone in its class with one view gives no NaN and zero loss") {
  const Tensor<double> f = losses_test::random_features<double>(4, 3, 2);
  const LossResult<double> r = both(f, Pairing::from_labels({0, 1, 0, 2}), {});
  CHECK(r.per_anchor[1] == 0.0);
  CHECK(r.per_anchor[3] == 0.0);
  CHECK(r.positives == std::vector<index_t>{1, 0, 1, 0});
  CHECK(r.anchors_with_positives == 2);
}

TEST_CASE("Without any positive in the batch the loss and its gradient are zero") {
  const Tensor<double> f = losses_test::random_features<double>(5, 3, 2);
  for (NoPositives np : {NoPositives::count_zero, NoPositives::exclude}) {
    SupConOptions o;
    o.no_positives = np;
    const LossResult<double> r = both(f, Pairing::identity(5), o);  // one view, unique labels
    CHECK(r.value == 0.0);
    CHECK(r.anchors_with_positives == 0);
    for (double g : r.grad) CHECK(g == 0.0);
  }
}

TEST_CASE("All samples in one class: no negatives, and the loss is still defined") {
  const Tensor<double> f = losses_test::random_features<double>(2 * 4, 3, 5);
  const Pairing one_class = Pairing::from_labels({7, 7, 7, 7});
  for (Summation s : {Summation::outside, Summation::inside}) {
    SupConOptions o;
    o.summation = s;
    // with every other row a positive, each denominator sum_k!=i exp(s_ik) is made of positives only
    CHECK(both(f, one_class, o).value > 0);
    o.denominator = Denominator::one_positive;  // D_ip = exp(s_ip): every log-probability is 0
    CHECK(both(f, one_class, o).value == Approx(0.0).margin(1e-12));
  }
}

TEST_CASE("only_negatives on a batch without negatives is refused with a clear error") {
  const Tensor<double> f = losses_test::random_features<double>(2 * 3, 3, 5);
  SupConOptions o;
  o.denominator = Denominator::only_negatives;
  CHECK_THROWS_WITH(supcon_loss_reference(f, Pairing::from_labels({1, 1, 1}), o),
                    Contains("only_negatives") && Contains("no negative"));
  CHECK_THROWS_AS(supcon_loss_fused(f, Pairing::from_labels({1, 1, 1}), o), ValueError);
}

TEST_CASE("A batch of one sample in two views has one positive and an empty rest") {
  // Each row's only other row is its positive: D = exp(s) and the loss is 0.
  const Tensor<double> f = losses_test::random_features<double>(2, 4, 6);
  const LossResult<double> r = both(f, Pairing::identity(1), {});
  CHECK(r.value == Approx(0.0).margin(1e-15));
  CHECK(r.positives == std::vector<index_t>{1, 1});
  // one view: no positive at all
  const LossResult<double> single = both(losses_test::random_features<double>(1, 4, 6), Pairing::identity(1), {});
  CHECK(single.value == 0.0);
}

TEST_CASE("Identical embeddings give (T / base_T) ln(N - 1) with the full denominator") {
  // Every s_ik is the same, so each log-probability is -ln(N - 1).
  const index_t views = 2, batch = 6, n = views * batch;
  Tensor<double> f({n, 3});
  for (index_t i = 0; i < n; ++i) f(i, 0) = 0.6, f(i, 1) = 0.8;
  SupConOptions o;
  o.temperature = 0.1;
  o.base_temperature = 0.07;
  for (const Pairing& p : {Pairing::identity(batch), Pairing::from_labels({0, 1, 0, 1, 2, 2})}) {
    CHECK(both(f, p, o).value == Approx(0.1 / 0.07 * std::log(n - 1.0)).epsilon(1e-13));
    CHECK(simclr_loss(f, views, o).value == Approx(0.1 / 0.07 * std::log(n - 1.0)).epsilon(1e-13));
  }
}

TEST_CASE("Temperature 0.01 in float32 on normalised features stays finite") {
  const Tensor<float> f = losses_test::random_features<float>(2 * 32, 16, 12);
  std::vector<std::int64_t> labels(32);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 4);
  for (Summation s : {Summation::outside, Summation::inside}) {
    SupConOptions o;
    o.temperature = 0.01;
    o.summation = s;
    const LossResult<float> r = supcon_loss_reference(f, Pairing::from_labels(labels), o);
    CHECK(std::isfinite(r.value));
    CHECK(r.grad.all_finite());
  }
}

TEST_CASE("Non-positive or non-finite temperatures are refused, naming the option") {
  const Tensor<double> f = losses_test::random_features<double>(4, 3, 1);
  for (double t : {0.0, -0.5, std::numeric_limits<double>::infinity(), std::nan("")}) {
    SupConOptions o;
    o.temperature = t;
    CHECK_THROWS_WITH(supcon_loss_reference(f, Pairing::identity(2), o), Contains("temperature"));
    CHECK_THROWS_AS(supcon_loss_fused(f, Pairing::identity(2), o), ValueError);
    SupConOptions b;
    b.base_temperature = t;
    CHECK_THROWS_WITH(supcon_loss_fused(f, Pairing::identity(2), b), Contains("base_temperature"));
  }
}

TEST_CASE("NaN or infinite features are refused") {
  Tensor<double> f = losses_test::random_features<double>(4, 3, 1);
  f(2, 1) = std::nan("");
  CHECK_THROWS_WITH(supcon_loss_reference(f, Pairing::identity(2), {}), Contains("NaN or infinity"));
  f(2, 1) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(supcon_loss_fused(f, Pairing::identity(2), {}), ValueError);
}

TEST_CASE("Labels and features of incompatible lengths are a shape error") {
  const Tensor<double> f = losses_test::random_features<double>(10, 3, 1);
  CHECK_THROWS_WITH(supcon_loss_reference(f, Pairing::from_labels({0, 1, 0}), {}),
                    Contains("not a multiple"));
  CHECK_THROWS_AS(supcon_loss_fused(f, Pairing::from_labels({0, 1, 0}), {}), ShapeError);
  CHECK_THROWS_AS(supcon_loss_fused(f, Pairing::from_labels({}), {}), ShapeError);
  CHECK_THROWS_AS(simclr_loss(f, 3, {}), ShapeError);
  CHECK_THROWS_AS(simclr_loss(f, 0, {}), ShapeError);
}

TEST_CASE("An empty batch or features that are not a matrix are a shape error") {
  CHECK_THROWS_WITH(supcon_loss_reference(Tensor<double>({0, 4}), Pairing::identity(1), {}),
                    Contains("empty batch"));
  CHECK_THROWS_AS(supcon_loss_fused(Tensor<double>({4, 0}), Pairing::identity(2), {}), ShapeError);
  CHECK_THROWS_AS(supcon_loss_fused(Tensor<double>({2, 2, 2}), Pairing::identity(2), {}), ShapeError);
}

TEST_CASE("A positives cap that is not a multiple of the number of views is refused") {
  const Tensor<double> f = losses_test::random_features<double>(2 * 3, 3, 1);
  SupConOptions o;
  o.positives_cap = 3;
  CHECK_THROWS_WITH(supcon_loss_reference(f, Pairing::from_labels({0, 0, 1}), o),
                    Contains("positives_cap") && Contains("multiple"));
  o.positives_cap = -2;
  CHECK_THROWS_WITH(supcon_loss_fused(f, Pairing::from_labels({0, 0, 1}), o), Contains("positives_cap"));
}
