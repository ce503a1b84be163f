#pragma once
/// \file supcon_blocked.cuh
/// The SupCon loss on the GPU with its three large products through cuBLAS.
/// The fused kernels (supcon_fused.cuh) form the similarity tiles themselves,
/// from shared memory on CUDA cores, and run far below cuBLAS's rate; here
/// the similarity matrix is formed a block of R anchor rows at a time:
///
///   S_b (R, N) = F_b F^T / tau                  cuBLAS, into one work block
///   per row i of the block: the sums of the row, L(i), RowStats, then
///     G_ik / w in place of S_ik                 one thread block per row (the
///                                               fused kernels' loss_math.cuh)
///   dF_b += G_b F / tau                         cuBLAS (rows as anchors)
///   dF   += G_b^T F_b / tau                     cuBLAS (rows as contrast)
///
/// and after the last block  value = w sum_i L(i),  dF *= w.
/// The weight w = (T / base_T) / divisor is known only once every row is
/// done (the divisor may count the anchors with positives), so the blocks
/// form G / w and dF, linear in w, is scaled at the end. Nothing N x N is
/// kept: memory is O(N D) plus the block, at most block_elements entries
/// (2^28 by default, 1 GiB in float; R = block_elements / N rows).
/// The options of the fused kernels (require_fused_support), and the
/// one_positive denominator besides.

#include <algorithm>

#include "supcon/cuda/cublas.cuh"
#include "supcon/cuda/supcon_fused.cuh"

namespace supcon::cuda {

namespace blocked {

constexpr int kRowThreads = 256;  ///< threads sweeping one row
constexpr int kRowWarps = kRowThreads / 32;

/// Merges the block's per-thread sums into one, returned on every thread:
/// across lanes by shuffles, then across warps in warp order (deterministic).
/// warp_acc (kRowWarps) and merged are the block's shared memory.
template <class T>
__device__ RowAcc<T> block_merge(RowAcc<T> acc, RowAcc<T>* warp_acc, RowAcc<T>* merged) {
  const int t = threadIdx.x;
  fused::warp_merge(acc);
  if (t % 32 == 0) warp_acc[t / 32] = acc;
  __syncthreads();
  if (t == 0) {
    for (int w = 1; w < kRowWarps; ++w) row_merge(acc, warp_acc[w]);
    *merged = acc;
  }
  __syncthreads();
  return *merged;
}

/// Anchor row i = i0 + blockIdx.x of S (rows, N), S_ik = s_ik, by one thread
/// block: thread t takes k = t, t + kRowThreads, ..., and the block's sums
/// close the row (stats, unscaled, n_pos at i); then the row is overwritten
/// with G_ik / w. A whole block per row, not a warp: at large N the block
/// holds few rows (1,024 at N = 262,144) and one warp each left too few loads
/// in flight to keep the memory busy. one_positive takes two more sweeps over
/// the positives, as naive_row does: l_p = s_ip - log D_ip differs per
/// positive, and needs log_neg from the first sweep.
template <class T>
__global__ void __launch_bounds__(kRowThreads)
    rows_kernel(T* S, std::int64_t n, std::int64_t i0, std::int64_t batch, const std::int32_t* classes,
                Denominator den, bool outside, RowStats<T>* stats, T* unscaled, int* n_pos) {
  __shared__ RowAcc<T> warp_acc[kRowWarps], merged;
  const int t = threadIdx.x;
  const std::int64_t r = blockIdx.x, i = i0 + r;
  T* row = S + r * n;
  RowAcc<T> acc = row_empty<T>();
  for (std::int64_t k = t; k < n; k += kRowThreads) row_push(acc, row[k], role_of(i, k, batch, classes, nullptr));
  const RowAcc<T> all = block_merge(acc, warp_acc, &merged);
  RowStats<T> st;
  T loss = finish_row(all, den, outside, st);
  if (den == Denominator::one_positive && all.n_pos > 0) {
    // the l_p's log-sum-exp and sum (as the positives' entries of a RowAcc),
    // then share_n; naive_row's two sweeps, merged over the block
    RowAcc<T> l_acc = row_empty<T>(), share = row_empty<T>();
    for (std::int64_t k = t; k < n; k += kRowThreads)
      if (role_of(i, k, batch, classes, nullptr) == Role::positive)
        row_push(l_acc, one_positive_l(row[k], st), Role::positive);
    const RowAcc<T> l_all = block_merge(l_acc, warp_acc, &merged);
    loss = finish_one_positive(l_all.pos, l_all.pos_sum, all.n_pos, outside, st);
    for (std::int64_t k = t; k < n; k += kRowThreads)
      if (role_of(i, k, batch, classes, nullptr) == Role::positive)
        share.pos_sum += one_positive_share(row[k], st, outside);
    st.share_n = block_merge(share, warp_acc, &merged).pos_sum;
  }
  if (t == 0) {
    unscaled[i] = loss;
    stats[i] = st;
    n_pos[i] = all.n_pos;
  }
  // every thread computed st from the same merged sums, so the row's entries agree bit for bit
  for (std::int64_t k = t; k < n; k += kRowThreads)
    row[k] = grad_entry(row[k], role_of(i, k, batch, classes, nullptr), st, den, outside);
}

/// x[e] *= scalars[1] (the weight w) for e < count.
template <class T>
__global__ void scale_kernel(T* x, std::int64_t count, const T* scalars) {
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e < count) x[e] *= scalars[1];
}

}  // namespace blocked

