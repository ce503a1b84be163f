// The im2col + GEMM convolution against the direct loops, and the direct
// loops against central differences.
#include <catch2/catch.hpp>

#include "layers_test_util.hpp"
#include <functional>
#include <supcon/core/rng.hpp>
#include <supcon/ops/conv2d.hpp>
#include <supcon/testing/gradcheck.hpp>

using supcon::Rng;
using supcon::Shape;
using supcon::Tensor;
using supcon::testing::max_relative_error;
namespace ops = supcon::ops;

using layers_test::randn;

namespace {
struct Geometry { long n, c, h, w, oc, k, s, p; };
const Geometry geometries[] = {{2, 3, 6, 5, 4, 3, 1, 1}, {3, 2, 7, 8, 3, 3, 2, 1},
                               {2, 4, 5, 5, 2, 1, 2, 0}, {1, 3, 9, 4, 2, 3, 2, 0},
                               {2, 2, 4, 6, 3, 5, 1, 2}, {5, 1, 3, 3, 1, 3, 3, 1}};
}  // namespace

TEST_CASE("The im2col fast path equals the direct loops, forward and backward") {
  for (const Geometry& g : geometries) {
    INFO("x (" << g.n << ", " << g.c << ", " << g.h << ", " << g.w << "), k=" << g.k << " s=" << g.s << " p=" << g.p);
    const Tensor<double> x = randn<double>({g.n, g.c, g.h, g.w}, 1);
    const Tensor<double> w = randn<double>({g.oc, g.c, g.k, g.k}, 2);
    const Tensor<double> b = randn<double>({g.oc}, 3);
    Tensor<double> y_fast, y_naive;
    ops::Conv2dWorkspace<double> ws;
    ops::conv2d_forward(x, w, &b, g.s, g.p, y_fast, ws);
    ops::conv2d_forward_naive(x, w, &b, g.s, g.p, y_naive);
    REQUIRE(y_fast.shape() == y_naive.shape());
    CHECK(max_relative_error(y_fast, y_naive, 1e-9) < 1e-12);

    const Tensor<double> dy = randn<double>(y_fast.shape(), 4);
    Tensor<double> dx_fast, dx_naive, dw_fast(w.shape()), dw_naive(w.shape()), db_fast({g.oc}), db_naive({g.oc});
    ops::conv2d_backward(dy, x, w, g.s, g.p, dx_fast, dw_fast, &db_fast, ws);
    ops::conv2d_backward_naive(dy, x, w, g.s, g.p, dx_naive, dw_naive, &db_naive);
    CHECK(max_relative_error(dx_fast, dx_naive, 1e-9) < 1e-12);
    CHECK(max_relative_error(dw_fast, dw_naive, 1e-9) < 1e-12);
    CHECK(max_relative_error(db_fast, db_naive, 1e-9) < 1e-12);
  }
}

TEST_CASE("im2col through offset tables gives the same columns as the row loops") {
  // C, H, W, K, stride, padding: outputs 1 to 20 wide, windows reading
  // padding on every side, strides 1 to 3, rows of a wider block (ld)
  const long cases[][6] = {{3, 8, 8, 3, 2, 1}, {2, 7, 9, 3, 2, 1}, {2, 9, 6, 5, 2, 2}, {1, 10, 11, 3, 3, 0},
                           {2, 4, 4, 3, 1, 1}, {1, 12, 12, 7, 2, 3}, {2, 3, 2, 3, 2, 1}, {1, 20, 20, 3, 1, 1}};
  for (const auto& k : cases) {
    const long C = k[0], H = k[1], W = k[2], K = k[3], s = k[4], p = k[5];
    INFO("C=" << C << " H=" << H << " W=" << W << " K=" << K << " s=" << s << " p=" << p);
    const long OH = ops::window_output_size(H, K, s, p, "test"), OW = ops::window_output_size(W, K, s, p, "test");
    const long ld = OH * OW + 5;
    const Tensor<double> x = randn<double>({C, H, W}, 31);
    Tensor<double> rows({C * K * K, ld}, 7.0), gathered({C * K * K, ld}, 7.0);
    ops::detail::im2col_rows(x.data(), C, H, W, K, s, p, OH, OW, rows.data(), ld);
    ops::detail::im2col_gather(x.data(), C, H, W, K, s, p, OH, OW, gathered.data(), ld);
    CHECK(gathered.vec() == rows.vec());  // the entries past OH*OW of each row keep their 7s in both
  }
}

