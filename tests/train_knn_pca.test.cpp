// Weighted kNN on separable features and PCA on points with known axes.
#include <catch2/catch.hpp>
#include <cmath>
#include <supcon/core/rng.hpp>
#include <supcon/train/embedding.hpp>
#include <supcon/train/knn.hpp>

using namespace supcon;

namespace {
// n points per class around the unit vector e_c of R^d, with small noise.
Tensor<float> clusters(index_t classes, index_t n, index_t d, double noise, std::uint64_t seed,
                       std::vector<std::int64_t>& labels) {
  Rng rng(seed);
  Tensor<float> x({classes * n, d});
  labels.clear();
  for (index_t c = 0; c < classes; ++c)
    for (index_t i = 0; i < n; ++i) {
      const index_t r = c * n + i;
      for (index_t j = 0; j < d; ++j) x(r, j) = static_cast<float>(noise * rng.normal() + (j == c ? 1.0 : 0.0));
      labels.push_back(c);
    }
  return x;
}
}  // namespace

TEST_CASE("kNN classifies well-separated clusters perfectly") {
  std::vector<std::int64_t> yb, yq;
  const Tensor<float> bank = clusters(4, 30, 6, 0.1, 1, yb);
  const Tensor<float> queries = clusters(4, 10, 6, 0.1, 2, yq);
  CHECK(knn_predict(bank, yb, queries, 4, {20, 0.1, 7}) == yq);
}

TEST_CASE("kNN ignores the feature scale because it compares directions") {
  std::vector<std::int64_t> yb, yq;
  Tensor<float> bank = clusters(3, 20, 5, 0.1, 3, yb);
  const Tensor<float> queries = clusters(3, 5, 5, 0.1, 4, yq);
  const auto before = knn_predict(bank, yb, queries, 3);
  for (index_t r = 0; r < bank.dim(0); ++r)
    for (index_t j = 0; j < 5; ++j) bank(r, j) *= static_cast<float>(1 + r);
  CHECK(knn_predict(bank, yb, queries, 3) == before);
}

TEST_CASE("kNN weighs closer neighbours more: one near neighbour outvotes two far ones") {
  // Query along e0. Bank: one row of class 1 at e0 (similarity 1) and two of
  // class 0 at 60 degrees (similarity 0.5). Weights e^(1/0.1) >> 2 e^(0.5/0.1).
  const Tensor<double> bank({3, 2}, {1, 0, 0.5, std::sqrt(0.75), 0.5, -std::sqrt(0.75)});
  const Tensor<double> q({1, 2}, {1, 0});
  CHECK(knn_predict(bank, {1, 0, 0}, q, 2, {3, 0.1, 256})[0] == 1);
  // With a very high temperature the weights are nearly equal and the majority wins.
  CHECK(knn_predict(bank, {1, 0, 0}, q, 2, {3, 100.0, 256})[0] == 0);
}

TEST_CASE("kNN refuses mismatched dimensions, bad labels and bad options") {
  const Tensor<float> bank({2, 3}), q({1, 2});
  CHECK_THROWS_AS(knn_predict(bank, {0, 1}, q, 2), ShapeError);
  const Tensor<float> q3({1, 3});
  CHECK_THROWS_WITH(knn_predict(bank, {0, 2}, q3, 2), Catch::Contains("bank label 2"));
  CHECK_THROWS_WITH(knn_predict(bank, {0, 1}, q3, 2, {0, 0.1, 256}), Catch::Contains("k must be >= 1"));
}

TEST_CASE("PCA finds the axes of an elongated cloud, largest variance first") {
  // Points spread 3x more along (1, 1)/sqrt2 than along (1, -1)/sqrt2, shifted by (5, -2).
  Rng rng(7);
  const index_t n = 2000;
  Tensor<double> x({n, 2});
  for (index_t i = 0; i < n; ++i) {
    const double a = 3 * rng.normal(), b = rng.normal();
    x(i, 0) = 5 + (a + b) / std::sqrt(2.0);
    x(i, 1) = -2 + (a - b) / std::sqrt(2.0);
  }
  const Pca p = pca(x, 2);
  CHECK(std::abs(p.axes(0, 0)) == Approx(1 / std::sqrt(2.0)).margin(0.02));
  CHECK(p.axes(0, 0) * p.axes(0, 1) > 0);  // along (1, 1)
  CHECK(p.axes(1, 0) * p.axes(1, 1) < 0);  // along (1, -1)
  CHECK(p.variances[0] == Approx(9).epsilon(0.1));
  CHECK(p.variances[1] == Approx(1).epsilon(0.1));
  CHECK(p.mean[0] == Approx(5).margin(0.2));
  // The projection is centred and its variance along axis 0 is the top eigenvalue.
  double s = 0, ss = 0;
  for (index_t i = 0; i < n; ++i) s += p.projected(i, 0), ss += p.projected(i, 0) * p.projected(i, 0);
  CHECK(s / n == Approx(0).margin(1e-9));
  CHECK(ss / (n - 1) == Approx(p.variances[0]).epsilon(1e-9));
}

TEST_CASE("PCA fixes each axis' sign so its largest entry is positive") {
  const Tensor<double> x({4, 2}, {0, 0, -2, 0.1, 2, -0.1, 4, 0});
  const Pca p = pca(x, 1);
  CHECK(p.axes(0, 0) > 0);
}

TEST_CASE("PCA refuses too few rows and too many components") {
  CHECK_THROWS_AS(pca(Tensor<double>({1, 3}), 2), ShapeError);
  CHECK_THROWS_WITH(pca(Tensor<double>({5, 3}), 4), Catch::Contains("k must be in [1, D = 3]"));
}

TEST_CASE("the embedding plot draws one coloured series per class") {
  const Tensor<double> pts({4, 2}, {0, 0, 1, 1, 2, 0, 3, 1});
  const std::string svg = embedding_plot(pts, {0, 1, 1, 2}, "t", {"a", "b", "c"}).render();
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(svg.find(">b</text>") != std::string::npos);
  std::size_t circles = 0;
  for (std::size_t at = svg.find("<circle"); at != std::string::npos; at = svg.find("<circle", at + 1)) ++circles;
  CHECK(circles == 4 + 3);  // four points and three legend marks
}