/// The blocked SupCon loss on device memory; its cuBLAS handle, its work
/// block and its O(A) results are kept between calls (reuse one object).
template <class T>
class BlockedSupCon : public SupConAnchorResults<T> {
 public:
  /// Whether run() takes the one_positive denominator.
  static constexpr bool kOnePositive = true;

  /// block_elements: the most entries of S formed at once (at least one row
  /// is, whatever N).
  explicit BlockedSupCon(index_t block_elements = index_t(1) << 28) : block_elements_(block_elements) {
    require<ValueError>(block_elements >= 1, "blocked CUDA SupCon: block_elements must be >= 1, got ",
                        block_elements);
  }

  /// Same contract as FusedSupCon::run (the arguments, their checks, the
  /// asynchrony), but for the shared-memory limit on D, which does not apply.
  void run(const T* features, const std::int32_t* classes, index_t n, index_t d, index_t batch,
           const SupConOptions& opt, T* dfeatures, cudaStream_t stream = nullptr) {
    check_device_problem("blocked", n, d, batch, opt, kOnePositive);
    const index_t a = opt.contrast_mode == ContrastMode::all ? n : batch;
    const index_t rows = std::clamp<index_t>(block_elements_ / n, 1, a);
    const bool outside = opt.summation == Summation::outside;
    const T inv_tau = static_cast<T>(1.0 / opt.temperature);
    this->reserve(a);
    block_.resize(static_cast<std::size_t>(rows * n));
    check_cublas(cublasSetStream(blas_.get(), stream), "cublasSetStream");
    check(cudaMemsetAsync(dfeatures, 0, static_cast<std::size_t>(n * d) * sizeof(T), stream),
          "cudaMemsetAsync of dfeatures");
    for (index_t i0 = 0; i0 < a; i0 += rows) {
      const index_t r = std::min(rows, a - i0);
      const T* Fb = features + i0 * d;
      gemm<T>(blas_, false, true, r, n, d, inv_tau, Fb, d, features, d, T(0), block_.data(), n);  // S_b
      blocked::rows_kernel<T><<<static_cast<unsigned>(r), blocked::kRowThreads, 0, stream>>>(
          block_.data(), n, i0, batch, classes, opt.denominator, outside, stats_.data(), unscaled_.data(),
          n_pos_.data());
      check_launch("supcon blocked rows_kernel");
      // forward: S_b = F_b F^T / tau  =>  dF_b += G_b F / tau,  dF += G_b^T F_b / tau
      gemm<T>(blas_, false, false, r, d, n, inv_tau, block_.data(), n, features, d, T(1), dfeatures + i0 * d, d);
      gemm<T>(blas_, true, false, n, d, r, inv_tau, block_.data(), n, Fb, d, T(1), dfeatures, d);
    }
    fused::reduce_kernel<T><<<1, fused::kReduceThreads, 0, stream>>>(
        unscaled_.data(), n_pos_.data(), a, opt.no_positives == NoPositives::exclude,
        opt.temperature / opt.base_temperature, scalars_.data());
    check_launch("supcon blocked reduce_kernel");
    blocked::scale_kernel<T><<<blocks_for(n * d, 256), 256, 0, stream>>>(dfeatures, n * d, scalars_.data());
    check_launch("supcon blocked scale_kernel");
  }

  /// Device memory held between calls, in bytes: the block and O(A).
  std::size_t workspace_bytes() const { return block_.size() * sizeof(T) + this->results_bytes(); }

 private:
  using SupConAnchorResults<T>::stats_;
  using SupConAnchorResults<T>::unscaled_;
  using SupConAnchorResults<T>::n_pos_;
  using SupConAnchorResults<T>::scalars_;

  index_t block_elements_;
  CublasHandle blas_;
  DeviceBuffer<T> block_;
};

/// The blocked SupCon loss on the GPU, from and to host memory: the contract
/// of supcon_loss_fused (supcon_fused.cuh); block_elements as BlockedSupCon's.
template <class T>
LossResult<T> supcon_loss_blocked(const Tensor<T>& features, const Pairing& pairing, const SupConOptions& opt = {},
                                  index_t block_elements = index_t(1) << 28) {
  BlockedSupCon<T> loss(block_elements);
  return run_device_loss(features, pairing, opt, loss);
}

}  // namespace supcon::cuda
