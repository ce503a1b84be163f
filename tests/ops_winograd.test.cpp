// Winograd F(4x4, 3x3) against the direct loops (odd and even sizes, every
// padding it takes, blocks of many small images, several thread counts), its
// backward against central differences, and its refusals.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <type_traits>
#include <vector>

#include "layers_test_util.hpp"
#include <supcon/config.hpp>
#include <supcon/ops/conv2d.hpp>
#include <supcon/ops/winograd.hpp>
#include <supcon/testing/gradcheck.hpp>

using supcon::Tensor;
namespace ops = supcon::ops;

using layers_test::randn;
using layers_test::scaled_error;

namespace {
struct Geometry { long n, c, h, w, oc, p; };

// Forward and backward of the Winograd path and of the direct loops on one
// geometry: to 1e-12 in double, to float rounding in float. F(4x4, 3x3)
// amplifies the rounding of its products (A^T has entries up to 8): on 300
// input channels the forward is off by about 8e-6 of the largest output.
template <class T = double>
void check_against_naive(const Geometry& g) {
  const double tol = std::is_same_v<T, float> ? 3e-5 : 1e-12;
  INFO("x (" << g.n << ", " << g.c << ", " << g.h << ", " << g.w << "), oc=" << g.oc << " p=" << g.p);
  const Tensor<T> x = randn<T>({g.n, g.c, g.h, g.w}, 21);
  const Tensor<T> w = randn<T>({g.oc, g.c, 3, 3}, 22);
  const Tensor<T> b = randn<T>({g.oc}, 23);
  ops::WinogradWorkspace<T> ws;
  Tensor<T> y_fast, y_naive;
  ops::conv2d_winograd_forward(x, w, &b, g.p, y_fast, ws);
  ops::conv2d_forward_naive(x, w, &b, 1, g.p, y_naive);
  REQUIRE(y_fast.shape() == y_naive.shape());
  CHECK(scaled_error(y_fast, y_naive) < tol);

  const Tensor<T> dy = randn<T>(y_fast.shape(), 24);
  // dweight and dbias start non-zero (both must be added to); dx holds stale values
  Tensor<T> dx_fast = randn<T>(x.shape(), 25), dx_naive;
  Tensor<T> dw_fast = randn<T>(w.shape(), 26), dw_naive = dw_fast;
  Tensor<T> db_fast = randn<T>({g.oc}, 27), db_naive = db_fast;
  ops::conv2d_winograd_backward(dy, x, w, g.p, dx_fast, dw_fast, &db_fast, ws);
  ops::conv2d_backward_naive(dy, x, w, 1, g.p, dx_naive, dw_naive, &db_naive);
  CHECK(scaled_error(dx_fast, dx_naive) < tol);
  CHECK(scaled_error(dw_fast, dw_naive) < tol);
  CHECK(scaled_error(db_fast, db_naive) < tol);
}

// Outputs of every size modulo 4 (the last 4x4 blocks partly outside),
// padding 0, 1 and 2, one channel, 1x1 and 2x2 maps, 4x4 maps grouped many
// images to a block with a ragged last block, and 28x28 maps three to a block;
// maps of one tile (4x4 and smaller) and of 2x2 tiles (5x6 to 8x8), whose
// row transforms run across images, with every padding.
const Geometry geometries[] = {{2, 3, 6, 6, 4, 1},   {3, 2, 7, 5, 3, 1},  {2, 4, 5, 8, 2, 0},  {2, 3, 4, 3, 5, 2},
                               {1, 1, 9, 9, 1, 1},   {5, 2, 1, 1, 3, 1},  {4, 3, 2, 2, 2, 1},  {70, 8, 4, 4, 9, 1},
                               {3, 16, 28, 28, 16, 1}, {2, 5, 3, 3, 6, 0},  {70, 8, 7, 7, 9, 1}, {5, 3, 8, 8, 4, 0},
                               {3, 4, 5, 6, 3, 2}};

}  // namespace

