// The one-pass batch statistics in float against the same statistics taken in
// double, on data whose mean is far larger than its spread (where E[x^2] - E[x]^2
// without a shift would lose every digit of the variance in float).
#include <catch2/catch.hpp>

#include <cmath>
#include <supcon/core/rng.hpp>
#include <supcon/ops/batchnorm.hpp>

using supcon::Tensor;
namespace ops = supcon::ops;

namespace {
// x[n, c, s] = offset + spread * normal, in float and the same values in double.
void make_inputs(Tensor<float>& xf, Tensor<double>& xd, float offset, float spread) {
  supcon::Rng rng(21);
  xf = Tensor<float>({6, 3, 5, 7});
  xd = Tensor<double>(xf.shape());
  for (supcon::index_t k = 0; k < xf.size(); ++k) {
    xf[k] = offset + spread * static_cast<float>(rng.normal());
    xd[k] = xf[k];
  }
}
}  // namespace

TEST_CASE("Float batch statistics keep their digits when the mean dwarfs the spread") {
  Tensor<float> xf;
  Tensor<double> xd;
  make_inputs(xf, xd, 1000.0f, 0.01f);
  const Tensor<float> wf({3}, 1.5f), bf({3}, -0.5f);
  const Tensor<double> wd({3}, 1.5), bd({3}, -0.5);
  Tensor<float> yf, meanf, varf;
  Tensor<double> yd, meand, vard;
  ops::batchnorm_forward_train(xf, wf, bf, 1e-8f, yf, meanf, varf);
  ops::batchnorm_forward_train(xd, wd, bd, 1e-8, yd, meand, vard);
  for (supcon::index_t c = 0; c < 3; ++c) {
    CHECK(std::abs(meanf[c] - meand[c]) < 1e-3);  // float spacing at 1000 is 6e-5
    CHECK(std::abs(varf[c] - vard[c]) / vard[c] < 1e-3);
  }
  // y = scale * x + shift in float rounds at the size of scale * x (1.5e5 here,
  // float spacing 0.016), so y agrees to a few hundredths
  double worst = 0;
  for (supcon::index_t k = 0; k < yf.size(); ++k) worst = std::max(worst, std::abs(yf[k] - yd[k]));
  CHECK(worst < 5e-2);
}

TEST_CASE("Float batch-norm gradients agree with double ones on offset data") {
  Tensor<float> xf;
  Tensor<double> xd;
  make_inputs(xf, xd, 50.0f, 2.0f);
  supcon::Rng rng(22);
  Tensor<float> dyf(xf.shape());
  Tensor<double> dyd(xf.shape());
  for (supcon::index_t k = 0; k < dyf.size(); ++k) dyd[k] = dyf[k] = static_cast<float>(rng.normal());
  const Tensor<float> wf({3}, 0.7f), bf({3}, 0.1f);
  const Tensor<double> wd({3}, 0.7), bd({3}, 0.1);
  Tensor<float> yf, meanf, varf, dxf, dwf({3}), dbf({3});
  Tensor<double> yd, meand, vard, dxd, dwd({3}), dbd({3});
  ops::batchnorm_forward_train(xf, wf, bf, 1e-5f, yf, meanf, varf);
  ops::batchnorm_forward_train(xd, wd, bd, 1e-5, yd, meand, vard);
  ops::batchnorm_backward_train(dyf, xf, wf, meanf, varf, 1e-5f, dxf, dwf, dbf);
  ops::batchnorm_backward_train(dyd, xd, wd, meand, vard, 1e-5, dxd, dwd, dbd);
  double worst = 0, scale = 0;
  for (supcon::index_t k = 0; k < dxf.size(); ++k) {
    worst = std::max(worst, std::abs(dxf[k] - dxd[k]));
    scale = std::max(scale, std::abs(dxd[k]));
  }
  CHECK(worst / scale < 1e-4);
  for (supcon::index_t c = 0; c < 3; ++c) {
    CHECK(std::abs(dwf[c] - dwd[c]) < 1e-3 * (1 + std::abs(dwd[c])));
    CHECK(std::abs(dbf[c] - dbd[c]) < 1e-3 * (1 + std::abs(dbd[c])));
  }
}
