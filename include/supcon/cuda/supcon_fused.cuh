#pragma once
/// \file supcon_fused.cuh
/// The SupCon loss on the GPU without any N x N buffer, in the manner of flash
/// attention: tiles of the similarity matrix live in shared memory and
/// registers only, each anchor row keeps an online log-sum-exp, and the
/// backward pass recomputes the tiles. Memory O(N D). docs/cuda.md explains
/// the algorithm; supcon_naive.cuh is its reference.
///
/// Supported: labels (one class per sample), contrast mode all / one, L_out /
/// L_in (SimCLR = one class per sample), denominators all and only_negatives,
/// both no-positive policies, any temperatures. Not supported (ValueError,
/// use supcon_loss_naive): an explicit mask, a positives cap, and the
/// one_positive denominator (its l_p needs the negatives' sum before the
/// positives' terms, a second sweep).
///
/// Launches, all on one stream:
///   forward    block = 32 anchor rows; sweeps every 32-row tile of contrast
///              rows; lane tx of a warp keeps RowAcc for column tx of each
///              tile; the 32 lanes merge once at the end (shuffles) -> RowStats
///   reduce     one block: value = w sum_i L(i), w = (T / base_T) / divisor
///   backward   column side: block = 32 contrast rows k, sweeps anchor tiles,
///              dF_k = sum_i G_ik f_i / tau (assigned)
///              row side: block = 32 anchor rows i, sweeps contrast tiles,
///              dF_i += sum_k G_ik f_k / tau
/// The G tile (32 x 32) is recomputed from the dot products and RowStats and
/// multiplied by the other side's features at once; the two sides are two
/// launches, so no atomics and a deterministic result.

#include <vector>

#include "supcon/core/tensor.hpp"
#include "supcon/cuda/device.cuh"
#include "supcon/cuda/loss_math.cuh"
#include "supcon/losses/supcon_layout.hpp"

