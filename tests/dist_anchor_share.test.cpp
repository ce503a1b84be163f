// The share of a part of the anchors in the SupCon loss (what one rank of a
// data-parallel batch computes), and the global loss with one process.
#include <catch2/catch.hpp>

#include <supcon/dist/global_loss.hpp>
#include <supcon/testing/gradcheck.hpp>

#include "losses_common.hpp"

using namespace supcon;
using losses_test::all_combos;
using losses_test::Combo;
using losses_test::random_features;

namespace {

// Splits the A anchors into three parts of ranges: [0, a/3), [a/3, a/2) and [2a/3, a), [a/2, 2a/3).
std::vector<std::vector<RowRange>> three_parts(index_t a) {
  return {{{0, a / 3}}, {{a / 3, a / 2}, {2 * a / 3, a}}, {{a / 2, 2 * a / 3}}};
}

index_t anchors_of(const Combo& c, index_t n) {
  return c.opt.contrast_mode == ContrastMode::all ? n : n / c.views;
}

}  // namespace

TEST_CASE("The shares of a partition of the anchors add up to the loss and its gradient, for every option") {
  for (const Combo& c : all_combos()) {
    const index_t n = 5 * c.views;
    const Tensor<double> f = random_features<double>(n, 4, 7 + static_cast<std::uint64_t>(c.views));
    const LossResult<double> full = supcon_loss_reference(f, c.pairing(), c.opt);
    for (bool fused : {false, true}) {
      double value = 0;
      Tensor<double> grad({n, 4});
      index_t anchors = 0, with_pos = 0;
      for (const auto& part : three_parts(anchors_of(c, n))) {
        const LossResult<double> s = fused ? supcon_loss_fused(f, c.pairing(), c.opt, 2, part)
                                           : supcon_loss_reference(f, c.pairing(), c.opt, part);
        value += s.value;
        for (index_t k = 0; k < grad.size(); ++k) grad[k] += s.grad[k];
        anchors += s.anchors;
        with_pos += s.anchors_with_positives;
      }
      INFO(c.name() << (fused ? " fused" : " reference"));
      CHECK(value == Approx(full.value).epsilon(1e-12).margin(1e-14));
      CHECK(testing::max_relative_error(grad, full.grad, 1e-9) < 1e-10);
      CHECK(anchors == full.anchors);
      CHECK(with_pos == full.anchors_with_positives);
    }
  }
}

TEST_CASE("A share lists its own anchors' losses and positives, in order") {
  const Tensor<double> f = random_features<double>(10, 3, 3);
  const Pairing p = losses_test::five_labels();
  const LossResult<double> full = supcon_loss_reference(f, p, {});
  const LossResult<double> s = supcon_loss_fused(f, p, {}, 0, {{1, 3}, {6, 7}});
  REQUIRE(s.per_anchor.size() == 3);
  const index_t rows[] = {1, 2, 6};
  for (std::size_t j = 0; j < 3; ++j) {
    CHECK(s.per_anchor[j] == Approx(full.per_anchor[static_cast<std::size_t>(rows[j])]).epsilon(1e-12));
    CHECK(s.positives[j] == full.positives[static_cast<std::size_t>(rows[j])]);
  }
}

TEST_CASE("The gradient of a share matches central differences") {
  const Combo c = all_combos()[40];  // two views, a mask, one of the denominators
  Tensor<double> f = random_features<double>(5 * c.views, 3, 11);
  const std::vector<RowRange> part = {{1, 3}};
  for (bool fused : {false, true}) {
    auto share = [&](const Tensor<double>& x) {
      return fused ? supcon_loss_fused(x, c.pairing(), c.opt, 0, part).value
                   : supcon_loss_reference(x, c.pairing(), c.opt, part).value;
    };
    const Tensor<double> g = fused ? supcon_loss_fused(f, c.pairing(), c.opt, 0, part).grad
                                   : supcon_loss_reference(f, c.pairing(), c.opt, part).grad;
    INFO(c.name());
    CHECK(testing::gradient_error<double>(share, f, g) < 1e-6);
  }
}

TEST_CASE("Anchor ranges out of order, overlapping or past the anchors are rejected") {
  const Tensor<double> f = random_features<double>(10, 3, 3);
  const Pairing p = losses_test::five_labels();
  CHECK_THROWS_AS(supcon_loss_reference(f, p, {}, {{3, 5}, {2, 4}}), ValueError);
  CHECK_THROWS_AS(supcon_loss_fused(f, p, {}, 0, {{0, 11}}), ValueError);
  CHECK_THROWS_AS(supcon_loss_fused(f, p, {}, 0, {{4, 2}}), ValueError);
  SupConOptions one;
  one.contrast_mode = ContrastMode::one;  // anchors are rows 0 .. 4 only
  CHECK_THROWS_WITH(supcon_loss_reference(f, p, one, {{4, 6}}),
                    Catch::Contains("within the 5 anchors"));
}

TEST_CASE("The global loss with one process is the single-process loss") {
  const Tensor<float> f = random_features<float>(12, 5, 2);
  const std::vector<std::int64_t> labels = {3, 1, 3, 0, 1, 2};
  SupConOptions opt;
  opt.temperature = 0.1;
  const LossResult<float> single = supcon_loss_reference(f, Pairing::from_labels(labels), opt);
  for (dist::LossImpl impl : {dist::LossImpl::fused, dist::LossImpl::reference}) {
    const LossResult<float> g = dist::supcon_loss_global(dist::local_communicator(), f, labels, opt, impl);
    CHECK(g.value == Approx(single.value).epsilon(1e-6));
    // float sums in another order (strips against the reference's full matrix)
    CHECK(testing::max_relative_error(g.grad, single.grad, 1e-3f) < 1e-4);
    CHECK(g.anchors == 12);
  }
}

TEST_CASE("The global loss rejects features that are not views of the labelled samples") {
  const Tensor<float> f = random_features<float>(7, 5, 2);
  CHECK_THROWS_AS(dist::supcon_loss_global(dist::local_communicator(), f, {0, 1, 0}), ShapeError);
  CHECK_THROWS_AS(dist::simclr_loss_global(dist::local_communicator(), f, 2), ShapeError);
}
