// Synchronised batch norm over K MPI ranks against batch norm of the
// concatenated batch in one process.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include <supcon/core/rng.hpp>
#include <supcon/layers/batchnorm.hpp>

#include "../dist_common.hpp"
#include "dist_world.hpp"

using namespace supcon;
using dist_common::random_tensor;

namespace {

// Rows [first, first + n) of a (N, ...) tensor.
Tensor<double> rows(const Tensor<double>& t, index_t first, index_t n) {
  Shape s = t.shape();
  const index_t per = t.size() / s[0];
  s[0] = n;
  Tensor<double> out(s);
  std::copy(t.data() + first * per, t.data() + (first + n) * per, out.data());
  return out;
}

double max_diff(const Tensor<double>& a, const Tensor<double>& b) {
  double d = 0;
  for (index_t k = 0; k < a.size(); ++k) d = std::max(d, std::abs(a[k] - b[k]));
  return d;
}

}  // namespace

TEST_CASE("Synchronised batch norm over the ranks equals batch norm of the concatenated batch") {
  dist::Communicator& comm = dist_test::world();
  const index_t K = comm.size(), r = comm.rank(), n = 3, C = 4;
  // the same global batch and upstream gradient on every rank; an offset mean
  const Tensor<double> x = random_tensor({K * n, C, 2, 3}, 5, 3.0);
  const Tensor<double> dy = random_tensor({K * n, C, 2, 3}, 6, 0.0);
  BatchNorm2d<double> whole(C), part(C);
  whole.weight.value = random_tensor({C}, 7, 1.0);
  part.weight.value = whole.weight.value;
  const Tensor<double> y_whole = whole.forward(x), dx_whole = whole.backward(dy);

  Tensor<double> y_part, dx_part;
  {
    BatchNormSyncScope sync([&comm](double* d, index_t m) { comm.allreduce_sum(d, m); });
    y_part = part.forward(rows(x, r * n, n));
    dx_part = part.backward(rows(dy, r * n, n));
  }
  CHECK(max_diff(y_part, rows(y_whole, r * n, n)) < 1e-12);
  CHECK(max_diff(dx_part, rows(dx_whole, r * n, n)) < 1e-12);
  // the running statistics move with the global mean and unbiased variance
  CHECK(max_diff(part.running_mean, whole.running_mean) < 1e-12);
  CHECK(max_diff(part.running_var, whole.running_var) < 1e-12);
  // each rank holds its share of the parameter gradients; their sum is the whole one
  comm.allreduce_sum(part.weight.grad.data(), C);
  comm.allreduce_sum(part.bias.grad.data(), C);
  CHECK(max_diff(part.weight.grad, whole.weight.grad) < 1e-12);
  CHECK(max_diff(part.bias.grad, whole.bias.grad) < 1e-12);
}
