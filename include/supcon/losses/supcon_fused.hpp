#pragma once
/// \file supcon_fused.hpp
/// The SupCon loss without the (A, N) similarity matrix: similarities are
/// recomputed tile by tile (an Eigen GEMM of a block of anchor rows against a
/// block of contrast columns) and folded into per-row running log-sum-exps.
/// Memory is O(A + threads * (tile rows * tile columns + N * D)).
///
/// Passes over the tiles (each one GEMM per tile):
///   1. streaming log-sum-exp per anchor row over P u N, over N and over P;
///      the sum of s_ip over P.
///   2. (one_positive only) per positive: l_p = s_ip - log(exp(s_ip) + sum_N),
///      streamed into sum_p l_p and log sum_p exp(l_p).
///   3. G_ik = dvalue/ds_ik from the row statistics, then
///      dF_a += G F_c / tau and dF_c += G^T F_a / tau. Threads own blocks of
///      anchor rows; each accumulates dF_c into its own (N, D) buffer, summed at
///      the end, so no two threads write the same memory.
/// The formulas are those of supcon_reference.hpp (docs/losses.md).

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "supcon/config.hpp"
#include "supcon/losses/supcon_layout.hpp"
#include "supcon/losses/supcon_options.hpp"
#include "supcon/losses/supcon_reference.hpp"

