#pragma once
/// \file supcon_fused.hpp
/// The SupCon loss without the (A, N) similarity matrix, at the cost of its
/// matrix products and nothing much else. Two paths, same results:
///
/// - strips (every option): anchors in blocks of R rows, each against all N
///   rows: S = F_a F^T / tau (R, N); per row the log-sum-exps over P and N,
///   the row's loss and G_ik = dvalue/ds_ik written over s_ik (one exp per
///   entry); then dF_a += G F / tau and dF += G^T F_a / tau. Three products.
/// - symmetric tiles (contrast mode all, denominator all or only_negatives,
///   labels without a cap): S = F F^T / tau is symmetric, so only the tiles
///   I <= K are formed, twice (sums, then gradient), and dF = (G + G^T) F / tau
///   takes one product per side of each tile. Two products' worth of flops.
///
/// Threads take blocks or tiles and accumulate into their own (N, D) buffer
/// (thread 0 into the result), summed at the end. Memory: O(N D + threads
/// (R N + N D)); buffers are kept per calling thread and reused by the next
/// call (released on return past 256 MiB). With labels and no positives cap
/// the pairing costs O(B): N = 262,144 rows of D = 128 take about 0.5 GiB.
/// The formulas are those of supcon_reference.hpp (docs/losses.md); the
/// measurements are in docs/performance.md.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "supcon/config.hpp"
#include "supcon/core/gemm.hpp"
#include "supcon/losses/supcon_fused_kernels.hpp"
#include "supcon/losses/supcon_layout.hpp"
#include "supcon/losses/supcon_options.hpp"
#include "supcon/losses/supcon_reference.hpp"

