#pragma once
/// \file jensen.hpp
/// The Jensen bound between the two SupCon losses of the paper (Khosla et al.,
/// 2020, Eqs. 2 and 3), as a measured property rather than a remark.
///
/// For an anchor i with positives P(i) and probabilities q_p = exp(s_ip) / D_ip,
///
///   L_out(i) = -(1/|P|) sum_p log q_p,   L_in(i) = -log( (1/|P|) sum_p q_p ).
///
/// log is concave, so log of a mean >= mean of the logs: L_in(i) <= L_out(i),
/// with equality exactly when every q_p of the anchor is the same, i.e. (for
/// every denominator mode) when all positives are equally similar to the
/// anchor. A single positive is the trivial case. The gap
///
///   gap(i) = L_out(i) - L_in(i) = log(mean_p q_p) - mean_p log q_p >= 0
///
/// is what L_out pays extra for spreading positives apart. docs/analysis.md
/// shows the numbers; docs/losses.md derives the losses.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "supcon/analysis/anchor_terms.hpp"
#include "supcon/analysis/random_batch.hpp"
#include "supcon/core/rng.hpp"
#include "supcon/losses/supcon_reference.hpp"

namespace supcon {

/// The Jensen gap of one anchor from the log-probabilities of its positives:
/// log(mean exp(log_q)) - mean(log_q). Unscaled (no temperature / base factor).
/// Zero for fewer than two positives.
template <class T>
T jensen_gap(const std::vector<T>& log_q) {
  if (log_q.size() < 2) return T(0);
  const T m = *std::max_element(log_q.begin(), log_q.end());
  T sum_q = 0, sum_log = 0;
  for (T v : log_q) {
    sum_q += std::exp(v - m);
    sum_log += v;
  }
  const T n = static_cast<T>(log_q.size());
  // log(mean q) - mean(log q), with the maximum taken out of the exponentials.
  return std::max(T(0), m + std::log(sum_q / n) - sum_log / n);
}

/// The equality condition of the bound: every positive of the anchor has the
/// same probability q_p, up to a relative tolerance `tol` (|log q_p - log q_p'| <= tol).
template <class T>
bool jensen_equality(const std::vector<T>& log_q, double tol = 1e-9) {
  if (log_q.empty()) return true;
  const auto [lo, hi] = std::minmax_element(log_q.begin(), log_q.end());
  return static_cast<double>(*hi - *lo) <= tol;
}

/// Both losses on one batch, anchor by anchor (values scaled by T/base_T like
/// LossResult::per_anchor; 0 for anchors without positives).
template <class T>
struct JensenBatch {
  std::vector<T> l_out, l_in, gap;  ///< per anchor row; gap = l_out - l_in
  std::vector<index_t> positives;   ///< |P(i)|
  T loss_out = 0, loss_in = 0;      ///< the batch losses
  index_t anchors = 0, anchors_with_positives = 0;

  /// Smallest gap over the anchors with positives (+inf when there are none).
  T min_gap() const {
    T m = std::numeric_limits<T>::infinity();
    for (std::size_t i = 0; i < gap.size(); ++i)
      if (positives[i] > 0) m = std::min(m, gap[i]);
    return m;
  }
};

/// Runs the reference loss twice on `features` (N, D), with the summation
/// outside and inside and every other option of `opt` unchanged.
template <class T>
JensenBatch<T> jensen_batch(const Tensor<T>& features, const Pairing& pairing, SupConOptions opt = {}) {
  opt.summation = Summation::outside;
  const LossResult<T> out = supcon_loss_reference(features, pairing, opt);
  opt.summation = Summation::inside;
  const LossResult<T> in = supcon_loss_reference(features, pairing, opt);
  JensenBatch<T> j;
  j.l_out = out.per_anchor;
  j.l_in = in.per_anchor;
  j.positives = out.positives;
  j.loss_out = out.value;
  j.loss_in = in.value;
  j.anchors = out.anchors;
  j.anchors_with_positives = out.anchors_with_positives;
  j.gap.resize(j.l_out.size());
  for (std::size_t i = 0; i < j.gap.size(); ++i) j.gap[i] = j.l_out[i] - j.l_in[i];
  return j;
}

/// How many random batches, of what shape, from which seed.
struct JensenStudy {
  index_t batches = 20;
  index_t batch = 32;   ///< B, samples per batch
  index_t views = 2;    ///< V
  index_t dim = 32;     ///< D
  index_t classes = 8;  ///< labels uniform in [0, classes)
  std::uint64_t seed = 0;
  double tol = 1e-9;    ///< a gap below tol counts as equality
};

/// What a study measured. Gaps are over anchors with positives.
struct JensenSummary {
  index_t batches = 0, anchors = 0;
  double min_gap = 0, max_gap = 0, mean_gap = 0;
  double fraction_equal = 0;  ///< fraction of anchors with gap < tol
  std::vector<double> batch_l_out, batch_l_in, batch_min_gap;  ///< one entry per batch
  std::vector<double> anchor_l_out, anchor_l_in;               ///< every anchor with positives
};

/// Draws `study.batches` random batches (random_batch with Rng(seed, k) for
/// batch k) and measures L_out and L_in on each with options `opt`.
template <class T>
JensenSummary jensen_study(const JensenStudy& study, const SupConOptions& opt = {}) {
  require(study.batches >= 1, "jensen_study: batches must be >= 1, got ", study.batches);
  require(study.tol >= 0, "jensen_study: tol must be >= 0, got ", study.tol);
  JensenSummary s;
  s.batches = study.batches;
  s.min_gap = std::numeric_limits<double>::infinity();
  s.max_gap = -std::numeric_limits<double>::infinity();
  double sum = 0;
  index_t equal = 0;
  for (index_t k = 0; k < study.batches; ++k) {
    Rng rng(study.seed, static_cast<std::uint64_t>(k));
    const RandomBatch<T> rb = random_batch<T>(rng, study.batch, study.views, study.dim, study.classes);
    const JensenBatch<T> j = jensen_batch(rb.features, Pairing::from_labels(rb.labels), opt);
    s.batch_l_out.push_back(static_cast<double>(j.loss_out));
    s.batch_l_in.push_back(static_cast<double>(j.loss_in));
    s.batch_min_gap.push_back(static_cast<double>(j.min_gap()));
    for (std::size_t i = 0; i < j.gap.size(); ++i) {
      if (j.positives[i] == 0) continue;
      const double g = static_cast<double>(j.gap[i]);
      s.min_gap = std::min(s.min_gap, g);
      s.max_gap = std::max(s.max_gap, g);
      sum += g;
      equal += g < study.tol;
      s.anchor_l_out.push_back(static_cast<double>(j.l_out[i]));
      s.anchor_l_in.push_back(static_cast<double>(j.l_in[i]));
      ++s.anchors;
    }
  }
  if (s.anchors > 0) {
    s.mean_gap = sum / static_cast<double>(s.anchors);
    s.fraction_equal = static_cast<double>(equal) / static_cast<double>(s.anchors);
  }
  return s;
}

}  // namespace supcon
