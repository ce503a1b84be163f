#pragma once
/// \file memory.hpp
/// keep_freed_memory(): a process-wide malloc setting for training loops.
///
/// A training step allocates and frees the same tensors every step. glibc's
/// malloc serves blocks above a threshold (128 KiB, rising with use to at
/// most 32 MiB) with mmap and gives them back to the kernel when freed, and
/// it trims the top of the heap; either way the next step touches fresh
/// pages, paying a page fault and the kernel's zeroing per 4 KiB on the
/// thread that allocates, while the other threads wait. Raising the mmap
/// threshold to its maximum and the trim threshold to 1 GiB keeps the freed
/// blocks in the heap, where the next step finds them. The threshold cannot
/// pass 32 MiB, and larger tensors are common (ResNet-18's first stage holds
/// 64 MiB at 256 images), so mmap is also switched off for all but malloc's
/// fallback: a ResNet-18 step at batch 128 took 177,000 page faults and 25 %
/// of its time in them before, 3,800 after, with the same peak memory
/// (docs/performance.md).
///
/// The library never calls it: it changes the whole process. The supcon
/// program and bench_train call it first thing.

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace supcon {

/// Asks malloc to keep freed blocks of any size for reuse; true when it took
/// (glibc), false where there is no such setting.
inline bool keep_freed_memory() {
#if defined(__GLIBC__)
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  const bool heap_only = mallopt(M_MMAP_MAX, 0) == 1;  // blocks past 32 MiB from the heap too
  return mmap_ok && trim_ok && heap_only;
#else
  return false;
#endif
}

}  // namespace supcon
