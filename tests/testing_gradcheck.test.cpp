// The gradient-check helpers themselves: they must accept a right gradient and
// reject a wrong one, or every other check means nothing.
#include <catch2/catch.hpp>
#include <supcon/testing/gradcheck.hpp>

using supcon::Tensor;

TEST_CASE("The numerical gradient of a cubic matches 3x^2 and flags a wrong gradient") {
  Tensor<double> x({4}, std::vector<double>{-1.5, 0.25, 1.0, 2.0});
  std::function<double(const Tensor<double>&)> f = [](const Tensor<double>& t) {
    double s = 0;
    for (double v : t) s += v * v * v;
    return s;
  };
  Tensor<double> right({4}), wrong({4});
  for (supcon::index_t k = 0; k < 4; ++k) {
    right[k] = 3 * x[k] * x[k];
    wrong[k] = 3 * x[k] * x[k] * 1.001;
  }
  CHECK(supcon::testing::gradient_error(f, x, right) < 1e-8);
  CHECK(supcon::testing::gradient_error(f, x, wrong) > 1e-4);
  CHECK(x[0] == -1.5);  // restored after perturbation
}
