// How L_out and L_in weight an anchor's positives in their gradients, checked
// against the loss's own gradient and against central differences.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <numeric>
#include <supcon/analysis/gradient_structure.hpp>
#include <supcon/analysis/random_batch.hpp>
#include <supcon/losses/supcon_reference.hpp>
#include <supcon/testing/gradcheck.hpp>

using namespace supcon;

namespace {

// Unit row along axis 0, tilted towards `axis` so that its cosine to axis 0 is c.
void tilted(Tensor<double>& f, index_t r, index_t axis, double c) {
  for (index_t k = 0; k < f.dim(1); ++k) f(r, k) = 0;
  f(r, 0) = c;
  f(r, axis) = std::sqrt(1 - c * c);
}

// Anchor 0 along axis 0 with three positives: two easy (cosine 0.9) and one
// hard (cosine -0.2); rows 4, 5 are negatives.
Tensor<double> one_hard_positive_batch() {
  Tensor<double> f({6, 6});
  tilted(f, 0, 1, 1.0);
  tilted(f, 1, 1, 0.9);
  tilted(f, 2, 2, 0.9);
  tilted(f, 3, 3, -0.2);
  tilted(f, 4, 4, 0.3);
  tilted(f, 5, 5, 0.1);
  return f;
}
const std::vector<std::int64_t> kOneHardLabels = {0, 0, 0, 0, 1, 2};

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

}  // namespace

TEST_CASE("Under L_out every positive gets weight 1/|P(i)|, under L_in its share of q") {
  Rng rng(2);
  const RandomBatch<double> rb = random_batch<double>(rng, 8, 2, 5, 3);
  const Pairing pairing = Pairing::from_labels(rb.labels);
  const GradientStructure<double> g = gradient_structure(rb.features, pairing, SupConOptions{}, 3);
  const std::size_t np = g.positives.size();
  REQUIRE(np >= 1);
  CHECK(sum(g.weight_out) == Approx(1.0));
  CHECK(sum(g.weight_in) == Approx(1.0));
  const double total_q = sum(g.probability);
  for (std::size_t j = 0; j < np; ++j) {
    CHECK(g.weight_out[j] == Approx(1.0 / static_cast<double>(np)));
    CHECK(g.weight_in[j] == Approx(g.probability[j] / total_q));
  }
}

TEST_CASE("The similarity-gradient rows reproduce the loss gradient for every option") {
  Rng rng(7);
  const RandomBatch<double> rb = random_batch<double>(rng, 9, 2, 4, 3);
  const Pairing pairing = Pairing::from_labels(rb.labels);
  for (Summation sum_mode : {Summation::outside, Summation::inside})
    for (Denominator den : {Denominator::all, Denominator::one_positive, Denominator::only_negatives})
      for (ContrastMode mode : {ContrastMode::all, ContrastMode::one})
        for (std::int64_t cap : {std::int64_t(-1), std::int64_t(2)}) {
          SupConOptions opt;
          opt.temperature = 0.3;
          opt.base_temperature = 0.5;
          opt.summation = sum_mode;
          opt.denominator = den;
          opt.contrast_mode = mode;
          opt.positives_cap = cap;
          const LossResult<double> loss = supcon_loss_reference(rb.features, pairing, opt);
          Tensor<double> dfeat = features_gradient(similarity_gradient(rb.features, pairing, opt),
                                                   rb.features, opt.temperature);
          dfeat.vec() /= static_cast<double>(loss.anchors);  // count-zero: the mean over all anchors
          CHECK(testing::max_relative_error(dfeat, loss.grad, 1e-8) < 1e-10);
        }
}

