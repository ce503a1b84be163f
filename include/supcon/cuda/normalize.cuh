#pragma once
/// \file normalize.cuh
/// L2 normalisation of rows on device tensors, y = x / max(||x||, eps)
/// (ops/normalize.hpp; PyTorch's F.normalize): the projection head's output
/// put on the unit sphere before the loss. One thread per row: the rows are
/// short (feat_dim, 128 by default) and there are 2B of them.

#include <cstdint>

#include "supcon/cuda/device.cuh"
#include "supcon/cuda/elementwise.cuh"
#include "supcon/cuda/layer_shapes.cuh"
#include "supcon/cuda/tensor.cuh"
#include "supcon/cuda/train_math.cuh"
#include "supcon/cuda/train_shapes.cuh"

namespace supcon::cuda {

/// Rows n < N of x (N, D): y assigned, norms[n] = ||x_n||.
template <class T>
__global__ void l2_normalize_kernel(const T* x, std::int64_t N, std::int64_t D, T eps, T* y, T* norms) {
  const std::int64_t n = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n < N) norms[n] = l2_normalize_row(x + n * D, D, eps, y + n * D);
}

/// Rows n < N: dx assigned from dy, y and norms.
template <class T>
__global__ void l2_normalize_backward_kernel(const T* dy, const T* y, const T* norms, std::int64_t N, std::int64_t D,
                                             T eps, T* dx) {
  const std::int64_t n = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n < N) l2_normalize_grad_row(dy + n * D, y + n * D, norms[n], eps, D, dx + n * D);
}

/// Forward. x is (N, D), eps > 0 (ShapeError / ValueError naming
/// cuda::l2_normalize). y (N, D) and norms (N,) are resized and assigned;
/// norms keeps ||x_n|| unclamped for the backward.
template <class T>
void l2_normalize_forward(const DeviceTensor<T>& x, T eps, DeviceTensor<T>& y, DeviceTensor<T>& norms) {
  l2_normalize_check(x.shape(), eps, "cuda::l2_normalize");
  const std::int64_t N = x.dim(0), D = x.dim(1);
  y.resize(x.shape());
  norms.resize({N});
  if (N == 0) return;
  l2_normalize_kernel<T>
      <<<blocks_for(N, kElementThreads), kElementThreads>>>(x.data(), N, D, eps, y.data(), norms.data());
  check_launch("l2_normalize_kernel");
}

/// Backward from the forward's output y and norms. dy is (N, D) like y
/// (ShapeError naming cuda::l2_normalize_backward otherwise); dx is resized
/// and ASSIGNED (it must not be dy).
template <class T>
void l2_normalize_backward(const DeviceTensor<T>& dy, const DeviceTensor<T>& y, const DeviceTensor<T>& norms, T eps,
                           DeviceTensor<T>& dx) {
  l2_normalize_check(y.shape(), eps, "cuda::l2_normalize_backward");
  require_shape(dy.shape(), y.shape(), "cuda::l2_normalize_backward", "dy");
  require_shape(norms.shape(), {y.dim(0)}, "cuda::l2_normalize_backward", "norms");
  const std::int64_t N = y.dim(0), D = y.dim(1);
  dx.resize(y.shape());
  if (N == 0) return;
  // forward: y = x / max(||x||, eps)
  l2_normalize_backward_kernel<T><<<blocks_for(N, kElementThreads), kElementThreads>>>(
      dy.data(), y.data(), norms.data(), N, D, eps, dx.data());
  check_launch("l2_normalize_backward_kernel");
}

}  // namespace supcon::cuda
