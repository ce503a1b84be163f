// The fused (tiled, streaming) SupCon loss against the reference: same values,
// per-anchor losses and gradients, whatever the tile size.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <supcon/losses/simclr.hpp>
#include <supcon/losses/supcon_fused.hpp>
#include <supcon/losses/supcon_reference.hpp>

#include "losses_common.hpp"

using namespace supcon;

namespace {

// max |a - b| / max |a|: relative to the scale of the whole tensor.
double scaled_difference(const Tensor<double>& a, const Tensor<double>& b) {
  double diff = 0, scale = 0;
  for (index_t k = 0; k < a.size(); ++k) {
    diff = std::max(diff, std::abs(a[k] - b[k]));
    scale = std::max(scale, std::abs(a[k]));
  }
  return scale > 0 ? diff / scale : diff;
}

double relative(double a, double b) { return std::abs(a - b) / std::max(std::abs(a), 1e-300); }

// Worst disagreement between fused (with `tile`) and reference over everything they return.
double disagreement(const Tensor<double>& f, const Pairing& p, const SupConOptions& o, index_t tile) {
  const LossResult<double> ref = supcon_loss_reference(f, p, o);
  const LossResult<double> fus = supcon_loss_fused(f, p, o, tile);
  double worst = ref.value == 0 ? std::abs(fus.value) : relative(ref.value, fus.value);
  worst = std::max(worst, scaled_difference(ref.grad, fus.grad));
  for (std::size_t i = 0; i < ref.per_anchor.size(); ++i)
    if (ref.per_anchor[i] != 0) worst = std::max(worst, relative(ref.per_anchor[i], fus.per_anchor[i]));
  CHECK(ref.positives == fus.positives);
  return worst;
}

}  // namespace

TEST_CASE("Fused and reference agree to 1e-12 for every option combination and tile size") {
  std::uint64_t seed = 500;
  for (const losses_test::Combo& c : losses_test::all_combos()) {
    const Tensor<double> f = losses_test::random_features<double>(5 * c.views, 6, seed++);
    for (index_t tile : {1, 2, 4, 7, 0}) {
      INFO(c.name() << " tile=" << tile);
      CHECK(disagreement(f, c.pairing(), c.opt, tile) < 1e-12);
    }
  }
}

TEST_CASE("Fused and reference agree on a larger random batch with tiles that do not divide N") {
  // 3 views of 37 samples in 6 classes: N = 111, with 2 row blocks of 64 anchors.
  Rng rng(4);
  std::vector<std::int64_t> labels(37);
  for (auto& l : labels) l = static_cast<std::int64_t>(rng.below(6));
  const Tensor<double> f = losses_test::random_features<double>(3 * 37, 16, 77);
  for (Summation s : {Summation::outside, Summation::inside})
    for (Denominator d : {Denominator::all, Denominator::one_positive, Denominator::only_negatives}) {
      SupConOptions o;
      o.temperature = 0.05;
      o.summation = s;
      o.denominator = d;
      o.positives_cap = 6;
      for (index_t tile : {10, 32, 111, 500}) CHECK(disagreement(f, Pairing::from_labels(labels), o, tile) < 1e-12);
    }
}

TEST_CASE("The fused loss refuses a negative tile size") {
  const Tensor<double> f = losses_test::random_features<double>(10, 3, 1);
  CHECK_THROWS_AS(supcon_loss_fused(f, losses_test::five_labels(), {}, -1), ValueError);
}

TEST_CASE("At temperature 0.01 in float32 the fused loss stays finite and close to double") {
  const Tensor<double> fd = losses_test::random_features<double>(2 * 64, 32, 9);
  std::vector<std::int64_t> labels(64);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 10);
  const Pairing p = Pairing::from_labels(labels);
  for (Denominator d : {Denominator::all, Denominator::one_positive, Denominator::only_negatives}) {
    SupConOptions o;
    o.temperature = 0.01;
    o.denominator = d;
    const LossResult<float> rf = supcon_loss_fused(fd.cast<float>(), p, o);
    const LossResult<double> rd = supcon_loss_fused(fd, p, o);
    CHECK(std::isfinite(rf.value));
    CHECK(rf.grad.all_finite());
    CHECK(rf.value == Approx(rd.value).epsilon(1e-3));
  }
}

TEST_CASE("SimCLR through the fused path equals the reference with one class per sample") {
  const Tensor<double> f = losses_test::random_features<double>(2 * 9, 5, 31);
  const LossResult<double> sim = simclr_loss(f, 2, {});
  const LossResult<double> ref = supcon_loss_reference(f, Pairing::identity(9), {});
  CHECK(sim.value == Approx(ref.value).epsilon(1e-13));
  CHECK(scaled_difference(ref.grad, sim.grad) < 1e-12);
}