namespace supcon {

namespace detail {

/// Buffers of supcon_loss_fused for one calling thread: per worker thread a
/// tile or strip, a mask with scratch rows, and for workers t >= 1 a
/// gradient part (N, D). Their memory is reused from call to call.
template <class T>
struct FusedWorkspace {
  std::vector<std::vector<T>> strip, mask, dpart;  ///< per worker thread
  /// Sizes the buffers of `threads` workers; the gradient parts are zeroed.
  void prepare(int threads, index_t strip_size, index_t mask_size, index_t grad_size) {
    const std::size_t n = static_cast<std::size_t>(threads);
    strip.resize(n), mask.resize(n), dpart.resize(n);
    for (std::size_t t = 0; t < n; ++t) {
      strip[t].resize(static_cast<std::size_t>(strip_size));
      mask[t].resize(static_cast<std::size_t>(mask_size));
      if (t > 0) dpart[t].assign(static_cast<std::size_t>(grad_size), T(0));
    }
  }
  /// grad (size) += the gradient parts of workers 1 .. threads-1.
  void reduce(int threads, index_t size, T* grad) const {
#pragma omp parallel for schedule(static) if (threads > 1)
    for (index_t k = 0; k < size; ++k)
      for (std::size_t t = 1; t < static_cast<std::size_t>(threads); ++t) grad[k] += dpart[t][static_cast<std::size_t>(k)];
  }
  /// Bytes held.
  std::size_t bytes() const {
    std::size_t n = 0;
    for (const auto* v : {&strip, &mask, &dpart})
      for (const std::vector<T>& b : *v) n += b.capacity() * sizeof(T);
    return n;
  }
};

/// Index of the calling OpenMP thread (0 without OpenMP).
inline std::size_t ws_thread() {
#if SUPCON_HAS_OPENMP
  return static_cast<std::size_t>(omp_get_thread_num());
#else
  return 0;
#endif
}

/// The workspace of the calling thread.
template <class T>
FusedWorkspace<T>& fused_workspace() {
  thread_local FusedWorkspace<T> ws;
  return ws;
}

/// Fills one anchor row's mask over contrast rows k0 .. k0+n-1: pos = 1 on
/// P(i), else 0; s = -infinity where k is in no set (k == i, capped positives).
template <class T>
void fused_roles(const ContrastLayout& lay, index_t i, index_t k0, index_t n, T* s, T* pos) {
  const index_t B = lay.batch;
  if (lay.sample_role.empty()) {
    const std::int32_t ci = lay.sample_class[static_cast<std::size_t>(i % B)];
    const std::int32_t* cls = lay.sample_class.data();
    for (index_t k = k0; k < k0 + n;) {  // runs of consecutive samples
      const index_t b0 = k % B, len = std::min(k0 + n - k, B - b0);
      T* p = pos + (k - k0);
#pragma omp simd
      for (index_t j = 0; j < len; ++j) p[j] = cls[b0 + j] == ci ? T(1) : T(0);
      k += len;
    }
  } else {
    const Role* role = &lay.sample_role[static_cast<std::size_t>((i % B) * B)];
    for (index_t k = k0; k < k0 + n; ++k) {
      const Role r = role[k % B];
      pos[k - k0] = r == Role::positive ? T(1) : T(0);
      if (r == Role::none) s[k - k0] = -std::numeric_limits<T>::infinity();
    }
  }
  if (i >= k0 && i < k0 + n) pos[i - k0] = 0, s[i - k0] = -std::numeric_limits<T>::infinity();
}


/// t (cols, rows) = the transpose of a (rows, cols), in 16 x 16 blocks.
template <class T>
void transpose_into(const T* a, index_t rows, index_t cols, T* t) {
  for (index_t i0 = 0; i0 < rows; i0 += 16)
    for (index_t j0 = 0; j0 < cols; j0 += 16)
      for (index_t i = i0; i < std::min(rows, i0 + 16); ++i)
        for (index_t j = j0; j < std::min(cols, j0 + 16); ++j) t[j * rows + i] = a[i * cols + j];
}

/// out (r, n) = (scale A) B^T for A (r, D) and B (n, D), row-major: the
/// similarities of a strip or tile. In float on an AVX2 CPU the product goes
/// through core/gemm.hpp with A scaled into a per-thread buffer first.
template <class T>
void similarity_product(const T* A, index_t r, const T* B, index_t n, index_t D, T scale, T* out) {
  if (gemm_available<T>()) {
    thread_local std::vector<T> scaled;
    if (scaled.size() < static_cast<std::size_t>(r * D)) scaled.resize(static_cast<std::size_t>(r * D));
    for (index_t i = 0; i < r * D; ++i) scaled[static_cast<std::size_t>(i)] = scale * A[i];
    gemm_fast<T>(r, n, D, scaled.data(), D, 1, B, 1, D, out, n, false);
    return;
  }
  MatrixMap<T>(out, r, n).noalias() = (scale * ConstMatrixMap<T>(A, r, D)) * ConstMatrixMap<T>(B, n, D).transpose();
}

/// dA (r, D) += G (r, n) B (n, D) and dB (n, D) += G^T A (r, D): the two
/// backward products of a strip or tile (G row-major; dA and dB row-major with
/// row stride D). dB is skipped when null.
template <class T>
void backward_products(const T* G, index_t r, index_t n, const T* A, const T* B, index_t D, T* dA, T* dB) {
  if (!gemm_fast<T>(r, D, n, G, n, 1, B, D, 1, dA, D, true))
    MatrixMap<T>(dA, r, D).noalias() += ConstMatrixMap<T>(G, r, n) * ConstMatrixMap<T>(B, n, D);
  if (dB && !gemm_fast<T>(n, D, r, G, 1, n, A, D, 1, dB, D, true))
    MatrixMap<T>(dB, n, D).noalias() += ConstMatrixMap<T>(G, r, n).transpose() * ConstMatrixMap<T>(A, r, D);
}

/// Strips of at most R anchor rows against all N contrast rows: the three
/// products of the loss, for every option. The anchors are the rows of
/// `ranges` (all A anchors: one range [0, A)); unscaled[j] = L(i) of the j-th
/// of them is assigned, and dvalue/dF accumulated into grad (zero on entry).
template <class T>
void fused_strips(const ContrastLayout& lay, ConstMatrixMap<T> F, const SupConOptions& opt, index_t R,
                  const std::vector<RowRange>& ranges, std::vector<T>& unscaled, T* grad) {
  const index_t N = lay.n, D = lay.dim;
  // strips: (first row, rows, index of the first row among the anchors)
  struct Strip {
    index_t i0, r, j0;
  };
  std::vector<Strip> strips;
  index_t j0 = 0;
  for (const RowRange& rg : ranges)
    for (index_t i0 = rg.begin; i0 < rg.end; i0 += R) {
      strips.push_back({i0, std::min(R, rg.end - i0), j0});
      j0 += strips.back().r;
    }
  const index_t blocks = static_cast<index_t>(strips.size());
  const int threads = blocks > 1 ? max_threads() : 1;
  const T inv_tau = static_cast<T>(1.0 / opt.temperature);
  const T w = static_cast<T>(anchor_weight(lay, opt) / opt.temperature);
  FusedWorkspace<T>& ws = fused_workspace<T>();
  ws.prepare(threads, R * N, 2 * N, N * D);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const std::size_t t = ws_thread();
    MatrixMap<T> dF(t == 0 ? grad : ws.dpart[t].data(), N, D);
    T* pos = ws.mask[t].data();
    T* e = pos + N;
#pragma omp for schedule(dynamic)
    for (index_t blk = 0; blk < blocks; ++blk) {
      const Strip& st = strips[static_cast<std::size_t>(blk)];
      const index_t i0 = st.i0, r = st.r;
      MatrixMap<T> S(ws.strip[t].data(), r, N);
      const ConstMatrixMap<T> Fa(F.data() + i0 * D, r, D);
      similarity_product(Fa.data(), r, F.data(), N, D, inv_tau, S.data());  // S = F_a F^T / tau
      for (index_t ii = 0; ii < r; ++ii) {
        const index_t i = i0 + ii, np = lay.positives[static_cast<std::size_t>(i)];
        T* s = S.row(ii).data();
        fused_roles(lay, i, 0, N, s, pos);
        RowSums<T> q;
        row_sums_update(s, pos, e, N, q);
        if (np > 0 && opt.denominator == Denominator::one_positive) {
          unscaled[static_cast<std::size_t>(st.j0 + ii)] =
              row_one_positive(s, e, pos, N, np, w, opt.summation == Summation::outside, q);
        } else {
          RowCoef<T> c;
          unscaled[static_cast<std::size_t>(st.j0 + ii)] = row_coefficients(q, np, w, opt, c);
          row_gradient(e, pos, N, c, s);
        }
      }
      // S now holds G / tau (w includes 1 / tau). Backward of forward: S = F_a F^T / tau
      //   dF_a += G F / tau  and  dF_c += G^T F_a / tau
      backward_products(S.data(), r, N, Fa.data(), F.data(), D, dF.data() + i0 * D, dF.data());
    }
  }
  ws.reduce(threads, N * D, grad);
}

/// Every row an anchor (contrast mode all), denominator all or only_negatives,
/// labels without a cap: S = F F^T / tau is symmetric, so only the tiles
/// (I, K) with I <= K are computed. Pass 1 folds tile (I, K) into the sums of
/// the rows of I and, transposed, of the rows of K; pass 2 forms
/// H = G_IK + G_KI^T and adds dF_I += H F_K / tau, dF_K += H^T F_I / tau,
/// since dF = (G + G^T) F / tau. Two products' worth of flops instead of three.
/// Same outputs as fused_strips.
template <class T>
void fused_symmetric(const ContrastLayout& lay, ConstMatrixMap<T> F, const SupConOptions& opt, index_t R,
                     std::vector<T>& unscaled, T* grad) {
  const index_t N = lay.n, D = lay.dim;
  const index_t nb = (N + R - 1) / R, pairs = nb * (nb + 1) / 2;
  const int threads = pairs > 1 ? max_threads() : 1;
  const T inv_tau = static_cast<T>(1.0 / opt.temperature);
  const T w = static_cast<T>(anchor_weight(lay, opt) / opt.temperature);
  FusedWorkspace<T>& ws = fused_workspace<T>();
  // per thread: tile and its transpose (2 R^2), mask and two exponential rows (3 R)
  ws.prepare(threads, 2 * R * R, 3 * R, N * D);
  std::vector<std::vector<RowSums<T>>> sums(static_cast<std::size_t>(threads),
                                            std::vector<RowSums<T>>(static_cast<std::size_t>(N)));
  std::vector<RowCoef<T>> coef(static_cast<std::size_t>(N));
  // the same as columns for pass 2's loops: shift_n, shift_p - shift_n, a_n, a_p - a_n, c_p
  std::vector<T> col_coef(static_cast<std::size_t>(5 * N));
  T *k_shift = col_coef.data(), *k_dshift = k_shift + N, *k_a = k_dshift + N, *k_da = k_a + N,
    *k_c = k_da + N;
  // tile p of the upper triangle, blocks I <= K: buf = S_IK = F_I F_K^T / tau
  struct Tile {
    index_t I = 0, K = 0, i0 = 0, k0 = 0, ri = 0, rk = 0;
  };
  auto similarity_tile = [&](index_t p, T* buf) {
    Tile c;
    while (p >= nb - c.I) p -= nb - c.I, ++c.I;
    c.K = c.I + p, c.i0 = c.I * R, c.k0 = c.K * R;
    c.ri = std::min(R, N - c.i0), c.rk = std::min(R, N - c.k0);
    similarity_product(F.data() + c.i0 * D, c.ri, F.data() + c.k0 * D, c.rk, D, inv_tau, buf);
    return c;
  };

  // pass 1: the row sums, each tile serving the rows of I and (transposed) of K
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const std::size_t t = ws_thread();
    T *tile = ws.strip[t].data(), *tile_t = tile + R * R, *pos = ws.mask[t].data(), *e = pos + R;
    std::vector<RowSums<T>>& q = sums[t];
#pragma omp for schedule(dynamic)
    for (index_t p = 0; p < pairs; ++p) {
      const Tile c = similarity_tile(p, tile);
      const index_t I = c.I, K = c.K, i0 = c.i0, k0 = c.k0, ri = c.ri, rk = c.rk;
      MatrixMap<T> S(tile, ri, rk);
      if (I != K) transpose_into(tile, ri, rk, tile_t);
      for (index_t ii = 0; ii < ri; ++ii) {
        fused_roles(lay, i0 + ii, k0, rk, S.row(ii).data(), pos);
        row_sums_update(S.row(ii).data(), pos, e, rk, q[static_cast<std::size_t>(i0 + ii)]);
      }
      for (index_t kk = 0; kk < rk && I != K; ++kk) {
        T* st = tile_t + kk * ri;
        fused_roles(lay, k0 + kk, i0, ri, st, pos);
        row_sums_update(st, pos, e, ri, q[static_cast<std::size_t>(k0 + kk)]);
      }
    }
  }
  // each row's sums over all threads, its loss and its coefficients
#pragma omp parallel for schedule(static) if (threads > 1)
  for (index_t i = 0; i < N; ++i) {
    RowSums<T> q = sums[0][static_cast<std::size_t>(i)];
    for (std::size_t t = 1; t < sums.size(); ++t) q.merge(sums[t][static_cast<std::size_t>(i)]);
    RowCoef<T>& c = coef[static_cast<std::size_t>(i)];
    unscaled[static_cast<std::size_t>(i)] = row_coefficients(q, lay.positives[static_cast<std::size_t>(i)], w, opt, c);
    k_shift[i] = c.shift_n, k_dshift[i] = c.shift_p - c.shift_n;
    k_a[i] = c.a_n, k_da[i] = c.a_p - c.a_n, k_c[i] = c.c_p;
  }