namespace supcon {

namespace detail {

/// Running log(sum_k exp(x_k)) = max + log(sum), updated one value at a time;
/// `extra` carries a second sum sum_k exp(x_k) * y_k rescaled alongside.
template <class T>
struct StreamLse {
  T max = -std::numeric_limits<T>::infinity();  ///< largest x seen
  T sum = 0;                                     ///< sum_k exp(x_k - max)
  T extra = 0;                                   ///< sum_k exp(x_k - max) * y_k
  /// Adds x (and y to the weighted sum).
  void add(T x, T y = T(0)) {
    if (x > max) {
      const T rescale = std::exp(max - x);
      sum = sum * rescale + T(1);
      extra = extra * rescale + y;
      max = x;
    } else {
      const T e = std::exp(x - max);
      sum += e;
      extra += e * y;
    }
  }
  /// log(sum_k exp(x_k)); -infinity when nothing was added.
  T value() const { return sum > 0 ? max + std::log(sum) : -std::numeric_limits<T>::infinity(); }
};

/// What pass 3 needs of one anchor row to turn s_ik into G_ik.
template <class T>
struct FusedRow {
  StreamLse<T> c, n, p;  ///< over P u N, over N, over P (of s_ik)
  StreamLse<T> l;        ///< over P of l_p, extra = share of the negatives (one_positive)
  T sum_s = 0;           ///< sum of s_ip over P
  T sum_l = 0;           ///< sum of l_p over P (one_positive)
  T sum_r = 0;           ///< sum of sum_N / D_ip over P (one_positive)
  T log_den = 0;         ///< log of the common denominator (all, only_negatives)
  T log_n = 0;           ///< log sum_N
  T lse_beta = 0;        ///< beta_p = exp(x_p - lse_beta), x = s (or l for one_positive)
  T share_n = 0;         ///< sum_p beta_p * sum_N / D_ip (one_positive)
  T weight = 0;          ///< (T / base_T) / divisor / tau, or 0 without positives
};

/// Calls visit(tid, i0, k0, S) for every (anchor block, column tile), S the
/// (rows, cols) similarity tile s_ik = <f_i, f_k> * inv_tau, in parallel over
/// anchor blocks (one thread when there is a single block, so `buffers` needs
/// max_threads() entries only then). visit may write only anchor rows i0.. and
/// buffers of thread tid.
template <class T, class Visit>
void sweep_similarity_tiles(ConstMatrixMap<T> F, index_t anchors, index_t rows, index_t cols,
                            T inv_tau, std::vector<RowMatrix<T>>& buffers, const Visit& visit) {
  const index_t N = F.rows();
  const index_t blocks = (anchors + rows - 1) / rows;
#pragma omp parallel if (blocks > 1)
  {
#if SUPCON_HAS_OPENMP
    const int tid = omp_get_thread_num();
#else
    const int tid = 0;
#endif
    T* buf = buffers[static_cast<std::size_t>(tid)].data();
#pragma omp for schedule(dynamic)
    for (index_t blk = 0; blk < blocks; ++blk) {
      const index_t i0 = blk * rows, r = std::min(rows, anchors - i0);
      for (index_t k0 = 0; k0 < N; k0 += cols) {
        const index_t c = std::min(cols, N - k0);
        MatrixMap<T> S(buf, r, c);
        S.noalias() = F.middleRows(i0, r) * F.middleRows(k0, c).transpose();
        S *= inv_tau;
        visit(tid, i0, k0, S);
      }
    }
  }
}

}  // namespace detail

/// Supervised contrastive loss and its gradient, blocked and streaming.
///
/// Same contract and results as supcon_loss_reference (to rounding), with
/// `tile` columns per similarity tile (0 picks 256; any value >= 1 works,
/// dividing N or not). Requires tile >= 0 (ValueError). grad is assigned.
template <class T>
LossResult<T> supcon_loss_fused(const Tensor<T>& features, const Pairing& pairing,
                                const SupConOptions& opt = {}, index_t tile = 0) {
  // features is (N, D); the anchors are its first A rows
  const detail::ContrastLayout lay = detail::make_contrast_layout(features, pairing, opt);
  require<ValueError>(tile >= 0, "supcon_loss_fused: tile must be >= 0 (0 = default), got ", tile);
  using detail::Role;
  const index_t N = lay.n, A = lay.anchors, D = lay.dim, B = lay.batch;
  const index_t cols = std::min(N, tile > 0 ? tile : index_t(256));
  const index_t rows = std::min(A, index_t(64));
  const T inv_tau = static_cast<T>(1.0 / opt.temperature);
  const T w = static_cast<T>(detail::anchor_weight(lay, opt) / opt.temperature);
  const bool outside = opt.summation == Summation::outside;
  const Denominator den = opt.denominator;
  const int threads = A > rows ? max_threads() : 1;  // see sweep_similarity_tiles
  ConstMatrixMap<T> F = features.matrix();
  std::vector<RowMatrix<T>> tiles(static_cast<std::size_t>(threads), RowMatrix<T>(rows, cols));
  std::vector<detail::FusedRow<T>> st(static_cast<std::size_t>(A));

  // Calls f(i, k, role, s) for every element of a tile whose anchor has positives.
  auto for_roles = [&](index_t i0, index_t k0, const MatrixMap<T>& S, auto&& f) {
    for (index_t ii = 0; ii < S.rows(); ++ii) {
      const index_t i = i0 + ii;
      if (lay.positives[static_cast<std::size_t>(i)] == 0) continue;
      const Role* role = &lay.sample_role[static_cast<std::size_t>((i % B) * B)];
      index_t kb = k0 % B;  // sample of column k
      for (index_t kk = 0; kk < S.cols(); ++kk, kb = kb + 1 == B ? 0 : kb + 1) {
        const index_t k = k0 + kk;
        f(i, ii, kk, k == i ? Role::none : role[kb], S(ii, kk));
      }
    }
  };

  // pass 1: streaming log-sum-exp over P u N, N and P; sum of s over P
  detail::sweep_similarity_tiles<T>(F, A, rows, cols, inv_tau, tiles,
      [&](int, index_t i0, index_t k0, MatrixMap<T>& S) {
        for_roles(i0, k0, S, [&](index_t i, index_t, index_t, Role r, T s) {
          detail::FusedRow<T>& q = st[static_cast<std::size_t>(i)];
          if (r == Role::none) return;
          q.c.add(s);
          if (r == Role::negative) q.n.add(s);
          if (r == Role::positive) q.p.add(s), q.sum_s += s;
        });
      });
  for (detail::FusedRow<T>& q : st) {
    q.log_n = q.n.value();
    q.log_den = den == Denominator::all ? q.c.value() : q.log_n;
  }

  // pass 2 (one_positive): l_p = s_ip - log D_ip with D_ip = exp(s_ip) + sum_N, and
  // r_p = sum_N / D_ip, the share of the negatives in D_ip
  if (den == Denominator::one_positive)
    detail::sweep_similarity_tiles<T>(F, A, rows, cols, inv_tau, tiles,
        [&](int, index_t i0, index_t k0, MatrixMap<T>& S) {
          for_roles(i0, k0, S, [&](index_t i, index_t, index_t, Role r, T s) {
            if (r != Role::positive) return;
            detail::FusedRow<T>& q = st[static_cast<std::size_t>(i)];
            const T log_d = detail::log_add_exp(s, q.log_n);
            const T rp = std::exp(q.log_n - log_d);
            q.l.add(s - log_d, rp);
            q.sum_l += s - log_d;
            q.sum_r += rp;
          });
        });

  // per-row loss and the scalars of G
  std::vector<T> unscaled(static_cast<std::size_t>(A), T(0));
  for (index_t i = 0; i < A; ++i) {
    const index_t np = lay.positives[static_cast<std::size_t>(i)];
    if (np == 0) continue;
    detail::FusedRow<T>& q = st[static_cast<std::size_t>(i)];
    const T inv_p = T(1) / static_cast<T>(np), log_p = std::log(static_cast<T>(np));
    q.weight = w;
    T mean_l, lse_l;
    if (den == Denominator::one_positive) {
      mean_l = q.sum_l * inv_p;
      lse_l = q.l.value();
      q.lse_beta = lse_l;
      q.share_n = outside ? q.sum_r * inv_p : q.l.extra / q.l.sum;
    } else {  // l_p = s_ip - log_den with a denominator common to every p
      mean_l = q.sum_s * inv_p - q.log_den;
      lse_l = q.p.value() - q.log_den;
      q.lse_beta = q.p.value();
    }
    unscaled[static_cast<std::size_t>(i)] = outside ? -mean_l : -(lse_l - log_p);
  }

  LossResult<T> out;
  detail::finish_loss_result(lay, opt, unscaled, out);
  out.grad = Tensor<T>({N, D});
  MatrixMap<T> dF = out.grad.matrix();
  std::vector<RowMatrix<T>> dcontrast(static_cast<std::size_t>(threads), RowMatrix<T>::Zero(N, D));

  // pass 3: G_ik (already divided by tau), then both products of the backward of
  // forward: S = F_a F^T / tau
  detail::sweep_similarity_tiles<T>(F, A, rows, cols, inv_tau, tiles,
      [&](int tid, index_t i0, index_t k0, MatrixMap<T>& S) {
        for (index_t ii = 0; ii < S.rows(); ++ii)
          if (lay.positives[static_cast<std::size_t>(i0 + ii)] == 0) S.row(ii).setZero();
        for_roles(i0, k0, S, [&](index_t i, index_t ii, index_t kk, Role r, T s) {
          const detail::FusedRow<T>& q = st[static_cast<std::size_t>(i)];
          const index_t np = lay.positives[static_cast<std::size_t>(i)];
          T g = 0;
          if (r == Role::positive) {
            T log_d = q.log_den, x = s;
            if (den == Denominator::one_positive) log_d = detail::log_add_exp(s, q.log_n), x = s - log_d;
            const T beta = outside ? T(1) / static_cast<T>(np) : std::exp(x - q.lse_beta);
            if (den == Denominator::all) g = std::exp(s - log_d) - beta;
            if (den == Denominator::only_negatives) g = -beta;
            if (den == Denominator::one_positive) g = -beta * std::exp(q.log_n - log_d);
          } else if (r == Role::negative) {
            g = std::exp(s - q.log_den);
            if (den == Denominator::one_positive) g = std::exp(s - q.log_n) * q.share_n;
          }
          S(ii, kk) = q.weight * g;
        });
        const index_t r = S.rows(), c = S.cols();
        MatrixMap<T> dFa(out.grad.data() + i0 * D, r, D);
        dFa.noalias() += S * F.middleRows(k0, c);  // dF_a += G F_c / tau
        dcontrast[static_cast<std::size_t>(tid)].middleRows(k0, c).noalias() +=
            S.transpose() * F.middleRows(i0, r);  // dF_c += G^T F_a / tau
      });

#pragma omp parallel for schedule(static) if (threads > 1)
  for (index_t k = 0; k < N; ++k)
    for (const RowMatrix<T>& part : dcontrast) dF.row(k) += part.row(k);
  return out;
}

}  // namespace supcon
