// Central-difference gradient checks (double) of every layer: dx and every
// parameter gradient, through supcon::testing::check_module; and the
// accumulation contract for every layer with parameters. Each layer is a thin
// wrapper of its ops/ pair, so these also check the ops' backward passes.
#include <catch2/catch.hpp>

#include "layers_test_util.hpp"
#include <supcon/layers/activation.hpp>
#include <supcon/layers/batchnorm.hpp>
#include <supcon/layers/conv2d.hpp>
#include <supcon/layers/flatten.hpp>
#include <supcon/layers/linear.hpp>
#include <supcon/layers/normalize.hpp>
#include <supcon/layers/pool.hpp>
#include <supcon/layers/sequential.hpp>
#include <supcon/testing/check_module.hpp>

using supcon::Rng;
using supcon::Shape;
using supcon::Tensor;
using supcon::testing::check_accumulates;
using supcon::testing::check_module;

using layers_test::randn;

namespace {
constexpr double tol = 1e-7;

// Gradients (to `grad_tol`) and accumulation both pass; prints the report when they do not.
void check_all(supcon::Module<double>& m, const Tensor<double>& x, double grad_tol = tol) {
  const auto grads = check_module(m, x);
  INFO(grads.str());
  CHECK(grads.passed(grad_tol));
  const auto acc = check_accumulates(m, x);
  INFO(acc.str());
  CHECK(acc.passed(1e-12));
}
}  // namespace

TEST_CASE("Linear's dx, dweight and dbias match central differences") {
  Rng rng(1);
  supcon::Linear<double> with_bias(5, 3, true, rng), without(4, 2, false, rng);
  check_all(with_bias, randn({4, 5}, 2));
  check_all(without, randn({3, 4}, 3));
}

TEST_CASE("Conv2d's gradients match central differences for kernels 1 and 3, strides 1 and 2, padding 0 and 1") {
  struct Case { long c, oc, k, s, p; bool bias; Shape x; };
  const Case cases[] = {{2, 3, 3, 1, 1, true, {2, 2, 5, 4}},   // same-size output
                        {2, 3, 3, 2, 1, false, {2, 2, 7, 6}},  // downsampling, non-square
                        {3, 2, 1, 2, 0, false, {2, 3, 5, 5}},  // ResNet's 1x1 shortcut
                        {1, 2, 3, 2, 0, true, {1, 1, 6, 7}},   // no padding, stride 2
                        {2, 2, 1, 1, 0, true, {2, 2, 3, 3}}};
  for (const Case& c : cases) {
    Rng rng(4);
    supcon::Conv2d<double> conv(c.c, c.oc, c.k, c.s, c.p, c.bias, rng);
    INFO(conv.name());
    check_all(conv, randn(c.x, 5));
  }
}

TEST_CASE("BatchNorm2d's gradients in training mode include the paths through mean and variance") {
  supcon::BatchNorm2d<double> bn(3);
  Rng rng(6);
  for (double& v : bn.weight.value) v = rng.uniform(0.5, 1.5);
  for (double& v : bn.bias.value) v = rng.normal();
  check_all(bn, randn({3, 3, 2, 3}, 7));
}

TEST_CASE("BatchNorm2d's gradients in evaluation mode are those of an affine map") {
  supcon::BatchNorm2d<double> bn(2);
  bn.running_mean = Tensor<double>({2}, std::vector<double>{0.3, -0.2});
  bn.running_var = Tensor<double>({2}, std::vector<double>{1.7, 0.4});
  bn.weight.value = Tensor<double>({2}, std::vector<double>{1.3, -0.6});
  bn.set_training(false);
  check_all(bn, randn({2, 2, 3, 2}, 8));
}

TEST_CASE("BatchNorm2d's gradients with its ReLU fused match central differences in both modes") {
  supcon::BatchNorm2d<double> bn(3);
  bn.fuse_relu(true);
  bn.weight.value = Tensor<double>({3}, std::vector<double>{1.2, -0.7, 0.9});
  bn.bias.value = Tensor<double>({3}, std::vector<double>{0.3, -0.2, 0.1});
  check_all(bn, randn({3, 3, 2, 3}, 17));
  bn.running_mean = Tensor<double>({3}, std::vector<double>{0.1, -0.4, 0.2});
  bn.set_training(false);
  check_all(bn, randn({2, 3, 3, 2}, 18));
}

TEST_CASE("BatchNorm1d's gradients match central differences in both modes") {
  supcon::BatchNorm1d<double> bn(4);
  bn.weight.value = randn({4}, 9);
  check_all(bn, randn({5, 4}, 10));
  bn.running_var = Tensor<double>({4}, 2.5);
  bn.set_training(false);
  check_all(bn, randn({5, 4}, 11));
}

TEST_CASE("Pooling layers' dx match central differences") {
  supcon::MaxPool2d<double> max3(3, 2, 1), max2(2, 2, 0), max_overlap(3, 1, 1);
  supcon::AvgPool2d<double> avg3(3, 2, 1), avg1(1, 2, 0), avg2(2, 1, 1);
  supcon::GlobalAvgPool<double> gap;
  supcon::Module<double>* layers[] = {&max3, &max2, &max_overlap, &avg3, &avg1, &avg2, &gap};
  for (auto* m : layers) {
    INFO(m->name());
    check_all(*m, randn({2, 2, 5, 6}, 12));
  }
}

TEST_CASE("ReLU, Flatten and L2Normalize dx match central differences") {
  supcon::ReLU<double> relu;
  supcon::Flatten<double> flatten;
  supcon::L2Normalize<double> norm;
  check_all(relu, randn({3, 2, 2}, 13));
  check_all(flatten, randn({2, 3, 2, 2}, 14));
  check_all(norm, randn({4, 5}, 15));
}

TEST_CASE("A Sequential chain back-propagates through every child in reverse order") {
  Rng rng(16);
  supcon::Sequential<double> net;
  net.add(supcon::Conv2d<double>(2, 3, 3, 2, 1, false, rng));
  net.add(supcon::BatchNorm2d<double>(3));
  net.add(supcon::ReLU<double>());
  net.add(supcon::GlobalAvgPool<double>());
  net.add(supcon::Linear<double>(3, 4, true, rng));
  net.add(supcon::L2Normalize<double>());
  // Six layers deep, batch norm and the L2 normalisation included: the central
  // differences of its input carry rounding near 1e-7 relative (ulp(f) / eps on
  // the smallest entries), 1.1e-7 at worst with fused multiply-adds
  // (SUPCON_NATIVE=ON). A wrong gradient is off by far more.
  check_all(net, randn({3, 2, 6, 5}, 17), 5e-7);
}
