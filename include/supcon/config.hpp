#pragma once
/// \file config.hpp
/// Version and feature macros of the supcon library.

#define SUPCON_VERSION_MAJOR 0
#define SUPCON_VERSION_MINOR 1
#define SUPCON_VERSION_PATCH 0
#define SUPCON_VERSION_STRING "0.1.0"

#include <algorithm>
#include <cstdint>
#include <utility>

#if defined(_OPENMP)
/// Defined to 1 when the translation unit is compiled with OpenMP.
#define SUPCON_HAS_OPENMP 1
#include <omp.h>
#else
#define SUPCON_HAS_OPENMP 0
#endif

#ifndef SUPCON_WITH_CUDA
/// Set to 1 by the build when the optional CUDA path is enabled.
#define SUPCON_WITH_CUDA 0
#endif

namespace supcon {

/// Number of OpenMP threads a parallel region would use (1 without OpenMP).
inline int max_threads() {
#if SUPCON_HAS_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// The calling thread's share [first, second) of n items split evenly over
/// the threads of the enclosing OpenMP parallel region (all n outside one).
inline std::pair<std::int64_t, std::int64_t> thread_share(std::int64_t n) {
#if SUPCON_HAS_OPENMP
  const std::int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
#else
  const std::int64_t t = 0, threads = 1;
#endif
  return {n * t / threads, n * (t + 1) / threads};
}

/// Calls f(begin, end) on consecutive ranges that cover [0, n): one range
/// per OpenMP thread when n reaches `grain` per thread, else one range on the
/// calling thread. For element-wise passes over large tensors, which would
/// otherwise leave the other threads waiting.
template <class F>
void parallel_ranges(std::int64_t n, const F& f, std::int64_t grain = 1 << 15) {
  const std::int64_t threads = std::max<std::int64_t>(1, std::min<std::int64_t>(max_threads(), n / grain));
  if (threads == 1) return f(std::int64_t(0), n);
#if SUPCON_HAS_OPENMP
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(threads))
#endif
  for (std::int64_t t = 0; t < threads; ++t) f(n * t / threads, n * (t + 1) / threads);
}

}  // namespace supcon
