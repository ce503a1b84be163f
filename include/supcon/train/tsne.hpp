#pragma once
/// \file tsne.hpp
/// t-SNE (van der Maaten and Hinton, JMLR 2008): a 2-D map of features in
/// which neighbours stay neighbours, the picture that shows whether a
/// contrastive encoder separates the classes. Exact O(N^2) version, meant for
/// a few thousand points.
///
/// Affinities in feature space, for x (N, D):
///     p_{j|i} = exp(-beta_i |x_i - x_j|^2) / sum_{k != i} exp(-beta_i |x_i - x_k|^2)
/// with beta_i found by bisection so that the entropy of row i is
/// log(perplexity) (a smooth count of effective neighbours), then
///     p_ij = (p_{j|i} + p_{i|j}) / (2N)          (symmetric, sums to 1)
/// Affinities in the map, for y (N, 2), Student-t with one degree of freedom:
///     w_ij = 1 / (1 + |y_i - y_j|^2),   q_ij = w_ij / sum_{k != l} w_kl
/// The map minimises C = KL(P || Q) = sum_{i != j} p_ij log(p_ij / q_ij), whose gradient is
///     dC/dy_i = 4 sum_j (p_ij - q_ij) w_ij (y_i - y_j)
/// by gradient descent with momentum and per-coordinate gains, P multiplied by
/// an "early exaggeration" factor for the first iterations so that clusters
/// form before they settle. The start is the PCA projection scaled to a
/// standard deviation of 1e-4, which makes the result a deterministic function
/// of the input (no random start).

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/train/embedding.hpp"

