#pragma once
/// \file pool.cuh
/// Global average pooling (N, C, H, W) -> (N, C) on device tensors
/// (ops/pool.hpp on the CPU). Forward: one thread per (n, c) plane, summing
/// its H*W values in order (the planes of a ResNet's last stage are small:
/// 4x4 for CIFAR). Backward: one thread per input element.

#include <cstdint>

#include "supcon/cuda/device.cuh"
#include "supcon/cuda/elementwise.cuh"
#include "supcon/cuda/layer_math.cuh"
#include "supcon/cuda/layer_shapes.cuh"
#include "supcon/cuda/tensor.cuh"

namespace supcon::cuda {

/// y[nc] = mean of plane nc of x, NC planes of S values.
template <class T>
__global__ void global_avgpool_forward_kernel(const T* x, std::int64_t NC, std::int64_t S, T* y) {
  const std::int64_t nc = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (nc < NC) y[nc] = plane_mean(x + nc * S, S);
}

/// dx[k] = dy[k / S] / S for every element k of the NC planes.
template <class T>
__global__ void global_avgpool_backward_kernel(const T* dy, std::int64_t NC, std::int64_t S, T* dx) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k < NC * S) dx[k] = dy[k / S] / static_cast<T>(S);
}

/// Forward. x is (N, C, H, W) with H*W > 0 (ShapeError naming
/// cuda::global_avgpool otherwise); y is resized to (N, C) and assigned the
/// mean of each plane.
template <class T>
void global_avgpool_forward(const DeviceTensor<T>& x, DeviceTensor<T>& y) {
  global_avgpool_check(x.shape(), "cuda::global_avgpool");
  const std::int64_t NC = x.dim(0) * x.dim(1), S = x.dim(2) * x.dim(3);
  y.resize({x.dim(0), x.dim(1)});
  if (NC == 0) return;
  global_avgpool_forward_kernel<T><<<blocks_for(NC, kElementThreads), kElementThreads>>>(x.data(), NC, S, y.data());
  check_launch("global_avgpool_forward_kernel");
}

/// Backward. dy is (N, C) of an input of shape x_shape (N, C, H, W);
/// dx is resized to x_shape and ASSIGNED: dx[n,c,h,w] = dy[n,c] / (H*W).
template <class T>
void global_avgpool_backward(const DeviceTensor<T>& dy, const Shape& x_shape, DeviceTensor<T>& dx) {
  global_avgpool_check(x_shape, "cuda::global_avgpool_backward");
  require_shape(dy.shape(), {x_shape[0], x_shape[1]}, "cuda::global_avgpool_backward", "dy");
  const std::int64_t NC = x_shape[0] * x_shape[1], S = x_shape[2] * x_shape[3];
  dx.resize(x_shape);
  if (NC == 0) return;
  // forward: y = mean over the plane
  global_avgpool_backward_kernel<T>
      <<<blocks_for(NC * S, kElementThreads), kElementThreads>>>(dy.data(), NC, S, dx.data());
  check_launch("global_avgpool_backward_kernel");
}

}  // namespace supcon::cuda
