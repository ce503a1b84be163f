#pragma once
/// \file layer_math.cuh
/// The arithmetic of the CUDA layer kernels, one element (or one channel) at a
/// time, as __host__ __device__ functions. Like loss_math.cuh this header
/// compiles with nvcc and with any C++17 compiler, so the very functions the
/// kernels call are run on the CPU by a host emulation of the kernels' grids
/// and compared with ops/ (tests/cuda_layer_math.test.cpp).
///
/// Layouts are those of ops/: row-major NCHW. A channel of a (N, C, S) view
/// (S = H*W, or 1 for (N, C)) has M = N*S values; its m-th value sits at
/// (m / S) * C * S + c * S + m % S.

#include <cmath>
#include <cstdint>

#if !defined(SUPCON_HD)
#if defined(__CUDACC__)
#define SUPCON_HD __host__ __device__
#else
#define SUPCON_HD
#endif
#endif

namespace supcon::cuda {

/// Geometry of a convolution with a square kernel: x is (N, C, H, W), weight
/// (OC, C, K, K), y (N, OC, OH, OW). Filled by conv2d_geometry (layer_shapes.cuh).
struct ConvGeom {
  std::int64_t N, C, H, W, OC, K, stride, pad, OH, OW;
  SUPCON_HD std::int64_t ckk() const { return C * K * K; }  ///< rows of the column matrix
  SUPCON_HD std::int64_t p() const { return OH * OW; }      ///< output positions per image
};

// ---------------------------------------------------------------------------
// Row-major products through column-major cuBLAS (cublas.cuh). A row-major
// array of shape (M, N) with row stride ldc is, read column-major, the matrix
// C^T (N, M) with leading dimension ldc. So C = op(A) op(B) is computed as
//   C^T = op(B)^T op(A)^T,
// cuBLAS's gemm with (m, n, k) = (N, M, K), B's array first and A's second.
// An array holding X row-major holds X^T column-major, which is the factor
// needed, so each transpose flag passes through unchanged.

/// The arguments of cuBLAS's column-major gemm for a row-major product.
struct ColMajorGemm {
  bool trans_first, trans_second;  ///< op flags of the first and second operands
  std::int64_t m, n, k;
  std::int64_t ld_first, ld_second, ldc;
  // the first operand is the array of B, the second that of A
};

/// For C (M, N) = op(A) op(B) row-major, with op(A) (M, K), op(B) (K, N) and
/// row strides lda, ldb, ldc of the arrays as stored.
SUPCON_HD inline ColMajorGemm colmajor_gemm_args(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N,
                                                 std::int64_t K, std::int64_t lda, std::int64_t ldb, std::int64_t ldc) {
  return ColMajorGemm{trans_b, trans_a, N, M, K, ldb, lda, ldc};
}

// ---------------------------------------------------------------------------
// im2col / col2im on a block of B images starting at image n0.
// The column matrix is (C*K*K, B*OH*OW): row r = (c*K + i)*K + j (the
// flattening of a (OC, C, K, K) weight), column q = b*OH*OW + oh*OW + ow, so
// the block's convolution is one product weight (OC, CKK) * col (CKK, B*P)
// (ops::detail::im2col_ld with ld = B*P).

/// Entry `idx` (row-major, in [0, CKK * B*P)) of the column matrix of images
/// [n0, n0 + B) of x (the whole batch):
///   col[r, q] = x[n0 + b, c, oh*s - p + i, ow*s - p + j], 0 in the padding.
template <class T>
SUPCON_HD T im2col_entry(const T* x, const ConvGeom& g, std::int64_t n0, std::int64_t B, std::int64_t idx) {
  const std::int64_t P = g.p(), L = B * P;
  const std::int64_t r = idx / L, q = idx % L;
  const std::int64_t j = r % g.K, i = (r / g.K) % g.K, c = r / (g.K * g.K);
  const std::int64_t b = q / P, oh = (q % P) / g.OW, ow = q % g.OW;
  const std::int64_t ih = oh * g.stride - g.pad + i, iw = ow * g.stride - g.pad + j;
  if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return T(0);
  return x[(((n0 + b) * g.C + c) * g.H + ih) * g.W + iw];
}

/// Row r = (c K + i) K + j of the column matrix, split in 32 bits.
struct ColumnRow {
  int c, i, j;
};
SUPCON_HD inline ColumnRow column_row(unsigned r, unsigned K) {
  const unsigned ci = r / K, c = ci / K;
  return ColumnRow{static_cast<int>(c), static_cast<int>(ci - c * K), static_cast<int>(r - ci * K)};
}

/// Column q = b P + oh OW + ow of a block's column matrix, split in 32 bits.
struct ColumnPos {
  unsigned b;
  int oh, ow;
};
SUPCON_HD inline ColumnPos column_pos(unsigned q, unsigned P, unsigned OW) {
  const unsigned b = q / P, pos = q - b * P, oh = pos / OW;
  return ColumnPos{b, static_cast<int>(oh), static_cast<int>(pos - oh * OW)};
}

/// im2col_entry at row r and column q given split (column_row, column_pos):
/// the GPU kernel splits r once per thread block and q once per thread, in
/// 32 bits. (A 64-bit integer division costs dozens of instructions on a GPU;
/// im2col_entry's eight of them per entry made the kernel a third of a
/// training step.)
template <class T>
SUPCON_HD T im2col_entry_at(const T* x, const ConvGeom& g, std::int64_t n0, ColumnRow r, ColumnPos q) {
  const int ih = q.oh * static_cast<int>(g.stride) - static_cast<int>(g.pad) + r.i;
  const int iw = q.ow * static_cast<int>(g.stride) - static_cast<int>(g.pad) + r.j;
  if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return T(0);
  return x[(((n0 + q.b) * g.C + r.c) * g.H + ih) * g.W + iw];
}

/// col2im as a gather, the adjoint of im2col_entry: pixel (b, c, h, w) of the
/// block receives every column entry that was read from it. For each (i, j),
/// at most one output position (oh, ow) reads it: oh = (h + p - i) / s when
/// that divides exactly and lies in [0, OH) (likewise ow). Summing i, then j,
/// upwards is the order of ops::col2im, so both give the same rounding.
/// Returns dx[n0 + b, c, h, w] (the caller assigns it).
template <class T>
SUPCON_HD T col2im_entry(const T* dcol, const ConvGeom& g, std::int64_t B, std::int64_t b, std::int64_t c,
                         std::int64_t h, std::int64_t w) {
  // positions, kernel offsets and strides in 32 bits (see im2col_entry_at);
  // no division at all at stride 1
  const std::int64_t P = g.p(), L = B * P;
  const int K = static_cast<int>(g.K), s = static_cast<int>(g.stride), pad = static_cast<int>(g.pad);
  const int OH = static_cast<int>(g.OH), OW = static_cast<int>(g.OW);
  T acc = T(0);
  for (int i = 0; i < K; ++i) {
    const int th = static_cast<int>(h) + pad - i, oh = s == 1 ? th : th / s;
    if (th < 0 || oh * s != th || oh >= OH) continue;
    for (int j = 0; j < K; ++j) {
      const int tw = static_cast<int>(w) + pad - j, ow = s == 1 ? tw : tw / s;
      if (tw < 0 || ow * s != tw || ow >= OW) continue;
      const std::int64_t r = (c * K + i) * K + j;
      acc += dcol[r * L + b * P + oh * OW + ow];
    }
  }
  return acc;
}

/// Index in the (OC, B*P) block of element `idx` of the NCHW slab of images
/// [n0, n0 + B) of y (idx counts from the slab's start): the block holds
/// out[oc, b*P + p] for y[n0 + b, oc, p].
SUPCON_HD inline std::int64_t block_index_of_nchw(std::int64_t idx, std::int64_t OC, std::int64_t P, std::int64_t B) {
  const std::int64_t b = idx / (OC * P), oc = (idx / P) % OC, p = idx % P;
  return oc * (B * P) + b * P + p;
}

// ---------------------------------------------------------------------------
// Channel reductions (batch norm, biases): one block of kReduceThreads
// threads per channel. Thread t sums the values m = t, t + threads, ... in
// that order; the partial sums are then added by a tree (thread t takes
// t + half, half = threads/2, threads/4, ..., 1). No atomics: the order is
// fixed, so the result is the same on every run. Sums are kept in double
// whatever T is (the CPU batch norm sums in double too).

/// Threads per block of the channel reductions (a power of two).
constexpr int kReduceThreads = 256;

/// Two sums over the values of one channel.
struct Sums2 {
  double a;  ///< forward: sum (x - x0); backward: sum dy
  double b;  ///< forward: sum (x - x0)^2; backward: sum dy (x - mean)
};

SUPCON_HD inline Sums2 sums_empty() { return Sums2{0.0, 0.0}; }
SUPCON_HD inline void sums_merge(Sums2& s, const Sums2& o) {
  s.a += o.a;
  s.b += o.b;
}

/// Parts a channel's M values are summed in, one thread block of `threads`
/// each, merged in order afterwards: about 264 blocks in all (two per
/// multiprocessor of an H100 or H200) when the channels are few, but at least
/// 8 values per thread. Part g holds m in [g len, (g + 1) len), len = ceil(M / parts).
SUPCON_HD inline std::int64_t channel_sum_parts(std::int64_t C, std::int64_t M, int threads) {
  const std::int64_t want = C > 0 ? (264 + C - 1) / C : 1, per_part = 8 * static_cast<std::int64_t>(threads);
  const std::int64_t most = M / per_part > 1 ? M / per_part : 1;
  return want < most ? want : most;
}

/// Flat index of value m of channel c in a (N, C, S) tensor. I is the type
/// of the division m / S: std::uint32_t where N S < 2^32 (far cheaper on a
/// GPU than 64 bits), std::int64_t otherwise.
template <class I = std::int64_t>
SUPCON_HD inline std::int64_t channel_index(std::int64_t m, std::int64_t c, std::int64_t C, std::int64_t S) {
  const I n = static_cast<I>(m) / static_cast<I>(S);
  return (static_cast<std::int64_t>(n) * C + c) * S + (m - static_cast<std::int64_t>(n) * S);
}

/// Forward statistics: value x of a channel whose first value is x0. Shifting
/// by a value of the channel keeps E[d^2] - E[d]^2 free of cancellation
/// (ops::batchnorm_forward_train does the same); the difference is taken in T.
template <class T>
SUPCON_HD void moments_push(Sums2& s, T x, T x0) {
  const double d = static_cast<double>(x - x0);
  s.a += d;
  s.b += d * d;
}

/// Backward sums: sum dy and sum dy (x - mu), each product taken in T.
template <class T>
SUPCON_HD void grad_sums_push(Sums2& s, T dy, T x, T mu) {
  s.a += static_cast<double>(dy);
  s.b += static_cast<double>(dy * (x - mu));
}

// ---------------------------------------------------------------------------
// Batch normalisation, per channel (ops/batchnorm.hpp has the math).

/// A channel's affine map y = scale x + shift.
template <class T>
struct Affine {
  T scale, shift;
};

/// Training forward, channel c: from the moment sums over M values and the
/// first value x0, mean = x0 + a/M and the biased var = b/M - (a/M)^2
/// (clamped at 0), both stored in T; returns the map of
///   y = weight (x - mean) / sqrt(var + eps) + bias.
template <class T>
SUPCON_HD Affine<T> bn_train_channel(const Sums2& s, T x0, double M, T weight, T bias, T eps, T& mean, T& var) {
  using std::sqrt;
  const double dmean = s.a / M, mu = static_cast<double>(x0) + dmean;
  double v = s.b / M - dmean * dmean;
  v = v > 0.0 ? v : 0.0;
  mean = static_cast<T>(mu);
  var = static_cast<T>(v);
  const double invstd = 1.0 / sqrt(v + static_cast<double>(eps));
  return Affine<T>{static_cast<T>(static_cast<double>(weight) * invstd),
                   static_cast<T>(static_cast<double>(bias) - mu * static_cast<double>(weight) * invstd)};
}

/// Evaluation forward, channel c, in T: y = weight (x - rm) / sqrt(rv + eps) + bias.
template <class T>
SUPCON_HD Affine<T> bn_eval_channel(T weight, T bias, T running_mean, T running_var, T eps) {
  using std::sqrt;
  const T invstd = T(1) / sqrt(running_var + eps), scale = weight * invstd;
  return Affine<T>{scale, bias - running_mean * scale};
}

/// Running statistics of one channel move towards the batch ones (in T):
///   rm = (1 - momentum) rm + momentum mean,
///   rv = (1 - momentum) rv + momentum var M / (M - 1).
template <class T>
SUPCON_HD void bn_running_update(T& running_mean, T& running_var, T mean, T var, std::int64_t M, T momentum) {
  const T unbias = static_cast<T>(M) / static_cast<T>(M - 1);
  running_mean = (1 - momentum) * running_mean + momentum * mean;
  running_var = (1 - momentum) * running_var + momentum * var * unbias;
}

/// Coefficients of a channel's input gradient, dx = a dy + k (x - mean) + b.
template <class T>
struct BnGrad {
  T a, k, b;
};

/// Training backward, channel c, from the sums s = {sum dy, sum dy (x - mean)}
/// over M values. forward: y = weight xhat + bias with xhat = (x - mean) invstd,
/// mean and var depending on every x of the channel, hence
///   dbias = sum dy,  dweight = sum dy xhat = invstd * s.b   (returned through dweight_c, dbias_c)
///   dx = invstd (w dy - mean(w dy) - xhat mean(w dy xhat))
/// which the returned coefficients spell out.
template <class T>
SUPCON_HD BnGrad<T> bn_backward_channel(const Sums2& s, double M, T weight, T var, T eps, T& dweight_c, T& dbias_c) {
  using std::sqrt;
  const double invstd = 1.0 / sqrt(static_cast<double>(var) + static_cast<double>(eps));
  const double w = static_cast<double>(weight), sum_dy_xhat = invstd * s.b;
  dbias_c = static_cast<T>(s.a);
  dweight_c = static_cast<T>(sum_dy_xhat);
  const double mean_g = w * s.a / M, mean_g_xhat = w * sum_dy_xhat / M;
  return BnGrad<T>{static_cast<T>(invstd * w), static_cast<T>(-invstd * invstd * mean_g_xhat),
                   static_cast<T>(-invstd * mean_g)};
}

/// One element of dx from its channel's coefficients.
template <class T>
SUPCON_HD T bn_dx(const BnGrad<T>& g, T dy, T x, T mean) {
  return g.a * dy + g.k * (x - mean) + g.b;
}

// ---------------------------------------------------------------------------
// Element-wise layers.

/// forward: y = max(x, 0)
template <class T>
SUPCON_HD T relu_value(T x) {
  return x > T(0) ? x : T(0);
}

/// Backward from the forward's output y (the derivative at 0 is 0, as in
/// PyTorch). forward: y = max(x, 0)  =>  dx = dy where y > 0, else 0.
template <class T>
SUPCON_HD T relu_grad(T dy, T y) {
  return y > T(0) ? dy : T(0);
}

/// Global average pooling of one (n, c) plane of S values, summed in order.
template <class T>
SUPCON_HD T plane_mean(const T* plane, std::int64_t S) {
  T acc = T(0);
  for (std::int64_t s = 0; s < S; ++s) acc += plane[s];
  return acc / static_cast<T>(S);
}

// ---------------------------------------------------------------------------
// SGD (optim/sgd.hpp), one parameter entry. The CPU loop, line for line:
//   g <- g + wd w;  b <- g (first step) or mu b + keep g;
//   u <- g + mu b (Nesterov) or b;  w <- w - lr u.
// b is null when there is no momentum (then u = g).

/// Settings of one SGD step for one parameter, in T.
template <class T>
struct SgdStep {
  T lr, mu, keep, wd;  ///< keep = 1 - dampening; wd = 0 for a parameter not decayed
  bool nesterov, first;
};

template <class T>
SUPCON_HD void sgd_update(T& w, T grad, T* b, const SgdStep<T>& s) {
  T g = grad + s.wd * w;
  if (b) {
    *b = s.first ? g : s.mu * *b + s.keep * g;
    g = s.nesterov ? g + s.mu * *b : *b;
  }
  w -= s.lr * g;
}

}  // namespace supcon::cuda
