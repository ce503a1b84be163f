#pragma once
/// \file loss_math.cuh
/// The arithmetic of the CUDA loss kernels, one element or one row at a time,
/// as __host__ __device__ functions. This header compiles with nvcc and with
/// any C++17 compiler, so the very functions the kernels call are tested on
/// the CPU against supcon_loss_reference (tests/cuda_math.test.cpp).
///
/// Notation of supcon_options.hpp: s = <f_i, f_k> / tau for anchor row i and
/// contrast row k; P(i), N(i) the positives and negatives; C(i) = P(i) u N(i).
/// Derivation of the per-entry gradient G_ik = dL/ds_ik: docs/losses.md and
/// docs/cuda.md.

#include <cmath>
#include <cstdint>
#include <vector>

#include "supcon/losses/supcon_layout.hpp"
#include "supcon/losses/supcon_options.hpp"

#if defined(__CUDACC__)
#define SUPCON_HD __host__ __device__
#else
#define SUPCON_HD
#endif

namespace supcon::cuda {

using detail::Role;

/// A running log-sum-exp: the terms seen so far sum to sum * exp(max).
/// Empty: sum = 0 (max is then meaningless and never used).
template <class T>
struct Lse {
  T max;
  T sum;
};

template <class T>
SUPCON_HD Lse<T> lse_empty() {
  return Lse<T>{T(0), T(0)};
}

/// a <- a (+) b: merges two partial sums; either may be empty. Rescales the
/// one with the smaller max, so no exponent is ever positive.
template <class T>
SUPCON_HD void lse_merge(Lse<T>& a, const Lse<T>& b) {
  using std::exp;
  if (b.sum == T(0)) return;
  if (a.sum == T(0)) {
    a = b;
    return;
  }
  if (b.max > a.max) {
    a.sum = a.sum * exp(a.max - b.max) + b.sum;
    a.max = b.max;
  } else {
    a.sum += b.sum * exp(b.max - a.max);
  }
}

/// a <- a (+) exp(x): one more term, the online log-sum-exp step.
template <class T>
SUPCON_HD void lse_push(Lse<T>& a, T x) {
  lse_merge(a, Lse<T>{x, T(1)});
}

/// log of the sum; -infinity for an empty sum.
template <class T>
SUPCON_HD T lse_value(const Lse<T>& a) {
  using std::log;
  return a.sum == T(0) ? static_cast<T>(-INFINITY) : a.max + log(a.sum);
}

/// log(exp(a) + exp(b)); b may be -infinity.
template <class T>
SUPCON_HD T log_add_exp(T a, T b) {
  using std::exp;
  using std::log1p;
  if (b == static_cast<T>(-INFINITY)) return a;
  const T hi = a > b ? a : b, lo = a > b ? b : a;
  return hi + log1p(exp(lo - hi));
}

/// Role of contrast row k for anchor row i, from one class per sample
/// (classes, B entries) or, when sample_role is not null, from the (B, B)
/// table of supcon_layout.hpp (positives caps and explicit masks).
SUPCON_HD inline Role role_of(std::int64_t i, std::int64_t k, std::int64_t batch, const std::int32_t* classes,
                              const Role* sample_role) {
  if (i == k) return Role::none;
  if (sample_role != nullptr) return sample_role[(i % batch) * batch + k % batch];
  return classes[i % batch] == classes[k % batch] ? Role::positive : Role::negative;
}

/// role_of for the contrast rows of one anchor row i, as a callable for naive_row.
struct RowRoles {
  std::int64_t i;
  std::int64_t batch;
  const std::int32_t* classes;
  const Role* sample_role;
  SUPCON_HD Role operator()(std::int64_t k) const { return role_of(i, k, batch, classes, sample_role); }
};

/// What one anchor row gathers in a single sweep over its contrast rows.
template <class T>
struct RowAcc {
  Lse<T> all;  ///< sum over C(i) of exp(s)
  Lse<T> neg;  ///< sum over N(i) of exp(s)
  Lse<T> pos;  ///< sum over P(i) of exp(s) (for L_in)
  T pos_sum;   ///< sum over P(i) of s (for L_out)
  int n_pos;   ///< |P(i)|
};

template <class T>
SUPCON_HD RowAcc<T> row_empty() {
  return RowAcc<T>{lse_empty<T>(), lse_empty<T>(), lse_empty<T>(), T(0), 0};
}

/// Adds contrast row k, with similarity s and role r, to the row's sums.
template <class T>
SUPCON_HD void row_push(RowAcc<T>& a, T s, Role r) {
  if (r == Role::none) return;
  lse_push(a.all, s);
  if (r == Role::negative) {
    lse_push(a.neg, s);
  } else {
    lse_push(a.pos, s);
    a.pos_sum += s;
    a.n_pos += 1;
  }
}

/// a <- a + b: the sums of two disjoint sets of contrast rows of the same anchor.
template <class T>
SUPCON_HD void row_merge(RowAcc<T>& a, const RowAcc<T>& b) {
  lse_merge(a.all, b.all);
  lse_merge(a.neg, b.neg);
  lse_merge(a.pos, b.pos);
  a.pos_sum += b.pos_sum;
  a.n_pos += b.n_pos;
}

/// Everything the gradient of one anchor row needs, fixed after the forward pass.
template <class T>
struct RowStats {
  T log_all;  ///< log sum over C(i) of exp(s)
  T log_neg;  ///< log sum over N(i) of exp(s); -inf when N(i) is empty
  T log_l;    ///< L_in: log sum_p exp(l_p), the normaliser of beta_p; unused for L_out
  T inv_np;   ///< 1 / |P(i)|; 0 when i has no positive (then G_i. = 0)
  T share_n;  ///< one_positive only: sum_p beta_p * exp(log_neg) / D_ip
};

/// log D_ip, the log of the softmax denominator of positive p (similarity s).
template <class T>
SUPCON_HD T log_denominator(T s, const RowStats<T>& st, Denominator den) {
  if (den == Denominator::all) return st.log_all;
  if (den == Denominator::only_negatives) return st.log_neg;
  return log_add_exp(s, st.log_neg);  // one_positive: exp(s_ip) + sum_N
}

/// Closes one anchor row of the single-sweep algorithm (denominators all and
/// only_negatives; one_positive needs log_neg before the positives' terms, so
/// a second sweep: naive_row). Returns the unscaled L(i) (0 without positives)
/// and fills `st`.
///   L_out = -(1/|P|) sum_p (s_ip - log D) = log D - pos_sum / |P|
///   L_in  = -log((1/|P|) sum_p exp(s_ip - log D)) = log D + log|P| - lse_p(s_ip)
template <class T>
SUPCON_HD T finish_row(const RowAcc<T>& a, Denominator den, bool outside, RowStats<T>& st) {
  using std::log;
  st.log_all = lse_value(a.all);
  st.log_neg = lse_value(a.neg);
  st.share_n = T(0);
  st.inv_np = a.n_pos > 0 ? T(1) / static_cast<T>(a.n_pos) : T(0);
  const T log_d = den == Denominator::all ? st.log_all : st.log_neg;
  // l_p = s_ip - log D, so sum_p exp(l_p) = exp(lse_p(s) - log D)
  st.log_l = a.n_pos > 0 ? lse_value(a.pos) - log_d : T(0);
  if (a.n_pos == 0) return T(0);
  if (outside) return log_d - a.pos_sum * st.inv_np;
  return log(static_cast<T>(a.n_pos)) - st.log_l;
}

/// G_ik / w = dL(i)/ds_ik for one entry, with w = (T / base_T) / divisor applied
/// by the caller. With beta_p = -dL/dl_p (1/|P| for L_out, exp(l_p - log_l) for
/// L_in) and l_p = s_ip - log D_ip:
///   positive k: -beta_k + [all] softmax_all(k) + [one_positive] beta_k exp(l_k)
///   negative k: [all] softmax_all(k); [only_negatives] exp(s - log_neg);
///               [one_positive] exp(s - log_neg) * share_n
/// (for all and only_negatives, sum_p beta_p = 1 multiplies each negative).
template <class T>
SUPCON_HD T grad_entry(T s, Role r, const RowStats<T>& st, Denominator den, bool outside) {
  using std::exp;
  if (r == Role::none || st.inv_np == T(0)) return T(0);
  if (r == Role::negative) {
    if (den == Denominator::all) return exp(s - st.log_all);
    if (den == Denominator::only_negatives) return exp(s - st.log_neg);
    return exp(s - st.log_neg) * st.share_n;
  }
  const T l = s - log_denominator(s, st, den);
  const T beta = outside ? st.inv_np : exp(l - st.log_l);
  T g = -beta;
  if (den == Denominator::all) g += exp(s - st.log_all);
  if (den == Denominator::one_positive) g += beta * exp(l);
  return g;
}

/// one_positive: positive p's log-probability l_p = s_ip - log D_ip, with
/// D_ip = exp(s_ip) + sum_N (so it needs log_neg, from finish_row, first).
template <class T>
SUPCON_HD T one_positive_l(T s, const RowStats<T>& st) {
  return s - log_add_exp(s, st.log_neg);
}

/// one_positive: closes the row from l_all = lse_p(l_p) and l_sum = sum_p l_p
/// over its n_pos > 0 positives; sets st.log_l and returns the unscaled L(i).
template <class T>
SUPCON_HD T finish_one_positive(const Lse<T>& l_all, T l_sum, int n_pos, bool outside, RowStats<T>& st) {
  using std::log;
  st.log_l = lse_value(l_all);
  return outside ? -l_sum * st.inv_np : log(static_cast<T>(n_pos)) - st.log_l;
}

/// one_positive: positive p's term of share_n, beta_p exp(log_neg - log D_ip)
/// (st.log_l set by finish_one_positive).
template <class T>
SUPCON_HD T one_positive_share(T s, const RowStats<T>& st, bool outside) {
  using std::exp;
  const T log_d = log_add_exp(s, st.log_neg);
  const T beta = outside ? st.inv_np : exp(s - log_d - st.log_l);
  return beta * exp(st.log_neg - log_d);
}

/// One anchor row of the naive kernel, every option: s_row holds s_ik for the
/// n contrast rows, role(k) their roles. Three sweeps: the sums, the positives'
/// log-probabilities (needed first by one_positive), the gradient row.
/// Ensures: g_row[k] = w * G_ik assigned for every k; returns the unscaled L(i).
template <class T, class RoleFn>
SUPCON_HD T naive_row(const T* s_row, std::int64_t n, RoleFn role, Denominator den, bool outside, T w, T* g_row) {
  RowAcc<T> a = row_empty<T>();
  for (std::int64_t k = 0; k < n; ++k) row_push(a, s_row[k], role(k));
  RowStats<T> st;
  T loss = finish_row(a, den, outside, st);
  if (den == Denominator::one_positive && a.n_pos > 0) {
    // l_p = s_ip - log(exp(s_ip) + sum_N) differs per positive
    Lse<T> l_all = lse_empty<T>();
    T l_sum = 0;
    for (std::int64_t k = 0; k < n; ++k) {
      if (role(k) != Role::positive) continue;
      const T l = one_positive_l(s_row[k], st);
      lse_push(l_all, l);
      l_sum += l;
    }
    loss = finish_one_positive(l_all, l_sum, a.n_pos, outside, st);
    // share_n = sum_p beta_p sum_N / D_ip = sum_p beta_p exp(log_neg - log D_ip)
    for (std::int64_t k = 0; k < n; ++k)
      if (role(k) == Role::positive) st.share_n += one_positive_share(s_row[k], st, outside);
  }
  for (std::int64_t k = 0; k < n; ++k) g_row[k] = w * grad_entry(s_row[k], role(k), st, den, outside);
  return loss;
}

/// One row of softmax cross-entropy with label smoothing eps (cross_entropy.hpp):
/// q = (1 - eps) onehot(y) + eps / C; loss = logsumexp(z) - sum_c q_c z_c.
/// Ensures: g[c] = (softmax(z)_c - q_c) * inv_n assigned; returns the row's loss.
template <class T>
SUPCON_HD T cross_entropy_row(const T* z, std::int64_t c_count, std::int64_t y, T eps, T inv_n, T* g) {
  using std::exp;
  using std::log;
  T zmax = z[0];
  for (std::int64_t c = 1; c < c_count; ++c) zmax = z[c] > zmax ? z[c] : zmax;
  T sum = 0, qz = 0;
  const T off = eps / static_cast<T>(c_count);
  for (std::int64_t c = 0; c < c_count; ++c) {
    sum += exp(z[c] - zmax);
    qz += (off + (c == y ? T(1) - eps : T(0))) * (z[c] - zmax);
  }
  for (std::int64_t c = 0; c < c_count; ++c) {
    const T q = off + (c == y ? T(1) - eps : T(0));
    // forward: loss = logsumexp(z) - sum_c q_c z_c, so dloss/dz_c = p_c - q_c
    g[c] = (exp(z[c] - zmax) / sum - q) * inv_n;
  }
  return log(sum) - qz;  // sum_c q_c = 1, so the shift by zmax cancels
}

/// Host side: fills `out` from the layout and the unscaled per-anchor losses
/// (value = w * sum, per_anchor = (T / base_T) * L(i), positives and counts).
template <class T>
void fill_loss_result(const detail::ContrastLayout& lay, const SupConOptions& opt, const std::vector<T>& unscaled,
                      LossResult<T>& out) {
  const T w = static_cast<T>(detail::anchor_weight(lay, opt));
  const T scale = static_cast<T>(opt.temperature / opt.base_temperature);
  out.value = 0;
  out.per_anchor.resize(unscaled.size());
  for (std::size_t i = 0; i < unscaled.size(); ++i) {
    out.value += w * unscaled[i];
    out.per_anchor[i] = scale * unscaled[i];
  }
  out.positives = lay.positives;
  out.anchors = lay.anchors;
  out.anchors_with_positives = lay.anchors_with_positives;
}

}  // namespace supcon::cuda
