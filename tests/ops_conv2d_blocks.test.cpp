// The fast convolution groups images with small feature maps into one wider
// product, multiplies 1x1 stride-1 inputs directly, and runs strided 3x3
// layers of 16-channel multiples with channels in vectors; all must give what
// the direct loops give, whatever the thread count and however the batch splits.
#include <catch2/catch.hpp>

#include <type_traits>

#include "layers_test_util.hpp"
#include <supcon/config.hpp>
#include <supcon/ops/conv2d.hpp>

using supcon::Tensor;
namespace ops = supcon::ops;

using layers_test::randn;
using layers_test::scaled_error;

namespace {
struct Geometry { long n, c, h, w, oc, k, s, p; };

// Runs the fast and the direct forward and backward on one geometry and
// compares every output: to 1e-12 in double, to float rounding in float
// (where the fast path runs the AVX2 product when the CPU has it).
template <class T = double>
void check_against_naive(const Geometry& g) {
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  INFO("x (" << g.n << ", " << g.c << ", " << g.h << ", " << g.w << "), oc=" << g.oc << " k=" << g.k
             << " s=" << g.s << " p=" << g.p);
  const Tensor<T> x = randn<T>({g.n, g.c, g.h, g.w}, 11);
  const Tensor<T> w = randn<T>({g.oc, g.c, g.k, g.k}, 12);
  const Tensor<T> b = randn<T>({g.oc}, 13);
  ops::Conv2dWorkspace<T> ws;
  Tensor<T> y_fast, y_naive;
  ops::conv2d_forward(x, w, &b, g.s, g.p, y_fast, ws);
  ops::conv2d_forward_naive(x, w, &b, g.s, g.p, y_naive);
  REQUIRE(y_fast.shape() == y_naive.shape());
  CHECK(scaled_error(y_fast, y_naive) < tol);

  const Tensor<T> dy = randn<T>(y_fast.shape(), 14);
  // dweight and dbias start non-zero: both paths must add to them
  Tensor<T> dx_fast, dx_naive, dw_fast = randn<T>(w.shape(), 15), dw_naive = dw_fast;
  Tensor<T> db_fast = randn<T>({g.oc}, 16), db_naive = db_fast;
  dx_fast = randn<T>(x.shape(), 17);  // stale values must be overwritten
  ops::conv2d_backward(dy, x, w, g.s, g.p, dx_fast, dw_fast, &db_fast, ws);
  ops::conv2d_backward_naive(dy, x, w, g.s, g.p, dx_naive, dw_naive, &db_naive);
  CHECK(scaled_error(dx_fast, dx_naive) < tol);
  CHECK(scaled_error(dw_fast, dw_naive) < tol);
  CHECK(scaled_error(db_fast, db_naive) < tol);
}

// 4x4 and 2x2 maps are grouped many images to a product (a ragged last group
// with 7 images), 1x1 stride 1 goes straight to the GEMM when one image is a group.
// Rows of more and of at most 8 outputs (copied by runs, or gathered), and
// unfolded matrices of 360 and 288 rows (more than the product's 256-deep
// slices of K).
const Geometry geometries[] = {{7, 3, 4, 4, 5, 3, 1, 1},  {9, 4, 4, 3, 3, 3, 2, 1},
                               {1, 6, 5, 4, 3, 1, 1, 0},  {6, 6, 2, 2, 4, 1, 1, 0},
                               {3, 2, 40, 30, 2, 1, 1, 0}, {5, 2, 9, 9, 3, 3, 3, 0},
                               {2, 2, 6, 5, 3, 5, 2, 2}, {3, 16, 28, 28, 16, 3, 1, 1},
                               {17, 64, 4, 4, 128, 3, 2, 1}, {4, 32, 7, 7, 64, 1, 1, 0},
                               {3, 3, 20, 18, 5, 3, 2, 1},  {2, 3, 12, 12, 7, 3, 1, 1},
                               {2, 40, 10, 10, 7, 3, 2, 1}, {2, 32, 20, 20, 6, 3, 2, 1}};

// Float stride-2 convolutions with channels in multiples of 16: the 3x3 ones
// take the path with sixteen channels per vector where the CPU has AVX-512
// (ops/conv2d_vec.hpp), the 1x1 ones im2col's. The demo's and ResNet's stage
// transitions, odd and non-square maps, several images to a block with a
// ragged last one, output channels that pick each register block, a 1x1 map.
const Geometry vector_geometries[] = {{3, 16, 28, 28, 32, 3, 2, 1}, {2, 32, 14, 14, 64, 3, 2, 1},
                                      {9, 64, 7, 7, 128, 3, 2, 1}, {2, 16, 28, 28, 32, 1, 2, 0},
                                      {3, 32, 9, 8, 16, 1, 2, 0},  {2, 16, 5, 6, 48, 3, 2, 1},
                                      {1, 16, 1, 1, 16, 3, 2, 1}};
}  // namespace

