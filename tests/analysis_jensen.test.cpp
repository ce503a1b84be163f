// The Jensen bound L_in <= L_out (Khosla et al. 2020, Eqs. 2-3) as a tested
// property: it holds on every anchor, is tight exactly when an anchor's
// positives are equally similar to it, and strict otherwise.
#include <catch2/catch.hpp>
#include <cmath>
#include <supcon/analysis/jensen.hpp>

using namespace supcon;

namespace {

const Denominator kDenominators[] = {Denominator::all, Denominator::one_positive,
                                     Denominator::only_negatives};

// Row r of an (N, D) matrix set to a unit vector along axis `axis`, tilted
// towards axis `tilt` by the angle whose cosine is `c`.
void set_row(Tensor<double>& f, index_t r, index_t axis, index_t tilt, double c) {
  for (index_t k = 0; k < f.dim(1); ++k) f(r, k) = 0;
  f(r, axis) = c;
  if (tilt >= 0) f(r, tilt) = std::sqrt(1 - c * c);
}

}  // namespace

TEST_CASE("L_in never exceeds L_out on any anchor of many random batches") {
  for (Denominator den : kDenominators) {
    for (ContrastMode mode : {ContrastMode::all, ContrastMode::one}) {
      SupConOptions opt;
      opt.temperature = 0.1;
      opt.denominator = den;
      opt.contrast_mode = mode;
      JensenStudy study;
      study.batches = 12;
      study.batch = 12;
      study.dim = 6;
      study.classes = 3;
      const JensenSummary s = jensen_study<double>(study, opt);
      REQUIRE(s.anchors > 0);
      CHECK(s.min_gap >= 0.0);  // per-anchor values straight from the reference loss
      CHECK(s.max_gap > 0.01);  // and the bound is not an identity
      for (std::size_t k = 0; k < s.batch_l_out.size(); ++k) CHECK(s.batch_l_in[k] <= s.batch_l_out[k]);
    }
  }
}

TEST_CASE("The bound holds in float too, on many anchors") {
  JensenStudy study;
  study.batches = 10;
  const JensenSummary s = jensen_study<float>(study);
  CHECK(s.anchors == 10 * 2 * 32);
  // float rounding of two nearly equal losses may give -1 ulp, never more
  CHECK(s.min_gap >= -1e-5);
  CHECK(s.mean_gap > 0.01);
}

TEST_CASE("The bound is an equality when all positives are identical to the anchor") {
  // Two classes, each made of one direction repeated over samples and views:
  // every s_ip is 1 / temperature, so every q_p of an anchor is the same.
  const index_t B = 6, V = 2, D = 4;
  Tensor<double> f({V * B, D});
  const std::vector<std::int64_t> labels = {0, 1, 0, 1, 0, 1};
  for (index_t r = 0; r < V * B; ++r) set_row(f, r, labels[static_cast<std::size_t>(r % B)], -1, 1.0);
  for (Denominator den : kDenominators) {
    SupConOptions opt;
    opt.denominator = den;
    const JensenBatch<double> j = jensen_batch(f, Pairing::from_labels(labels), opt);
    for (std::size_t i = 0; i < j.gap.size(); ++i) {
      CHECK(j.positives[i] == 5);
      CHECK(std::abs(j.gap[i]) < 1e-12);
    }
    CHECK(j.loss_in == Approx(j.loss_out).epsilon(1e-12));
  }
}

TEST_CASE("Equality needs equal similarity, not identical positives") {
  // Anchor 0 along axis 0; its three positives are distinct vectors, each at
  // cosine 0.6 to it (tilted towards different axes). The others are negatives.
  const index_t B = 6, D = 8;
  Tensor<double> f({B, D});
  set_row(f, 0, 0, -1, 1.0);
  for (index_t p = 1; p <= 3; ++p) set_row(f, p, 0, p, 0.6);
  set_row(f, 4, 4, -1, 1.0);
  set_row(f, 5, 5, 0, 0.3);
  const Pairing pairing = Pairing::from_labels({7, 7, 7, 7, 1, 2});
  SupConOptions opt;
  opt.temperature = 0.5;
  const JensenBatch<double> j = jensen_batch(f, pairing, opt);
  CHECK(std::abs(j.gap[0]) < 1e-12);
  const AnchorTerms<double> t = anchor_terms(f, pairing, opt, 0);
  CHECK(jensen_equality(t.log_q, 1e-12));
  // Positive 1 sees anchor 0 at cosine 0.6 but positives 2 and 3 at 0.36: unequal.
  CHECK(j.gap[1] > 1e-3);
}

TEST_CASE("The inequality is strict when an anchor's positives differ in similarity") {
  Rng rng(11);
  const RandomBatch<double> rb = random_batch<double>(rng, 10, 3, 5, 2);
  const Pairing pairing = Pairing::from_labels(rb.labels);
  SupConOptions opt;
  const JensenBatch<double> j = jensen_batch(rb.features, pairing, opt);
  for (index_t i = 0; i < j.anchors; ++i) {
    const AnchorTerms<double> t = anchor_terms(rb.features, pairing, opt, i);
    // Three views give every anchor at least two positives; random directions
    // make their similarities distinct, so the gap is strictly positive.
    REQUIRE(t.positives.size() >= 2);
    CHECK_FALSE(jensen_equality(t.log_q, 1e-6));
    CHECK(j.gap[static_cast<std::size_t>(i)] > 1e-6);
  }
}

TEST_CASE("The gap computed from the positives' probabilities equals L_out - L_in of the loss") {
  Rng rng(5);
  const RandomBatch<double> rb = random_batch<double>(rng, 8, 2, 6, 3);
  const Pairing pairing = Pairing::from_labels(rb.labels);
  for (Denominator den : kDenominators) {
    SupConOptions opt;
    opt.temperature = 0.2;
    opt.base_temperature = 0.07;  // the per-anchor values carry the factor T / base_T
    opt.denominator = den;
    const JensenBatch<double> j = jensen_batch(rb.features, pairing, opt);
    for (index_t i = 0; i < j.anchors; ++i) {
      const AnchorTerms<double> t = anchor_terms(rb.features, pairing, opt, i);
      const double expected = opt.temperature / opt.base_temperature * jensen_gap(t.log_q);
      CHECK(j.gap[static_cast<std::size_t>(i)] == Approx(expected).margin(1e-12));
    }
  }
}

TEST_CASE("With a single positive per anchor (SimCLR) there is no gap at all") {
  Rng rng(3);
  const RandomBatch<double> rb = random_batch<double>(rng, 16, 2, 8, 4);
  const JensenBatch<double> j = jensen_batch(rb.features, Pairing::identity(16));
  for (double g : j.gap) CHECK(std::abs(g) < 1e-12);
  CHECK(jensen_gap(std::vector<double>{-2.5}) == 0.0);
}

TEST_CASE("A study is reproducible from its seed and refuses bad arguments") {
  JensenStudy study;
  study.batches = 3;
  const JensenSummary a = jensen_study<double>(study), b = jensen_study<double>(study);
  CHECK(a.batch_l_out == b.batch_l_out);
  study.seed = 1;
  CHECK(jensen_study<double>(study).batch_l_out != a.batch_l_out);
  study.batches = 0;
  CHECK_THROWS_AS(jensen_study<double>(study), ValueError);
  study.batches = 1;
  study.views = 0;
  CHECK_THROWS_AS(jensen_study<double>(study), ValueError);
}
