// Helpers shared by the distributed tests (one process and MPI).
#pragma once
#include <supcon/core/rng.hpp>
#include <supcon/core/tensor.hpp>

namespace dist_common {

// A tensor of `shape` with entries offset + N(0, 1), the same for the same seed.
inline supcon::Tensor<double> random_tensor(const supcon::Shape& shape, std::uint64_t seed, double offset) {
  supcon::Rng rng(seed);
  supcon::Tensor<double> t(shape);
  for (double& v : t) v = offset + rng.normal();
  return t;
}

}  // namespace dist_common
