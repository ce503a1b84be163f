#pragma once
/// \file gradient_structure.hpp
/// How each SupCon loss distributes its pull over an anchor's positives.
///
/// Write l_p = -log q_p for positive p (q_p = exp(s_ip) / D_ip). Then
///
///   L_out(i) = sum_p (1/|P|) l_p           L_in(i) = -log( (1/|P|) sum_p exp(-l_p) )
///
/// and differentiating both with respect to the similarity row s_i.:
///
///   dL_out(i)/ds_ik = sum_p (1/|P|)            * dl_p/ds_ik
///   dL_in(i)/ds_ik  = sum_p (q_p / sum_p' q_p') * dl_p/ds_ik
///   dl_p/ds_ik      = [k in D_ip] exp(s_ik) / D_ip - [k == p]
///
/// So both gradients are weighted sums of the same per-positive terms; only
/// the weights differ. L_out gives every positive the fixed normalisation
/// 1/|P(i)|, so a hard positive (low s_ip, small q_p) keeps its full share of
/// the pull. L_in lacks that normalisation: its weights are a softmax over the
/// positives' q_p, so easy positives dominate and hard ones are barely pulled.
/// The two weightings coincide exactly when all q_p are equal, the equality
/// case of the Jensen bound (jensen.hpp). This is the paper's argument (Sec.
/// 3.2.4 and supplementary) for preferring L_out. See docs/analysis.md.

#include <algorithm>
#include <cmath>
#include <exception>
#include <vector>

#include "supcon/analysis/anchor_terms.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon {

/// One anchor's gradient structure under both losses. The rows are derivatives
/// of the anchor's scaled loss (T/base_T) * L(i), the quantity in
/// LossResult::per_anchor, with respect to s_ik for every row k (N entries;
/// the anchor's own entry and the capped-out rows are 0).
template <class T>
struct GradientStructure {
  std::vector<index_t> positives;  ///< P(i), ascending
  std::vector<T> probability;      ///< q_p, order of `positives`
  std::vector<T> weight_out;       ///< 1/|P(i)| for every positive
  std::vector<T> weight_in;        ///< q_p / sum_p' q_p'
  std::vector<T> dl_out;           ///< d((T/base_T) L_out(i)) / ds_ik, k = 0..N-1
  std::vector<T> dl_in;            ///< d((T/base_T) L_in(i)) / ds_ik, k = 0..N-1
};

namespace detail {
// sum_p w_p dl_p/ds_ik for every k, scaled by `scale`; see the file comment.
template <class T>
std::vector<T> weighted_similarity_row(const AnchorTerms<T>& t, Denominator mode,
                                       const std::vector<T>& w, T scale) {
  std::vector<T> row(t.s.size(), T(0));
  for (std::size_t j = 0; j < t.positives.size(); ++j) {
    const index_t p = t.positives[j];
    for (std::size_t k = 0; k < row.size(); ++k)
      if (in_denominator(t, mode, p, static_cast<index_t>(k)))
        row[k] += w[j] * std::exp(t.s[k] - t.log_d[j]);  // exp(s_ik) / D_ip
    row[static_cast<std::size_t>(p)] -= w[j];
  }
  for (T& v : row) v *= scale;
  return row;
}
}  // namespace detail

/// The gradient structure of anchor row `anchor` (see anchor_terms for the
/// requirements). `opt.summation` is ignored: both losses are returned. An
/// anchor without positives has empty weights and zero rows.
template <class T>
GradientStructure<T> gradient_structure(const Tensor<T>& features, const Pairing& pairing,
                                        const SupConOptions& opt, index_t anchor) {
  const AnchorTerms<T> t = anchor_terms(features, pairing, opt, anchor);
  GradientStructure<T> g;
  g.positives = t.positives;
  const std::size_t np = t.positives.size();
  if (np > 0) {
    // q_p / sum q as a softmax of log q, with the maximum subtracted.
    T m = t.log_q[0];
    for (T v : t.log_q) m = std::max(m, v);
    T z = 0;
    for (T v : t.log_q) z += std::exp(v - m);
    for (std::size_t j = 0; j < np; ++j) {
      g.probability.push_back(std::exp(t.log_q[j]));
      g.weight_out.push_back(T(1) / static_cast<T>(np));
      g.weight_in.push_back(std::exp(t.log_q[j] - m) / z);
    }
  }
  const T scale = static_cast<T>(opt.temperature / opt.base_temperature);
  g.dl_out = detail::weighted_similarity_row(t, opt.denominator, g.weight_out, scale);
  g.dl_in = detail::weighted_similarity_row(t, opt.denominator, g.weight_in, scale);
  return g;
}

/// dL/ds for the whole batch under `opt` (its summation picks L_out or L_in):
/// an (A, N) matrix whose row i is d((T/base_T) L(i))/ds_i., A = anchor rows.
/// The batch loss is the mean of these rows' losses over the anchors (over the
/// anchors with positives for NoPositives::exclude).
template <class T>
Tensor<T> similarity_gradient(const Tensor<T>& features, const Pairing& pairing, const SupConOptions& opt) {
  // features is (N, D); the result is (A, N)
  validate(opt);
  const index_t batch = pairing.batch_size();
  require<ShapeError>(features.rank() == 2 && batch > 0 && features.dim(0) % batch == 0,
                      "similarity_gradient: features must be (V * B, D) with B = ", batch, ", got ",
                      shape_str(features.shape()));
  const index_t rows = features.dim(0), anchors = anchor_count(rows, batch, opt.contrast_mode);
  Tensor<T> g({anchors, rows});
  // An exception must not leave an OpenMP region: keep the first, rethrow after.
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic)
  for (index_t i = 0; i < anchors; ++i) {
    try {
      const GradientStructure<T> s = gradient_structure(features, pairing, opt, i);
      const std::vector<T>& row = opt.summation == Summation::outside ? s.dl_out : s.dl_in;
      std::copy(row.begin(), row.end(), g.data() + i * rows);
    } catch (...) {
#pragma omp critical(supcon_similarity_gradient)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  return g;
}

/// Chain rule from similarities to features: with s_ik = <f_i, f_k> / temperature
/// for the anchors i (the first A rows), returns dL/dF = (G_pad F + G^T F_A) / temperature,
/// where G is (A, N), G_pad is G placed in the first A rows of an (N, N)
/// matrix and F_A the first A rows of F. Assigned, not accumulated.
template <class T>
Tensor<T> features_gradient(const Tensor<T>& dsim, const Tensor<T>& features, double temperature) {
  // dsim is (A, N), features is (N, D); the result is (N, D)
  require<ShapeError>(dsim.rank() == 2 && features.rank() == 2 && dsim.dim(1) == features.dim(0) &&
                          dsim.dim(0) <= features.dim(0),
                      "features_gradient: dsim ", shape_str(dsim.shape()), " does not fit features ",
                      shape_str(features.shape()));
  const index_t a = dsim.dim(0);
  const auto f = features.matrix();
  const auto g = dsim.matrix();
  Tensor<T> df(features.shape());
  auto dfm = df.matrix();
  const T inv_t = static_cast<T>(1.0 / temperature);
  // forward: s_ik = f_i . f_k / t  =>  df_i += ds_ik f_k / t  and  df_k += ds_ik f_i / t
  dfm.topRows(a).noalias() = g * f;
  dfm.noalias() += g.transpose() * f.topRows(a);
  dfm *= inv_t;
  return df;
}

}  // namespace supcon
