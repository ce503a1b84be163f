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

/// Threads of the enclosing OpenMP parallel region (1 outside one).
inline int omp_threads_here() {
#if SUPCON_HAS_OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

/// Calls f(begin, end) on consecutive ranges that cover [0, n), each of at
/// least `grain` items, up to four per OpenMP thread; one range on the
/// calling thread when n is under two grains. For element-wise passes over
/// large tensors, which would otherwise leave the other threads waiting.
template <class F>
void parallel_ranges(std::int64_t n, const F& f, std::int64_t grain = 1 << 15) {
  // up to four ranges per thread, handed to whichever thread is free: on
  // cores of unequal speed an even split would wait for the slowest
  const std::int64_t pieces = std::min<std::int64_t>(4 * max_threads(), n / grain);
  if (pieces <= 1) return f(std::int64_t(0), n);
#if SUPCON_HAS_OPENMP
  const int threads = static_cast<int>(std::min<std::int64_t>(max_threads(), pieces));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
#endif
  for (std::int64_t p = 0; p < pieces; ++p) f(n * p / pieces, n * (p + 1) / pieces);
}

/// Runs for a loop over n items that sums into partial buffers of run_len
/// entries, one buffer per run (see for_each_run): one per thread, or up to
/// 16 while the buffers together hold at most an eighth of data_len, the
/// entries the loop reads (each buffer is written and read once more when
/// the runs' sums are added); never more than n. Where the eighth allows 16,
/// the count, and so the sum, is the same for any number of threads up to 16.
inline std::int64_t sum_runs(std::int64_t n, std::int64_t run_len, std::int64_t data_len) {
  const std::int64_t by_traffic = data_len / (8 * std::max<std::int64_t>(1, run_len));
  const std::int64_t runs = std::max<std::int64_t>(max_threads(), std::min<std::int64_t>(16, by_traffic));
  return std::min(n, runs);
}

/// Calls f(run, begin, end) for each of `runs` consecutive ranges covering
/// [0, n), every range on one OpenMP thread, the ranges to whichever thread
/// is free. A loop that sums item by item into the buffer of its run, and
/// then adds the runs' buffers in run order, gets the same sum whichever
/// thread ran what: balanced on cores of unequal speed, yet reproducible.
template <class F>
void for_each_run(std::int64_t n, std::int64_t runs, const F& f) {
#if SUPCON_HAS_OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
  for (std::int64_t r = 0; r < runs; ++r) f(r, n * r / runs, n * (r + 1) / runs);
}

}  // namespace supcon
