#pragma once
/// \file supcon_reference.hpp
/// The SupCon loss as the paper writes it: the full (A, N) similarity matrix,
/// one anchor row at a time. O(A N) memory; easy to read and the yardstick the
/// fused version is tested against. Derivations: docs/losses.md.

#include <cmath>
#include <limits>
#include <vector>

#include "supcon/losses/supcon_layout.hpp"
#include "supcon/losses/supcon_options.hpp"

namespace supcon {

namespace detail {

/// log(exp(a) + exp(b)) without overflow; b may be -infinity (an empty sum).
template <class T>
T log_add_exp(T a, T b) {
  if (b == -std::numeric_limits<T>::infinity()) return a;
  const T hi = std::max(a, b);
  return hi + std::log1p(std::exp(-std::abs(a - b)));
}


/// The reference loss restricted to the anchor rows `rows` of layout `lay`
/// (all anchors or a part): see supcon_loss_reference.
template <class T>
LossResult<T> supcon_reference_rows(const Tensor<T>& features, const ContrastLayout& lay,
                                    const SupConOptions& opt, const std::vector<index_t>& rows) {
  // features is (N, D); the anchors are the rows listed in `rows`
  const index_t N = lay.n, A = static_cast<index_t>(rows.size());
  const T inv_tau = static_cast<T>(1.0 / opt.temperature);
  const T w = static_cast<T>(anchor_weight(lay, opt));
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const bool outside = opt.summation == Summation::outside;

  ConstMatrixMap<T> F = features.matrix();
  // Fa is (A, D): the anchor rows; S is (A, N): s_ik = <f_i, f_k> / tau
  RowMatrix<T> Fa(A, lay.dim);
  for (index_t j = 0; j < A; ++j) Fa.row(j) = F.row(rows[static_cast<std::size_t>(j)]);
  RowMatrix<T> S = (Fa * F.transpose()) * inv_tau;
  // G is (A, N): G_ik = dvalue / ds_ik
  RowMatrix<T> G = RowMatrix<T>::Zero(A, N);
  std::vector<T> unscaled(static_cast<std::size_t>(A), T(0));

#pragma omp parallel for schedule(dynamic, 8) if (A * N > 4096)
  for (index_t a = 0; a < A; ++a) {
    // anchor a of this call is row i of the features (S and G are indexed by a)
    const index_t i = rows[static_cast<std::size_t>(a)];
    const index_t np = lay.positives[static_cast<std::size_t>(i)];
    if (np == 0) continue;  // L(i) = 0 and no gradient
    // log of the two sums a denominator can be made of: over P u N (all) and over N
    T max_c = neg_inf, max_n = neg_inf;
    for (index_t k = 0; k < N; ++k) {
      const Role r = lay.role(i, k);
      if (r != Role::none) max_c = std::max(max_c, S(a, k));
      if (r == Role::negative) max_n = std::max(max_n, S(a, k));
    }
    T sum_c = 0, sum_n = 0;
    for (index_t k = 0; k < N; ++k) {
      const Role r = lay.role(i, k);
      if (r != Role::none) sum_c += std::exp(S(a, k) - max_c);
      if (r == Role::negative) sum_n += std::exp(S(a, k) - max_n);
    }
    const T log_sum_c = max_c + std::log(sum_c);
    const T log_sum_n = sum_n > 0 ? max_n + std::log(sum_n) : neg_inf;

    // l_p = log(exp(s_ip) / D_ip), the log-probability of each positive p
    std::vector<index_t> pos;
    std::vector<T> logp, logden;
    pos.reserve(static_cast<std::size_t>(np));
    for (index_t k = 0; k < N; ++k) {
      if (lay.role(i, k) != Role::positive) continue;
      T log_d = log_sum_c;
      if (opt.denominator == Denominator::only_negatives) log_d = log_sum_n;
      if (opt.denominator == Denominator::one_positive) log_d = log_add_exp(S(a, k), log_sum_n);
      pos.push_back(k);
      logden.push_back(log_d);
      logp.push_back(S(a, k) - log_d);
    }
    T max_l = neg_inf, mean_l = 0;
    for (T l : logp) max_l = std::max(max_l, l), mean_l += l / static_cast<T>(np);
    T sum_el = 0;
    for (T l : logp) sum_el += std::exp(l - max_l);
    const T lse_l = max_l + std::log(sum_el);
    // L_out = -mean_p l_p;  L_in = -log(mean_p exp(l_p))
    unscaled[static_cast<std::size_t>(a)] =
        outside ? -mean_l : -(lse_l - std::log(static_cast<T>(np)));

    // With beta_p = -dL(i)/dl_p (1/|P| for L_out, exp(l_p) / sum_p' exp(l_p') for L_in),
    // dL(i)/ds_ik = sum_p beta_p ( -[k == p] + dlog(D_ip)/ds_ik ).
    T share_n = 0;  // sum_p beta_p / D_ip, times sum_N, for one_positive
    for (std::size_t j = 0; j < pos.size(); ++j) {
      const T beta = outside ? T(1) / static_cast<T>(np) : std::exp(logp[j] - lse_l);
      G(a, pos[j]) -= w * beta;
      if (opt.denominator == Denominator::one_positive) {
        G(a, pos[j]) += w * beta * std::exp(logp[j]);  // p's own term exp(s_ip) / D_ip
        share_n += beta * std::exp(log_sum_n - logden[j]);
      }
    }
    for (index_t k = 0; k < N; ++k) {
      const Role r = lay.role(i, k);
      if (opt.denominator == Denominator::all && r != Role::none)
        G(a, k) += w * std::exp(S(a, k) - log_sum_c);  // softmax over P u N; sum_p beta_p = 1
      if (opt.denominator == Denominator::only_negatives && r == Role::negative)
        G(a, k) += w * std::exp(S(a, k) - log_sum_n);
      if (opt.denominator == Denominator::one_positive && r == Role::negative)
        G(a, k) += w * std::exp(S(a, k) - log_sum_n) * share_n;
    }
  }

  LossResult<T> out;
  finish_loss_result(lay, opt, rows, unscaled, out);
  // forward: S = F_a F^T / tau, with F_a the anchor rows of F
  out.grad = Tensor<T>({N, lay.dim});
  MatrixMap<T> dF = out.grad.matrix();
  dF.noalias() = (G.transpose() * Fa) * inv_tau;  // dF += G^T F_a / tau
  const RowMatrix<T> dFa = (G * F) * inv_tau;      // dF_a += G F / tau
  for (index_t j = 0; j < A; ++j) dF.row(rows[static_cast<std::size_t>(j)]) += dFa.row(j);
  return out;
}


}  // namespace detail

/// Supervised contrastive loss and its gradient (reference implementation).
///
/// features is (N, D) with N = V * B rows stacked view-major (row r is sample
/// r mod B in view r / B), B = pairing.batch_size(). The options choose the
/// anchors, L_out or L_in, the denominator, the positives cap and the policy
/// for anchors without positives (supcon_options.hpp).
///
/// Requires: see detail::make_contrast_layout (ShapeError / ValueError).
/// Ensures: value = (T / base_T) * mean over anchors of L(i); grad is (N, D),
/// assigned (not accumulated), = dvalue/dfeatures; per_anchor, positives,
/// anchors and anchors_with_positives as documented in LossResult.
template <class T>
LossResult<T> supcon_loss_reference(const Tensor<T>& features, const Pairing& pairing,
                                    const SupConOptions& opt = {}) {
  const detail::ContrastLayout lay = detail::make_contrast_layout(features, pairing, opt);
  return detail::supcon_reference_rows(features, lay, opt, detail::anchor_rows(lay, nullptr));
}

/// The share of the anchor rows in `anchors` (a part of the A anchors) of
/// the loss above: value = (T / base_T) * sum over those anchors of L(i) /
/// divisor, where the divisor is that of the whole batch, and grad (N, D) =
/// dvalue/dfeatures over every row. The shares of a partition of the anchors
/// add up to the loss and its gradient (a data-parallel batch splits them so).
/// per_anchor and positives list the given anchors in order.
/// Requires: as above, and `anchors` increasing, disjoint ranges within
/// [0, A) (ValueError).
template <class T>
LossResult<T> supcon_loss_reference(const Tensor<T>& features, const Pairing& pairing,
                                    const SupConOptions& opt, const std::vector<RowRange>& anchors) {
  const detail::ContrastLayout lay = detail::make_contrast_layout(features, pairing, opt);
  return detail::supcon_reference_rows(features, lay, opt, detail::anchor_rows(lay, &anchors));
}

}  // namespace supcon
