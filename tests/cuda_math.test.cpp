// The arithmetic of the CUDA loss kernels (supcon/cuda/loss_math.cuh), run on
// the CPU: the same functions the kernels call, driven by a host emulation of
// the kernels' loops, against the CPU reference. No GPU needed.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <supcon/cuda/loss_math.cuh>
#include <supcon/losses/cross_entropy.hpp>
#include <supcon/losses/supcon_reference.hpp>

#include "cuda_common.hpp"
#include "losses_common.hpp"

using namespace supcon;
using cuda_test::fused_options;
using losses_test::random_features;

namespace {

double max_abs_diff(const Tensor<double>& a, const Tensor<double>& b) {
  double m = 0;
  for (index_t k = 0; k < a.size(); ++k) m = std::max(m, std::abs(a[k] - b[k]));
  return m;
}

double dot_over_tau(const Tensor<double>& f, index_t i, index_t k, double inv_tau) {
  double s = 0;
  for (index_t d = 0; d < f.dim(1); ++d) s += f(i, d) * f(k, d);
  return s * inv_tau;
}

// The fused kernels' loops on the host. Forward: anchor rows in tiles; lane l
// of a row sees the contrast rows k = l, l + lanes, ... and keeps its own
// RowAcc; the lanes are then merged by a butterfly (lane l takes lane l ^ off),
// as __shfl_xor_sync does. Backward: G_ik = w * grad_entry(...), recomputed
// entry by entry, and dF = (G^T F_a + [rows < A] G F) / tau.
LossResult<double> emulate_fused(const Tensor<double>& f, const std::vector<std::int32_t>& classes,
                                 const SupConOptions& opt, int lanes) {
  const index_t N = f.dim(0), D = f.dim(1), B = static_cast<index_t>(classes.size());
  const index_t A = opt.contrast_mode == ContrastMode::all ? N : B;
  const double inv_tau = 1.0 / opt.temperature;
  const bool outside = opt.summation == Summation::outside;
  std::vector<cuda::RowStats<double>> stats(static_cast<std::size_t>(A));
  std::vector<double> unscaled(static_cast<std::size_t>(A));
  index_t with_pos = 0;
  for (index_t i = 0; i < A; ++i) {
    std::vector<cuda::RowAcc<double>> lane(static_cast<std::size_t>(lanes), cuda::row_empty<double>());
    for (index_t k0 = 0; k0 < N; k0 += lanes)
      for (int l = 0; l < lanes && k0 + l < N; ++l)
        cuda::row_push(lane[static_cast<std::size_t>(l)], dot_over_tau(f, i, k0 + l, inv_tau),
                       cuda::role_of(i, k0 + l, B, classes.data(), nullptr));
    for (int off = lanes / 2; off >= 1; off /= 2) {
      const std::vector<cuda::RowAcc<double>> before = lane;
      for (int l = 0; l < lanes; ++l)
        cuda::row_merge(lane[static_cast<std::size_t>(l)], before[static_cast<std::size_t>(l ^ off)]);
    }
    unscaled[static_cast<std::size_t>(i)] =
        cuda::finish_row(lane[0], opt.denominator, outside, stats[static_cast<std::size_t>(i)]);
    with_pos += lane[0].n_pos > 0;
  }
  const index_t divisor = opt.no_positives == NoPositives::count_zero ? A : with_pos;
  const double scale = opt.temperature / opt.base_temperature;
  const double w = divisor > 0 ? scale / static_cast<double>(divisor) : 0.0;
  LossResult<double> out;
  for (double u : unscaled) out.value += w * u;
  out.grad = Tensor<double>({N, D});
  for (index_t i = 0; i < A; ++i)
    for (index_t k = 0; k < N; ++k) {
      const double s = dot_over_tau(f, i, k, inv_tau);
      const double g = w * cuda::grad_entry(s, cuda::role_of(i, k, B, classes.data(), nullptr),
                                            stats[static_cast<std::size_t>(i)], opt.denominator, outside);
      for (index_t d = 0; d < D; ++d) {
        out.grad(k, d) += g * f(i, d) * inv_tau;  // column side: dF_k += G_ik f_i / tau
        out.grad(i, d) += g * f(k, d) * inv_tau;  // row side: dF_i += G_ik f_k / tau
      }
    }
  return out;
}

// The naive kernel's per-row function over the full S, every option.
LossResult<double> emulate_naive(const Tensor<double>& f, const Pairing& pairing, const SupConOptions& opt) {
  const detail::ContrastLayout lay = detail::make_contrast_layout(f, pairing, opt);
  const index_t N = lay.n, A = lay.anchors;
  const double inv_tau = 1.0 / opt.temperature;
  const double w = detail::anchor_weight(lay, opt);
  const cuda::Role* table = lay.sample_role.empty() ? nullptr : lay.sample_role.data();
  std::vector<double> s(static_cast<std::size_t>(N)), g(static_cast<std::size_t>(N));
  std::vector<double> unscaled(static_cast<std::size_t>(A));
  LossResult<double> out;
  out.grad = Tensor<double>({N, lay.dim});
  for (index_t i = 0; i < A; ++i) {
    for (index_t k = 0; k < N; ++k) s[static_cast<std::size_t>(k)] = dot_over_tau(f, i, k, inv_tau);
    const cuda::RowRoles role{i, lay.batch, lay.sample_class.data(), table};
    unscaled[static_cast<std::size_t>(i)] = cuda::naive_row(s.data(), N, role, opt.denominator,
                                                            opt.summation == Summation::outside, w, g.data());
    for (index_t k = 0; k < N; ++k)
      for (index_t d = 0; d < lay.dim; ++d) {
        out.grad(k, d) += g[static_cast<std::size_t>(k)] * f(i, d) * inv_tau;
        out.grad(i, d) += g[static_cast<std::size_t>(k)] * f(k, d) * inv_tau;
      }
  }
  cuda::fill_loss_result(lay, opt, unscaled, out);
  return out;
}

}  // namespace