  // pass 2: H = G_IK + G_KI^T, one exponential per entry and direction
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const std::size_t t = ws_thread();
    MatrixMap<T> dF(t == 0 ? grad : ws.dpart[t].data(), N, D);
    T *tile = ws.strip[t].data(), *pos = ws.mask[t].data(), *e1 = pos + R, *e2 = e1 + R;
#pragma omp for schedule(dynamic)
    for (index_t p = 0; p < pairs; ++p) {
      const Tile c = similarity_tile(p, tile);
      const index_t I = c.I, K = c.K, i0 = c.i0, k0 = c.k0, ri = c.ri, rk = c.rk;
      MatrixMap<T> S(tile, ri, rk);
      const ConstMatrixMap<T> FI(F.data() + i0 * D, ri, D), FK(F.data() + k0 * D, rk, D);
      for (index_t ii = 0; ii < ri; ++ii) {
        T* s = S.row(ii).data();
        const RowCoef<T> ci = coef[static_cast<std::size_t>(i0 + ii)];
        const T *ks = k_shift + k0, *kds = k_dshift + k0, *ka = k_a + k0, *kda = k_da + k0, *kc = k_c + k0;
        fused_roles(lay, i0 + ii, k0, rk, s, pos);  // with labels, roles are symmetric
        // masks enter as factors (pos * x is exactly x or 0 for finite x)
        const T dshift = ci.shift_p - ci.shift_n, da = ci.a_p - ci.a_n;
#pragma omp simd
        for (index_t kk = 0; kk < rk; ++kk) {
          e1[kk] = s[kk] - (ci.shift_n + pos[kk] * dshift);
          e2[kk] = s[kk] - (ks[kk] + pos[kk] * kds[kk]);
        }
        Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(e1, 2 * R) =
            Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(e1, 2 * R).exp();
        // forward: s_ik = s_ki  =>  H_ik = G_ik + G_ki
#pragma omp simd
        for (index_t kk = 0; kk < rk; ++kk)
          s[kk] = e1[kk] * (ci.a_n + pos[kk] * da) + e2[kk] * (ka[kk] + pos[kk] * kda[kk]) +
                  pos[kk] * (ci.c_p + kc[kk]);
      }
      // dF_I += H F_K / tau and, off the diagonal, dF_K += H^T F_I / tau
      backward_products(S.data(), ri, rk, FI.data(), FK.data(), D, dF.data() + i0 * D,
                        I != K ? dF.data() + k0 * D : nullptr);
    }
  }
  ws.reduce(threads, N * D, grad);
}

