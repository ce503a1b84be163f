#pragma once
/// \file prefetch.hpp
/// Software prefetching for sweeps over strided slices.
///
/// A tensor (N, C, H, W) read one map at a time in the order (c, n) visits
/// short runs of H W entries, C H W entries apart: 3 KiB at 28x28. The
/// hardware prefetchers follow a run only after a few misses in it, so most
/// of a short run's lines are each a full trip to memory, one after the
/// other. Asking for the next run while one is processed overlaps those
/// trips (the Winograd transforms, ops/winograd.hpp). The per-channel sums of
/// batch norm read the same way measured no gain from it.

#include "supcon/core/tensor.hpp"

namespace supcon {

/// Asks for the 64-byte lines of [p, p + bytes) to be brought into the cache.
/// A hint only: no effect on results, nothing where the compiler has no
/// prefetch builtin.
inline void prefetch_bytes(const void* p, index_t bytes) {
#if defined(__GNUC__)
  const char* b = static_cast<const char*>(p);
  for (index_t o = 0; o < bytes; o += 64) __builtin_prefetch(b + o);
#else
  (void)p, (void)bytes;
#endif
}

}  // namespace supcon
