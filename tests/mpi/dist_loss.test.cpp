// The global-batch losses over K MPI ranks against the single-process loss of
// the concatenated batch. Run as `mpirun -np K test_dist_loss` (K = 2, 3).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <supcon/core/rng.hpp>
#include <supcon/dist/global_loss.hpp>

#include "dist_world.hpp"

using namespace supcon;

namespace {

// The same global batch on every rank: V * K * B unit rows, view-major.
Tensor<float> global_features(index_t rows, index_t d, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<float> f({rows, d});
  for (index_t i = 0; i < rows; ++i) {
    double norm = 0;
    for (index_t j = 0; j < d; ++j) norm += std::pow(f(i, j) = static_cast<float>(rng.normal()), 2);
    for (index_t j = 0; j < d; ++j) f(i, j) = static_cast<float>(f(i, j) / std::sqrt(norm));
  }
  return f;
}

// Labels of the K * B global samples: four classes, and every third sample
// in a class of its own (an anchor without positives when V = 1).
std::vector<std::int64_t> global_labels(index_t n) {
  std::vector<std::int64_t> l(static_cast<std::size_t>(n));
  for (index_t q = 0; q < n; ++q) l[static_cast<std::size_t>(q)] = q % 3 == 2 ? 100 + q : q % 4;
  return l;
}

// Rank r's part of a global (V*K*B, D) tensor: rows v*K*B + r*B .. + B of every view v.
Tensor<float> local_rows(const Tensor<float>& g, index_t V, index_t K, index_t B, index_t r) {
  const index_t D = g.dim(1);
  Tensor<float> out({V * B, D});
  for (index_t v = 0; v < V; ++v)
    std::copy(g.data() + (v * K * B + r * B) * D, g.data() + (v * K * B + r * B + B) * D,
              out.data() + v * B * D);
  return out;
}

// max |a - b| over max |b|: the error relative to the gradient's scale.
double scaled_error(const Tensor<float>& a, const Tensor<float>& b) {
  double diff = 0, scale = 0;
  for (index_t k = 0; k < a.size(); ++k) {
    diff = std::max(diff, std::abs(static_cast<double>(a[k]) - b[k]));
    scale = std::max(scale, std::abs(static_cast<double>(b[k])));
  }
  return diff / scale;
}

}  // namespace

TEST_CASE("The distributed SupCon loss and gradient equal the single-process ones on the concatenated batch") {
  dist::Communicator& comm = dist_test::world();
  const index_t K = comm.size(), r = comm.rank(), B = 5, D = 8;
  for (index_t V : {1, 2})
    for (ContrastMode cm : {ContrastMode::all, ContrastMode::one})
      for (Summation su : {Summation::outside, Summation::inside})
        for (Denominator de : {Denominator::all, Denominator::one_positive, Denominator::only_negatives})
          for (NoPositives np : {NoPositives::count_zero, NoPositives::exclude})
            for (dist::LossImpl impl : {dist::LossImpl::fused, dist::LossImpl::reference}) {
              SupConOptions opt;
              opt.temperature = 0.1;
              opt.base_temperature = 0.07;
              opt.contrast_mode = cm, opt.summation = su, opt.denominator = de, opt.no_positives = np;
              const Tensor<float> fg = global_features(V * K * B, D, 17 + static_cast<std::uint64_t>(V));
              const std::vector<std::int64_t> lg = global_labels(K * B);
              const LossResult<float> single = supcon_loss_reference(fg, Pairing::from_labels(lg), opt);
              const std::vector<std::int64_t> mine(lg.begin() + r * B, lg.begin() + (r + 1) * B);
              const LossResult<float> d =
                  dist::supcon_loss_global(comm, local_rows(fg, V, K, B, r), mine, opt, impl);
              INFO("K=" << K << " rank " << r << " V=" << V << " mode " << int(cm) << " sum " << int(su)
                        << " den " << int(de) << " nopos " << int(np) << " impl " << int(impl));
              CHECK(std::abs(d.value - single.value) <= 1e-6 * std::abs(single.value));
              CHECK(scaled_error(d.grad, local_rows(single.grad, V, K, B, r)) <= 1e-6);
              // every anchor is some rank's: the counts add up to the global ones
              CHECK(comm.sum<std::int64_t>(d.anchors) == single.anchors);
              CHECK(comm.sum<std::int64_t>(d.anchors_with_positives) == single.anchors_with_positives);
            }
}

TEST_CASE("The distributed SimCLR loss treats every sample of every rank as its own class") {
  dist::Communicator& comm = dist_test::world();
  const index_t K = comm.size(), r = comm.rank(), B = 6, D = 16;
  const Tensor<float> fg = global_features(2 * K * B, D, 5);
  SupConOptions opt;
  opt.temperature = 0.5;
  const LossResult<float> single = supcon_loss_reference(fg, Pairing::identity(K * B), opt);
  const LossResult<float> d = dist::simclr_loss_global(comm, local_rows(fg, 2, K, B, r), 2, opt);
  CHECK(std::abs(d.value - single.value) <= 1e-6 * std::abs(single.value));
  CHECK(scaled_error(d.grad, local_rows(single.grad, 2, K, B, r)) <= 1e-6);
}

TEST_CASE("The distributed loss is the same number on every rank") {
  dist::Communicator& comm = dist_test::world();
  const index_t K = comm.size(), r = comm.rank();
  const Tensor<float> fg = global_features(2 * K * 4, 8, 9);
  const std::vector<std::int64_t> lg = global_labels(K * 4);
  const std::vector<std::int64_t> mine(lg.begin() + r * 4, lg.begin() + (r + 1) * 4);
  const float v = dist::supcon_loss_global(comm, local_rows(fg, 2, K, 4, r), mine).value;
  std::vector<float> all(static_cast<std::size_t>(K));
  comm.allgather(&v, 1, all.data());
  for (float x : all) CHECK(x == v);
}

TEST_CASE("Ranks holding different batch sizes all get a ShapeError naming the rank") {
  dist::Communicator& comm = dist_test::world();
  const index_t B = comm.rank() == 1 ? 3 : 4;
  const Tensor<float> f = global_features(2 * B, 8, 1);
  const std::vector<std::int64_t> labels(static_cast<std::size_t>(B), 0);
  CHECK_THROWS_WITH(dist::supcon_loss_global(comm, f, labels),
                    Catch::Contains("rank 1 holds (B, V, D) = (3, 2, 8)"));
}

TEST_CASE("A NaN on one rank makes every rank throw a ValueError") {
  dist::Communicator& comm = dist_test::world();
  Tensor<float> f = global_features(8, 4, 2 + static_cast<std::uint64_t>(comm.rank()));
  if (comm.rank() == comm.size() - 1) f(5, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(dist::supcon_loss_global(comm, f, {0, 1, 0, 1}), ValueError);
}
