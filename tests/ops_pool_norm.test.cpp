// Properties of the pooling, normalisation, ReLU, linear and flatten ops that
// the gradient checks and the PyTorch fixtures do not spell out.
#include <catch2/catch.hpp>

#include "layers_test_util.hpp"
#include <cmath>
#include <cstdint>
#include <limits>
#include <supcon/core/rng.hpp>
#include <supcon/ops/activation.hpp>
#include <supcon/ops/batchnorm.hpp>
#include <supcon/ops/flatten.hpp>
#include <supcon/ops/linear.hpp>
#include <supcon/ops/normalize.hpp>
#include <supcon/ops/pool.hpp>

using supcon::Tensor;
namespace ops = supcon::ops;

using layers_test::randn;

TEST_CASE("Max pooling picks the first maximum on ties and routes dy only there") {
  // One 2x2 window holding four equal values: the top-left one wins.
  const Tensor<double> x({1, 1, 2, 2}, 3.0);
  Tensor<double> y, dx;
  std::vector<supcon::index_t> argmax;
  ops::maxpool2d_forward(x, 2, 2, 0, y, argmax);
  CHECK(y[0] == 3.0);
  ops::maxpool2d_backward(Tensor<double>({1, 1, 1, 1}, 5.0), argmax, x.shape(), dx);
  CHECK(dx.vec() == Eigen::Vector4d(5, 0, 0, 0));
}

TEST_CASE("Max pooling ignores padding even when every value is negative") {
  const Tensor<double> x({1, 1, 2, 2}, std::vector<double>{-4, -3, -2, -1});
  Tensor<double> y;
  std::vector<supcon::index_t> argmax;
  ops::maxpool2d_forward(x, 3, 1, 1, y, argmax);  // every window covers padding
  CHECK(y.vec() == Eigen::Vector4d(-1, -1, -1, -1));
}

TEST_CASE("Max pooling propagates a NaN instead of hiding it") {
  Tensor<double> x({1, 1, 2, 2}, std::vector<double>{1, 2, 3, 4});
  x[1] = std::numeric_limits<double>::quiet_NaN();
  Tensor<double> y;
  std::vector<supcon::index_t> argmax;
  ops::maxpool2d_forward(x, 2, 2, 0, y, argmax);
  CHECK(std::isnan(y[0]));
}

TEST_CASE("Average pooling counts padding as zeros in a K*K divisor") {
  // A corner window of a 3x3 kernel with padding 1 sees 4 ones and 5 zeros.
  const Tensor<double> x({1, 1, 2, 2}, 1.0);
  Tensor<double> y;
  ops::avgpool2d_forward(x, 3, 2, 1, y);
  CHECK(y.shape() == supcon::Shape{1, 1, 1, 1});
  CHECK(y[0] == Approx(4.0 / 9.0));
}

TEST_CASE("Pooling refuses padding larger than half the kernel") {
  Tensor<double> y;
  std::vector<supcon::index_t> argmax;
  CHECK_THROWS_AS(ops::maxpool2d_forward(Tensor<double>({1, 1, 4, 4}), 2, 2, 2, y, argmax), supcon::ValueError);
  CHECK_THROWS_AS(ops::avgpool2d_forward(Tensor<double>({1, 1, 4, 4}), 3, 1, 2, y), supcon::ValueError);
}

TEST_CASE("Training batch norm gives each channel zero mean and unit biased variance") {
  const Tensor<double> x = randn({6, 2, 3, 3}, 1);
  const Tensor<double> weight({2}, 1.0), bias({2}, 0.0);
  Tensor<double> y, mean, var;
  ops::batchnorm_forward_train(x, weight, bias, 0.0 + 1e-12, y, mean, var);
  for (supcon::index_t c = 0; c < 2; ++c) {
    double s = 0, sq = 0;
    for (supcon::index_t n = 0; n < 6; ++n)
      for (supcon::index_t k = 0; k < 9; ++k) {
        s += y(n, c, k / 3, k % 3);
        sq += y(n, c, k / 3, k % 3) * y(n, c, k / 3, k % 3);
      }
    CHECK(std::abs(s / 54) < 1e-12);
    CHECK(sq / 54 == Approx(1.0).epsilon(1e-9));
  }
}

