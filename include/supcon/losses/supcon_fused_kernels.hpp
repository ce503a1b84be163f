#pragma once
/// \file supcon_fused_kernels.hpp
/// The per-row arithmetic of supcon_loss_fused (supcon_fused.hpp): running
/// log-sum-exps of one anchor row over its positives and over the rest, the
/// row's loss from them, and dL/ds_ik for a run of entries of the row. Loops
/// are written for `omp simd` (masks as 0/1 values, selects instead of
/// branches) and the exponentials go through Eigen's vectorised exp.
///
/// Shifts: the positives of row i are exponentiated relative to m_p(i), their
/// largest similarity, and everything else relative to m_n(i), so each of the
/// two sums has a term equal to 1 and neither underflows, even at tau = 0.01
/// in float32.

#include <algorithm>
#include <cmath>
#include <limits>

#include "supcon/losses/supcon_options.hpp"
#include "supcon/losses/supcon_reference.hpp"

namespace supcon::detail {

/// Running sums of one anchor row i, over the entries seen so far:
/// sum_p = sum over P of exp(s - m_p), sum_n = the same over the other
/// entries with shift m_n, sum_s = sum over P of s. m = -infinity: none yet.
template <class T>
struct RowSums {
  T m_p = -std::numeric_limits<T>::infinity();  ///< largest s over P
  T m_n = -std::numeric_limits<T>::infinity();  ///< largest s over the rest
  T sum_p = 0, sum_n = 0, sum_s = 0;            ///< see the struct

