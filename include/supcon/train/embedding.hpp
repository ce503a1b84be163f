#pragma once
/// \file embedding.hpp
/// Low-dimensional pictures of learned features: principal component analysis
/// and the scatter plot of `supcon embed`.
///
/// PCA of X (N, D): centre the rows, x_c = x - mean; form the covariance
/// S = X_c^T X_c / (N - 1) (D, D); its eigenvectors with the largest
/// eigenvalues are the principal axes. The projection is Y = X_c V (N, k).
/// An eigenvector's sign is arbitrary; we fix it so that its entry of largest
/// magnitude is positive, which makes the picture reproducible.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "supcon/core/error.hpp"
#include "supcon/core/svg.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon {

/// Result of pca().
struct Pca {
  Tensor<double> projected;       ///< (N, k): the centred rows in the principal axes
  Tensor<double> axes;            ///< (k, D): unit principal axes, by decreasing variance
  std::vector<double> variances;  ///< (k): variance along each axis (eigenvalues of S)
  std::vector<double> mean;       ///< (D): the mean row removed before projecting
};

/// The first k principal components of x (N, D). Requires N >= 2,
/// 1 <= k <= D and finite values (ShapeError / ValueError).
template <class T>
Pca pca(const Tensor<T>& x, index_t k = 2) {
  require<ShapeError>(x.rank() == 2 && x.dim(0) >= 2, "pca: expected (N, D) with N >= 2, got ",
                      shape_str(x.shape()));
  const index_t N = x.dim(0), D = x.dim(1);
  require(k >= 1 && k <= D, "pca: k must be in [1, D = ", D, "], got ", k);
  check_finite(x, "pca: input");
  using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Mat xc = x.matrix().template cast<double>();
  const Eigen::RowVectorXd mean = xc.colwise().mean();
  xc.rowwise() -= mean;
  const Eigen::MatrixXd cov = (xc.transpose() * xc) / static_cast<double>(N - 1);
  // Eigenvalues come in increasing order: the last k columns are the axes.
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(cov);
  require(eig.info() == Eigen::Success, "pca: the eigen-decomposition did not converge");
  Pca out;
  out.axes = Tensor<double>({k, D});
  out.projected = Tensor<double>({N, k});
  out.mean.assign(mean.data(), mean.data() + D);
  for (index_t j = 0; j < k; ++j) {
    Eigen::VectorXd v = eig.eigenvectors().col(D - 1 - j);
    index_t big = 0;
    for (index_t d = 1; d < D; ++d)
      if (std::abs(v(d)) > std::abs(v(big))) big = d;
    if (v(big) < 0) v = -v;
    for (index_t d = 0; d < D; ++d) out.axes(j, d) = v(d);
    out.variances.push_back(std::max(0.0, eig.eigenvalues()(D - 1 - j)));
    const Eigen::VectorXd p = xc * v;
    for (index_t n = 0; n < N; ++n) out.projected(n, j) = p(n);
  }
  return out;
}

/// A scatter plot of 2-D points (N, 2) coloured by label, one legend entry per
/// class (`class_names[c]` when given, else "class c").
inline SvgPlot embedding_plot(const Tensor<double>& points, const std::vector<std::int64_t>& labels,
                              const std::string& title,
                              const std::vector<std::string>& class_names = {}) {
  require<ShapeError>(points.rank() == 2 && points.dim(1) == 2, "embedding_plot: points must be (N, 2), got ",
                      shape_str(points.shape()));
  require<ShapeError>(static_cast<index_t>(labels.size()) == points.dim(0), "embedding_plot: ",
                      labels.size(), " labels for ", points.dim(0), " points");
  static const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  std::int64_t classes = 0;
  for (std::int64_t l : labels) {
    require(l >= 0, "embedding_plot: negative label ", l);
    classes = std::max(classes, l + 1);
  }
  SvgPlot plot(title, "component 1", "component 2", 720, 620);
  for (std::int64_t c = 0; c < classes; ++c) {
    std::vector<double> xs, ys;
    for (std::size_t n = 0; n < labels.size(); ++n)
      if (labels[n] == c) {
        xs.push_back(points(static_cast<index_t>(n), 0));
        ys.push_back(points(static_cast<index_t>(n), 1));
      }
    if (xs.empty()) continue;
    const std::string name = static_cast<std::size_t>(c) < class_names.size()
                                 ? class_names[static_cast<std::size_t>(c)]
                                 : "class " + std::to_string(c);
    plot.scatter(name, std::move(xs), std::move(ys), palette[c % 10]);
  }
  return plot;
}

}  // namespace supcon
