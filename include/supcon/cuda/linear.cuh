#pragma once
/// \file linear.cuh
/// The fully connected map y = x W^T + b on device tensors (ops/linear.hpp on
/// the CPU): products through cuBLAS (cublas.cuh), the bias and its gradient
/// through small kernels (the gradient as a fixed-order channel sum).

#include <cstdint>

#include "supcon/cuda/cublas.cuh"
#include "supcon/cuda/device.cuh"
#include "supcon/cuda/elementwise.cuh"
#include "supcon/cuda/layer_shapes.cuh"
#include "supcon/cuda/reduce.cuh"
#include "supcon/cuda/tensor.cuh"

namespace supcon::cuda {

/// y (N, OUT) += bias (OUT,) on every row.
template <class T>
__global__ void add_row_bias_kernel(const T* bias, std::int64_t N, std::int64_t OUT, T* y) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k < N * OUT) y[k] += bias[k % OUT];
}

/// Forward. x is (N, IN), weight (OUT, IN), bias (OUT,) or null (ShapeError
/// naming cuda::linear otherwise). y is resized to (N, OUT) and assigned:
///   y = x weight^T + bias.
template <class T>
void linear_forward(const CublasHandle& h, const DeviceTensor<T>& x, const DeviceTensor<T>& weight,
                    const DeviceTensorArg<T>* bias, DeviceTensor<T>& y) {
  linear_check(x.shape(), weight.shape(), bias ? &bias->shape() : nullptr, "cuda::linear");
  const std::int64_t N = x.dim(0), IN = x.dim(1), OUT = weight.dim(0);
  y.resize({N, OUT});
  if (N * OUT == 0) return;
  // y (N, OUT) = x (N, IN) * (weight stored (OUT, IN))^T
  gemm<T>(h, false, true, N, OUT, IN, T(1), x.data(), IN, weight.data(), IN, T(0), y.data(), OUT);
  if (bias) {
    add_row_bias_kernel<T><<<blocks_for(N * OUT, kElementThreads), kElementThreads>>>(bias->data(), N, OUT, y.data());
    check_launch("add_row_bias_kernel");
  }
}

/// Backward. dy is (N, OUT); x and weight as in the forward. dx is resized to
/// (N, IN) and ASSIGNED; dweight (OUT, IN) and dbias (OUT,) (when not null)
/// are ACCUMULATED. `sums` is scratch for the bias gradient.
template <class T>
void linear_backward(const CublasHandle& h, const DeviceTensor<T>& dy, const DeviceTensor<T>& x,
                     const DeviceTensor<T>& weight, DeviceTensor<T>& dx, DeviceTensor<T>& dweight,
                     DeviceTensorArg<T>* dbias, DeviceBuffer<Sums2>& sums) {
  linear_check(x.shape(), weight.shape(), dbias ? &dbias->shape() : nullptr, "cuda::linear_backward");
  const std::int64_t N = x.dim(0), IN = x.dim(1), OUT = weight.dim(0);
  require_shape(dy.shape(), {N, OUT}, "cuda::linear_backward", "dy");
  require_shape(dweight.shape(), weight.shape(), "cuda::linear_backward", "dweight");
  dx.resize({N, IN});
  if (N * IN == 0 && N * OUT == 0) return;
  // forward: y = x W^T + b
  gemm<T>(h, false, false, N, IN, OUT, T(1), dy.data(), OUT, weight.data(), IN, T(0), dx.data(), IN);  // dx = dy W
  gemm<T>(h, true, false, OUT, IN, N, T(1), dy.data(), OUT, x.data(), IN, T(1), dweight.data(), IN);   // dW += dy^T x
  if (dbias) bias_grad<T>(dy.data(), N, OUT, 1, dbias->data(), sums);                                  // db += sum_n dy
}

}  // namespace supcon::cuda
