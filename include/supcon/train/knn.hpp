#pragma once
/// \file knn.hpp
/// Weighted k-nearest-neighbour classification on L2-normalised features, the
/// label-free probe of contrastive encoders (Wu et al., "Unsupervised Feature
/// Learning via Non-Parametric Instance Discrimination", CVPR 2018):
///
///     s_j   = <q / ||q||, b_j / ||b_j||>          cosine similarity to bank row j
///     vote_c = sum over the k most similar rows j with label c of exp(s_j / tau)
///     prediction = argmax_c vote_c                 (lowest class on a tie)
///
/// The defaults k = 200, tau = 0.1 are those of the reference figures.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include <Eigen/Core>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon {

/// Options of knn_predict.
struct KnnOptions {
  index_t k = 200;      ///< neighbours (>= 1; capped at the bank size)
  double tau = 0.1;     ///< temperature of the vote weights (> 0)
  index_t chunk = 256;  ///< query rows per similarity block (memory: chunk x bank)
};

/// Rows of `x` (N, D) divided by their L2 norm (a zero row stays zero).
template <class T>
Tensor<T> l2_normalized_rows(const Tensor<T>& x) {
  require<ShapeError>(x.rank() == 2, "l2_normalized_rows: expected (N, D), got ", shape_str(x.shape()));
  Tensor<T> y = x;
  const index_t N = x.dim(0), D = x.dim(1);
  for (index_t n = 0; n < N; ++n) {
    T* r = y.data() + n * D;
    double ss = 0;
    for (index_t d = 0; d < D; ++d) ss += static_cast<double>(r[d]) * r[d];
    const T inv = ss > 0 ? static_cast<T>(1.0 / std::sqrt(ss)) : T(0);
    for (index_t d = 0; d < D; ++d) r[d] *= inv;
  }
  return y;
}

/// Predicted class of each query row. bank is (M, D) with labels (M) in
/// [0, classes); queries is (N, D). Neither needs to be normalised.
/// Requires M >= 1, matching D, finite values (ShapeError / ValueError).
template <class T>
std::vector<std::int64_t> knn_predict(const Tensor<T>& bank, const std::vector<std::int64_t>& labels,
                                      const Tensor<T>& queries, index_t classes,
                                      const KnnOptions& opt = {}) {
  require<ShapeError>(bank.rank() == 2 && queries.rank() == 2 && bank.dim(1) == queries.dim(1),
                      "knn: bank (M, D) and queries (N, D) must share D, got ",
                      shape_str(bank.shape()), " and ", shape_str(queries.shape()));
  require<ShapeError>(bank.dim(0) >= 1, "knn: the bank is empty");
  require<ShapeError>(static_cast<index_t>(labels.size()) == bank.dim(0), "knn: ", labels.size(),
                      " labels for a bank of ", bank.dim(0), " rows");
  require(opt.k >= 1, "knn: k must be >= 1, got ", opt.k);
  require(opt.tau > 0 && std::isfinite(opt.tau), "knn: tau must be positive, got ", opt.tau);
  require(classes >= 1, "knn: classes must be >= 1, got ", classes);
  for (std::int64_t l : labels) require(l >= 0 && l < classes, "knn: bank label ", l, " outside [0, ", classes, ")");
  check_finite(bank, "knn: bank");
  check_finite(queries, "knn: queries");
  const Tensor<T> b = l2_normalized_rows(bank), q = l2_normalized_rows(queries);
  const index_t M = b.dim(0), N = q.dim(0);
  const index_t k = std::min(opt.k, M), chunk = std::max<index_t>(1, opt.chunk);
  std::vector<std::int64_t> pred(static_cast<std::size_t>(N));
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  for (index_t r0 = 0; r0 < N; r0 += chunk) {
    const index_t rows = std::min(chunk, N - r0);
    // sims is (rows, M): the cosine similarity of each query in the block to each bank row
    const Mat sims = q.matrix().middleRows(r0, rows) * b.matrix().transpose();
#pragma omp parallel for schedule(static)
    for (index_t i = 0; i < rows; ++i) {
      std::vector<index_t> idx(static_cast<std::size_t>(M));
      std::iota(idx.begin(), idx.end(), index_t(0));
      const T* s = sims.data() + i * M;
      // The k largest similarities; ties broken by the lower bank index.
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [s](index_t a, index_t c) {
        return s[a] > s[c] || (s[a] == s[c] && a < c);
      });
      std::vector<double> vote(static_cast<std::size_t>(classes), 0.0);
      for (index_t j = 0; j < k; ++j) {
        const index_t m = idx[static_cast<std::size_t>(j)];
        vote[static_cast<std::size_t>(labels[static_cast<std::size_t>(m)])] +=
            std::exp((static_cast<double>(s[m]) - 1.0) / opt.tau);  // exp(s/tau) / exp(1/tau): same argmax, no overflow
      }
      pred[static_cast<std::size_t>(r0 + i)] =
          std::max_element(vote.begin(), vote.end()) - vote.begin();
    }
  }
  return pred;
}

}  // namespace supcon
