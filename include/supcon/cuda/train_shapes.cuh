#pragma once
/// \file train_shapes.cuh
/// Host-side checks of the GPU training path's new ops (max pooling, L2
/// normalisation), on shapes alone, as layer_shapes.cuh does for the layers:
/// every entry point calls them before any launch, and they compile with any
/// C++17 compiler, so the errors are tested without a GPU.

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/cuda/train_math.cuh"
#include "supcon/ops/im2col.hpp"

namespace supcon::cuda {

/// Checks a max pooling of x (N, C, H, W) with a K x K window, stride and
/// padding at most K / 2 (as PyTorch); returns its geometry. ShapeError /
/// ValueError naming `what` otherwise.
inline PoolGeom maxpool_geometry(const Shape& x, index_t kernel, index_t stride, index_t padding, const char* what) {
  require<ShapeError>(x.size() == 4, what, ": x must be (N, C, H, W), got ", shape_str(x));
  require<ValueError>(padding <= kernel / 2, what, ": padding ", padding, " must be at most half the kernel ",
                      kernel);
  const index_t OH = ops::window_output_size(x[2], kernel, stride, padding, what);
  const index_t OW = ops::window_output_size(x[3], kernel, stride, padding, what);
  return PoolGeom{x[2], x[3], kernel, stride, padding, OH, OW};
}

/// L2 normalisation: x (N, D) and eps > 0 (ShapeError / ValueError naming `what`).
template <class T>
void l2_normalize_check(const Shape& x, T eps, const char* what) {
  require<ShapeError>(x.size() == 2, what, ": x must be (N, D), got ", shape_str(x));
  require<ValueError>(eps > 0, what, ": eps must be > 0, got ", eps);
}

}  // namespace supcon::cuda
