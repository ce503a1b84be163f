// t-SNE: the affinities and the KL cost against PyTorch, the gradient
// against central differences, and the map of separated clusters.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <supcon/core/npy.hpp>
#include <supcon/core/rng.hpp>
#include <supcon/testing/gradcheck.hpp>
#include <supcon/train/tsne.hpp>

using namespace supcon;

namespace {
Tensor<double> fixture(const std::string& name) {
  return load_npy<double>(std::string(SUPCON_TEST_DATA_DIR) + "/tsne/" + name + ".npy");
}

// n points per class in R^d around 4 * e_c, noise of standard deviation `sd`.
Tensor<double> blobs(index_t classes, index_t n, index_t d, std::uint64_t seed, double sd = 1) {
  Rng rng(seed);
  Tensor<double> x({classes * n, d});
  for (index_t r = 0; r < classes * n; ++r)
    for (index_t j = 0; j < d; ++j) x(r, j) = sd * rng.normal() + (j == r / n ? 4.0 : 0.0);
  return x;
}

double max_abs_diff(const Tensor<double>& a, const Tensor<double>& b) {
  double m = 0;
  for (index_t k = 0; k < a.size(); ++k) m = std::max(m, std::abs(a[k] - b[k]));
  return m;
}
}  // namespace

TEST_CASE("t-SNE affinities equal PyTorch's and each row has the requested perplexity") {
  const Tensor<double> x = fixture("x");
  const Tensor<double> p = tsne_affinities(x, 4.0);
  CHECK(max_abs_diff(p, fixture("p")) < 1e-6);
  double total = 0;
  for (index_t k = 0; k < p.size(); ++k) total += p[k];
  CHECK(total == Approx(1.0).epsilon(1e-12));
  for (index_t i = 0; i < p.dim(0); ++i) {
    CHECK(p(i, i) == 0);
    for (index_t j = 0; j < i; ++j) CHECK(p(i, j) == p(j, i));
  }
}

TEST_CASE("the t-SNE cost and gradient equal PyTorch's KL divergence and its autograd") {
  const Tensor<double> p = fixture("p");
  Tensor<double> dy;
  const double cost = tsne_cost_and_gradient(p, fixture("y"), dy);
  CHECK(cost == Approx(fixture("cost")[0]).epsilon(1e-9));
  CHECK(max_abs_diff(dy, fixture("grad")) < 1e-9);
}

TEST_CASE("the t-SNE gradient matches central differences of the cost") {
  const Tensor<double> p = tsne_affinities(blobs(3, 5, 4, 1), 3.0);
  Rng rng(2);
  Tensor<double> y({15, 2});
  for (index_t k = 0; k < y.size(); ++k) y[k] = rng.normal();
  Tensor<double> dy;
  tsne_cost_and_gradient(p, y, dy);
  auto cost = [&](const Tensor<double>& at) {
    Tensor<double> unused;
    return tsne_cost_and_gradient(p, at, unused);
  };
  CHECK(testing::gradient_error<double>(cost, y, dy, 1e-5) < 1e-6);
}

TEST_CASE("t-SNE keeps well-separated clusters apart in the plane") {
  const index_t classes = 4, n = 25;
  // Clusters 5.7 apart with points about 1.4 from their centre: every point's
  // nearest neighbour in R^8 is of its own class, and must stay so in the map.
  const Tensor<double> y = tsne(blobs(classes, n, 8, 3, 0.5), TsneOptions{10, 500, 100, 12, 0});
  for (index_t i = 0; i < classes * n; ++i) {
    index_t best = -1;
    double bd = 1e300;
    for (index_t j = 0; j < classes * n; ++j) {
      if (j == i) continue;
      const double d = std::hypot(y(i, 0) - y(j, 0), y(i, 1) - y(j, 1));
      if (d < bd) bd = d, best = j;
    }
    CHECK(best / n == i / n);
  }
}

TEST_CASE("t-SNE is a deterministic function of its input") {
  const Tensor<double> x = blobs(2, 10, 3, 4);
  const TsneOptions opt{5, 100, 50, 12, 0};
  CHECK(max_abs_diff(tsne(x, opt), tsne(x, opt)) == 0);
}

TEST_CASE("t-SNE refuses a perplexity too large for the points, too few points and NaN") {
  const Tensor<double> x = blobs(2, 5, 3, 5);
  CHECK_THROWS_WITH(tsne_affinities(x, 30.0), Catch::Contains("--perplexity must be in (0, (N - 1) / 3 = 3]"));
  CHECK_THROWS_WITH(tsne_affinities(x, 0.0), Catch::Contains("--perplexity"));
  CHECK_THROWS_AS(tsne_affinities(Tensor<double>({3, 2}), 0.5), ShapeError);
  Tensor<double> bad = x;
  bad(1, 1) = std::nan("");
  CHECK_THROWS_WITH(tsne_affinities(bad, 2.0), Catch::Contains("tsne: features"));
}
