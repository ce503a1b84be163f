#pragma once
/// \file batchnorm.cuh
/// Batch normalisation on device tensors, with the semantics of
/// ops/batchnorm.hpp: (N, C) and (N, C, H, W) inputs viewed as (N, C, S),
/// biased batch variance for normalising, unbiased for the running variance,
/// running = (1 - momentum) running + momentum batch, eps inside the root.
///
/// Each pass is: one block per channel for the channel's sums (reduce.cuh,
/// fixed order, sums in double), one thread per channel to turn the sums into
/// the channel's coefficients (layer_math.cuh), one thread per element to
/// apply them.

#include <cstdint>

#include "supcon/cuda/device.cuh"
#include "supcon/cuda/elementwise.cuh"
#include "supcon/cuda/layer_math.cuh"
#include "supcon/cuda/layer_shapes.cuh"
#include "supcon/cuda/reduce.cuh"
#include "supcon/cuda/tensor.cuh"

namespace supcon::cuda {

/// Per-channel scratch of the batch-norm passes, kept by the caller so that
/// repeated calls allocate nothing.
template <class T>
struct BatchNormWorkspace {
  DeviceBuffer<Sums2> sums;      ///< (C,) channel sums
  DeviceBuffer<Affine<T>> map;   ///< (C,) forward: y = scale x + shift
  DeviceBuffer<BnGrad<T>> grad;  ///< (C,) backward: dx = a dy + k (x - mean) + b
};

/// Training statistics and map of each channel c < C (bn_train_channel).
template <class T>
__global__ void bn_train_finish_kernel(const Sums2* sums, const T* x, std::int64_t C, std::int64_t S, double M,
                                       const T* weight, const T* bias, T eps, T* mean, T* var, Affine<T>* map) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c < C) map[c] = bn_train_channel(sums[c], x[c * S], M, weight[c], bias[c], eps, mean[c], var[c]);
}

/// Evaluation map of each channel c < C (bn_eval_channel).
template <class T>
__global__ void bn_eval_finish_kernel(const T* weight, const T* bias, const T* running_mean, const T* running_var,
                                      T eps, std::int64_t C, Affine<T>* map) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c < C) map[c] = bn_eval_channel(weight[c], bias[c], running_mean[c], running_var[c], eps);
}

/// y = scale_c x + shift_c for every element of a (N, C, S) tensor of n elements.
template <class T>
__global__ void bn_apply_kernel(const T* x, const Affine<T>* map, std::int64_t n, std::int64_t C, std::int64_t S,
                                T* y) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= n) return;
  const Affine<T> a = map[(k / S) % C];
  y[k] = a.scale * x[k] + a.shift;
}

/// Running statistics of each channel c < C (bn_running_update).
template <class T>
__global__ void bn_running_kernel(T* running_mean, T* running_var, const T* mean, const T* var, std::int64_t M,
                                  T momentum, std::int64_t C) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c < C) bn_running_update(running_mean[c], running_var[c], mean[c], var[c], M, momentum);
}

/// Backward coefficients of each channel c < C; dweight, dbias accumulated.
template <class T>
__global__ void bn_backward_finish_kernel(const Sums2* sums, double M, const T* weight, const T* var, T eps,
                                          std::int64_t C, T* dweight, T* dbias, BnGrad<T>* grad) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  T dw = 0, db = 0;
  grad[c] = bn_backward_channel(sums[c], M, weight[c], var[c], eps, dw, db);
  dweight[c] += dw;
  dbias[c] += db;
}

/// dx = a_c dy + k_c (x - mean_c) + b_c for every element.
template <class T>
__global__ void bn_dx_kernel(const T* dy, const T* x, const T* mean, const BnGrad<T>* grad, std::int64_t n,
                             std::int64_t C, std::int64_t S, T* dx) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= n) return;
  const std::int64_t c = (k / S) % C;
  dx[k] = bn_dx(grad[c], dy[k], x[k], mean[c]);
}

/// Training-mode forward. x is (N, C) or (N, C, H, W); weight, bias (C,).
/// y (x's shape), mean (C,) and var (C,) (biased) are resized and assigned.
/// Requires N*S > 1 (ValueError) and the shapes above (ShapeError), checked
/// before any launch.
template <class T>
void batchnorm_forward_train(const DeviceTensor<T>& x, const DeviceTensor<T>& weight, const DeviceTensor<T>& bias,
                             T eps, DeviceTensor<T>& y, DeviceTensor<T>& mean, DeviceTensor<T>& var,
                             BatchNormWorkspace<T>& ws) {
  const BnDims d = batchnorm_dims(x.shape(), {&weight.shape(), &bias.shape()}, "cuda::batchnorm");
  require<ValueError>(d.M() > 1, "cuda::batchnorm: training needs more than one value per channel, got input ",
                      shape_str(x.shape()));
  y.resize(x.shape());
  mean.resize({d.C});
  var.resize({d.C});
  if (d.C == 0) return;
  channel_sums<T>(SumMode::moments, x.data(), nullptr, nullptr, d.N, d.C, d.S, ws.sums);
  ws.map.resize(static_cast<std::size_t>(d.C));
  bn_train_finish_kernel<T><<<blocks_for(d.C, kElementThreads), kElementThreads>>>(
      ws.sums.data(), x.data(), d.C, d.S, static_cast<double>(d.M()), weight.data(), bias.data(), eps, mean.data(),
      var.data(), ws.map.data());
  check_launch("bn_train_finish_kernel");
  bn_apply_kernel<T><<<blocks_for(x.size(), kElementThreads), kElementThreads>>>(x.data(), ws.map.data(), x.size(), d.C,
                                                                                 d.S, y.data());
  check_launch("bn_apply_kernel");
}

