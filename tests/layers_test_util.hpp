#pragma once
// Helpers shared by the layer and op tests.
#include <cstdint>
#include <functional>
#include <vector>
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

/// Whether backward(dx, dw), dw starting at zeros of dw_shape, gives the same
/// dx and dw bit for bit on one, two and three threads.
inline bool same_bits_on_1_2_3_threads(
    const supcon::Shape& dw_shape,
    const std::function<void(supcon::Tensor<float>& dx, supcon::Tensor<float>& dw)>& backward) {
  std::vector<supcon::Tensor<float>> dx(3), dw(3, supcon::Tensor<float>(dw_shape));
  for (std::size_t i = 0; i < 3; ++i) with_threads(static_cast<int>(i) + 1, [&] { backward(dx[i], dw[i]); });
  for (std::size_t i = 1; i < 3; ++i)
    if (dw[i].vec() != dw[0].vec() || dx[i].vec() != dx[0].vec()) return false;
  return true;
}

}  // namespace layers_test
