// The reference SupCon loss: cases small enough to compute by hand, the
// special cases it must reduce to, and the Jensen inequality between L_in and L_out.
#include <catch2/catch.hpp>
#include <cmath>
#include <supcon/losses/simclr.hpp>
#include <supcon/losses/supcon_reference.hpp>
#include <supcon/testing/gradcheck.hpp>

#include "losses_common.hpp"

using namespace supcon;
using losses_test::random_features;

TEST_CASE("Two samples in two views of 1-D features give the loss and gradient computed by hand") {
  // Rows (view-major): f = [1, -1, 1, -1], samples 0 and 1, tau = base_tau = 1.
  // Anchor row 0 has the positive row 2 (s = 1) and the negatives rows 1, 3 (s = -1):
  //   L(0) = -log(e / (e + 2/e)) = log(1 + 2 e^-2), and by symmetry every row the same.
  // G_ik = dL/ds_ik / 4 anchors: q / 4 for each negative, -2q / 4 for the positive,
  // q = e^-2 / (1 + 2 e^-2). dF_0 = sum_k G_0k f_k + sum_i G_i0 f_i = -q - q = -2q.
  Tensor<double> f({4, 1}, std::vector<double>{1, -1, 1, -1});
  SupConOptions opt;
  opt.temperature = opt.base_temperature = 1.0;
  const LossResult<double> r = supcon_loss_reference(f, Pairing::identity(2), opt);
  const double e2 = std::exp(-2.0), q = e2 / (1 + 2 * e2);
  CHECK(r.value == Approx(std::log(1 + 2 * e2)).epsilon(1e-14));
  CHECK(r.grad[0] == Approx(-2 * q).epsilon(1e-14));
  CHECK(r.grad[1] == Approx(2 * q).epsilon(1e-14));
  CHECK(r.grad[2] == Approx(-2 * q).epsilon(1e-14));
  CHECK(r.grad[3] == Approx(2 * q).epsilon(1e-14));
  CHECK(r.positives == std::vector<index_t>{1, 1, 1, 1});
}

TEST_CASE("An anchor without positives counts as zero in the mean or is excluded from it") {
  // One view, f = [1, 0, -1], labels {0, 0, 1}, tau = 1.
  // Anchor 0: positive s = 0, negative s = -1: L = log(1 + e^-1).
  // Anchor 1: positive s = 0, negative s = 0:  L = log 2.
  // Anchor 2: alone in its class, no positive.
  Tensor<double> f({3, 1}, std::vector<double>{1, 0, -1});
  SupConOptions opt;
  opt.temperature = opt.base_temperature = 1.0;
  const Pairing labels = Pairing::from_labels({0, 0, 1});
  const double l0 = std::log(1 + std::exp(-1.0)), l1 = std::log(2.0);
  const LossResult<double> zero = supcon_loss_reference(f, labels, opt);
  CHECK(zero.value == Approx((l0 + l1) / 3).epsilon(1e-14));
  CHECK(zero.per_anchor[2] == 0.0);
  CHECK(zero.anchors_with_positives == 2);
  opt.no_positives = NoPositives::exclude;
  CHECK(supcon_loss_reference(f, labels, opt).value == Approx((l0 + l1) / 2).epsilon(1e-14));
}

TEST_CASE("The loss is scaled by temperature over base temperature") {
  const Tensor<double> f = random_features<double>(12, 4, 3);
  const Pairing p = Pairing::from_labels({0, 1, 0, 1, 2, 2});
  SupConOptions a, b;
  a.temperature = b.temperature = 0.2;
  a.base_temperature = 0.2;
  b.base_temperature = 0.05;
  const LossResult<double> ra = supcon_loss_reference(f, p, a), rb = supcon_loss_reference(f, p, b);
  CHECK(rb.value == Approx(4 * ra.value).epsilon(1e-13));
  CHECK(rb.grad[5] == Approx(4 * ra.grad[5]).epsilon(1e-13));
}

TEST_CASE("SupCon equals SimCLR when every label is unique") {
  const Tensor<double> f = random_features<double>(3 * 7, 5, 11);
  SupConOptions opt;
  opt.temperature = 0.15;
  const LossResult<double> sup =
      supcon_loss_reference(f, Pairing::from_labels({10, 3, 7, -2, 40, 5, 6}), opt);
  const LossResult<double> sim = simclr_loss(f, 3, opt);
  CHECK(sup.value == Approx(sim.value).epsilon(1e-13));
  CHECK(testing::max_relative_error(sup.grad, sim.grad) < 1e-11);
}

