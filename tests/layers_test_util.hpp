#pragma once
// Helpers shared by the layer and op tests.
#include <cstdint>
#include <functional>
#include <supcon/config.hpp>
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

/// Largest difference relative to the largest entry of the reference b: sums
/// taken in another order differ by rounding, which is large relative to
/// entries that cancel. The shapes must agree (checked by the caller).
template <class T>
double scaled_error(const supcon::Tensor<T>& a, const supcon::Tensor<T>& b) {
  return static_cast<double>((a.vec() - b.vec()).cwiseAbs().maxCoeff() / b.vec().cwiseAbs().maxCoeff());
}

/// Runs f with `threads` OpenMP threads, then restores the previous count.
inline void with_threads(int threads, const std::function<void()>& f) {
#if SUPCON_HAS_OPENMP
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  f();
  omp_set_num_threads(saved);
#else
  (void)threads;
  f();
#endif
}

}  // namespace layers_test
