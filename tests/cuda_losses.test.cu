// The CUDA loss kernels against the CPU losses on random inputs. Without a
// CUDA device the program prints one line and exits with 77, which CTest
// reports as skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include <supcon/cuda/cross_entropy.cuh>
#include <supcon/cuda/supcon_blocked.cuh>
#include <supcon/cuda/supcon_fused.cuh>
#include <supcon/cuda/supcon_naive.cuh>
#include <supcon/losses/cross_entropy.hpp>
#include <supcon/losses/simclr.hpp>
#include <supcon/losses/supcon_reference.hpp>

#include "cuda_common.hpp"
#include "losses_common.hpp"

using namespace supcon;
using cuda_test::fused_options;
using losses_test::random_features;

int main(int argc, char** argv) {
  std::string why;
  if (cuda::device_count(&why) == 0) {
    std::printf("skipped: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  return Catch::Session().run(argc, argv);
}

namespace {

// Largest |a - b| over the value, the per-anchor losses and the gradient, each
// relative to the largest magnitude of b's entries of that kind.
template <class T>
double relative_error(const LossResult<T>& a, const LossResult<T>& b) {
  auto rel = [](const T* x, const T* y, std::size_t n) {
    double diff = 0, scale = 1e-30;
    for (std::size_t k = 0; k < n; ++k) {
      diff = std::max(diff, std::abs(static_cast<double>(x[k]) - static_cast<double>(y[k])));
      scale = std::max(scale, std::abs(static_cast<double>(y[k])));
    }
    return diff / scale;
  };
  REQUIRE(a.grad.size() == b.grad.size());
  REQUIRE(a.per_anchor.size() == b.per_anchor.size());
  return std::max({rel(&a.value, &b.value, 1), rel(a.per_anchor.data(), b.per_anchor.data(), a.per_anchor.size()),
                   rel(a.grad.data(), b.grad.data(), static_cast<std::size_t>(a.grad.size()))});
}

std::vector<std::int64_t> random_labels(index_t batch, int classes, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::int64_t> out(static_cast<std::size_t>(batch));
  for (auto& l : out) l = static_cast<std::int64_t>(rng.uniform() * classes);
  return out;
}

}  // namespace

TEST_CASE("The naive CUDA SupCon kernels equal the CPU reference for every option, caps and masks included") {
  for (const losses_test::Combo& c : losses_test::all_combos()) {
    const Tensor<double> f = random_features<double>(c.views * 5, 4, 11 + static_cast<std::uint64_t>(c.views));
    LossResult<double> ref;
    try {
      ref = supcon_loss_reference(f, c.pairing(), c.opt);
    } catch (const ValueError&) {
      continue;  // only_negatives with an anchor without negatives: refused by both
    }
    INFO(c.name());
    CHECK(relative_error(cuda::supcon_loss_naive(f, c.pairing(), c.opt), ref) < 1e-10);
  }
}

TEST_CASE("The fused CUDA SupCon kernels equal the CPU reference for every supported option") {
  // N not a multiple of the 32-row tile, D below, across and above one 32-column chunk
  for (index_t views : {2, 3})
    for (index_t batch : {37, 67})
      for (index_t dim : {5, 40, 128}) {
        const Pairing pairing = Pairing::from_labels(random_labels(batch, 6, 3 * batch + dim));
        const Tensor<double> fd = random_features<double>(views * batch, dim, 5 * batch + dim);
        Tensor<float> ff({views * batch, dim});
        for (index_t k = 0; k < fd.size(); ++k) ff[k] = static_cast<float>(fd[k]);
        for (const SupConOptions& opt : fused_options()) {
          INFO("V " << views << " B " << batch << " D " << dim << " mode " << static_cast<int>(opt.contrast_mode)
                    << " sum " << static_cast<int>(opt.summation) << " den " << static_cast<int>(opt.denominator)
                    << " policy " << static_cast<int>(opt.no_positives));
          CHECK(relative_error(cuda::supcon_loss_fused(fd, pairing, opt), supcon_loss_reference(fd, pairing, opt)) <
                1e-10);
          CHECK(relative_error(cuda::supcon_loss_fused(ff, pairing, opt), supcon_loss_reference(ff, pairing, opt)) <
                1e-4);
        }
      }
}

TEST_CASE("SimCLR on the fused CUDA kernels equals simclr_loss on the CPU") {
  const Tensor<double> f = random_features<double>(2 * 45, 16, 21);
  CHECK(relative_error(cuda::supcon_loss_fused(f, Pairing::identity(45)), simclr_loss(f, 2)) < 1e-10);
}

TEST_CASE("Fused and naive CUDA kernels agree in float at N = 4,096") {
  const Tensor<float> f = random_features<float>(4096, 128, 31);
  const Pairing pairing = Pairing::from_labels(random_labels(2048, 100, 32));
  CHECK(relative_error(cuda::supcon_loss_fused(f, pairing), cuda::supcon_loss_naive(f, pairing)) < 1e-4);
}

TEST_CASE("On device memory the fused kernels count the layout's positives and reduce to the host sum") {
  const index_t views = 2, batch = 100, dim = 24;
  const Tensor<double> f = random_features<double>(views * batch, dim, 41);
  const Pairing pairing = Pairing::from_labels(random_labels(batch, 9, 42));
  SupConOptions opt;
  opt.no_positives = NoPositives::exclude;
  const detail::ContrastLayout lay = detail::make_contrast_layout(f, pairing, opt);
  cuda::DeviceBuffer<double> F, dF(static_cast<std::size_t>(f.size()));
  cuda::DeviceBuffer<std::int32_t> classes;
  F.upload(f.data(), static_cast<std::size_t>(f.size()));
  classes.upload(pairing.classes().data(), pairing.classes().size());
  cuda::FusedSupCon<double> loss;
  loss.run(F.data(), classes.data(), views * batch, dim, batch, opt, dF.data());
  const std::vector<int> counted = loss.positives();
  for (index_t i = 0; i < lay.anchors; ++i)
    CHECK(counted[static_cast<std::size_t>(i)] == lay.positives[static_cast<std::size_t>(i)]);
  LossResult<double> host_sum;
  cuda::fill_loss_result(lay, opt, loss.unscaled_losses(), host_sum);
  CHECK(loss.value() == Approx(host_sum.value).epsilon(1e-12));
  CHECK(loss.workspace_bytes() < 100 * static_cast<std::size_t>(views * batch) * sizeof(double));  // O(N)
}

TEST_CASE("At temperature 0.01 the fused CUDA kernels stay finite in float and close to double") {
  const Tensor<double> fd = random_features<double>(2 * 70, 32, 51);
  Tensor<float> ff({2 * 70, 32});
  for (index_t k = 0; k < fd.size(); ++k) ff[k] = static_cast<float>(fd[k]);
  const Pairing pairing = Pairing::from_labels(random_labels(70, 5, 52));
  SupConOptions opt;
  opt.temperature = opt.base_temperature = 0.01;
  const LossResult<float> lf = cuda::supcon_loss_fused(ff, pairing, opt);
  CHECK(std::isfinite(lf.value));
  CHECK(lf.grad.all_finite());
  CHECK(lf.value == Approx(supcon_loss_reference(fd, pairing, opt).value).epsilon(1e-3));
}

TEST_CASE("The blocked CUDA SupCon loss equals the CPU reference for every supported option, one_positive too, in one block or many") {
  // one block for all rows, 7 rows per block (a ragged last one), one row per block
  for (index_t views : {2, 3})
    for (index_t dim : {5, 128}) {
      const index_t batch = 37, n = views * batch;
      const Pairing pairing = Pairing::from_labels(random_labels(batch, 6, 7 * batch + dim));
      const Tensor<double> fd = random_features<double>(n, dim, 9 * batch + dim);
      Tensor<float> ff({n, dim});
      for (index_t k = 0; k < fd.size(); ++k) ff[k] = static_cast<float>(fd[k]);
      for (index_t block : {index_t(1) << 28, 7 * n, index_t(1)})
        for (const SupConOptions& opt : fused_options(true)) {
          INFO("V " << views << " D " << dim << " block " << block << " mode " << static_cast<int>(opt.contrast_mode)
                    << " sum " << static_cast<int>(opt.summation) << " den " << static_cast<int>(opt.denominator)
                    << " policy " << static_cast<int>(opt.no_positives));
          CHECK(relative_error(cuda::supcon_loss_blocked(fd, pairing, opt, block),
                               supcon_loss_reference(fd, pairing, opt)) < 1e-10);
          CHECK(relative_error(cuda::supcon_loss_blocked(ff, pairing, opt, block),
                               supcon_loss_reference(ff, pairing, opt)) < 1e-4);
        }
    }
}

TEST_CASE("At N = 4,096 in float the blocked loss agrees with the fused kernels, and with the naive one for one_positive; also past the fused kernels' D limit") {
  const Tensor<float> f = random_features<float>(4096, 128, 33);
  const Pairing pairing = Pairing::from_labels(random_labels(2048, 100, 34));
  CHECK(relative_error(cuda::supcon_loss_blocked(f, pairing), cuda::supcon_loss_fused(f, pairing)) < 1e-4);
  SupConOptions one_pos;
  one_pos.denominator = Denominator::one_positive;
  CHECK(relative_error(cuda::supcon_loss_blocked(f, pairing, one_pos), cuda::supcon_loss_naive(f, pairing, one_pos)) <
        1e-4);
  // D = 4096 is refused by the fused kernels (shared memory) but not by the blocked loss
  const Tensor<double> wide = random_features<double>(4, 4096, 62);
  CHECK(relative_error(cuda::supcon_loss_blocked(wide, Pairing::identity(2)),
                       supcon_loss_reference(wide, Pairing::identity(2))) < 1e-10);
}

TEST_CASE("The blocked CUDA loss refuses a mask and a positives cap, as the fused kernels do, and a block of no entries") {
  const Tensor<double> f = random_features<double>(10, 3, 61);
  SupConOptions cap;
  cap.positives_cap = 2;
  CHECK_THROWS_WITH(cuda::supcon_loss_blocked(f, losses_test::five_mask()), Catch::Contains("mask"));
  CHECK_THROWS_WITH(cuda::supcon_loss_blocked(f, losses_test::five_labels(), cap), Catch::Contains("positives_cap"));
  CHECK_THROWS_WITH(cuda::supcon_loss_blocked(f, losses_test::five_labels(), SupConOptions{}, 0),
                    Catch::Contains("block_elements"));
}

TEST_CASE("The fused CUDA kernels refuse a mask, a positives cap and one_positive, naming the option") {
  const Tensor<double> f = random_features<double>(10, 3, 61);
  SupConOptions cap, one_pos;
  cap.positives_cap = 2;
  one_pos.denominator = Denominator::one_positive;
  CHECK_THROWS_WITH(cuda::supcon_loss_fused(f, losses_test::five_mask()), Catch::Contains("mask"));
  CHECK_THROWS_WITH(cuda::supcon_loss_fused(f, losses_test::five_labels(), cap), Catch::Contains("positives_cap"));
  CHECK_THROWS_WITH(cuda::supcon_loss_fused(f, losses_test::five_labels(), one_pos), Catch::Contains("one_positive"));
}

TEST_CASE("The fused CUDA kernels refuse a feature dimension too large for shared memory, naming D") {
  // the backward pass keeps 32 x D accumulators per block in shared memory
  const Tensor<double> f = random_features<double>(4, 4096, 62);
  CHECK_THROWS_WITH(cuda::supcon_loss_fused(f, Pairing::identity(2)), Catch::Contains("D = 4096"));
}

TEST_CASE("Degenerate batches give the reference's zero loss and zero gradient on the fused kernels") {
  // one row: no positive, no negative; distinct labels with one view: no anchor has a positive
  SupConOptions exclude;
  exclude.no_positives = NoPositives::exclude;
  const Tensor<double> one = random_features<double>(1, 3, 63), distinct = random_features<double>(6, 3, 64);
  CHECK(relative_error(cuda::supcon_loss_fused(one, Pairing::identity(1)),
                       supcon_loss_reference(one, Pairing::identity(1))) == 0.0);
  const LossResult<double> r = cuda::supcon_loss_fused(distinct, Pairing::identity(6), exclude);
  CHECK(r.value == 0.0);
  CHECK(r.grad.vec().cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("Bad input to the CUDA losses throws the CPU losses' errors before any launch") {
  Tensor<double> f = random_features<double>(10, 3, 71);
  CHECK_THROWS_AS(cuda::supcon_loss_fused(f, Pairing::identity(3)), ShapeError);  // 10 rows, 3 samples
  CHECK_THROWS_AS(cuda::supcon_loss_naive(f, Pairing::identity(3)), ShapeError);
  f(4, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(cuda::supcon_loss_fused(f, Pairing::identity(5)), ValueError);
  CHECK_THROWS_AS(cuda::cross_entropy(f, std::vector<std::int64_t>(10, 0)), ValueError);
  CHECK_THROWS_AS((cuda::cross_entropy(random_features<double>(4, 3, 72), {0, 1, 2})), ShapeError);
  CHECK_THROWS_AS((cuda::cross_entropy(random_features<double>(3, 3, 73), {0, 1, 3})), ValueError);
}

TEST_CASE("The CUDA cross-entropy equals cross_entropy, with and without label smoothing") {
  const Tensor<double> z = random_features<double>(300, 10, 81, false);
  const std::vector<std::int64_t> y = random_labels(300, 10, 82);
  for (double eps : {0.0, 0.1}) {
    CHECK(relative_error(cuda::cross_entropy(z, y, eps), supcon::cross_entropy(z, y, eps)) < 1e-12);
    Tensor<float> zf({300, 10});
    for (index_t k = 0; k < z.size(); ++k) zf[k] = static_cast<float>(z[k]);
    CHECK(relative_error(cuda::cross_entropy(zf, y, eps), supcon::cross_entropy(zf, y, eps)) < 1e-5);
  }
}

TEST_CASE("A failed CUDA call throws CudaError naming the call and quoting the CUDA error") {
  CHECK_THROWS_WITH(cuda::check(cudaErrorInvalidValue, "cudaMemcpy(features)"),
                    Catch::StartsWith("cudaMemcpy(features): ") && Catch::Contains("invalid argument"));
  cuda::DeviceBuffer<double> huge;
  CHECK_THROWS_AS(huge.resize(std::size_t(1) << 60), cuda::CudaError);  // 8 EiB: out of memory
  // the failure is not reported again by the next launch's check
  CHECK_NOTHROW(cuda::supcon_loss_fused(random_features<double>(8, 3, 91), Pairing::identity(4)));
}
