#pragma once
/// \file cross_entropy.cuh
/// Softmax cross-entropy with label smoothing on the GPU, one thread per row
/// (cross_entropy_row of loss_math.cuh): C is a handful of classes, so a row
/// is short and the rows are many. Same contract as supcon::cross_entropy.

#include <cstdint>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/cuda/device.cuh"
#include "supcon/cuda/loss_math.cuh"

namespace supcon::cuda {

/// logits (N, C), labels (N,) in [0, C): loss_rows[n] = loss of row n and
/// dlogits (N, C) = (softmax - q) / N, both assigned.
template <class T>
__global__ void cross_entropy_kernel(const T* logits, const std::int64_t* labels, std::int64_t N, std::int64_t C,
                                     T eps, T* dlogits, T* loss_rows) {
  const std::int64_t n = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= N) return;
  loss_rows[n] = cross_entropy_row(logits + n * C, C, labels[n], eps, T(1) / static_cast<T>(N), dlogits + n * C);
}

/// Mean cross-entropy and its gradient, from and to host memory.
///
/// Requires what supcon::cross_entropy requires, with the same errors
/// (ShapeError / ValueError naming the culprit), checked on the host. Throws
/// CudaError when a CUDA call fails. Ensures: value = mean_n loss_n; grad (N, C)
/// assigned; per_anchor[n] = loss_n; anchors = anchors_with_positives = N.
template <class T>
LossResult<T> cross_entropy(const Tensor<T>& logits, const std::vector<std::int64_t>& labels,
                            double label_smoothing = 0.0) {
  require<ShapeError>(logits.rank() == 2 && logits.dim(0) >= 1 && logits.dim(1) >= 1,
                      "cuda::cross_entropy: logits must be a non-empty (N, C), got shape ", shape_str(logits.shape()));
  const index_t N = logits.dim(0), C = logits.dim(1);
  require<ShapeError>(static_cast<index_t>(labels.size()) == N, "cuda::cross_entropy: ", labels.size(),
                      " labels for ", N, " rows of logits");
  require<ValueError>(label_smoothing >= 0 && label_smoothing < 1, "label_smoothing must be in [0, 1), got ",
                      label_smoothing);
  for (std::size_t n = 0; n < labels.size(); ++n)
    require<ValueError>(labels[n] >= 0 && labels[n] < C, "cuda::cross_entropy: label ", labels[n], " at row ", n,
                        " is outside [0, ", C, ")");
  require<ValueError>(logits.all_finite(), "cuda::cross_entropy: logits contain NaN or infinity");

  DeviceBuffer<T> z, dz(static_cast<std::size_t>(N * C)), rows(static_cast<std::size_t>(N));
  DeviceBuffer<std::int64_t> y;
  z.upload(logits.data(), static_cast<std::size_t>(N * C));
  y.upload(labels.data(), labels.size());
  const int threads = 256;
  cross_entropy_kernel<T><<<blocks_for(N, threads), threads>>>(z.data(), y.data(), N, C, static_cast<T>(label_smoothing),
                                                            dz.data(), rows.data());
  check_launch("cross_entropy_kernel");
  check(cudaDeviceSynchronize(), "cross_entropy_kernel");

  LossResult<T> out;
  out.per_anchor.resize(static_cast<std::size_t>(N));
  rows.download(out.per_anchor.data(), out.per_anchor.size());
  out.grad = Tensor<T>({N, C});
  dz.download(out.grad.data(), static_cast<std::size_t>(N * C));
  for (T l : out.per_anchor) out.value += l;
  out.value /= static_cast<T>(N);
  out.anchors = out.anchors_with_positives = N;
  return out;
}

}  // namespace supcon::cuda