TEST_CASE("Merging partial log-sum-exps in any grouping equals the log-sum-exp of all terms") {
  const std::vector<double> x = {-3.0, 40.0, 2.5, -700.0, 39.0, 0.0, 12.0};
  double ref = 0;
  for (double v : x) ref += std::exp(v - 40.0);
  ref = 40.0 + std::log(ref);
  for (std::size_t split = 0; split <= x.size(); ++split) {
    cuda::Lse<double> a = cuda::lse_empty<double>(), b = cuda::lse_empty<double>();
    for (std::size_t k = 0; k < x.size(); ++k) cuda::lse_push(k < split ? a : b, x[k]);
    cuda::lse_merge(a, b);  // either part may be empty
    CHECK(cuda::lse_value(a) == Approx(ref).epsilon(1e-15));
  }
}

TEST_CASE("The log-sum-exp of no terms is minus infinity, and log_add_exp ignores it") {
  CHECK(cuda::lse_value(cuda::lse_empty<double>()) == -std::numeric_limits<double>::infinity());
  CHECK(cuda::log_add_exp(1.5, -std::numeric_limits<double>::infinity()) == 1.5);
  CHECK(cuda::log_add_exp(1.0, 2.0) == Approx(std::log(std::exp(1.0) + std::exp(2.0))).epsilon(1e-15));
}

TEST_CASE("An anchor without positives has zero loss and a zero gradient row") {
  cuda::RowAcc<double> a = cuda::row_empty<double>();
  cuda::row_push(a, 0.5, cuda::Role::negative);
  cuda::row_push(a, -1.0, cuda::Role::negative);
  cuda::RowStats<double> st;
  CHECK(cuda::finish_row(a, Denominator::all, true, st) == 0.0);
  CHECK(cuda::grad_entry(0.5, cuda::Role::negative, st, Denominator::all, true) == 0.0);
}

TEST_CASE("The emulated fused CUDA algorithm equals the reference to 1e-10 for every option it supports") {
  // B = 13 samples in 4 classes (one class of a single sample), V = 1..3 views;
  // 4 and 32 lanes, neither dividing N, so the last column tile is partial
  const std::vector<std::int64_t> labels = {0, 1, 2, 1, 0, 3, 1, 2, 0, 2, 1, 0, 1};
  const Pairing pairing = Pairing::from_labels(labels);
  for (index_t views = 1; views <= 3; ++views) {
    const Tensor<double> f = random_features<double>(views * 13, 6, 100 + views);
    for (const SupConOptions& opt : fused_options()) {
      if (views == 1 && opt.denominator == Denominator::only_negatives) continue;
      const LossResult<double> ref = supcon_loss_reference(f, pairing, opt);
      for (int lanes : {4, 32}) {
        const LossResult<double> emu = emulate_fused(f, pairing.classes(), opt, lanes);
        INFO("views " << views << " lanes " << lanes << " mode " << static_cast<int>(opt.contrast_mode) << " sum "
                      << static_cast<int>(opt.summation) << " den " << static_cast<int>(opt.denominator)
                      << " policy " << static_cast<int>(opt.no_positives));
        CHECK(std::abs(emu.value - ref.value) < 1e-10);
        CHECK(max_abs_diff(emu.grad, ref.grad) < 1e-10);
      }
    }
  }
}

TEST_CASE("The naive CUDA per-row function equals the reference to 1e-10 for every option, caps and masks included") {
  for (const losses_test::Combo& c : losses_test::all_combos()) {
    const Tensor<double> f = random_features<double>(c.views * 5, 4, 7 + static_cast<std::uint64_t>(c.views));
    LossResult<double> ref, emu;
    try {
      ref = supcon_loss_reference(f, c.pairing(), c.opt);
    } catch (const ValueError&) {
      continue;  // only_negatives with an anchor without negatives: refused by both
    }
    emu = emulate_naive(f, c.pairing(), c.opt);
    INFO(c.name());
    CHECK(std::abs(emu.value - ref.value) < 1e-10);
    CHECK(max_abs_diff(emu.grad, ref.grad) < 1e-10);
    for (std::size_t i = 0; i < ref.per_anchor.size(); ++i)
      CHECK(std::abs(emu.per_anchor[i] - ref.per_anchor[i]) < 1e-10);
  }
}

TEST_CASE("The CUDA cross-entropy row function equals cross_entropy, label smoothing included") {
  const Tensor<double> z = random_features<double>(9, 5, 3, false);
  const std::vector<std::int64_t> y = {0, 4, 2, 2, 1, 3, 0, 4, 1};
  for (double eps : {0.0, 0.1}) {
    const LossResult<double> ref = cross_entropy(z, y, eps);
    Tensor<double> g({9, 5});
    double total = 0;
    for (index_t n = 0; n < 9; ++n)
      total += cuda::cross_entropy_row(z.data() + n * 5, 5, y[static_cast<std::size_t>(n)], eps, 1.0 / 9,
                                       g.data() + n * 5);
    CHECK(std::abs(total / 9 - ref.value) < 1e-12);
    CHECK(max_abs_diff(g, ref.grad) < 1e-12);
  }
}
