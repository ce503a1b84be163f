#pragma once
/// \file layer_shapes.cuh
/// Host-side checks of the CUDA layers' arguments, on shapes alone: every
/// GPU entry point calls them before it allocates or launches anything, and
/// they compile with any C++17 compiler, so the errors are tested on machines
/// without a GPU (tests/cuda_layer_math.test.cpp). Messages name the op as
/// "cuda::<op>" and the offending argument.

#include <cstdint>
#include <initializer_list>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/cuda/layer_math.cuh"
#include "supcon/ops/im2col.hpp"

namespace supcon::cuda {

/// Throws ShapeError "<what>: <name> has shape (...), expected (...)" unless got == want.
inline void require_shape(const Shape& got, const Shape& want, const char* what, const char* name) {
  require<ShapeError>(got == want, what, ": ", name, " has shape ", shape_str(got), ", expected ", shape_str(want));
}

/// Checks a convolution's shapes and options, returns its geometry.
/// x is (N, C, H, W), weight (OC, C, K, K), bias (OC,) or null; stride >= 1,
/// padding >= 0 (ValueError), the padded input at least one kernel wide.
inline ConvGeom conv2d_geometry(const Shape& x, const Shape& weight, const Shape* bias, index_t stride, index_t padding,
                                const char* what) {
  require<ShapeError>(x.size() == 4, what, ": x must be (N, C, H, W), got ", shape_str(x));
  require<ShapeError>(weight.size() == 4 && weight[2] == weight[3] && weight[1] == x[1], what, ": weight ",
                      shape_str(weight), " must be (OC, C, K, K) with C = ", x[1]);
  require<ShapeError>(!bias || *bias == Shape{weight[0]}, what, ": bias must be (", weight[0], ",), got ",
                      bias ? shape_str(*bias) : "");
  const index_t K = weight[2];
  const index_t OH = ops::window_output_size(x[2], K, stride, padding, what);
  const index_t OW = ops::window_output_size(x[3], K, stride, padding, what);
  return ConvGeom{x[0], x[1], x[2], x[3], weight[0], K, stride, padding, OH, OW};
}

/// Output shape (N, OC, OH, OW) of a convolution.
inline Shape conv2d_output_shape(const ConvGeom& g) { return {g.N, g.OC, g.OH, g.OW}; }

/// The (N, C, S) view of a batch-norm input: x is (N, C) or (N, C, H, W) and
/// every per-channel tensor in `channel_shapes` is (C,).
struct BnDims {
  index_t N, C, S;
  index_t M() const { return N * S; }  ///< values per channel
};
inline BnDims batchnorm_dims(const Shape& x, std::initializer_list<const Shape*> channel_shapes, const char* what) {
  require<ShapeError>(x.size() == 2 || x.size() == 4, what, ": x must be (N, C) or (N, C, H, W), got ", shape_str(x));
  const index_t C = x[1];
  for (const Shape* s : channel_shapes)
    require<ShapeError>(*s == Shape{C}, what, ": a per-channel tensor has shape ", shape_str(*s), ", expected (", C,
                        ",)");
  return {x[0], C, x.size() == 4 ? x[2] * x[3] : 1};
}

/// Linear: x (N, IN), weight (OUT, IN), bias (OUT,) or null.
inline void linear_check(const Shape& x, const Shape& weight, const Shape* bias, const char* what) {
  require<ShapeError>(x.size() == 2 && weight.size() == 2 && x[1] == weight[1], what, ": x ", shape_str(x),
                      " and weight ", shape_str(weight), " must be (N, IN) and (OUT, IN)");
  require<ShapeError>(!bias || *bias == Shape{weight[0]}, what, ": bias must be (", weight[0], ",), got ",
                      bias ? shape_str(*bias) : "");
}

/// Global average pooling: x (N, C, H, W) with H*W > 0.
inline void global_avgpool_check(const Shape& x, const char* what) {
  require<ShapeError>(x.size() == 4 && x[2] * x[3] > 0, what, ": x must be (N, C, H, W) with H, W > 0, got ",
                      shape_str(x));
}

}  // namespace supcon::cuda