TEST_CASE("One anchor's row matches a central difference of that anchor's own loss term") {
  Rng rng(4);
  RandomBatch<double> rb = random_batch<double>(rng, 6, 2, 3, 2);
  const Pairing pairing = Pairing::from_labels(rb.labels);
  for (Summation sum_mode : {Summation::outside, Summation::inside}) {
    SupConOptions opt;
    opt.temperature = 0.5;
    opt.summation = sum_mode;
    const index_t i = 4;
    const GradientStructure<double> g = gradient_structure(rb.features, pairing, opt, i);
    // dsim with only row i set: the chain rule then gives d per_anchor[i] / dfeatures.
    Tensor<double> dsim({rb.features.dim(0), rb.features.dim(0)});
    const std::vector<double>& row = sum_mode == Summation::outside ? g.dl_out : g.dl_in;
    std::copy(row.begin(), row.end(), dsim.data() + i * rb.features.dim(0));
    const Tensor<double> analytic = features_gradient(dsim, rb.features, opt.temperature);
    std::function<double(const Tensor<double>&)> term = [&](const Tensor<double>& x) {
      return supcon_loss_reference(x, pairing, opt).per_anchor[static_cast<std::size_t>(i)];
    };
    CHECK(testing::gradient_error(term, rb.features, analytic) < 1e-7);
  }
}

TEST_CASE("L_out keeps pulling a hard positive while L_in lets the easy positives dominate") {
  const Tensor<double> f = one_hard_positive_batch();
  SupConOptions opt;
  opt.temperature = 0.1;
  const GradientStructure<double> g = gradient_structure(f, Pairing::from_labels(kOneHardLabels), opt, 0);
  REQUIRE(g.positives == std::vector<index_t>{1, 2, 3});
  // L_out: a third each, whatever the similarities.
  for (double w : g.weight_out) CHECK(w == Approx(1.0 / 3));
  // L_in: the hard positive's share is exp(-1.1 / 0.1) times an easy one's.
  CHECK(g.weight_in[2] / g.weight_in[0] == Approx(std::exp(-11.0)));
  CHECK(g.weight_in[0] == Approx(0.5).epsilon(1e-4));
  // The pull on positive p is -dL/ds_ip: large under L_out, almost none under L_in.
  CHECK(-g.dl_out[3] > 0.3);
  CHECK(-g.dl_in[3] < 1e-4);
  CHECK(-g.dl_out[3] > 1000 * -g.dl_in[3]);
}

TEST_CASE("L_out weights depend only on how many positives there are, L_in weights on their similarities") {
  Tensor<double> f = one_hard_positive_batch();
  const Pairing pairing = Pairing::from_labels(kOneHardLabels);
  const GradientStructure<double> before = gradient_structure(f, pairing, SupConOptions{}, 0);
  tilted(f, 3, 3, 0.8);  // make the hard positive easier
  const GradientStructure<double> after = gradient_structure(f, pairing, SupConOptions{}, 0);
  CHECK(before.weight_out == after.weight_out);  // the fixed normalisation 1/|P(i)|
  CHECK(after.weight_in[2] > 100 * before.weight_in[2]);
}

TEST_CASE("With equally similar positives the two gradients coincide") {
  Tensor<double> f = one_hard_positive_batch();
  tilted(f, 3, 3, 0.9);  // now all three positives sit at cosine 0.9
  const GradientStructure<double> g = gradient_structure(f, Pairing::from_labels(kOneHardLabels),
                                                         SupConOptions{}, 0);
  for (std::size_t k = 0; k < g.dl_out.size(); ++k) CHECK(g.dl_in[k] == Approx(g.dl_out[k]).margin(1e-12));
}

TEST_CASE("Bad arguments to the gradient analysis are clear errors") {
  const Tensor<double> f = one_hard_positive_batch();
  const Pairing pairing = Pairing::from_labels(kOneHardLabels);
  CHECK_THROWS_AS(gradient_structure(f, pairing, SupConOptions{}, 6), ValueError);
  SupConOptions only_neg;
  only_neg.denominator = Denominator::only_negatives;
  // One class for all: positives but no negative, the only-negatives denominator is empty.
  CHECK_THROWS_AS(similarity_gradient(f, Pairing::from_labels({1, 1, 1, 1, 1, 1}), only_neg), ValueError);
  CHECK_THROWS_AS(features_gradient(Tensor<double>({2, 5}), f, 0.1), ShapeError);
  SupConOptions cold;
  cold.temperature = -1;
  CHECK_THROWS_AS(gradient_structure(f, pairing, cold, 0), ValueError);
}