namespace supcon {

/// Options of tsne(); the defaults are the usual ones.
struct TsneOptions {
  double perplexity = 30;         ///< effective neighbours; needs 3 * perplexity < N
  index_t iterations = 1000;      ///< gradient steps
  index_t exaggeration_iters = 250;
  double exaggeration = 12;
  double learning_rate = 0;       ///< 0 = max(N / exaggeration / 4, 50)
};

namespace detail::tsne {

// Threads only pay on large maps; on small ones each loop's barrier costs more
// than the loop (and a busy machine makes that many times worse).

/// Squared distances (N, N) between the rows of x (N, D), in double.
inline Tensor<double> squared_distances(const Tensor<double>& x) {
  const index_t N = x.dim(0), D = x.dim(1);
  Tensor<double> d2({N, N});
#pragma omp parallel for schedule(static) if (N >= 256)
  for (index_t i = 0; i < N; ++i)
    for (index_t j = 0; j < N; ++j) {
      double s = 0;
      for (index_t k = 0; k < D; ++k) {
        const double t = x(i, k) - x(j, k);
        s += t * t;
      }
      d2(i, j) = s;
    }
  return d2;
}

/// Row i of the conditional affinities p_{.|i} (written into p, p(i, i) = 0)
/// for precision beta; returns the row's entropy in nats.
inline double conditional_row(const Tensor<double>& d2, index_t i, double beta, Tensor<double>& p) {
  const index_t N = d2.dim(0);
  // Subtract the nearest distance before exp so that a large beta cannot
  // underflow every entry to 0; the ratio is unchanged.
  double dmin = std::numeric_limits<double>::infinity();
  for (index_t j = 0; j < N; ++j)
    if (j != i) dmin = std::min(dmin, d2(i, j));
  double sum = 0, weighted = 0;
  for (index_t j = 0; j < N; ++j) {
    const double e = j == i ? 0.0 : std::exp(-beta * (d2(i, j) - dmin));
    p(i, j) = e;
    sum += e;
    weighted += e * (d2(i, j) - dmin);
  }
  for (index_t j = 0; j < N; ++j) p(i, j) /= sum;
  // H = -sum p log p = log(sum) + beta * E_p[d - dmin]
  return std::log(sum) + beta * weighted / sum;
}

}  // namespace detail::tsne

/// The symmetric affinities P (N, N) of x (N, D) for `perplexity`: each row's
/// conditional distribution has entropy log(perplexity) to 1e-5 (bisection on
/// beta), then P = (P_cond + P_cond^T) / (2N). Throws ValueError when
/// perplexity is not in (0, (N - 1) / 3].
template <class T>
Tensor<double> tsne_affinities(const Tensor<T>& x, double perplexity) {
  require<ShapeError>(x.rank() == 2 && x.dim(0) >= 4, "tsne: expected features (N, D) with N >= 4, got ",
                      shape_str(x.shape()));
  const index_t N = x.dim(0);
  require(std::isfinite(perplexity) && perplexity > 0 && 3 * perplexity <= static_cast<double>(N - 1),
          "tsne: --perplexity must be in (0, (N - 1) / 3 = ", static_cast<double>(N - 1) / 3, "], got ",
          perplexity);
  check_finite(x, "tsne: features");
  Tensor<double> xd({N, x.dim(1)});
  for (index_t k = 0; k < x.size(); ++k) xd[k] = static_cast<double>(x[k]);
  const Tensor<double> d2 = detail::tsne::squared_distances(xd);
  const double target = std::log(perplexity);
  Tensor<double> pc({N, N});
#pragma omp parallel for schedule(dynamic, 16) if (N >= 256)
  for (index_t i = 0; i < N; ++i) {
    // Entropy falls as beta grows: bisect, doubling the bracket until it holds.
    double lo = 0, hi = std::numeric_limits<double>::infinity(), beta = 1;
    for (int it = 0; it < 200; ++it) {
      const double h = detail::tsne::conditional_row(d2, i, beta, pc);
      if (std::abs(h - target) < 1e-5) break;
      if (h > target) {
        lo = beta;
        beta = std::isinf(hi) ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = (lo + beta) / 2;
      }
    }
  }
  Tensor<double> p({N, N});
  for (index_t i = 0; i < N; ++i)
    for (index_t j = 0; j < N; ++j) p(i, j) = (pc(i, j) + pc(j, i)) / (2.0 * static_cast<double>(N));
  return p;
}

/// The cost KL(P || Q) of the map y (N, 2) and its gradient dy (N, 2),
/// assigned; P from tsne_affinities (scaled by the exaggeration if any).
inline double tsne_cost_and_gradient(const Tensor<double>& p, const Tensor<double>& y, Tensor<double>& dy) {
  const index_t N = y.dim(0);
  require<ShapeError>(y.rank() == 2 && y.dim(1) == 2 && p.rank() == 2 && p.dim(0) == N && p.dim(1) == N,
                      "tsne: P must be (N, N) and y (N, 2), got ", shape_str(p.shape()), " and ",
                      shape_str(y.shape()));
  Tensor<double> w({N, N});
  double wsum = 0;
#pragma omp parallel for schedule(static) reduction(+ : wsum) if (N >= 256)
  for (index_t i = 0; i < N; ++i)
    for (index_t j = 0; j < N; ++j) {
      const double a = y(i, 0) - y(j, 0), b = y(i, 1) - y(j, 1);
      w(i, j) = i == j ? 0.0 : 1.0 / (1.0 + a * a + b * b);
      wsum += w(i, j);
    }
  dy = Tensor<double>({N, 2});
  double cost = 0;
#pragma omp parallel for schedule(static) reduction(+ : cost) if (N >= 256)
  for (index_t i = 0; i < N; ++i) {
    double g0 = 0, g1 = 0;
    for (index_t j = 0; j < N; ++j) {
      if (j == i) continue;
      const double q = w(i, j) / wsum;
      if (p(i, j) > 0) cost += p(i, j) * std::log(p(i, j) / q);
      // dC/dy_i = 4 sum_j (p_ij - q_ij) w_ij (y_i - y_j)
      const double f = 4 * (p(i, j) - q) * w(i, j);
      g0 += f * (y(i, 0) - y(j, 0));
      g1 += f * (y(i, 1) - y(j, 1));
    }
    dy(i, 0) = g0;
    dy(i, 1) = g1;
  }
  return cost;
}

/// The t-SNE map (N, 2) of x (N, D). Deterministic: the same input gives the
/// same map. Throws ShapeError / ValueError on bad shapes, non-finite values
/// or options out of range (each names the option).
template <class T>
Tensor<double> tsne(const Tensor<T>& x, const TsneOptions& opt = {}) {
  require(opt.iterations >= 1, "tsne: --tsne-iterations must be >= 1, got ", opt.iterations);
  require(opt.exaggeration_iters >= 0 && opt.exaggeration >= 1, "tsne: the exaggeration must be >= 1 over >= 0 iterations");
  require(opt.learning_rate >= 0 && std::isfinite(opt.learning_rate), "tsne: the learning rate must be >= 0, got ",
          opt.learning_rate);
  Tensor<double> p = tsne_affinities(x, opt.perplexity);
  const index_t N = x.dim(0);
  const double lr = opt.learning_rate > 0 ? opt.learning_rate
                                          : std::max(static_cast<double>(N) / opt.exaggeration / 4, 50.0);
  // Start: the PCA projection with its first component scaled to sd 1e-4.
  Tensor<double> y = pca(x, 2).projected;
  double var = 0;
  for (index_t i = 0; i < N; ++i) var += y(i, 0) * y(i, 0);
  const double sd = std::sqrt(var / static_cast<double>(N - 1));
  for (index_t k = 0; k < y.size(); ++k) y[k] *= sd > 0 ? 1e-4 / sd : 0.0;
  for (index_t k = 0; k < p.size(); ++k) p[k] *= opt.exaggeration;
  Tensor<double> dy, velocity({N, 2}), gains({N, 2});
  gains.fill(1.0);
  for (index_t it = 0; it < opt.iterations; ++it) {
    if (it == opt.exaggeration_iters)
      for (index_t k = 0; k < p.size(); ++k) p[k] /= opt.exaggeration;
    tsne_cost_and_gradient(p, y, dy);
    const double momentum = it < opt.exaggeration_iters ? 0.5 : 0.8;
    for (index_t k = 0; k < y.size(); ++k) {
      // Delta-bar-delta: grow a coordinate's step while it keeps moving
      // downhill (velocity against the gradient), shrink it when the gradient
      // turns against the motion.
      const bool same = (dy[k] > 0) == (velocity[k] > 0);
      gains[k] = std::max(same ? gains[k] * 0.8 : gains[k] + 0.2, 0.01);
      velocity[k] = momentum * velocity[k] - lr * gains[k] * dy[k];
      y[k] += velocity[k];
    }
    // The cost does not change when the map moves: keep it centred.
    for (index_t c = 0; c < 2; ++c) {
      double m = 0;
      for (index_t i = 0; i < N; ++i) m += y(i, c);
      m /= static_cast<double>(N);
      for (index_t i = 0; i < N; ++i) y(i, c) -= m;
    }
  }
  check_finite(y, "tsne: map (the optimisation diverged)");
  return y;
}

}  // namespace supcon