TEST_CASE("Parity planes unfold and fold stride-2 windows exactly as the row loops do") {
  // 3x3 with padding 1, 2x2 with padding 0 and 1; H, W odd and even, down
  // to a single pixel; rows of a wider block (ld)
  const long windows[][2] = {{3, 1}, {2, 0}, {2, 1}};
  const long sizes[][2] = {{28, 28}, {14, 14}, {7, 7}, {8, 5}, {5, 8}, {1, 1}, {2, 3}, {3, 2}, {32, 31}};
  const long C = 3;
  for (const auto& kp : windows)
    for (const auto& hw : sizes) {
      const long K = kp[0], p = kp[1], H = hw[0], W = hw[1];
      if (H + 2 * p < K || W + 2 * p < K) continue;
      INFO("K=" << K << " p=" << p << " H=" << H << " W=" << W);
      REQUIRE(ops::detail::im2col_use_parity(K, 2, p));
      const long OH = ops::window_output_size(H, K, 2, p, "test"), OW = ops::window_output_size(W, K, 2, p, "test");
      const long P = OH * OW, ld = 2 * P + 3;
      const Tensor<double> x = randn<double>({C, H, W}, 41);
      Tensor<double> rows({C * K * K, ld}, 7.0), planes({C * K * K, ld}, 7.0);
      ops::detail::im2col_rows(x.data(), C, H, W, K, 2, p, OH, OW, rows.data(), ld);
      ops::detail::im2col_parity(x.data(), C, H, W, K, p, OH, OW, planes.data(), ld);
      CHECK(planes.vec() == rows.vec());  // the entries past P of each row keep their 7s in both

      // into zeros, as the convolution's backward calls them: the same sums in the same order
      Tensor<double> dcol = randn<double>({C * K * K, ld}, 43);
      Tensor<double> dx_rows({C, H, W}, 0.0), dx_planes({C, H, W}, 0.0);
      ops::detail::col2im_ld(dcol.data(), ld, C, H, W, K, 2, p, OH, OW, dx_rows.data());
      ops::detail::col2im_parity(dcol.data(), ld, C, H, W, K, p, OH, OW, dx_planes.data());
      CHECK(dx_planes.vec() == dx_rows.vec());
      // it accumulates: folded again into its result, it doubles it (exactly, in binary)
      ops::detail::col2im_parity(dcol.data(), ld, C, H, W, K, p, OH, OW, dx_planes.data());
      CHECK(dx_planes.vec() == 2.0 * dx_rows.vec());
    }
  CHECK_FALSE(ops::detail::im2col_use_parity(3, 2, 0));
  CHECK_FALSE(ops::detail::im2col_use_parity(3, 1, 1));
  CHECK_FALSE(ops::detail::im2col_use_parity(1, 2, 1));
  CHECK_FALSE(ops::detail::im2col_use_parity(1, 2, 0));
  CHECK_FALSE(ops::detail::im2col_use_parity(5, 2, 2));
}

TEST_CASE("The fast path gives the same float results when its workspace is reused across shapes") {
  ops::Conv2dWorkspace<float> ws;
  for (const Geometry& g : geometries) {
    const Tensor<float> x = randn<float>({g.n, g.c, g.h, g.w}, 5);
    const Tensor<float> w = randn<float>({g.oc, g.c, g.k, g.k}, 6);
    Tensor<float> y_fast, y_naive;
    ops::conv2d_forward(x, w, nullptr, g.s, g.p, y_fast, ws);
    ops::conv2d_forward_naive(x, w, nullptr, g.s, g.p, y_naive);
    CHECK(max_relative_error(y_fast, y_naive, 1e-3) < 1e-5);
  }
}

TEST_CASE("The direct backward matches central differences of <conv(x, w, b), dy>") {
  const Geometry g{2, 2, 5, 4, 3, 3, 2, 1};
  Tensor<double> x = randn<double>({g.n, g.c, g.h, g.w}, 7);
  Tensor<double> w = randn<double>({g.oc, g.c, g.k, g.k}, 8);
  Tensor<double> b = randn<double>({g.oc}, 9);
  Tensor<double> y;
  ops::conv2d_forward_naive(x, w, &b, g.s, g.p, y);
  const Tensor<double> dy = randn<double>(y.shape(), 10);
  Tensor<double> dx, dw(w.shape()), db({g.oc});
  ops::conv2d_backward_naive(dy, x, w, g.s, g.p, dx, dw, &db);

  std::function<double(const Tensor<double>&)> f = [&](const Tensor<double>&) {
    Tensor<double> out;
    ops::conv2d_forward_naive(x, w, &b, g.s, g.p, out);
    return out.vec().dot(dy.vec());
  };
  // f is linear in each argument, so a larger step only reduces rounding.
  CHECK(supcon::testing::gradient_error(f, x, dx, 1e-3) < 1e-8);
  CHECK(supcon::testing::gradient_error(f, w, dw, 1e-3) < 1e-8);
  CHECK(supcon::testing::gradient_error(f, b, db, 1e-3) < 1e-8);
}

TEST_CASE("The output size follows floor((H + 2p - K) / s) + 1") {
  CHECK(ops::window_output_size(32, 3, 1, 1, "t") == 32);
  CHECK(ops::window_output_size(32, 3, 2, 1, "t") == 16);
  CHECK(ops::window_output_size(7, 3, 2, 0, "t") == 3);
  CHECK(ops::window_output_size(224, 7, 2, 3, "t") == 112);
  CHECK(ops::window_output_size(3, 3, 1, 0, "t") == 1);
}

TEST_CASE("Convolution refuses mismatched channels, bad options and inputs smaller than the kernel") {
  ops::Conv2dWorkspace<double> ws;
  Tensor<double> y;
  const Tensor<double> x({1, 3, 4, 4}), w({2, 3, 3, 3});
  CHECK_THROWS_AS(ops::conv2d_forward(x, Tensor<double>({2, 4, 3, 3}), nullptr, 1, 1, y, ws), supcon::ShapeError);
  CHECK_THROWS_AS(ops::conv2d_forward(x, Tensor<double>({2, 3, 3, 2}), nullptr, 1, 1, y, ws), supcon::ShapeError);
  CHECK_THROWS_AS(ops::conv2d_forward(x, w, nullptr, 0, 1, y, ws), supcon::ValueError);
  CHECK_THROWS_AS(ops::conv2d_forward(x, w, nullptr, 1, -1, y, ws), supcon::ValueError);
  CHECK_THROWS_AS(ops::conv2d_forward(Tensor<double>({1, 3, 2, 2}), w, nullptr, 1, 0, y, ws), supcon::ShapeError);
  const Tensor<double> b({3});
  CHECK_THROWS_WITH(ops::conv2d_forward_naive(x, w, &b, 1, 1, y), Catch::Contains("bias must be (2,)"));
}