TEST_CASE("The training batch-norm input gradient sums to zero and is orthogonal to xhat per channel") {
  // y does not change when a channel's input is shifted, so dx has no
  // component along 1. Scaling leaves y unchanged only as eps -> 0, so the
  // orthogonality to xhat is checked with a negligible eps (docs/backprop.md).
  const Tensor<double> x = randn({4, 2, 2, 3}, 8), dy = randn({4, 2, 2, 3}, 9);
  const Tensor<double> weight({2}, std::vector<double>{1.5, -0.7}), bias({2});
  Tensor<double> y, mean, var, dx, dweight({2}), dbias({2});
  ops::batchnorm_forward_train(x, weight, bias, 1e-14, y, mean, var);
  ops::batchnorm_backward_train(dy, x, weight, mean, var, 1e-14, dx, dweight, dbias);
  for (supcon::index_t c = 0; c < 2; ++c) {
    double sum = 0, along_xhat = 0;
    for (supcon::index_t n = 0; n < 4; ++n)
      for (supcon::index_t k = 0; k < 6; ++k) {
        const double g = dx(n, c, k / 3, k % 3);
        sum += g;
        along_xhat += g * (x(n, c, k / 3, k % 3) - mean[c]);
      }
    CHECK(std::abs(sum) < 1e-12);
    CHECK(std::abs(along_xhat) < 1e-12);
  }
}

