#pragma once
/// \file elementwise.cuh
/// ReLU and the residual sum on device tensors, one thread per element
/// (ops/activation.hpp and models' add_into on the CPU).

#include <cstdint>

#include "supcon/cuda/device.cuh"
#include "supcon/cuda/layer_math.cuh"
#include "supcon/cuda/layer_shapes.cuh"
#include "supcon/cuda/tensor.cuh"

namespace supcon::cuda {

/// Threads per block of the element-wise kernels.
constexpr int kElementThreads = 256;

/// y = max(x, 0), n elements.
template <class T>
__global__ void relu_forward_kernel(const T* x, std::int64_t n, T* y) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k < n) y[k] = relu_value(x[k]);
}

/// dx = dy where y > 0, else 0; n elements.
template <class T>
__global__ void relu_backward_kernel(const T* dy, const T* y, std::int64_t n, T* dx) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k < n) dx[k] = relu_grad(dy[k], y[k]);
}

/// y += x, n elements.
template <class T>
__global__ void add_into_kernel(const T* x, std::int64_t n, T* y) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k < n) y[k] += x[k];
}

/// Forward. x has any shape; y is resized to it and assigned y = max(x, 0).
/// x and y may be the same tensor (in place).
template <class T>
void relu_forward(const DeviceTensor<T>& x, DeviceTensor<T>& y) {
  if (&y != &x) y.resize(x.shape());
  const std::int64_t n = x.size();
  if (n == 0) return;
  relu_forward_kernel<T><<<blocks_for(n, kElementThreads), kElementThreads>>>(x.data(), n, y.data());
  check_launch("relu_forward_kernel");
}

/// Backward from the forward's OUTPUT y. dy has y's shape (ShapeError naming
/// cuda::relu_backward otherwise); dx is resized and ASSIGNED (dx may be dy).
template <class T>
void relu_backward(const DeviceTensor<T>& dy, const DeviceTensor<T>& y, DeviceTensor<T>& dx) {
  require_shape(dy.shape(), y.shape(), "cuda::relu_backward", "dy");
  // forward: y = max(x, 0)
  if (&dx != &dy) dx.resize(y.shape());
  const std::int64_t n = y.size();
  if (n == 0) return;
  relu_backward_kernel<T><<<blocks_for(n, kElementThreads), kElementThreads>>>(dy.data(), y.data(), n, dx.data());
  check_launch("relu_backward_kernel");
}

/// y += x for tensors of one shape (ShapeError naming cuda::add_into otherwise):
/// the residual join of a block. Its backward is the identity on both terms.
template <class T>
void add_into(DeviceTensor<T>& y, const DeviceTensor<T>& x) {
  require_shape(x.shape(), y.shape(), "cuda::add_into", "x");
  const std::int64_t n = y.size();
  if (n == 0) return;
  add_into_kernel<T><<<blocks_for(n, kElementThreads), kElementThreads>>>(x.data(), n, y.data());
  check_launch("add_into_kernel");
}

}  // namespace supcon::cuda
