// The two code paths of the fast fused loss: symmetric tiles (every row an
// anchor, denominator all or only_negatives, labels without a cap) and strips
// (everything else), each against the reference, by central differences, and
// the O(B) pairing that lets N reach 262,144 rows.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <supcon/losses/supcon_fused.hpp>
#include <supcon/losses/supcon_reference.hpp>
#include <supcon/testing/gradcheck.hpp>

#include "losses_common.hpp"

using namespace supcon;

namespace {

// Labels of `batch` samples drawn from `classes` classes.
std::vector<std::int64_t> random_labels(index_t batch, std::uint64_t classes, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(batch));
  for (auto& l : labels) l = static_cast<std::int64_t>(rng.below(classes));
  return labels;
}

// Largest |float gradient - double gradient| relative to the largest entry.
double float_gradient_gap(const LossResult<double>& ref, const LossResult<float>& fus) {
  double diff = 0, scale = 0;
  for (index_t k = 0; k < ref.grad.size(); ++k) {
    diff = std::max(diff, std::abs(ref.grad[k] - static_cast<double>(fus.grad[k])));
    scale = std::max(scale, std::abs(ref.grad[k]));
  }
  return diff / scale;
}

// Largest |fused - reference| over the value and the gradient, relative to the
// largest entry of each.
double worst_difference(const LossResult<double>& a, const LossResult<double>& b) {
  double diff = 0, scale = 0;
  for (index_t k = 0; k < a.grad.size(); ++k) {
    diff = std::max(diff, std::abs(a.grad[k] - b.grad[k]));
    scale = std::max(scale, std::abs(a.grad[k]));
  }
  return std::max(diff / scale, std::abs(a.value - b.value) / std::abs(a.value));
}

}  // namespace

TEST_CASE("Symmetric tiles and strips both match the reference on 300 rows with uneven tiles") {
  // 2 views of 150 samples in 7 classes; tiles of 64 and 100 rows do not divide 300
  const Pairing p = Pairing::from_labels(random_labels(150, 7, 11));
  const Tensor<double> f = losses_test::random_features<double>(300, 24, 12);
  for (ContrastMode m : {ContrastMode::all, ContrastMode::one})
    for (Summation s : {Summation::outside, Summation::inside})
      for (Denominator d : {Denominator::all, Denominator::only_negatives, Denominator::one_positive}) {
        SupConOptions o;
        o.temperature = 0.08, o.contrast_mode = m, o.summation = s, o.denominator = d;
        const LossResult<double> ref = supcon_loss_reference(f, p, o);
        for (index_t tile : {0, 64, 100}) {
          INFO("mode " << int(m) << " summation " << int(s) << " denominator " << int(d) << " tile " << tile);
          CHECK(worst_difference(ref, supcon_loss_fused(f, p, o, tile)) < 1e-12);
        }
      }
}

TEST_CASE("The symmetric path's gradient matches central differences") {
  // labels without a cap, every row an anchor: the tile path
  const Pairing p = Pairing::from_labels({0, 1, 0, 2, 1, 3});
  Tensor<double> f = losses_test::random_features<double>(12, 5, 21, false);
  for (Summation s : {Summation::outside, Summation::inside}) {
    SupConOptions o;
    o.summation = s, o.temperature = 0.3;
    const auto value = [&](const Tensor<double>& x) { return supcon_loss_fused(x, p, o, 4).value; };
    const Tensor<double> analytic = supcon_loss_fused(f, p, o, 4).grad;
    CHECK(testing::gradient_error<double>(value, f, analytic) < 1e-6);
  }
}

TEST_CASE("In float32 the symmetric path stays close to the double reference at tau = 0.02") {
  const Pairing p = Pairing::from_labels(random_labels(256, 10, 3));
  const Tensor<double> fd = losses_test::random_features<double>(512, 64, 4);
  SupConOptions o;
  o.temperature = 0.02;
  const LossResult<double> ref = supcon_loss_reference(fd, p, o);
  const LossResult<float> fus = supcon_loss_fused(fd.cast<float>(), p, o);
  REQUIRE(fus.grad.all_finite());
  CHECK(fus.value == Approx(ref.value).epsilon(1e-4));
  CHECK(float_gradient_gap(ref, fus) < 1e-3);
}

TEST_CASE("In float32 the strip path stays close to the double reference for every kind of anchor row") {
  // 300 rows: three strips of 128, the last one ragged
  const Pairing p = Pairing::from_labels(random_labels(150, 10, 6));
  const Tensor<double> fd = losses_test::random_features<double>(300, 40, 7);
  for (int variant = 0; variant < 4; ++variant) {
    SupConOptions o;
    o.temperature = 0.1;
    if (variant == 0) o.contrast_mode = ContrastMode::one;
    if (variant == 1) o.denominator = Denominator::one_positive;
    if (variant == 2) o.summation = Summation::inside, o.denominator = Denominator::one_positive;
    if (variant == 3) o.positives_cap = 2;
    INFO("variant " << variant);
    const LossResult<double> ref = supcon_loss_reference(fd, p, o);
    const LossResult<float> fus = supcon_loss_fused(fd.cast<float>(), p, o);
    REQUIRE(fus.grad.all_finite());
    CHECK(fus.value == Approx(ref.value).epsilon(1e-5));
    CHECK(float_gradient_gap(ref, fus) < 1e-4);
  }
}

TEST_CASE("A pairing from labels keeps one class per sample, not a B x B mask") {
  // 200,000 samples: a mask would take 40 GB; the classes take 800 KB
  const index_t batch = 200000;
  const std::vector<std::int64_t> labels = random_labels(batch, 50, 5);
  const Pairing p = Pairing::from_labels(labels);
  REQUIRE(p.classes().size() == labels.size());
  CHECK(p.paired(0, 1) == (labels[0] == labels[1]));
  // the layout of one view: |P(i)| = size of i's class - 1, and no (B, B) role table
  const detail::ContrastLayout lay = detail::make_contrast_layout(Tensor<float>({batch, 1}, 1.0f), p, {});
  CHECK(lay.sample_role.empty());
  const auto same_as_0 = std::count(labels.begin(), labels.end(), labels[0]);
  CHECK(lay.positives[0] == same_as_0 - 1);
  CHECK(lay.negatives[0] == batch - same_as_0);
}

TEST_CASE("The fused loss gives the same result when called again with its reused buffers") {
  const Pairing p = Pairing::from_labels(random_labels(40, 4, 8));
  const Tensor<double> f = losses_test::random_features<double>(80, 8, 9);
  const LossResult<double> first = supcon_loss_fused(f, p, {}, 16);
  (void)supcon_loss_fused(losses_test::random_features<double>(120, 8, 10), Pairing::identity(60), {}, 16);
  const LossResult<double> again = supcon_loss_fused(f, p, {}, 16);
  // threads may take the tiles in another order: equal to rounding
  CHECK(worst_difference(first, again) < 1e-13);
}
