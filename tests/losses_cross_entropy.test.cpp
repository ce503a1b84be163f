// Softmax and cross-entropy with label smoothing: values, gradients, errors.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <supcon/losses/cross_entropy.hpp>
#include <supcon/testing/gradcheck.hpp>

#include "losses_common.hpp"

using namespace supcon;
using Catch::Matchers::Contains;

TEST_CASE("Softmax rows sum to one and survive huge logits") {
  Tensor<double> z({2, 3}, std::vector<double>{1000, 1001, 999, -5, 0, 5});
  Tensor<double> p;
  softmax_rows(z, p);
  REQUIRE(p.shape() == z.shape());
  // row 0 is the softmax of (0, 1, -1) after the shift by the max
  const double s = 1 + std::exp(1.0) + std::exp(-1.0);
  CHECK(p(0, 1) == Approx(std::exp(1.0) / s).epsilon(1e-14));
  CHECK(p(1, 0) + p(1, 1) + p(1, 2) == Approx(1.0).epsilon(1e-15));
}

TEST_CASE("Cross-entropy of two classes equals the logistic loss computed by hand") {
  // logits (0, 2), label 1: -log(e^2 / (1 + e^2)) = log(1 + e^-2); dL/dz = p - onehot.
  Tensor<double> z({1, 2}, std::vector<double>{0, 2});
  const LossResult<double> r = cross_entropy(z, {1});
  const double p0 = 1 / (1 + std::exp(2.0));
  CHECK(r.value == Approx(std::log(1 + std::exp(-2.0))).epsilon(1e-14));
  CHECK(r.grad(0, 0) == Approx(p0).epsilon(1e-14));
  CHECK(r.grad(0, 1) == Approx(-p0).epsilon(1e-14));
}

TEST_CASE("Label smoothing mixes the one-hot target with the uniform one") {
  // loss = (1 - eps) CE(onehot) + eps * mean_c(-log p_c)
  const Tensor<double> z = losses_test::random_features<double>(5, 4, 3, false);
  const std::vector<std::int64_t> y{0, 3, 1, 1, 2};
  const double eps = 0.2;
  Tensor<double> p;
  softmax_rows(z, p);
  double expected = 0;
  for (index_t n = 0; n < 5; ++n) {
    double uniform = 0;
    for (index_t c = 0; c < 4; ++c) uniform -= std::log(p(n, c)) / 4;
    expected += ((1 - eps) * -std::log(p(n, y[static_cast<std::size_t>(n)])) + eps * uniform) / 5;
  }
  CHECK(cross_entropy(z, y, eps).value == Approx(expected).epsilon(1e-13));
}

TEST_CASE("The cross-entropy gradient matches central differences, with and without smoothing") {
  Tensor<double> z = losses_test::random_features<double>(6, 5, 8, false);
  const std::vector<std::int64_t> y{4, 0, 2, 2, 1, 3};
  for (double eps : {0.0, 0.3}) {
    std::function<double(const Tensor<double>&)> f = [&](const Tensor<double>& x) {
      return cross_entropy(x, y, eps).value;
    };
    CHECK(testing::gradient_error(f, z, cross_entropy(z, y, eps).grad) < 1e-7);
  }
}

TEST_CASE("Cross-entropy in float agrees with double") {
  const Tensor<double> z = losses_test::random_features<double>(8, 10, 4, false);
  const std::vector<std::int64_t> y{0, 1, 2, 3, 4, 5, 6, 7};
  const LossResult<float> rf = cross_entropy(z.cast<float>(), y, 0.1);
  const LossResult<double> rd = cross_entropy(z, y, 0.1);
  CHECK(rf.value == Approx(rd.value).epsilon(1e-6));
  CHECK(testing::max_relative_error(rf.grad.cast<double>(), rd.grad, 1e-3) < 1e-5);
  CHECK(rd.per_anchor.size() == 8);
}

TEST_CASE("A label out of range is refused, naming the label and its row") {
  const Tensor<double> z({3, 4});
  CHECK_THROWS_WITH(cross_entropy(z, {0, 4, 1}), Contains("label 4") && Contains("row 1"));
  CHECK_THROWS_WITH(cross_entropy(z, {0, 1, -1}), Contains("label -1") && Contains("row 2"));
}

TEST_CASE("Cross-entropy refuses bad shapes, smoothing and non-finite logits") {
  CHECK_THROWS_AS(cross_entropy(Tensor<double>({3, 4}), {0, 1}), ShapeError);
  CHECK_THROWS_AS(cross_entropy(Tensor<double>({0, 4}), {}), ShapeError);
  CHECK_THROWS_AS(cross_entropy(Tensor<double>({4}), {0}), ShapeError);
  CHECK_THROWS_WITH(cross_entropy(Tensor<double>({2, 2}), {0, 1}, 1.0), Contains("label_smoothing"));
  CHECK_THROWS_WITH(cross_entropy(Tensor<double>({2, 2}), {0, 1}, -0.1), Contains("label_smoothing"));
  Tensor<double> z({2, 2});
  z(1, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(cross_entropy(z, {0, 1}), Contains("NaN"));
  Tensor<double> p;
  CHECK_THROWS_AS(softmax_rows(z, p), ValueError);
}