TEST_CASE("Winograd convolutions equal the direct loops, forward and backward, with the default threads") {
  for (const Geometry& g : geometries) check_against_naive(g);
}

TEST_CASE("Winograd convolutions equal the direct loops on one thread and on three") {
  for (int threads : {1, 3})
    layers_test::with_threads(threads, [] {
      for (const Geometry& g : geometries) check_against_naive(g);
    });
}

// Float shapes past the product's blocking: channels not a multiple of its
// 6-row panels, more output channels than one 120-row block, more input
// channels than one 256-deep slice, blocks whose tiles end inside a panel.
const Geometry float_geometries[] = {{3, 70, 9, 9, 13, 1}, {2, 10, 6, 6, 130, 1}, {2, 300, 4, 4, 7, 1},
                                     {5, 9, 5, 7, 11, 2}};

// Channels in multiples of 16, which take the path with sixteen channels
// per vector where the CPU has AVX-512 (ops/winograd_vec.hpp): 16, 32 and 64
// output channels and more (the product's three register blocks), forward
// and data gradient both ways round (16 -> 48 is 48 -> 16 backward), every
// padding, maps of one tile, of a few and odd-sized, a 1x1 map, and 70
// one-tile images whose blocks end inside a register block of rows.
const Geometry vector_geometries[] = {{3, 16, 14, 14, 32, 1}, {2, 32, 7, 7, 64, 0}, {5, 16, 4, 4, 48, 2},
                                      {70, 16, 4, 4, 16, 1},  {2, 64, 9, 11, 16, 1}, {3, 128, 5, 6, 128, 2},
                                      {2, 16, 1, 1, 16, 1}};

TEST_CASE("Float Winograd convolutions equal the direct loops to float rounding") {
  for (const Geometry& g : geometries) check_against_naive<float>(g);
  for (const Geometry& g : float_geometries) check_against_naive<float>(g);
  for (const Geometry& g : vector_geometries) check_against_naive<float>(g);
}

TEST_CASE("Float Winograd convolutions equal the direct loops on one thread and on three") {
  for (int threads : {1, 3})
    layers_test::with_threads(threads, [] {
      for (const Geometry& g : geometries) check_against_naive<float>(g);
      for (const Geometry& g : float_geometries) check_against_naive<float>(g);
      for (const Geometry& g : vector_geometries) check_against_naive<float>(g);
    });
}

TEST_CASE("Sixteen channels per vector and sixteen tiles per vector give the same convolution") {
  namespace wg = ops::detail::winograd;
  bool& wide = supcon::detail::gemm::wide_kernel();  // also selects the path with channels in vectors
  if (!supcon::detail::gemm::cpu_has_avx512f()) {
    WARN("this CPU has no AVX-512F: only the path with tiles in vectors runs");
    return;
  }
  const bool saved = wide;
  for (const Geometry& g : {Geometry{3, 16, 28, 28, 16, 1}, Geometry{2, 32, 7, 7, 64, 0}}) {
    INFO("x (" << g.n << ", " << g.c << ", " << g.h << ", " << g.w << "), oc=" << g.oc << " p=" << g.p);
    const Tensor<float> x = randn<float>({g.n, g.c, g.h, g.w}, 61), w = randn<float>({g.oc, g.c, 3, 3}, 62);
    const Tensor<float> b = randn<float>({g.oc}, 63);
    Tensor<float> y[2], dx[2], dw[2] = {Tensor<float>(w.shape()), Tensor<float>(w.shape())};
    for (int v = 0; v < 2; ++v) {
      wide = v == 1;
      CHECK(wg::vec::usable<float>(g.c, g.oc) == wide);
      ops::WinogradWorkspace<float> ws;
      ops::conv2d_winograd_forward(x, w, &b, g.p, y[v], ws);
      ops::conv2d_winograd_backward(y[0], x, w, g.p, dx[v], dw[v], nullptr, ws);
    }
    CHECK(scaled_error(y[1], y[0]) < 1e-5);
    CHECK(scaled_error(dx[1], dx[0]) < 1e-5);
    CHECK(scaled_error(dw[1], dw[0]) < 1e-5);
  }
  wide = saved;
}

