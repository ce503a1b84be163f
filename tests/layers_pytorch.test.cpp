// Forward values and gradients of every layer against PyTorch, from the
// fixtures written by tools/make_layer_fixtures.py (float64 throughout).
#include <catch2/catch.hpp>
#include <string>
#include <supcon/core/npy.hpp>
#include <supcon/layers/activation.hpp>
#include <supcon/layers/batchnorm.hpp>
#include <supcon/layers/conv2d.hpp>
#include <supcon/layers/linear.hpp>
#include <supcon/layers/normalize.hpp>
#include <supcon/layers/pool.hpp>
#include <supcon/testing/gradcheck.hpp>

using supcon::Tensor;
using supcon::testing::max_relative_error;

namespace {
Tensor<double> fixture(const std::string& c, const std::string& t) {
  return supcon::load_npy<double>(std::string(SUPCON_TEST_DATA_DIR) + "/layers/" + c + "_" + t + ".npy");
}
// Largest |a - b| relative to the largest |b| (both are float64 results of the
// same math in a different order, so they agree to ~1e-15 of their scale).
double err(const Tensor<double>& a, const Tensor<double>& b) {
  double scale = 0;
  for (double v : b) scale = std::max(scale, std::abs(v));
  return max_relative_error(a, b, std::max(scale, 1e-300));
}
constexpr double tol = 1e-12;

// Runs forward and backward of `m` on the case's x and dy and compares y and dx.
void check_forward_backward(supcon::Module<double>& m, const std::string& c) {
  const Tensor<double> y = m.forward(fixture(c, "x"));
  CHECK(err(y, fixture(c, "y")) < tol);
  const Tensor<double> dx = m.backward(fixture(c, "dy"));
  CHECK(err(dx, fixture(c, "dx")) < tol);
}
}  // namespace

TEST_CASE("Linear matches PyTorch's F.linear and its gradients") {
  supcon::Rng rng(0);
  supcon::Linear<double> fc(5, 4, true, rng);
  fc.weight.value = fixture("linear", "weight");
  fc.bias.value = fixture("linear", "bias");
  check_forward_backward(fc, "linear");
  CHECK(err(fc.weight.grad, fixture("linear", "dweight")) < tol);
  CHECK(err(fc.bias.grad, fixture("linear", "dbias")) < tol);
}

TEST_CASE("Conv2d matches PyTorch's F.conv2d for several kernels, strides and paddings") {
  struct Case { const char* name; long c, oc, k, s, p; bool bias; };
  const Case cases[] = {{"conv_k3s1p1_bias", 3, 4, 3, 1, 1, true},
                        {"conv_k3s2p1", 3, 4, 3, 2, 1, false},
                        {"conv_k1s2p0", 3, 5, 1, 2, 0, false},
                        {"conv_k3s2p0_bias", 2, 3, 3, 2, 0, true}};
  for (const Case& c : cases) {
    INFO(c.name);
    supcon::Rng rng(0);
    supcon::Conv2d<double> conv(c.c, c.oc, c.k, c.s, c.p, c.bias, rng);
    conv.weight.value = fixture(c.name, "weight");
    if (c.bias) conv.bias.value = fixture(c.name, "bias");
    check_forward_backward(conv, c.name);
    CHECK(err(conv.weight.grad, fixture(c.name, "dweight")) < tol);
    if (c.bias) CHECK(err(conv.bias.grad, fixture(c.name, "dbias")) < tol);
  }
}

// Step 1 trains with gradients, step 2 trains again (running statistics move
// with momentum 0.1 towards the unbiased variance), step 3 evaluates.
template <class BN>
void check_batchnorm(BN& bn, const std::string& c) {
  bn.weight.value = fixture(c, "weight");
  bn.bias.value = fixture(c, "bias");
  CHECK(err(bn.forward(fixture(c, "x1")), fixture(c, "y1")) < tol);
  CHECK(err(bn.backward(fixture(c, "dy1")), fixture(c, "dx1")) < 1e-11);
  CHECK(err(bn.weight.grad, fixture(c, "dweight1")) < tol);
  CHECK(err(bn.bias.grad, fixture(c, "dbias1")) < tol);
  CHECK(err(bn.running_mean, fixture(c, "running_mean1")) < tol);
  CHECK(err(bn.running_var, fixture(c, "running_var1")) < tol);

  CHECK(err(bn.forward(fixture(c, "x2")), fixture(c, "y2")) < tol);
  CHECK(err(bn.running_mean, fixture(c, "running_mean2")) < tol);
  CHECK(err(bn.running_var, fixture(c, "running_var2")) < tol);

  bn.set_training(false);
  bn.zero_grad();
  CHECK(err(bn.forward(fixture(c, "x3")), fixture(c, "y3")) < tol);
  CHECK(err(bn.backward(fixture(c, "dy3")), fixture(c, "dx3")) < tol);
  CHECK(err(bn.weight.grad, fixture(c, "dweight3")) < tol);
  CHECK(err(bn.bias.grad, fixture(c, "dbias3")) < tol);
  CHECK(err(bn.running_var, fixture(c, "running_var2")) < tol);  // eval leaves them alone
}

TEST_CASE("BatchNorm2d matches PyTorch over two training steps and one evaluation step") {
  supcon::BatchNorm2d<double> bn(3);
  check_batchnorm(bn, "bn2d");
}

TEST_CASE("BatchNorm1d matches PyTorch over two training steps and one evaluation step") {
  supcon::BatchNorm1d<double> bn(4);
  check_batchnorm(bn, "bn1d");
}

TEST_CASE("MaxPool2d matches PyTorch's F.max_pool2d with and without padding") {
  supcon::MaxPool2d<double> padded(3, 2, 1), plain(2, 2, 0);
  check_forward_backward(padded, "maxpool_k3s2p1");
  check_forward_backward(plain, "maxpool_k2s2p0");
}

TEST_CASE("AvgPool2d matches PyTorch's F.avg_pool2d, padding counted in the divisor") {
  supcon::AvgPool2d<double> strided(3, 2, 1), overlapping(2, 1, 1);
  check_forward_backward(strided, "avgpool_k3s2p1");
  check_forward_backward(overlapping, "avgpool_k2s1p1");
}

TEST_CASE("GlobalAvgPool matches the mean over height and width") {
  supcon::GlobalAvgPool<double> gap;
  check_forward_backward(gap, "globalavgpool");
}

TEST_CASE("ReLU matches PyTorch's F.relu") {
  supcon::ReLU<double> relu;
  check_forward_backward(relu, "relu");
}

TEST_CASE("L2Normalize matches F.normalize, including a zero row and a row shorter than eps") {
  supcon::L2Normalize<double> norm;
  check_forward_backward(norm, "l2normalize");
}
