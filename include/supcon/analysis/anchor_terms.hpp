#pragma once
/// \file anchor_terms.hpp
/// The pieces of one anchor's SupCon term, computed straight from the
/// definitions in supcon_options.hpp (docs/losses.md derives them): the
/// similarities s_ik, the positive set P(i), the negatives N(i), and each
/// positive's log-probability log q_p = s_ip - log D_ip.
///
/// The analyses (Jensen gap, gradient weights) are written in terms of q_p,
/// so they read like the paper rather than like the loss implementation, and
/// the tests check the two against each other.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/losses/supcon_options.hpp"

namespace supcon {

/// One anchor's view of the batch. Row indices refer to the (N, D) features.
template <class T>
struct AnchorTerms {
  index_t anchor = 0;              ///< the anchor's row i
  std::vector<index_t> positives;  ///< P(i), ascending (after the positives cap)
  std::vector<index_t> negatives;  ///< N(i), ascending
  std::vector<index_t> dropped;    ///< rows removed by the positives cap: in no set at all
  std::vector<T> s;                ///< s_ik = <f_i, f_k> / temperature for every row k (N)
  std::vector<T> log_q;            ///< log q_p = s_ip - log D_ip, in the order of `positives`
  std::vector<T> log_d;            ///< log D_ip, in the order of `positives`
};

/// Number of anchor rows: N for ContrastMode::all, B (the rows of view 0) for one.
inline index_t anchor_count(index_t rows, index_t batch, ContrastMode mode) {
  return mode == ContrastMode::all ? rows : batch;
}

namespace detail {
// log sum_k exp(v_k) over the listed rows, with the maximum subtracted.
template <class T>
T log_sum_exp_rows(const std::vector<T>& v, const std::vector<index_t>& rows) {
  if (rows.empty()) return -std::numeric_limits<T>::infinity();
  T m = v[static_cast<std::size_t>(rows[0])];
  for (index_t k : rows) m = std::max(m, v[static_cast<std::size_t>(k)]);
  T sum = 0;
  for (index_t k : rows) sum += std::exp(v[static_cast<std::size_t>(k)] - m);
  return m + std::log(sum);
}
}  // namespace detail

/// The terms of anchor row `anchor` of `features` (N, D), N = V * B view-major,
/// under `opt` (summation is irrelevant here: both losses share these terms).
/// Requires 0 <= anchor < anchor_count(N, B, opt.contrast_mode), N a multiple
/// of B = pairing.batch_size(), valid options. Throws ValueError when a
/// positive's denominator is empty (only-negatives with no negative).
template <class T>
AnchorTerms<T> anchor_terms(const Tensor<T>& features, const Pairing& pairing,
                            const SupConOptions& opt, index_t anchor) {
  // features is (N, D); rows r = v * B + b hold sample b in view v
  validate(opt);
  const index_t batch = pairing.batch_size();
  require<ShapeError>(features.rank() == 2 && batch > 0 && features.dim(0) % batch == 0,
                      "anchor_terms: features must be (V * B, D) with B = ", batch, ", got ",
                      shape_str(features.shape()));
  const index_t rows = features.dim(0), views = rows / batch;
  require(anchor >= 0 && anchor < anchor_count(rows, batch, opt.contrast_mode),
          "anchor_terms: anchor ", anchor, " out of range");
  require(opt.positives_cap < 0 || opt.positives_cap % views == 0, "positives_cap (",
          opt.positives_cap, ") must be a multiple of the number of views (", views, ")");

  AnchorTerms<T> t;
  t.anchor = anchor;
  const index_t b = anchor % batch;
  // Samples other than the anchor's own that are paired with it, lowest index
  // first; the cap keeps the first cap / V of them (each with all its views).
  index_t keep = std::numeric_limits<index_t>::max();
  if (opt.positives_cap >= 0) keep = opt.positives_cap / views;
  std::vector<char> kept(static_cast<std::size_t>(batch), 0);
  index_t taken = 0;
  for (index_t j = 0; j < batch; ++j)
    if (pairing.paired(b, j) && (j == b || taken++ < keep)) kept[static_cast<std::size_t>(j)] = 1;

  const auto f = features.matrix();
  t.s.resize(static_cast<std::size_t>(rows));
  for (index_t k = 0; k < rows; ++k) {
    t.s[static_cast<std::size_t>(k)] = f.row(anchor).dot(f.row(k)) / static_cast<T>(opt.temperature);
    if (k == anchor) continue;
    const index_t j = k % batch;
    if (!pairing.paired(b, j)) t.negatives.push_back(k);
    else if (kept[static_cast<std::size_t>(j)]) t.positives.push_back(k);
    else t.dropped.push_back(k);
  }

  // Denominator rows: every row but i and the dropped ones; or p and N(i); or N(i).
  std::vector<index_t> all;
  for (index_t k = 0; k < rows; ++k)
    if (k != anchor && !std::binary_search(t.dropped.begin(), t.dropped.end(), k)) all.push_back(k);
  const T lse_all = detail::log_sum_exp_rows(t.s, all);
  const T lse_neg = detail::log_sum_exp_rows(t.s, t.negatives);
  for (index_t p : t.positives) {
    const T sp = t.s[static_cast<std::size_t>(p)];
    T log_d = lse_all;
    if (opt.denominator == Denominator::one_positive) {
      const T m = std::max(sp, lse_neg);  // log(exp(s_ip) + exp(lse_neg))
      log_d = m + std::log(std::exp(sp - m) + std::exp(lse_neg - m));
    } else if (opt.denominator == Denominator::only_negatives) {
      require(!t.negatives.empty(), "anchor row ", anchor,
              " has no negatives: the only-negatives denominator is empty");
      log_d = lse_neg;
    }
    t.log_d.push_back(log_d);
    t.log_q.push_back(sp - log_d);
  }
  return t;
}

/// Whether row k is in the denominator D_ip of positive p of `t`.
template <class T>
bool in_denominator(const AnchorTerms<T>& t, Denominator mode, index_t p, index_t k) {
  if (k == t.anchor || std::binary_search(t.dropped.begin(), t.dropped.end(), k)) return false;
  if (mode == Denominator::all) return true;
  if (std::binary_search(t.negatives.begin(), t.negatives.end(), k)) return true;
  return mode == Denominator::one_positive && k == p;
}

}  // namespace supcon