TEST_CASE("Contrast mode one uses only the rows of view 0 as anchors") {
  const Tensor<double> f = random_features<double>(2 * 6, 4, 5);
  const Pairing p = Pairing::from_labels({0, 1, 0, 1, 2, 2});
  SupConOptions all, one;
  one.contrast_mode = ContrastMode::one;
  const LossResult<double> ra = supcon_loss_reference(f, p, all), ro = supcon_loss_reference(f, p, one);
  REQUIRE(ro.anchors == 6);
  // the anchors of view 0 see the same contrast set in both modes
  for (index_t i = 0; i < 6; ++i) CHECK(ro.per_anchor[i] == Approx(ra.per_anchor[i]).epsilon(1e-13));
  double mean = 0;
  for (double l : ro.per_anchor) mean += l / 6;
  CHECK(ro.value == Approx(mean).epsilon(1e-13));
}

TEST_CASE("The positives cap keeps the first samples of the class and drops the rest from every sum") {
  // Labels: samples 0, 1, 2, 3 share a class; two views. Cap 2 = one other sample:
  // anchor sample 0 keeps sample 1 (and its own other view), sample 1 keeps 0, ...
  const Tensor<double> f = random_features<double>(2 * 5, 3, 8);
  const Pairing p = Pairing::from_labels({4, 4, 4, 4, 9});
  SupConOptions opt;
  opt.positives_cap = 2;
  const LossResult<double> capped = supcon_loss_reference(f, p, opt);
  CHECK(capped.positives[0] == 3);  // rows 5 (own view), 1 and 6 (sample 1)
  CHECK(capped.positives[4] == 1);  // sample 4 is alone: only its own other view
  // Dropped samples are in no sum, so removing samples 2 and 3 from the batch
  // leaves the loss of sample 0's anchors unchanged.
  Tensor<double> g({2 * 3, 3});
  const index_t keep[] = {0, 1, 4};
  for (index_t v = 0; v < 2; ++v)
    for (index_t j = 0; j < 3; ++j)
      for (index_t d = 0; d < 3; ++d) g(v * 3 + j, d) = f(v * 5 + keep[j], d);
  const LossResult<double> small = supcon_loss_reference(g, Pairing::from_labels({4, 4, 9}), {});
  CHECK(capped.per_anchor[0] == Approx(small.per_anchor[0]).epsilon(1e-13));
  CHECK(capped.per_anchor[5] == Approx(small.per_anchor[3]).epsilon(1e-13));
}

TEST_CASE("L_in never exceeds L_out, anchor by anchor (Jensen's inequality)") {
  // L_in = -log(mean_p x_p) <= -mean_p log(x_p) = L_out since log is concave.
  Rng rng(99);
  int strict = 0;
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<std::int64_t> labels(8);
    for (auto& l : labels) l = static_cast<std::int64_t>(rng.below(3));
    const Tensor<double> f = random_features<double>(2 * 8, 4, 1000 + trial);
    for (Denominator den : {Denominator::all, Denominator::one_positive, Denominator::only_negatives}) {
      SupConOptions out, in;
      out.temperature = in.temperature = 0.1 + 0.4 * rng.uniform();
      out.denominator = in.denominator = den;
      in.summation = Summation::inside;
      const Pairing p = Pairing::from_labels(labels);
      LossResult<double> ro, ri;
      try {
        ro = supcon_loss_reference(f, p, out);
        ri = supcon_loss_reference(f, p, in);
      } catch (const ValueError&) {
        continue;  // only_negatives on a batch of one class: no denominator
      }
      for (std::size_t i = 0; i < ro.per_anchor.size(); ++i) {
        REQUIRE(ri.per_anchor[i] <= ro.per_anchor[i] + 1e-12);
        strict += ri.per_anchor[i] < ro.per_anchor[i] - 1e-6;
      }
    }
  }
  CHECK(strict > 100);  // the bound is not an equality in general
}

TEST_CASE("Float and double agree on the loss and its gradient") {
  const Tensor<double> fd = random_features<double>(2 * 16, 8, 21);
  const Tensor<float> ff = fd.cast<float>();
  std::vector<std::int64_t> labels(16);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 5);
  SupConOptions opt;
  opt.temperature = 0.1;
  opt.summation = Summation::inside;
  const LossResult<double> rd = supcon_loss_reference(fd, Pairing::from_labels(labels), opt);
  const LossResult<float> rf = supcon_loss_reference(ff, Pairing::from_labels(labels), opt);
  CHECK(rf.value == Approx(rd.value).epsilon(1e-5));
  CHECK(testing::max_relative_error(rf.grad.cast<double>(), rd.grad, 1e-2) < 1e-4);
}
