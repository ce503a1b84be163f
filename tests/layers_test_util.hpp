#pragma once
// Helpers shared by the layer and op tests.
#include <cstdint>
#include <supcon/core/rng.hpp>
#include <supcon/core/tensor.hpp>

namespace layers_test {

/// A tensor of standard normal draws from Rng(seed).
template <class T = double>
supcon::Tensor<T> randn(const supcon::Shape& shape, std::uint64_t seed) {
  supcon::Rng rng(seed);
  supcon::Tensor<T> t(shape);
  for (T& v : t) v = static_cast<T>(rng.normal());
  return t;
}

}  // namespace layers_test
