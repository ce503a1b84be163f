#pragma once
/// \file config.hpp
/// Version and feature macros of the supcon library.

#define SUPCON_VERSION_MAJOR 0
#define SUPCON_VERSION_MINOR 1
#define SUPCON_VERSION_PATCH 0
#define SUPCON_VERSION_STRING "0.1.0"

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

}  // namespace supcon