TEST_CASE("Float Winograd gradients are the same bit for bit on one, two and three threads") {
  // 64 images of 16x16 make 8 blocks of 8 images whatever the threads, each
  // block's weight gradient summed into its own run's partial: the blocks go
  // to whichever thread is free, and the sum may not depend on which that was
  // (8 channels: sixteen tiles per vector; 16: sixteen channels, with AVX-512)
  for (long c : {8, 16}) {
    INFO(c << " channels");
    const Tensor<float> x = randn<float>({64, c, 16, 16}, 31), w = randn<float>({c, c, 3, 3}, 32);
    const Tensor<float> dy = randn<float>({64, c, 16, 16}, 33);
    CHECK(layers_test::same_bits_on_1_2_3_threads(w.shape(), [&](Tensor<float>& dx, Tensor<float>& dw) {
      ops::WinogradWorkspace<float> ws;
      ops::conv2d_winograd_backward(dy, x, w, 1, dx, dw, nullptr, ws);
    }));
  }
}

TEST_CASE("Output rows interleave and de-interleave the tiles' four arrays for every row length") {
  namespace wg = ops::detail::winograd;
  constexpr long L = 13;  // four arrays of 13 tiles
  std::vector<float> arrays(4 * L), row(4 * L), back(4 * L);
  for (long i = 0; i < 4 * L; ++i) arrays[static_cast<std::size_t>(i)] = static_cast<float>(i) + 0.5f;
  for (long n = 0; n <= L; ++n) {  // groups of four, overlapping tails, and the scalar short rows
    INFO("tiles " << n);
    std::fill(row.begin(), row.end(), -1.f);
    std::fill(back.begin(), back.end(), -1.f);
    wg::interleave_tiles(arrays.data(), L, n, row.data());
    wg::deinterleave_tiles(row.data(), n, back.data(), L);
    long wrong = 0;
    for (long t = 0; t < L; ++t)
      for (long j = 0; j < 4; ++j) {
        const float r = row[static_cast<std::size_t>(4 * t + j)], b = back[static_cast<std::size_t>(j * L + t)];
        wrong += t < n ? (r != arrays[static_cast<std::size_t>(j * L + t)] || b != r) : (r != -1.f || b != -1.f);
      }
    CHECK(wrong == 0);
  }
}