/// Moves the running statistics (C,) towards the batch mean and the unbiased
/// batch variance var * M / (M - 1), M > 1 values per channel (ValueError
/// otherwise); all four tensors must be (C,) with one C (ShapeError).
template <class T>
void batchnorm_update_running(DeviceTensor<T>& running_mean, DeviceTensor<T>& running_var, const DeviceTensor<T>& mean,
                              const DeviceTensor<T>& var, index_t M, T momentum) {
  require<ShapeError>(mean.rank() == 1, "cuda::batchnorm_update_running: mean must be (C,), got ",
                      shape_str(mean.shape()));
  require_shape(running_mean.shape(), mean.shape(), "cuda::batchnorm_update_running", "running_mean");
  require_shape(running_var.shape(), mean.shape(), "cuda::batchnorm_update_running", "running_var");
  require_shape(var.shape(), mean.shape(), "cuda::batchnorm_update_running", "var");
  require<ValueError>(M > 1, "cuda::batchnorm_update_running: need more than one value per channel, got M = ", M);
  const std::int64_t C = mean.size();
  if (C == 0) return;
  bn_running_kernel<T><<<blocks_for(C, kElementThreads), kElementThreads>>>(running_mean.data(), running_var.data(),
                                                                            mean.data(), var.data(), M, momentum, C);
  check_launch("bn_running_kernel");
}

/// Evaluation-mode forward with the running statistics (all (C,)).
/// y is resized to x's shape and assigned.
template <class T>
void batchnorm_forward_eval(const DeviceTensor<T>& x, const DeviceTensor<T>& weight, const DeviceTensor<T>& bias,
                            const DeviceTensor<T>& running_mean, const DeviceTensor<T>& running_var, T eps,
                            DeviceTensor<T>& y, BatchNormWorkspace<T>& ws) {
  const BnDims d = batchnorm_dims(
      x.shape(), {&weight.shape(), &bias.shape(), &running_mean.shape(), &running_var.shape()}, "cuda::batchnorm");
  y.resize(x.shape());
  if (d.C == 0 || x.size() == 0) return;
  ws.map.resize(static_cast<std::size_t>(d.C));
  bn_eval_finish_kernel<T><<<blocks_for(d.C, kElementThreads), kElementThreads>>>(
      weight.data(), bias.data(), running_mean.data(), running_var.data(), eps, d.C, ws.map.data());
  check_launch("bn_eval_finish_kernel");
  bn_apply_kernel<T><<<blocks_for(x.size(), kElementThreads), kElementThreads>>>(x.data(), ws.map.data(), x.size(), d.C,
                                                                                 d.S, y.data());
  check_launch("bn_apply_kernel");
}

/// Training-mode backward. dy and x have the forward's input shape; mean and
/// var are those of batchnorm_forward_train. dx is resized and ASSIGNED;
/// dweight and dbias (C,) are ACCUMULATED. With g = weight * dy:
///   dx = invstd (g - mean(g) - xhat mean(g xhat)),
///   dweight += sum dy xhat,  dbias += sum dy.
template <class T>
void batchnorm_backward_train(const DeviceTensor<T>& dy, const DeviceTensor<T>& x, const DeviceTensor<T>& weight,
                              const DeviceTensor<T>& mean, const DeviceTensor<T>& var, T eps, DeviceTensor<T>& dx,
                              DeviceTensor<T>& dweight, DeviceTensor<T>& dbias, BatchNormWorkspace<T>& ws) {
  const BnDims d =
      batchnorm_dims(x.shape(), {&weight.shape(), &mean.shape(), &var.shape(), &dweight.shape(), &dbias.shape()},
                     "cuda::batchnorm_backward");
  require_shape(dy.shape(), x.shape(), "cuda::batchnorm_backward", "dy");
  require<ValueError>(d.M() > 0, "cuda::batchnorm_backward: empty input ", shape_str(x.shape()));
  dx.resize(x.shape());
  if (d.C == 0) return;
  // forward: y = weight * xhat + bias, xhat = (x - mean) invstd; the sums
  // sum dy and sum dy (x - mean) give dbias, dweight and the dx coefficients
  channel_sums<T>(SumMode::grad, dy.data(), x.data(), mean.data(), d.N, d.C, d.S, ws.sums);
  ws.grad.resize(static_cast<std::size_t>(d.C));
  bn_backward_finish_kernel<T><<<blocks_for(d.C, kElementThreads), kElementThreads>>>(
      ws.sums.data(), static_cast<double>(d.M()), weight.data(), var.data(), eps, d.C, dweight.data(), dbias.data(),
      ws.grad.data());
  check_launch("bn_backward_finish_kernel");
  bn_dx_kernel<T><<<blocks_for(x.size(), kElementThreads), kElementThreads>>>(
      dy.data(), x.data(), mean.data(), ws.grad.data(), x.size(), d.C, d.S, dx.data());
  check_launch("bn_dx_kernel");
}

}  // namespace supcon::cuda
