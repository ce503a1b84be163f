#pragma once
/// \file supcon_naive.cuh
/// The readable CUDA SupCon loss, every option of supcon_options.hpp (caps and
/// masks included): the similarity matrix S (A, N) and the gradient G = dL/dS
/// are stored in full, as in supcon_loss_reference, so memory is O(A N). It is
/// the GPU yardstick of the fused kernels (supcon_fused.cuh), not a fast path.
///
/// Three kernels:
///   S = F_a F^T / tau                      one thread per entry
///   L(i), G_i. from S_i. (naive_row)       one thread per anchor row
///   dF = (G^T F_a + [n < A] G F) / tau      one thread per entry
/// One thread per anchor row keeps the row arithmetic sequential, so it is the
/// very function tests/cuda_math.test.cpp runs on the CPU.

#include <vector>

#include "supcon/core/tensor.hpp"
#include "supcon/cuda/device.cuh"
#include "supcon/cuda/loss_math.cuh"
#include "supcon/losses/supcon_layout.hpp"

namespace supcon::cuda {

/// S (A, N): S_ik = <f_i, f_k> * inv_tau for features F (N, D).
template <class T>
__global__ void similarity_naive_kernel(const T* F, std::int64_t N, std::int64_t D, std::int64_t A, T inv_tau,
                                        T* S) {
  const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= A * N) return;
  const std::int64_t i = idx / N, k = idx % N;
  T s = 0;
  for (std::int64_t d = 0; d < D; ++d) s += F[i * D + d] * F[k * D + d];
  S[idx] = s * inv_tau;
}

/// For each anchor row i < A: unscaled[i] = L(i) and G (A, N) row i = w * dL(i)/dS_i. (assigned).
/// classes (B) decides the roles unless sample_role, the (B, B) table, is given.
template <class T>
__global__ void supcon_rows_naive_kernel(const T* S, std::int64_t N, std::int64_t A, std::int64_t B,
                                         const std::int32_t* classes, const Role* sample_role, Denominator den,
                                         bool outside, T w, T* G, T* unscaled) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= A) return;
  unscaled[i] = naive_row(S + i * N, N, RowRoles{i, B, classes, sample_role}, den, outside, w, G + i * N);
}

/// dF (N, D), assigned. forward: S = F_a F^T / tau, so
/// dF_n = sum_{i<A} G_in f_i / tau (n as a contrast row) + [n < A] sum_k G_nk f_k / tau (n as an anchor).
template <class T>
__global__ void features_grad_naive_kernel(const T* G, const T* F, std::int64_t N, std::int64_t D, std::int64_t A,
                                           T inv_tau, T* dF) {
  const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= N * D) return;
  const std::int64_t n = idx / D, d = idx % D;
  T acc = 0;
  for (std::int64_t i = 0; i < A; ++i) acc += G[i * N + n] * F[i * D + d];
  if (n < A)
    for (std::int64_t k = 0; k < N; ++k) acc += G[n * N + k] * F[k * D + d];
  dF[idx] = acc * inv_tau;
}

/// The SupCon loss on the GPU, naive kernels, from and to host memory.
///
/// Same contract as supcon_loss_reference: features (N, D) view-major on the
/// host; every option; the same ShapeError / ValueError on bad input (checked
/// on the host before any launch). Throws CudaError when a CUDA call fails
/// (no device, out of memory: S and G take 2 A N elements).
/// Ensures: a LossResult on the host, grad (N, D) assigned.
template <class T>
LossResult<T> supcon_loss_naive(const Tensor<T>& features, const Pairing& pairing, const SupConOptions& opt = {}) {
  const detail::ContrastLayout lay = detail::make_contrast_layout(features, pairing, opt);
  const std::int64_t N = lay.n, D = lay.dim, A = lay.anchors;
  const T inv_tau = static_cast<T>(1.0 / opt.temperature);
  const T w = static_cast<T>(detail::anchor_weight(lay, opt));

  DeviceBuffer<T> F, S(static_cast<std::size_t>(A * N)), G(static_cast<std::size_t>(A * N));
  DeviceBuffer<T> dF(static_cast<std::size_t>(N * D)), unscaled(static_cast<std::size_t>(A));
  DeviceBuffer<std::int32_t> classes;
  DeviceBuffer<Role> table;
  F.upload(features.data(), static_cast<std::size_t>(N * D));
  if (lay.sample_role.empty())
    classes.upload(lay.sample_class.data(), lay.sample_class.size());
  else
    table.upload(lay.sample_role.data(), lay.sample_role.size());

  const int threads = 256;
  similarity_naive_kernel<T><<<blocks_for(A * N, threads), threads>>>(F.data(), N, D, A, inv_tau, S.data());
  check_launch("similarity_naive_kernel");
  supcon_rows_naive_kernel<T><<<blocks_for(A, threads), threads>>>(
      S.data(), N, A, lay.batch, classes.data(), table.data(), opt.denominator,
      opt.summation == Summation::outside, w, G.data(), unscaled.data());
  check_launch("supcon_rows_naive_kernel");
  features_grad_naive_kernel<T><<<blocks_for(N * D, threads), threads>>>(G.data(), F.data(), N, D, A, inv_tau,
                                                                      dF.data());
  check_launch("features_grad_naive_kernel");
  check(cudaDeviceSynchronize(), "supcon_loss_naive kernels");

  LossResult<T> out;
  std::vector<T> host_unscaled(static_cast<std::size_t>(A));
  unscaled.download(host_unscaled.data(), host_unscaled.size());
  fill_loss_result(lay, opt, host_unscaled, out);
  out.grad = Tensor<T>({N, D});
  dF.download(out.grad.data(), static_cast<std::size_t>(N * D));
  return out;
}

}  // namespace supcon::cuda
