// Initialisation: the distributions PyTorch and torchvision use, drawn
// reproducibly from supcon::Rng.
#include <catch2/catch.hpp>
#include <cmath>
#include <supcon/layers/batchnorm.hpp>
#include <supcon/layers/conv2d.hpp>
#include <supcon/layers/init.hpp>
#include <supcon/layers/linear.hpp>

using supcon::Rng;
using supcon::Tensor;

namespace {
double mean_of(const Tensor<double>& t) { return t.vec().mean(); }
double std_of(const Tensor<double>& t) {
  const double m = mean_of(t);
  return std::sqrt((t.vec().array() - m).square().sum() / static_cast<double>(t.size() - 1));
}
}  // namespace

TEST_CASE("Conv2d weights are Kaiming normal with std sqrt(2 / fan_out)") {
  Rng rng(1);
  // fan_out = 64 * 3 * 3 = 576, so std = sqrt(2 / 576) = 0.0589.
  supcon::Conv2d<double> conv(32, 64, 3, 1, 1, false, rng);
  const double expected = std::sqrt(2.0 / 576.0);
  // 18432 samples: the sample std is within ~0.5% (1 sigma) of the true one.
  CHECK(std_of(conv.weight.value) == Approx(expected).epsilon(0.02));
  CHECK(std::abs(mean_of(conv.weight.value)) < 4 * expected / std::sqrt(18432.0));
}

TEST_CASE("fan_in and fan_out count the receptive field") {
  Tensor<double> w({8, 3, 5, 5});
  CHECK(supcon::init::fan_in(w) == 3 * 25);
  CHECK(supcon::init::fan_out(w) == 8 * 25);
  Tensor<double> fc({10, 4});
  CHECK(supcon::init::fan_in(fc) == 4);
  CHECK(supcon::init::fan_out(fc) == 10);
}

TEST_CASE("Linear weight and bias are uniform within +-1/sqrt(fan_in)") {
  Rng rng(2);
  supcon::Linear<double> fc(100, 300, true, rng);
  const double bound = 1.0 / std::sqrt(100.0);
  CHECK(fc.weight.value.vec().maxCoeff() <= bound);
  CHECK(fc.weight.value.vec().minCoeff() >= -bound);
  // 30000 draws fill the interval: extremes near the bounds, variance bound^2 / 3.
  CHECK(fc.weight.value.vec().maxCoeff() > 0.99 * bound);
  CHECK(fc.weight.value.vec().minCoeff() < -0.99 * bound);
  CHECK(std_of(fc.weight.value) == Approx(bound / std::sqrt(3.0)).epsilon(0.02));
  CHECK(fc.bias.value.vec().cwiseAbs().maxCoeff() <= bound);
  CHECK(fc.bias.value.vec().cwiseAbs().maxCoeff() > 0.5 * bound);
}

TEST_CASE("The same seed gives the same weights, another seed different ones") {
  Rng a(7), b(7), c(8);
  supcon::Conv2d<float> ca(3, 4, 3, 1, 1, true, a), cb(3, 4, 3, 1, 1, true, b), cc(3, 4, 3, 1, 1, true, c);
  CHECK(ca.weight.value.vec() == cb.weight.value.vec());
  CHECK(ca.bias.value.vec() == cb.bias.value.vec());
  CHECK(ca.weight.value.vec() != cc.weight.value.vec());
}

TEST_CASE("Batch norm starts as the identity: weight 1, bias 0, running mean 0, running variance 1") {
  supcon::BatchNorm2d<float> bn(5);
  CHECK((bn.weight.value.vec().array() == 1.0f).all());
  CHECK((bn.bias.value.vec().array() == 0.0f).all());
  CHECK((bn.running_mean.vec().array() == 0.0f).all());
  CHECK((bn.running_var.vec().array() == 1.0f).all());
}

TEST_CASE("Biases and batch-norm affine parameters are excluded from weight decay") {
  Rng rng(3);
  supcon::Conv2d<float> conv(3, 4, 3, 1, 1, true, rng);
  supcon::Linear<float> fc(4, 2, true, rng);
  supcon::BatchNorm1d<float> bn(4);
  CHECK(conv.weight.decay);
  CHECK_FALSE(conv.bias.decay);
  CHECK(fc.weight.decay);
  CHECK_FALSE(fc.bias.decay);
  CHECK_FALSE(bn.weight.decay);
  CHECK_FALSE(bn.bias.decay);
}