TEST_CASE("The input transform writes whole panels at once as it writes them tile by tile") {
  namespace wg = ops::detail::winograd;
  constexpr long NC = supcon::gemm_panel_cols, C = 3, c = 1;  // channel 1 of 3: panels hold other channels too
  for (long L = 1; L <= 3 * NC + 5; ++L) {
    INFO("tiles " << L);
    const long ES = wg::entries_stride(L), panels = (L + NC - 1) / NC, plane = panels * NC * C + 7;
    std::vector<float> E(static_cast<std::size_t>(wg::kPositions * ES));
    for (std::size_t i = 0; i < E.size(); ++i) E[i] = static_cast<float>((i * 37) % 101) / 17.f - 3.f;
    std::vector<float> whole(static_cast<std::size_t>(wg::kPositions * plane), -1.f), single = whole;
    const long pstride = supcon::gemm_packed_b_index(0, NC, C);
    wg::input_panels(E.data(), ES, L, whole.data() + supcon::gemm_packed_b_index(c, 0, C), pstride, plane);
    for (long t = 0; t < L; ++t)
      wg::input_tiles(E.data(), ES, t, 1, single.data() + supcon::gemm_packed_b_index(c, t, C), plane);
    // the same entries (to rounding: one loop may fuse a product and a sum
    // that the other does not), and nothing written where the other wrote nothing
    long wrong = 0;
    for (std::size_t i = 0; i < whole.size(); ++i) {
      const float a = whole[i], b = single[i];
      wrong += b == -1.f ? a != -1.f : std::abs(a - b) > 1e-5f * (1 + std::abs(b));
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("One workspace serves convolutions of different shapes in turn") {
  ops::WinogradWorkspace<float> ws;
  std::vector<Geometry> all(std::begin(geometries), std::end(geometries));
  all.insert(all.end(), std::begin(vector_geometries), std::end(vector_geometries));
  for (const Geometry& g : all) {
    const Tensor<float> x = randn<float>({g.n, g.c, g.h, g.w}, 31);
    const Tensor<float> w = randn<float>({g.oc, g.c, 3, 3}, 32);
    Tensor<float> y_fast, y_naive;
    ops::conv2d_winograd_forward(x, w, nullptr, g.p, y_fast, ws);
    ops::conv2d_forward_naive(x, w, nullptr, 1, g.p, y_naive);
    REQUIRE(y_fast.shape() == y_naive.shape());
    CHECK(scaled_error(y_fast, y_naive) < 1e-5);
  }
}

TEST_CASE("The Winograd backward matches central differences of <conv(x, w, b), dy>") {
  const Geometry g{2, 3, 5, 6, 4, 1};
  Tensor<double> x = randn<double>({g.n, g.c, g.h, g.w}, 41);
  Tensor<double> w = randn<double>({g.oc, g.c, 3, 3}, 42);
  Tensor<double> b = randn<double>({g.oc}, 43);
  ops::WinogradWorkspace<double> ws;
  Tensor<double> y;
  ops::conv2d_winograd_forward(x, w, &b, g.p, y, ws);
  const Tensor<double> dy = randn<double>(y.shape(), 44);
  Tensor<double> dx, dw(w.shape()), db({g.oc});
  ops::conv2d_winograd_backward(dy, x, w, g.p, dx, dw, &db, ws);

  std::function<double(const Tensor<double>&)> f = [&](const Tensor<double>&) {
    Tensor<double> out;
    ops::WinogradWorkspace<double> fws;
    ops::conv2d_winograd_forward(x, w, &b, g.p, out, fws);
    return out.vec().dot(dy.vec());
  };
  // f is linear in each argument, so a large step only reduces rounding.
  CHECK(supcon::testing::gradient_error(f, x, dx, 1e-1) < 1e-8);
  CHECK(supcon::testing::gradient_error(f, w, dw, 1e-1) < 1e-8);
  CHECK(supcon::testing::gradient_error(f, b, db, 1e-1) < 1e-8);
}

TEST_CASE("The convolution takes the Winograd path only for 3x3 stride-1 kernels with enough channels") {
  CHECK(ops::conv2d_use_winograd(16, 16, 3, 1, 1));
  CHECK_FALSE(ops::conv2d_use_winograd(16, 16, 3, 2, 1));
  CHECK_FALSE(ops::conv2d_use_winograd(16, 16, 1, 1, 0));
  CHECK_FALSE(ops::conv2d_use_winograd(16, 16, 3, 1, 3));
  CHECK_FALSE(ops::conv2d_use_winograd(1, 16, 3, 1, 1));  // the stem of a grayscale network
}

TEST_CASE("The Winograd path refuses other kernels, paddings and a dy of the wrong shape") {
  const Tensor<double> x = randn<double>({1, 2, 5, 5}, 51);
  ops::WinogradWorkspace<double> ws;
  Tensor<double> y;
  CHECK_THROWS_AS(ops::conv2d_winograd_forward(x, randn<double>({3, 2, 5, 5}, 52), nullptr, 1, y, ws),
                  supcon::ShapeError);
  CHECK_THROWS_WITH(ops::conv2d_winograd_forward(x, randn<double>({3, 2, 3, 3}, 53), nullptr, 3, y, ws),
                    Catch::Contains("padding 3"));
  const Tensor<double> w = randn<double>({3, 2, 3, 3}, 54);
  Tensor<double> dx, dw(w.shape());
  CHECK_THROWS_WITH(
      ops::conv2d_winograd_backward(randn<double>({1, 3, 4, 5}, 55), x, w, 1, dx, dw, nullptr, ws),
      Catch::Contains("dy has shape"));
}