TEST_CASE("Fused batch norm and ReLU equal the two ops in a row on maps split over threads, and keep a NaN") {
  // (7, 5, 9, 9): 35 slices of 81 entries, cut into uneven runs of slices by
  // two and three threads; the slices of one channel fall to different threads.
  // Maps of 2x2, 4x4 and 7x7 too: rows shorter than a vector, one vector, and
  // three and a part (the passes vectorise along a map's row).
  const Tensor<float> weight({5}, std::vector<float>{1.5f, -0.7f, 1.0f, 0.3f, 2.0f});
  const Tensor<float> bias({5}, std::vector<float>{0.1f, 0.2f, -0.4f, 0.0f, 1.0f});
  for (const supcon::Shape& shape : {supcon::Shape{7, 5, 9, 9}, supcon::Shape{9, 5, 2, 2}, supcon::Shape{3, 5, 4, 4},
                                     supcon::Shape{2, 5, 7, 7}}) {
    CAPTURE(supcon::shape_str(shape));
    Tensor<float> x(shape), dy(shape);
    supcon::Rng rng(21);
    for (supcon::index_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<float>(rng.normal()), dy[i] = static_cast<float>(rng.normal());
    Tensor<float> y_ref, mean_ref, var_ref, r_ref, dr, dx_ref, dw_ref({5}), db_ref({5});
    std::vector<std::uint8_t> mask_ref;
    ops::batchnorm_forward_train(x, weight, bias, 1e-5f, y_ref, mean_ref, var_ref);
    ops::relu_forward_mask(y_ref, r_ref, mask_ref);
    ops::relu_backward_mask(dy, mask_ref.data(), dr);
    ops::batchnorm_backward_train(dr, x, weight, mean_ref, var_ref, 1e-5f, dx_ref, dw_ref, db_ref);
    // the two ops in a row against their definitions, in double
    const supcon::index_t N = shape[0], S = shape[2] * shape[3];
    supcon::index_t off = 0;
    for (supcon::index_t c = 0; c < 5; ++c) {
      const double mu = mean_ref[c], invstd = 1 / std::sqrt(double(var_ref[c]) + 1e-5), w = weight[c];
      double mean_g = 0, mean_g_xhat = 0;  // g = w dr
      for (supcon::index_t n = 0; n < N; ++n)
        for (supcon::index_t k = 0; k < S; ++k) {
          const supcon::index_t i = (n * 5 + c) * S + k;
          const double xhat = (x[i] - mu) * invstd, b = w * xhat + bias[c];
          off += std::abs(r_ref[i] - std::max(b, 0.0)) > 1e-5 || dr[i] != (b > 0 ? dy[i] : 0.0f);
          mean_g += w * dr[i] / double(N * S), mean_g_xhat += w * dr[i] * xhat / double(N * S);
        }
      for (supcon::index_t n = 0; n < N; ++n)
        for (supcon::index_t k = 0; k < S; ++k) {
          const supcon::index_t i = (n * 5 + c) * S + k;
          const double xhat = (x[i] - mu) * invstd;
          off += std::abs(dx_ref[i] - invstd * (w * dr[i] - mean_g - xhat * mean_g_xhat)) > 1e-4;
        }
    }
    CHECK(off == 0);
    for (int threads : {1, 2, 3})
      layers_test::with_threads(threads, [&] {
        Tensor<float> y, mean, var, dx, dw({5}), db({5});
        std::vector<std::uint8_t> mask;
        ops::batchnorm_relu_forward_train(x, weight, bias, 1e-5f, y, mask, mean, var);
        ops::batchnorm_relu_backward_train(dy, mask.data(), x, weight, mean, var, 1e-5f, dx, dw, db);
        REQUIRE(y.shape() == x.shape());
        REQUIRE(dx.shape() == x.shape());
        CHECK(mask == mask_ref);
        CHECK(mean.vec() == mean_ref.vec());
        CHECK(var.vec() == var_ref.vec());
        supcon::index_t wrong = 0;
        for (supcon::index_t i = 0; i < x.size(); ++i)
          wrong += std::abs(y[i] - r_ref[i]) > 1e-6f || std::abs(dx[i] - dx_ref[i]) > 1e-5f;
        CHECK(wrong == 0);
        for (supcon::index_t c = 0; c < 5; ++c) {
          CHECK(dw[c] == Approx(dw_ref[c]).margin(1e-4));
          CHECK(db[c] == Approx(db_ref[c]).margin(1e-4));
        }
      });
  }
  Tensor<float> x({7, 5, 9, 9});
  supcon::Rng rng(21);
  for (supcon::index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(rng.normal());
  // a NaN in x makes its channel's statistics NaN: the whole channel stays NaN
  x[3 * 81 + 5] = std::numeric_limits<float>::quiet_NaN();
  Tensor<float> y, mean, var;
  std::vector<std::uint8_t> mask;
  ops::batchnorm_relu_forward_train(x, weight, bias, 1e-5f, y, mask, mean, var);
  CHECK(std::isnan(y[3 * 81]));
  CHECK(std::isnan(y[(5 + 3) * 81 + 40]));
  CHECK_FALSE(std::isnan(y[2 * 81 + 7]));
}

TEST_CASE("Batch norm, the join and its ReLU in one pass equal batch norm then the join's ReLU, on every map size") {
  // maps of 2x2, 4x4, 7x7 and 9x9: slices shorter than a vector, one, and three or five and a part
  const Tensor<float> weight({3}, std::vector<float>{1.5f, -0.7f, 0.3f});
  const Tensor<float> bias({3}, std::vector<float>{0.1f, 0.2f, -0.4f});
  for (const supcon::Shape& shape : {supcon::Shape{9, 3, 2, 2}, supcon::Shape{3, 3, 4, 4}, supcon::Shape{2, 3, 7, 7},
                                     supcon::Shape{5, 3, 9, 9}}) {
    CAPTURE(supcon::shape_str(shape));
    Tensor<float> x(shape), skip(shape);
    supcon::Rng rng(22);
    for (supcon::index_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<float>(rng.normal()), skip[i] = static_cast<float>(rng.normal());
    Tensor<float> m, mean_ref, var_ref;
    std::vector<std::uint8_t> mask_ref;
    ops::batchnorm_forward_train(x, weight, bias, 1e-5f, m, mean_ref, var_ref);
    ops::add_relu_forward_mask(m, skip, mask_ref);  // m becomes relu(bn(x) + skip)
    for (int threads : {1, 2, 3})
      layers_test::with_threads(threads, [&] {
        Tensor<float> y, mean, var;
        std::vector<std::uint8_t> mask;
        ops::batchnorm_add_relu_forward_train(x, skip, weight, bias, 1e-5f, y, mask, mean, var);
        REQUIRE(y.shape() == x.shape());
        CHECK(mean.vec() == mean_ref.vec());
        CHECK(var.vec() == var_ref.vec());
        supcon::index_t wrong = 0;  // (a multiply-add may round bn(x) differently: the mask must match y)
        for (supcon::index_t i = 0; i < x.size(); ++i)
          wrong += std::abs(y[i] - m[i]) > 1e-6f || mask[static_cast<std::size_t>(i)] != (y[i] > 0);
        CHECK(wrong == 0);
      });
  }
  Tensor<float> x({2, 3, 2, 2}), y, mean, var;
  std::vector<std::uint8_t> mask;
  CHECK_THROWS_WITH(ops::batchnorm_add_relu_forward_train(x, Tensor<float>({2, 3, 2, 1}), weight, bias, 1e-5f, y,
                                                          mask, mean, var),
                    Catch::Contains("residual join"));
}

TEST_CASE("Running statistics move by the momentum towards the mean and the unbiased variance") {
  Tensor<double> rm({1}, 0.0), rv({1}, 1.0);
  // Batch of M = 4 values with biased variance 2: unbiased 2 * 4 / 3.
  ops::batchnorm_update_running(rm, rv, Tensor<double>({1}, 3.0), Tensor<double>({1}, 2.0), 4, 0.1);
  CHECK(rm[0] == Approx(0.3));
  CHECK(rv[0] == Approx(0.9 + 0.1 * 8.0 / 3.0));
}

TEST_CASE("Training batch norm refuses a single value per channel") {
  Tensor<double> y, mean, var;
  CHECK_THROWS_AS(ops::batchnorm_forward_train(Tensor<double>({1, 3}), Tensor<double>({3}), Tensor<double>({3}),
                                               1e-5, y, mean, var),
                  supcon::ValueError);
}

TEST_CASE("L2 normalisation gives unit rows whose gradient is orthogonal to them") {
  const Tensor<double> x = randn({3, 7}, 2), dy = randn({3, 7}, 3);
  Tensor<double> y, norms, dx;
  ops::l2_normalize_forward(x, 1e-12, y, norms);
  ops::l2_normalize_backward(dy, y, norms, 1e-12, dx);
  for (supcon::index_t n = 0; n < 3; ++n) {
    CHECK(y.matrix().row(n).norm() == Approx(1.0));
    // Moving x along itself does not change y, so <dx, x> = 0.
    CHECK(std::abs(dx.matrix().row(n).dot(x.matrix().row(n))) < 1e-12);
  }
}

TEST_CASE("ReLU passes dy where the input was positive and zero elsewhere, 0 included") {
  const Tensor<double> x({4}, std::vector<double>{-1, 0, 2, 3});
  Tensor<double> y, dx;
  ops::relu_forward(x, y);
  ops::relu_backward(Tensor<double>({4}, 7.0), y, dx);
  CHECK(y.vec() == Eigen::Vector4d(0, 0, 2, 3));
  CHECK(dx.vec() == Eigen::Vector4d(0, 0, 7, 7));
}

TEST_CASE("ReLU through a byte mask gives relu_forward's y and relu_backward's dx, and keeps a NaN") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor<double> x({5}, std::vector<double>{-1, 0, 2, nan, -0.5});
  const Tensor<double> dy({5}, std::vector<double>{1, 2, 3, 4, 5});
  Tensor<double> y, dx;
  std::vector<std::uint8_t> mask;
  ops::relu_forward_mask(x, y, mask);
  ops::relu_backward_mask(dy, mask.data(), dx);
  CHECK(y[0] == 0);
  CHECK(y[1] == 0);
  CHECK(y[2] == 2);
  CHECK(std::isnan(y[3]));
  CHECK(y[4] == 0);
  CHECK(dx.vec() == Eigen::Matrix<double, 5, 1>(0, 0, 3, 0, 0));
}

TEST_CASE("ReLU through a byte mask in float equals its definition on every length up to three vectors") {
  // 16 entries to a vector step on AVX-512 (8 on AVX2 in Eigen's passes):
  // every length to 50 has each kind of tail; one entry is a NaN, kept
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (supcon::index_t len = 1; len <= 50; ++len) {
    Tensor<float> x({len}), b({len}), dy({len}), y, dx, sum;
    supcon::Rng rng(static_cast<std::uint64_t>(len));
    for (supcon::index_t i = 0; i < len; ++i)
      x[i] = static_cast<float>(rng.normal()), b[i] = static_cast<float>(rng.normal()),
      dy[i] = static_cast<float>(rng.normal());
    x[len / 2] = nan;
    std::vector<std::uint8_t> mask, sum_mask;
    ops::relu_forward_mask(x, y, mask);
    ops::relu_backward_mask(dy, mask.data(), dx);
    sum = x;
    ops::add_relu_forward_mask(sum, b, sum_mask);  // relu(x + b) over x
    Tensor<float> acc({len}, 0.5f);
    ops::relu_backward_mask_add(dy, sum_mask.data(), acc);
    supcon::index_t wrong = 0;
    for (supcon::index_t i = 0; i < len; ++i) {
      const float s = x[i] + b[i];
      const bool nan_kept = std::isnan(y[i]) == std::isnan(x[i]) && std::isnan(sum[i]) == std::isnan(s);
      wrong += !nan_kept || (!std::isnan(x[i]) && y[i] != std::max(x[i], 0.0f));
      wrong += (!std::isnan(s) && sum[i] != std::max(s, 0.0f)) || sum_mask[i] != (s > 0);
      wrong += dx[i] != (x[i] > 0 ? dy[i] : 0.0f) || mask[i] != (x[i] > 0);
      wrong += acc[i] != 0.5f + (s > 0 ? dy[i] : 0.0f);
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("The ReLU's gradient added into dx adds dy where the mask is set, and refuses another shape") {
  const Tensor<double> dy({2, 3}, std::vector<double>{1, 2, 3, 4, 5, 6});
  const std::vector<std::uint8_t> mask{1, 0, 0, 1, 1, 0};
  Tensor<double> dx({2, 3}, 10.0);
  ops::relu_backward_mask_add(dy, mask.data(), dx);
  CHECK(dx.vec() == Tensor<double>({6}, std::vector<double>{11, 10, 10, 14, 15, 10}).vec());
  Tensor<double> wrong({3, 2});
  CHECK_THROWS_WITH(ops::relu_backward_mask_add(dy, mask.data(), wrong), Catch::Contains("relu_backward_mask_add"));
}

TEST_CASE("ReLU on tensors large enough to be split over threads equals its definition everywhere") {
  // 100,003 elements: past parallel_ranges' grain, so one, two and three
  // threads each cut it into a different number of uneven ranges
  const Tensor<double> x = randn({100003}, 8), dy = randn({100003}, 9);
  for (int threads : {1, 2, 3})
    layers_test::with_threads(threads, [&] {
      Tensor<double> y, dx, ym, dxm;
      std::vector<std::uint8_t> mask;
      ops::relu_forward(x, y);
      ops::relu_backward(dy, y, dx);
      ops::relu_forward_mask(x, ym, mask);
      ops::relu_backward_mask(dy, mask.data(), dxm);
      REQUIRE(y.size() == x.size());
      REQUIRE(dx.size() == x.size());
      REQUIRE(ym.size() == x.size());
      REQUIRE(dxm.size() == x.size());
      supcon::index_t wrong = 0;
      for (supcon::index_t i = 0; i < x.size(); ++i) {
        const double xi = x.data()[i], yi = std::max(xi, 0.0), dxi = xi > 0 ? dy.data()[i] : 0.0;
        wrong += y.data()[i] != yi || dx.data()[i] != dxi || ym.data()[i] != yi || dxm.data()[i] != dxi;
      }
      CHECK(wrong == 0);
    });
}

TEST_CASE("The residual join and ReLU in one pass equal the sum then the ReLU, on any number of threads") {
  const Tensor<double> a = randn({100003}, 10), b = randn({100003}, 11);
  for (int threads : {1, 2, 3})
    layers_test::with_threads(threads, [&] {
      Tensor<double> sum = a, y, y_fused = a;
      std::vector<std::uint8_t> mask, mask_fused;
      for (supcon::index_t i = 0; i < a.size(); ++i) sum[i] += b[i];
      ops::relu_forward_mask(sum, y, mask);
      ops::add_relu_forward_mask(y_fused, b, mask_fused);
      CHECK(y_fused.vec() == y.vec());
      CHECK(mask_fused == mask);
    });
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor<double> x({3}, std::vector<double>{1, nan, -2});
  std::vector<std::uint8_t> mask;
  ops::add_relu_forward_mask(x, Tensor<double>({3}, std::vector<double>{-3, 1, 2}), mask);
  CHECK(x[0] == 0);
  CHECK(std::isnan(x[1]));
  CHECK(x[2] == 0);
  CHECK(mask == std::vector<std::uint8_t>{0, 0, 0});
  CHECK_THROWS_AS(ops::add_relu_forward_mask(x, Tensor<double>({4}), mask), supcon::ShapeError);
}

TEST_CASE("Linear backward adds into dweight and dbias but assigns dx") {
  const Tensor<double> x = randn({2, 3}, 4), w = randn({4, 3}, 5), dy = randn({2, 4}, 6);
  Tensor<double> dx({2, 3}, 100.0), dw({4, 3}, 1.0), db({4}, 1.0);
  ops::linear_backward(dy, x, w, dx, dw, &db);
  const supcon::RowMatrix<double> expected_dx = dy.matrix() * w.matrix();
  const supcon::RowMatrix<double> expected_dw = (dy.matrix().transpose() * x.matrix()).array() + 1.0;
  CHECK(dx.matrix().isApprox(expected_dx));
  CHECK(dw.matrix().isApprox(expected_dw));
  CHECK(db[0] == Approx(1.0 + dy(0, 0) + dy(1, 0)));
}

TEST_CASE("Flatten keeps the data and the batch dimension, and its backward undoes it") {
  const Tensor<double> x = randn({2, 3, 2, 2}, 7);
  const Tensor<double> y = ops::flatten_forward(x);
  CHECK(y.shape() == supcon::Shape{2, 12});
  CHECK(y.vec() == x.vec());
  CHECK(ops::flatten_backward(y, x.shape()).shape() == x.shape());
  CHECK_THROWS_AS(ops::flatten_backward(Tensor<double>({3, 8}), x.shape()), supcon::ShapeError);
}