namespace supcon::cuda {

namespace fused {

constexpr int kTile = 32;                     ///< rows per block and per tile (one warp wide)
constexpr int kRowsY = 8;                     ///< blockDim.y; blockDim.x = kTile
constexpr int kRowsPerThread = kTile / kRowsY;  ///< rows o = ty + kRowsY * r held by one thread
constexpr int kChunk = 32;                    ///< columns of D staged in shared memory at once

/// Sizes and options of one problem, passed by value to every kernel.
struct Problem {
  std::int64_t n;      ///< contrast rows N = V * B
  std::int64_t d;      ///< feature dimension D
  std::int64_t a;      ///< anchor rows A (the first A rows)
  std::int64_t batch;  ///< samples B
  Denominator den;
  bool outside;  ///< L_out (else L_in)
};

template <class T>
using Stage = T[kTile][kChunk + 1];  // +1: column reads by tx hit 32 different banks

/// s[r] = <f_o, f_x> for own row o = o0 + ty + kRowsY r and other row x = x0 + tx,
/// through chunks of D staged in shared memory; rows past o_end / x_end read as 0.
/// Every thread of the block must call it (it synchronises).
template <class T>
__device__ void tile_dots(const T* F, std::int64_t D, std::int64_t o0, std::int64_t o_end, std::int64_t x0,
                          std::int64_t x_end, Stage<T>& fo, Stage<T>& fx, T (&s)[kRowsPerThread]) {
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int r = 0; r < kRowsPerThread; ++r) s[r] = T(0);
  for (std::int64_t d0 = 0; d0 < D; d0 += kChunk) {
    const std::int64_t d = d0 + tx;
    for (int r = ty; r < kTile; r += kRowsY) {
      fo[r][tx] = (o0 + r < o_end && d < D) ? F[(o0 + r) * D + d] : T(0);
      fx[r][tx] = (x0 + r < x_end && d < D) ? F[(x0 + r) * D + d] : T(0);
    }
    __syncthreads();
    for (int c = 0; c < kChunk; ++c) {
      const T b = fx[tx][c];
      for (int r = 0; r < kRowsPerThread; ++r) s[r] += fo[ty + kRowsY * r][c] * b;
    }
    __syncthreads();
  }
}

template <class T>
__device__ Lse<T> shuffle_xor(const Lse<T>& a, int lane_mask) {
  return Lse<T>{__shfl_xor_sync(0xffffffffu, a.max, lane_mask), __shfl_xor_sync(0xffffffffu, a.sum, lane_mask)};
}

/// Butterfly over the 32 lanes of a warp: afterwards every lane holds the
/// merge of all 32 lanes' sums.
template <class T>
__device__ void warp_merge(RowAcc<T>& a) {
  for (int lane_mask = 16; lane_mask >= 1; lane_mask /= 2) {
    RowAcc<T> b;
    b.all = shuffle_xor(a.all, lane_mask);
    b.neg = shuffle_xor(a.neg, lane_mask);
    b.pos = shuffle_xor(a.pos, lane_mask);
    b.pos_sum = __shfl_xor_sync(0xffffffffu, a.pos_sum, lane_mask);
    b.n_pos = __shfl_xor_sync(0xffffffffu, a.n_pos, lane_mask);
    row_merge(a, b);
  }
}

/// Forward: for each anchor row i < A, stats[i], unscaled[i] = L(i) and n_pos[i] = |P(i)|.
template <class T>
__global__ void __launch_bounds__(kTile* kRowsY)
    forward_kernel(const T* F, const std::int32_t* classes, Problem p, T inv_tau, RowStats<T>* stats, T* unscaled,
                   int* n_pos) {
  __shared__ Stage<T> fo, fx;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const std::int64_t o0 = static_cast<std::int64_t>(blockIdx.x) * kTile;
  RowAcc<T> acc[kRowsPerThread];
  for (int r = 0; r < kRowsPerThread; ++r) acc[r] = row_empty<T>();
  for (std::int64_t x0 = 0; x0 < p.n; x0 += kTile) {
    T s[kRowsPerThread];
    tile_dots(F, p.d, o0, p.a, x0, p.n, fo, fx, s);
    const std::int64_t k = x0 + tx;
    for (int r = 0; r < kRowsPerThread; ++r) {
      const std::int64_t i = o0 + ty + kRowsY * r;
      if (i < p.a && k < p.n) row_push(acc[r], s[r] * inv_tau, role_of(i, k, p.batch, classes, nullptr));
    }
  }
  for (int r = 0; r < kRowsPerThread; ++r) {
    warp_merge(acc[r]);
    const std::int64_t i = o0 + ty + kRowsY * r;
    if (tx == 0 && i < p.a) {
      RowStats<T> st;
      unscaled[i] = finish_row(acc[r], p.den, p.outside, st);
      stats[i] = st;
      n_pos[i] = acc[r].n_pos;
    }
  }
}

/// One block of kReduceThreads: scalars[0] = value = w * sum_i unscaled[i],
/// scalars[1] = w = scale / divisor (0 when the mean runs over no anchor).
constexpr int kReduceThreads = 256;
template <class T>
__global__ void reduce_kernel(const T* unscaled, const int* n_pos, std::int64_t A, bool exclude, double scale,
                              T* scalars) {
  __shared__ double sum[kReduceThreads];
  __shared__ long long with_pos[kReduceThreads];
  double s = 0;
  long long c = 0;
  for (std::int64_t i = threadIdx.x; i < A; i += kReduceThreads) {
    s += static_cast<double>(unscaled[i]);
    c += n_pos[i] > 0;
  }
  sum[threadIdx.x] = s;
  with_pos[threadIdx.x] = c;
  __syncthreads();
  for (int half = kReduceThreads / 2; half >= 1; half /= 2) {
    if (threadIdx.x < half) {
      sum[threadIdx.x] += sum[threadIdx.x + half];
      with_pos[threadIdx.x] += with_pos[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const long long divisor = exclude ? with_pos[0] : A;
    const double w = divisor > 0 ? scale / static_cast<double>(divisor) : 0.0;
    scalars[0] = static_cast<T>(w * sum[0]);
    scalars[1] = static_cast<T>(w);
  }
}

/// Backward, one side. Own rows o (a block of kTile) meet every tile of other
/// rows x; with (i, k) = (o, x) on the row side and (x, o) on the column side,
/// acc_o = sum_x w G_ik f_x, kept in dynamic shared memory (kTile x D), then
/// dF_o = acc_o / tau: assigned on the column side (which runs first, over all
/// N rows), added on the row side (rows < A).
template <class T, bool kColumnSide>
__global__ void __launch_bounds__(kTile* kRowsY)
    backward_kernel(const T* F, const std::int32_t* classes, Problem p, T inv_tau, const RowStats<T>* stats,
                    const T* scalars, T* dF) {
  extern __shared__ __align__(16) unsigned char dynamic_smem[];
  T* acc = reinterpret_cast<T*>(dynamic_smem);  // (kTile, D)
  __shared__ Stage<T> fo, fx;
  __shared__ T g[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kTile + tx;
  const std::int64_t own_end = kColumnSide ? p.n : p.a, other_end = kColumnSide ? p.a : p.n;
  const std::int64_t o0 = static_cast<std::int64_t>(blockIdx.x) * kTile;
  for (std::int64_t e = tid; e < kTile * p.d; e += kTile * kRowsY) acc[e] = T(0);
  const T w = scalars[1];
  for (std::int64_t x0 = 0; x0 < other_end; x0 += kTile) {
    T s[kRowsPerThread];
    tile_dots(F, p.d, o0, own_end, x0, other_end, fo, fx, s);
    const std::int64_t x = x0 + tx;
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int row = ty + kRowsY * r;
      const std::int64_t o = o0 + row;
      T gv = T(0);
      if (o < own_end && x < other_end) {
        const std::int64_t i = kColumnSide ? x : o, k = kColumnSide ? o : x;
        gv = w * grad_entry(s[r] * inv_tau, role_of(i, k, p.batch, classes, nullptr), stats[i], p.den, p.outside);
      }
      g[row][tx] = gv;
    }
    __syncthreads();
    // acc_o += sum_x g(o, x) f_x, one chunk of D at a time
    for (std::int64_t d0 = 0; d0 < p.d; d0 += kChunk) {
      const std::int64_t d = d0 + tx;
      for (int r = ty; r < kTile; r += kRowsY) fx[r][tx] = (x0 + r < other_end && d < p.d) ? F[(x0 + r) * p.d + d] : T(0);
      __syncthreads();
      if (d < p.d)
        for (int r = 0; r < kRowsPerThread; ++r) {
          const int row = ty + kRowsY * r;
          T sum = 0;
          for (int c = 0; c < kTile; ++c) sum += g[row][c] * fx[c][tx];
          acc[row * p.d + d] += sum;
        }
      __syncthreads();
    }
  }
  for (std::int64_t e = tid; e < kTile * p.d; e += kTile * kRowsY) {
    const std::int64_t o = o0 + e / p.d;
    if (o >= own_end) continue;
    const T v = acc[e] * inv_tau;
    if (kColumnSide)
      dF[o * p.d + e % p.d] = v;
    else
      dF[o * p.d + e % p.d] += v;
  }
}

}  // namespace fused

/// Throws ValueError naming the option when the fused kernels do not support
/// the pairing or options (explicit mask, positives cap, one_positive; the
/// last is allowed when `one_positive`, for the blocked loss).
inline void require_fused_support(const Pairing& pairing, const SupConOptions& opt, bool one_positive = false) {
  require<ValueError>(!pairing.classes().empty(),
                      "fused CUDA SupCon: an explicit mask is not supported; use supcon::cuda::supcon_loss_naive");
  require<ValueError>(opt.positives_cap < 0,
                      "fused CUDA SupCon: positives_cap is not supported; use supcon::cuda::supcon_loss_naive");
  require<ValueError>(one_positive || opt.denominator != Denominator::one_positive,
                      "fused CUDA SupCon: denominator one_positive is not supported; use "
                      "supcon::cuda::supcon_loss_blocked or supcon_loss_naive");
}

/// The host-side checks of FusedSupCon::run and BlockedSupCon::run, naming
/// the `path` ("fused", "blocked"): validate(opt), no positives cap, no
/// one_positive unless `one_positive`, N, D, B >= 1 with B dividing N and N < 2^31.
inline void check_device_problem(const char* path, index_t n, index_t d, index_t batch, const SupConOptions& opt,
                                 bool one_positive = false) {
  validate(opt);
  require<ValueError>(opt.positives_cap < 0, path, " CUDA SupCon: positives_cap is not supported");
  require<ValueError>(one_positive || opt.denominator != Denominator::one_positive, path,
                      " CUDA SupCon: denominator one_positive is not supported");
  require<ShapeError>(n >= 1 && d >= 1 && batch >= 1 && n % batch == 0 && n < (index_t(1) << 31), path,
                      " CUDA SupCon: need N >= 1 rows, a multiple of B >= 1 samples, and D >= 1; got N = ", n,
                      ", B = ", batch, ", D = ", d);
}

/// The per-anchor results of a device SupCon loss and the reduced value,
/// kept on the device between calls; shared by FusedSupCon and BlockedSupCon
/// (supcon_blocked.cuh), whose run() fills them.
template <class T>
class SupConAnchorResults {
 public:
  /// The loss of the last run (waits for it).
  T value() const {
    T v[2];
    check(cudaDeviceSynchronize(), "supcon kernels");
    scalars_.download(v, 2);
    return v[0];
  }
  /// Unscaled L(i) of the last run's anchors, copied to the host (waits).
  std::vector<T> unscaled_losses() const {
    std::vector<T> out(static_cast<std::size_t>(anchors_));
    check(cudaDeviceSynchronize(), "supcon kernels");
    unscaled_.download(out.data(), out.size());
    return out;
  }
  /// |P(i)| of the last run's anchors as the kernels counted them, copied to the host (waits).
  std::vector<int> positives() const {
    std::vector<int> out(static_cast<std::size_t>(anchors_));
    check(cudaDeviceSynchronize(), "supcon kernels");
    n_pos_.download(out.data(), out.size());
    return out;
  }

 protected:
  /// Makes room for the results of `anchors` anchor rows.
  void reserve(index_t anchors) {
    stats_.resize(static_cast<std::size_t>(anchors));
    unscaled_.resize(static_cast<std::size_t>(anchors));
    n_pos_.resize(static_cast<std::size_t>(anchors));
    scalars_.resize(2);
    anchors_ = anchors;
  }
  /// Device memory of the results, in bytes: O(A).
  std::size_t results_bytes() const {
    return stats_.size() * sizeof(RowStats<T>) + unscaled_.size() * sizeof(T) + n_pos_.size() * sizeof(int) +
           scalars_.size() * sizeof(T);
  }

  DeviceBuffer<RowStats<T>> stats_;
  DeviceBuffer<T> unscaled_;
  DeviceBuffer<int> n_pos_;
  DeviceBuffer<T> scalars_;  // value, w
  index_t anchors_ = 0;
};

/// The fused SupCon loss on device memory, with its O(N) workspace kept
/// between calls (reuse one object across training steps).
template <class T>
class FusedSupCon : public SupConAnchorResults<T> {
 public:
  /// Whether run() takes the one_positive denominator.
  static constexpr bool kOnePositive = false;

  /// features (N, D) and dfeatures (N, D) are device pointers, view-major;
  /// classes (B) is a device pointer of class indices, N = V * B. Launches the
  /// forward, the reduction and both backward kernels on `stream` and returns
  /// without waiting. dfeatures is assigned dL/dfeatures.
  /// Requires (ValueError / ShapeError, checked on the host): validate(opt),
  /// options supported (require_fused_support), N, D, B >= 1, B dividing N,
  /// N < 2^31, D small enough for the GPU's shared memory. The caller
  /// guarantees finite features and, for only_negatives, a negative for every
  /// anchor with positives (supcon_loss_fused checks both on the host).
  /// Throws CudaError when a CUDA call fails.
  void run(const T* features, const std::int32_t* classes, index_t n, index_t d, index_t batch,
           const SupConOptions& opt, T* dfeatures, cudaStream_t stream = nullptr) {
    check_device_problem("fused", n, d, batch, opt);
    using namespace fused;
    const Problem p{n, d, opt.contrast_mode == ContrastMode::all ? n : batch, batch, opt.denominator,
                    opt.summation == Summation::outside};
    const T inv_tau = static_cast<T>(1.0 / opt.temperature);
    this->reserve(p.a);

    const dim3 block(kTile, kRowsY);
    forward_kernel<T><<<blocks_for(p.a, kTile), block, 0, stream>>>(features, classes, p, inv_tau, stats_.data(),
                                                                     unscaled_.data(), n_pos_.data());
    check_launch("supcon fused forward_kernel");
    reduce_kernel<T><<<1, fused::kReduceThreads, 0, stream>>>(unscaled_.data(), n_pos_.data(), p.a,
                                                       opt.no_positives == NoPositives::exclude,
                                                       opt.temperature / opt.base_temperature, scalars_.data());
    check_launch("supcon fused reduce_kernel");
    const std::size_t smem = static_cast<std::size_t>(kTile * d) * sizeof(T);
    allow_shared_memory(backward_kernel<T, true>, smem, d);
    allow_shared_memory(backward_kernel<T, false>, smem, d);
    backward_kernel<T, true><<<blocks_for(p.n, kTile), block, smem, stream>>>(features, classes, p, inv_tau,
                                                                              stats_.data(), scalars_.data(), dfeatures);
    check_launch("supcon fused backward_kernel (column side)");
    backward_kernel<T, false><<<blocks_for(p.a, kTile), block, smem, stream>>>(
        features, classes, p, inv_tau, stats_.data(), scalars_.data(), dfeatures);
    check_launch("supcon fused backward_kernel (row side)");
  }

  /// Device memory held between calls, in bytes: O(A).
  std::size_t workspace_bytes() const { return this->results_bytes(); }

 private:
  using SupConAnchorResults<T>::stats_;
  using SupConAnchorResults<T>::unscaled_;
  using SupConAnchorResults<T>::n_pos_;
  using SupConAnchorResults<T>::scalars_;

  // Raises the kernel's dynamic shared memory limit past the default 48 KiB
  // when D needs it; ValueError when D needs more than the GPU has.
  template <class Kernel>
  static void allow_shared_memory(Kernel kernel, std::size_t dynamic_bytes, index_t d) {
    int device = 0, optin = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
          "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
    cudaFuncAttributes attr{};
    check(cudaFuncGetAttributes(&attr, kernel), "cudaFuncGetAttributes(backward_kernel)");
    require<ValueError>(attr.sharedSizeBytes + dynamic_bytes <= static_cast<std::size_t>(optin),
                        "fused CUDA SupCon: feature dimension D = ", d, " needs ",
                        attr.sharedSizeBytes + dynamic_bytes, " bytes of shared memory per block, this GPU has ",
                        optin, "; use supcon::cuda::supcon_loss_naive");
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic_bytes)),
          "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
  }
};

