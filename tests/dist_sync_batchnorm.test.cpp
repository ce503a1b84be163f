// Synchronised batch norm (the statistics of every process of a data-parallel
// step) in one process: it must be plain batch norm, by value and gradient.
#include <catch2/catch.hpp>

#include <supcon/core/rng.hpp>
#include <supcon/layers/batchnorm.hpp>
#include <supcon/testing/gradcheck.hpp>

#include "dist_common.hpp"

using namespace supcon;
using dist_common::random_tensor;

namespace {

// A reducer for one process: the sum over one process is the value itself.
const ops::StatReducer alone = [](double*, index_t) {};

}  // namespace

TEST_CASE("Batch norm synchronised over one process equals plain batch norm") {
  const Tensor<double> x = random_tensor({5, 3, 2, 2}, 1, -2.0), dy = random_tensor({5, 3, 2, 2}, 2, 0.0);
  BatchNorm2d<double> plain(3), synced(3);
  const Tensor<double> y0 = plain.forward(x), dx0 = plain.backward(dy);
  BatchNormSyncScope scope(alone);
  const Tensor<double> y1 = synced.forward(x), dx1 = synced.backward(dy);
  CHECK(testing::max_relative_error(y1, y0, 1e-9) < 1e-12);
  CHECK(testing::max_relative_error(dx1, dx0, 1e-9) < 1e-10);
  CHECK(testing::max_relative_error(synced.weight.grad, plain.weight.grad, 1e-9) < 1e-12);
  CHECK(testing::max_relative_error(synced.running_var, plain.running_var) < 1e-12);
}

TEST_CASE("The backward of synchronised batch norm matches central differences") {
  // f(x) = <bn(x), r> for x of shape (N, C) = (12, 2)
  Tensor<double> x = random_tensor({12, 2}, 3, 1.0);
  const Tensor<double> r = random_tensor({12, 2}, 4, 0.0);
  BatchNorm1d<double> bn(2);
  BatchNormSyncScope scope(alone);
  auto f = [&](const Tensor<double>& in) {
    const Tensor<double> y = bn.forward(in);
    double s = 0;
    for (index_t k = 0; k < y.size(); ++k) s += y[k] * r[k];
    return s;
  };
  bn.forward(x);
  const Tensor<double> dx = bn.backward(r);
  // a step of 1e-5: with 1e-6 the rounding of f, some 1e-16 of its size over
  // the step, reaches 1e-7 of the smallest entries of dx when FMA contracts it
  CHECK(testing::gradient_error<double>(f, x, dx, 1e-5) < 1e-7);
}

TEST_CASE("A backward after the reducer is gone fails with a clear error") {
  BatchNorm2d<double> bn(2);
  const Tensor<double> x = random_tensor({3, 2, 2, 2}, 5, 0.0);
  {
    BatchNormSyncScope scope(alone);
    bn.forward(x);
  }
  CHECK_THROWS_WITH(bn.backward(x), Catch::Contains("needs the reducer still set"));
}