  /// Folds in another part of the same row (a tile seen by another thread).
  void merge(const RowSums& o) {
    const T mp = std::max(m_p, o.m_p), mn = std::max(m_n, o.m_n);
    const T sp = finite_or_zero(mp), sn = finite_or_zero(mn);
    sum_p = sum_p * std::exp(m_p - sp) + o.sum_p * std::exp(o.m_p - sp);
    sum_n = sum_n * std::exp(m_n - sn) + o.sum_n * std::exp(o.m_n - sn);
    sum_s += o.sum_s;
    m_p = mp, m_n = mn;
  }
  /// x, or 0 for -infinity (the shift of a sum that is still empty).
  static T finite_or_zero(T x) { return x > -std::numeric_limits<T>::infinity() ? x : T(0); }
};

/// Adds n entries of row i to q. s is (n,), -infinity where the entry is in
/// no set; pos is (n,), 1 on P(i), else 0. e is (n,) and receives
/// exp(s_k - shift_k) with the row's updated shifts (0 where s = -infinity).
template <class T>
void row_sums_update(const T* s, const T* pos, T* e, index_t n, RowSums<T>& q) {
  const T inf = std::numeric_limits<T>::infinity();
  T max_p = -inf, max_n = -inf, sum_s = 0;
  // Clang (14) cannot vectorise a floating-point max reduction without
  // fast-math, and would warn wherever this header is compiled: a plain loop there.
#if !defined(__clang__)
#pragma omp simd reduction(max : max_p, max_n) reduction(+ : sum_s)
#endif
  for (index_t k = 0; k < n; ++k) {
    const bool p = pos[k] != T(0);
    max_p = std::max(max_p, p ? s[k] : -inf);
    max_n = std::max(max_n, p ? -inf : s[k]);
    sum_s += p ? s[k] : T(0);
  }
  // OpenMP leaves the start of a max reduction's lanes to the compiler:
  // -infinity in GCC, lowest() = -max() in Clang. A set with no entry in this
  // run must stay at -infinity (finite_or_zero), or its shift becomes -max()
  // and every later exp overflows.
  if (max_p == std::numeric_limits<T>::lowest()) max_p = -inf;
  if (max_n == std::numeric_limits<T>::lowest()) max_n = -inf;
  const T mp = std::max(q.m_p, max_p), mn = std::max(q.m_n, max_n);
  const T sp = RowSums<T>::finite_or_zero(mp), sn = RowSums<T>::finite_or_zero(mn);
  // masks enter as factors: pos * x is exactly x or 0 for finite x
  const T dp = sp - sn;
#pragma omp simd
  for (index_t k = 0; k < n; ++k) e[k] = s[k] - (sn + pos[k] * dp);
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> ea(e, n);
  ea = ea.exp();
  T sum_p = 0, sum_n = 0;
#pragma omp simd reduction(+ : sum_p, sum_n)
  for (index_t k = 0; k < n; ++k) {
    sum_p += pos[k] * e[k];
    sum_n += (T(1) - pos[k]) * e[k];
  }
  q.sum_p = q.sum_p * std::exp(q.m_p - sp) + sum_p;
  q.sum_n = q.sum_n * std::exp(q.m_n - sn) + sum_n;
  q.sum_s += sum_s;
  q.m_p = mp, q.m_n = mn;
}

/// How one anchor row turns similarities into dvalue/ds (times tau):
///   g(s) = pos ? exp(s - shift_p) a_p + c_p : exp(s - shift_n) a_n
/// (denominators all and only_negatives; every coefficient 0 without positives).
template <class T>
struct RowCoef {
  T shift_p = 0, shift_n = 0;  ///< finite shifts: the row's m_p and m_n
  T a_p = 0, a_n = 0, c_p = 0;  ///< see the struct
};

/// The coefficients of row i and its unscaled loss L(i) (returned), from its
/// complete sums q; np = |P(i)|; w = the anchor's weight divided by tau.
/// Requires the denominator all or only_negatives.
template <class T>
T row_coefficients(const RowSums<T>& q, index_t np, T w, const SupConOptions& opt, RowCoef<T>& c) {
  c = RowCoef<T>();
  c.shift_n = RowSums<T>::finite_or_zero(q.m_n);
  c.shift_p = q.m_p > -std::numeric_limits<T>::infinity() ? q.m_p : c.shift_n;
  if (np == 0) return T(0);  // L(i) = 0 and no gradient
  const T log_p = q.m_p + std::log(q.sum_p);
  const T log_n = q.sum_n > 0 ? q.m_n + std::log(q.sum_n) : -std::numeric_limits<T>::infinity();
  const bool all = opt.denominator == Denominator::all, outside = opt.summation == Summation::outside;
  const T log_den = all ? log_add_exp(log_p, log_n) : log_n;
  const T inv_p = T(1) / static_cast<T>(np);
  // G_ik = w (softmax_k [k in the denominator] - beta_k [k in P]), beta = 1/|P| (L_out)
  // or the softmax of s over P (L_in)
  c.a_n = w * std::exp(c.shift_n - log_den);
  c.a_p = all ? w * std::exp(c.shift_p - log_den) : T(0);
  if (outside)
    c.c_p = -w * inv_p;
  else
    c.a_p -= w * std::exp(c.shift_p - log_p);
  // L_out = -(mean_p s_ip - log_den);  L_in = -(log sum_P exp(s) - log_den - log |P|)
  return outside ? -(q.sum_s * inv_p - log_den) : -(log_p - log_den - std::log(static_cast<T>(np)));
}

/// Row i's G with the one_positive denominator D_ip = exp(s_ip) + sum_N: each
/// positive has its own, so l_p = s_ip - log D_ip, the share of the negatives
/// r_p = sum_N / D_ip and G_ip = -w beta_p r_p are computed one positive at a
/// time, and G_in = w exp(s_in) / sum_N * sum_p beta_p r_p.
/// s (N,) holds the similarities and receives G; e (N,) holds the exponentials
/// of row_sums_update over the whole row; returns the unscaled loss L(i).
template <class T>
T row_one_positive(T* s, const T* e, const T* pos, index_t N, index_t np, T w, bool outside,
                   const RowSums<T>& q) {
  const T inf = std::numeric_limits<T>::infinity();
  const T inv_p = T(1) / static_cast<T>(np);
  const T log_n = q.sum_n > 0 ? q.m_n + std::log(q.sum_n) : -inf;
  // sum_p l_p, sum_p r_p, and the log-sum-exp of l_p with sum_p exp(l_p) r_p alongside
  T sum_l = 0, sum_r = 0, max_l = -inf, sum_el = 0, sum_elr = 0;
  for (index_t k = 0; k < N; ++k) {
    if (pos[k] == T(0)) continue;
    const T log_d = log_add_exp(s[k], log_n), l = s[k] - log_d, r = std::exp(log_n - log_d);
    sum_l += l;
    sum_r += r;
    if (l > max_l) {
      const T rescale = std::exp(max_l - l);
      sum_el = sum_el * rescale + 1, sum_elr = sum_elr * rescale + r, max_l = l;
    } else {
      const T x = std::exp(l - max_l);
      sum_el += x, sum_elr += x * r;
    }
  }
  const T lse_l = max_l + std::log(sum_el);
  const T share_n = outside ? sum_r * inv_p : sum_elr / sum_el;  // sum_p beta_p r_p
  const T a_n = log_n > -inf ? w * std::exp(RowSums<T>::finite_or_zero(q.m_n) - log_n) * share_n : T(0);
  for (index_t k = 0; k < N; ++k) {
    if (pos[k] == T(0)) {
      s[k] = e[k] * a_n;
      continue;
    }
    const T log_d = log_add_exp(s[k], log_n), l = s[k] - log_d;
    const T beta = outside ? inv_p : std::exp(l - lse_l);
    s[k] = -w * beta * std::exp(log_n - log_d);
  }
  return outside ? -sum_l * inv_p : -(lse_l - std::log(static_cast<T>(np)));
}

/// g (n,) = G of row i over n entries: pos ? e a_p + c_p : e a_n, with e from
/// row_sums_update (so with the row's final shifts).
template <class T>
void row_gradient(const T* e, const T* pos, index_t n, const RowCoef<T>& c, T* g) {
  const T da = c.a_p - c.a_n;
#pragma omp simd
  for (index_t k = 0; k < n; ++k) g[k] = e[k] * (c.a_n + pos[k] * da) + pos[k] * c.c_p;
}

}  // namespace supcon::detail