/// Runs a device SupCon loss (FusedSupCon or BlockedSupCon) on host tensors:
/// uploads, runs, and downloads a LossResult with grad (N, D) assigned.
template <class T, class DeviceLoss>
LossResult<T> run_device_loss(const Tensor<T>& features, const Pairing& pairing, const SupConOptions& opt,
                              DeviceLoss& loss) {
  const detail::ContrastLayout lay = detail::make_contrast_layout(features, pairing, opt);
  require_fused_support(pairing, opt, DeviceLoss::kOnePositive);
  const std::size_t nd = static_cast<std::size_t>(lay.n * lay.dim);
  DeviceBuffer<T> F, dF(nd);
  DeviceBuffer<std::int32_t> classes;
  F.upload(features.data(), nd);
  classes.upload(lay.sample_class.data(), lay.sample_class.size());
  loss.run(F.data(), classes.data(), lay.n, lay.dim, lay.batch, opt, dF.data());
  LossResult<T> out;
  fill_loss_result(lay, opt, loss.unscaled_losses(), out);
  out.value = loss.value();  // the device's reduction replaces fill_loss_result's host sum
  out.grad = Tensor<T>({lay.n, lay.dim});
  dF.download(out.grad.data(), nd);
  return out;
}

/// The fused SupCon loss on the GPU, from and to host memory.
///
/// Same contract as supcon::supcon_loss_fused for the options listed at the
/// top of this file (the same ShapeError / ValueError, checked on the host
/// before any launch; ValueError for an unsupported option). Throws CudaError
/// when a CUDA call fails. Ensures: a LossResult on the host, grad (N, D) assigned.
template <class T>
LossResult<T> supcon_loss_fused(const Tensor<T>& features, const Pairing& pairing, const SupConOptions& opt = {}) {
  FusedSupCon<T> loss;
  return run_device_loss(features, pairing, opt, loss);
}

}  // namespace supcon::cuda