/// supcon_loss_fused over all anchors (`ranges` null) or the given ones.
template <class T>
LossResult<T> supcon_fused_rows(const Tensor<T>& features, const Pairing& pairing, const SupConOptions& opt,
                                index_t tile, const std::vector<RowRange>* ranges) {
  // features is (N, D); the anchors are its first A rows, or those of `ranges`
  const ContrastLayout lay = make_contrast_layout(features, pairing, opt);
  require<ValueError>(tile >= 0, "supcon_loss_fused: tile must be >= 0 (0 = default), got ", tile);
  const std::vector<index_t> rows = anchor_rows(lay, ranges);
  const std::vector<RowRange> all = {{0, lay.anchors}};
  const index_t N = lay.n, A = static_cast<index_t>(rows.size()), D = lay.dim;
  const bool symmetric = !ranges && A == N && lay.sample_role.empty() &&
                         opt.denominator != Denominator::one_positive;
  // symmetric tiles of 256 x 256 fit the L2 cache; strips of 128 rows keep the
  // third product's inner dimension long, with fewer rows past 16 M entries
  const index_t strip_rows = std::max<index_t>(16, std::min<index_t>(128, (index_t(1) << 24) / N));
  const index_t R = std::max<index_t>(1, std::min(A, tile > 0 ? tile : symmetric ? index_t(256) : strip_rows));
  LossResult<T> out;
  out.grad = Tensor<T>({N, D});  // zero
  std::vector<T> unscaled(static_cast<std::size_t>(A), T(0));
  if (symmetric)
    fused_symmetric<T>(lay, features.matrix(), opt, R, unscaled, out.grad.data());
  else
    fused_strips<T>(lay, features.matrix(), opt, R, ranges ? *ranges : all, unscaled, out.grad.data());
  FusedWorkspace<T>& ws = fused_workspace<T>();
  if (ws.bytes() > (std::size_t(256) << 20)) ws = FusedWorkspace<T>();
  finish_loss_result(lay, opt, rows, unscaled, out);
  return out;
}

}  // namespace detail

/// Supervised contrastive loss and its gradient, blocked and streaming.
///
/// Same contract and results as supcon_loss_reference (to rounding). `tile`
/// is the block size R in rows (0 picks one for the caches; any value >= 1
/// works, dividing N or not). Requires tile >= 0 (ValueError). grad is assigned.
template <class T>
LossResult<T> supcon_loss_fused(const Tensor<T>& features, const Pairing& pairing,
                                const SupConOptions& opt = {}, index_t tile = 0) {
  return detail::supcon_fused_rows(features, pairing, opt, tile, nullptr);
}

/// The share of the anchor rows in `anchors` of the loss above, with the
/// contract of the same overload of supcon_loss_reference (always the strip
/// path: the symmetric tiles need every row as an anchor).
template <class T>
LossResult<T> supcon_loss_fused(const Tensor<T>& features, const Pairing& pairing,
                                const SupConOptions& opt, index_t tile,
                                const std::vector<RowRange>& anchors) {
  return detail::supcon_fused_rows(features, pairing, opt, tile, &anchors);
}


}  // namespace supcon