TEST_CASE("Grouped and direct convolutions equal the direct loops with the default threads") {
  for (const Geometry& g : geometries) check_against_naive(g);
}

TEST_CASE("Grouped and direct convolutions equal the direct loops on one thread") {
  layers_test::with_threads(1, [] {
    for (const Geometry& g : geometries) check_against_naive(g);
  });
}

TEST_CASE("Grouped and direct convolutions equal the direct loops on three threads") {
  layers_test::with_threads(3, [] {
    for (const Geometry& g : geometries) check_against_naive(g);
  });
}

TEST_CASE("Float gradients of grouped convolutions are the same bit for bit on one, two and three threads") {
  // 96 images of 12x12, stride 2: 7 groups of 15 images whatever the threads,
  // each group's weight gradient summed into its own run's partial, the
  // groups to whichever thread is free. With 16 channels, where the CPU has
  // AVX-512, the path with channels in vectors: 24 blocks of 4 images in 15 runs.
  for (long c : {8, 16}) {
    INFO(c << " channels");
    const Tensor<float> x = randn<float>({96, c, 12, 12}, 41), w = randn<float>({16, c, 3, 3}, 42);
    const Tensor<float> dy = randn<float>({96, 16, 6, 6}, 43);
    CHECK(layers_test::same_bits_on_1_2_3_threads(w.shape(), [&](Tensor<float>& dx, Tensor<float>& dw) {
      ops::Conv2dWorkspace<float> ws;
      ops::conv2d_backward(dy, x, w, 2, 1, dx, dw, nullptr, ws);
    }));
  }
}

TEST_CASE("An empty batch adds nothing to the weight gradient, on every path") {
  // 8 channels: 3x3 stride 1 Winograd, the rest grouped; 16 channels: with
  // channels in vectors where the CPU has AVX-512 (3x3), else as with 8
  for (long c : {8, 16})
    for (long k : {3, 1})
      for (long s : {1, 2}) {
        const long o = (6 + 2 * (k / 2) - k) / s + 1;
        const Tensor<float> x({0, c, 6, 6}), w = randn<float>({8, c, k, k}, 44), dy({0, 8, o, o});
        Tensor<float> dx, dw = randn<float>(w.shape(), 45);
        const Tensor<float> before = dw;
        ops::Conv2dWorkspace<float> ws;
        ops::conv2d_backward(dy, x, w, s, k / 2, dx, dw, nullptr, ws);
        CHECK(dx.shape() == x.shape());
        CHECK(dw.vec() == before.vec());
      }
}

TEST_CASE("Float convolutions equal the direct loops to float rounding") {
  for (const Geometry& g : geometries) check_against_naive<float>(g);
}

TEST_CASE("Float strided convolutions of 16-channel multiples equal the direct loops on 1, 2 and 3 threads") {
  if (!supcon::detail::gemm::cpu_has_avx512f()) WARN("this CPU has no AVX-512F: they take the im2col path");
  for (const Geometry& g : vector_geometries)
    CHECK(ops::detail::conv_vec::usable<float>(g.c, g.oc, g.k, g.s) ==
          (g.k == 3 && supcon::detail::gemm::wide_kernel()));
  CHECK_FALSE(ops::detail::conv_vec::usable<float>(256, 512, 3, 2));  // windows past the cache: im2col's path
  CHECK_FALSE(ops::detail::conv_vec::usable<float>(16, 32, 3, 1));    // stride 1: Winograd's
  for (int threads : {1, 2, 3})
    layers_test::with_threads(threads, [] {
      for (const Geometry& g : vector_geometries) check_against_naive<float>(g);
    });
}
