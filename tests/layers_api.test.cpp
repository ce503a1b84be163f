// The layers' interface: state_dict keys, parameter lists, names, modes, and a
// clear one-line error for every kind of bad input.
#include <catch2/catch.hpp>
#include <supcon/layers/activation.hpp>
#include <supcon/layers/batchnorm.hpp>
#include <supcon/layers/conv2d.hpp>
#include <supcon/layers/flatten.hpp>
#include <supcon/layers/linear.hpp>
#include <supcon/layers/normalize.hpp>
#include <supcon/layers/pool.hpp>
#include <supcon/layers/sequential.hpp>

using supcon::Rng;
using supcon::ShapeError;
using supcon::Tensor;
using supcon::ValueError;
using Catch::Contains;

namespace {
std::vector<std::string> keys(supcon::Module<float>& m, const std::string& prefix = "") {
  std::vector<supcon::NamedTensor<float>> state;
  m.state(prefix, state);
  std::vector<std::string> out;
  for (const auto& s : state) out.push_back(s.name);
  return out;
}
}  // namespace

TEST_CASE("State keys are PyTorch's state_dict names") {
  Rng rng(0);
  supcon::Conv2d<float> conv(3, 8, 3, 1, 1, false, rng), conv_b(3, 8, 3, 1, 1, true, rng);
  supcon::Linear<float> fc(4, 2, true, rng);
  supcon::BatchNorm2d<float> bn(8);
  CHECK(keys(conv, "conv1.") == std::vector<std::string>{"conv1.weight"});
  CHECK(keys(conv_b) == std::vector<std::string>{"weight", "bias"});
  CHECK(keys(fc, "fc.") == std::vector<std::string>{"fc.weight", "fc.bias"});
  CHECK(keys(bn, "bn1.") ==
        std::vector<std::string>{"bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"});
}

TEST_CASE("Sequential prefixes its children's keys with their index") {
  Rng rng(0);
  supcon::Sequential<float> net;
  net.add(supcon::Conv2d<float>(3, 4, 3, 1, 1, false, rng));
  net.add(supcon::BatchNorm2d<float>(4));
  net.add(supcon::ReLU<float>());
  CHECK(keys(net, "head.") == std::vector<std::string>{"head.0.weight", "head.1.weight", "head.1.bias",
                                                        "head.1.running_mean", "head.1.running_var"});
  CHECK(net.parameter_list().size() == 3);
  CHECK(net.name() == "Sequential(Conv2d(3, 4, k=3, s=1, p=1), BatchNorm2d(4), ReLU)");
}

TEST_CASE("set_training on a Sequential reaches every child") {
  supcon::Sequential<float> net;
  auto& bn = net.add(supcon::BatchNorm1d<float>(2));
  net.set_training(false);
  CHECK_FALSE(bn.training());
  // In evaluation a single sample is fine and the running statistics stay.
  const Tensor<float> y = net.forward(Tensor<float>({1, 2}, std::vector<float>{3, -1}));
  CHECK(y[0] == Approx(3 / std::sqrt(1 + 1e-5)));
  CHECK(bn.running_mean[0] == 0.0f);
}

TEST_CASE("Layers refuse inputs of the wrong rank or channel count, naming themselves") {
  Rng rng(0);
  supcon::Conv2d<float> conv(3, 8, 3, 1, 1, false, rng);
  supcon::Linear<float> fc(4, 2, true, rng);
  supcon::BatchNorm2d<float> bn2(3);
  supcon::BatchNorm1d<float> bn1(3);
  supcon::MaxPool2d<float> pool(2);
  supcon::L2Normalize<float> norm;
  CHECK_THROWS_WITH(conv.forward(Tensor<float>({2, 4, 5, 5})),
                    "Conv2d(3, 8, k=3, s=1, p=1): expected input (N, 3, H, W), got (2, 4, 5, 5)");
  CHECK_THROWS_AS(conv.forward(Tensor<float>({3, 5, 5})), ShapeError);
  CHECK_THROWS_WITH(fc.forward(Tensor<float>({2, 5})), Contains("Linear(4, 2)") && Contains("(2, 5)"));
  CHECK_THROWS_AS(bn2.forward(Tensor<float>({2, 3})), ShapeError);
  CHECK_THROWS_AS(bn1.forward(Tensor<float>({2, 3, 4, 4})), ShapeError);
  CHECK_THROWS_AS(bn2.forward(Tensor<float>({2, 2, 4, 4})), ShapeError);
  CHECK_THROWS_AS(pool.forward(Tensor<float>({2, 4})), ShapeError);
  CHECK_THROWS_AS(norm.forward(Tensor<float>({2, 3, 4})), ShapeError);
}

TEST_CASE("An input smaller than the kernel is refused by name") {
  Rng rng(0);
  supcon::Conv2d<float> conv(1, 1, 5, 1, 0, false, rng);
  CHECK_THROWS_WITH(conv.forward(Tensor<float>({1, 1, 4, 8})), Contains("Conv2d(1, 1, k=5") &&
                                                                   Contains("smaller than the kernel"));
  supcon::AvgPool2d<float> pool(3);
  CHECK_THROWS_WITH(pool.forward(Tensor<float>({1, 1, 2, 2})), Contains("AvgPool2d(k=3, s=3, p=0)"));
}

TEST_CASE("backward before forward is an error, not a crash") {
  Rng rng(0);
  supcon::Linear<float> fc(4, 2, true, rng);
  supcon::BatchNorm2d<float> bn(3);
  supcon::ReLU<float> relu;
  supcon::GlobalAvgPool<float> gap;
  CHECK_THROWS_WITH(fc.backward(Tensor<float>({1, 2})), "Linear(4, 2): backward called before forward");
  CHECK_THROWS_AS(bn.backward(Tensor<float>({1, 3, 2, 2})), supcon::Error);
  CHECK_THROWS_AS(relu.backward(Tensor<float>({1})), supcon::Error);
  CHECK_THROWS_AS(gap.backward(Tensor<float>({1, 3})), supcon::Error);
}

TEST_CASE("A dy whose shape differs from the forward output is refused") {
  Rng rng(0);
  supcon::Conv2d<float> conv(2, 3, 3, 2, 1, true, rng);
  conv.forward(Tensor<float>({2, 2, 6, 6}));
  CHECK_THROWS_WITH(conv.backward(Tensor<float>({2, 3, 6, 6})),
                    Contains("dy has shape (2, 3, 6, 6)") && Contains("(2, 3, 3, 3)"));
  supcon::MaxPool2d<float> pool(2);
  pool.forward(Tensor<float>({1, 1, 4, 4}));
  CHECK_THROWS_AS(pool.backward(Tensor<float>({1, 1, 4, 4})), ShapeError);
  supcon::Flatten<float> flat;
  flat.forward(Tensor<float>({2, 3, 2}));
  CHECK_THROWS_AS(flat.backward(Tensor<float>({3, 4})), ShapeError);
  supcon::L2Normalize<float> norm;
  norm.forward(Tensor<float>({2, 3}, 1.0f));
  CHECK_THROWS_AS(norm.backward(Tensor<float>({3, 2})), ShapeError);
}

TEST_CASE("Out-of-range layer options are refused when the layer is built") {
  Rng rng(0);
  CHECK_THROWS_AS(supcon::Conv2d<float>(0, 8, 3, 1, 1, false, rng), ValueError);
  CHECK_THROWS_AS(supcon::Conv2d<float>(3, 8, 0, 1, 1, false, rng), ValueError);
  CHECK_THROWS_AS(supcon::Conv2d<float>(3, 8, 3, 0, 1, false, rng), ValueError);
  CHECK_THROWS_AS(supcon::Conv2d<float>(3, 8, 3, 1, -1, false, rng), ValueError);
  CHECK_THROWS_AS(supcon::Linear<float>(3, 0, true, rng), ValueError);
  CHECK_THROWS_AS(supcon::BatchNorm2d<float>(0), ValueError);
  CHECK_THROWS_WITH(supcon::BatchNorm2d<float>(4, 1e-5, 1.5), Contains("momentum"));
  CHECK_THROWS_WITH(supcon::MaxPool2d<float>(3, 2, 2), Contains("padding (2)"));
  CHECK_THROWS_AS(supcon::AvgPool2d<float>(0), ValueError);
  CHECK_THROWS_AS(supcon::L2Normalize<float>(0.0), ValueError);
}

TEST_CASE("Training batch norm refuses one value per channel, as PyTorch does") {
  supcon::BatchNorm1d<float> bn(3);
  CHECK_THROWS_WITH(bn.forward(Tensor<float>({1, 3})),
                    Contains("BatchNorm1d(3)") && Contains("more than one value per channel"));
}

TEST_CASE("Pooling strides default to the kernel size, as in PyTorch") {
  supcon::MaxPool2d<float> pool(2);
  CHECK(pool.name() == "MaxPool2d(k=2, s=2, p=0)");
  CHECK(pool.forward(Tensor<float>({1, 1, 6, 4})).shape() == supcon::Shape{1, 1, 3, 2});
}

namespace {
// Two copies of one layer: a forward of x and a forward_owned of a copy of x
// must give the same output, dx and parameter gradients; the owned input is
// refused as forward refuses it.
template <class MakeLayer>
void check_owned_forward(MakeLayer make, const supcon::Shape& in_shape) {
  auto a = make(), b = make();
  Rng rng(5);
  Tensor<double> x(in_shape);
  for (supcon::index_t i = 0; i < x.size(); ++i) x[i] = rng.normal();
  const Tensor<double> y = a.forward(x);
  Tensor<double> x_copy = x;
  const Tensor<double> y_owned = b.forward_owned(std::move(x_copy));
  REQUIRE(y_owned.shape() == y.shape());
  CHECK(y_owned.vec() == y.vec());
  Tensor<double> dy(y.shape());
  for (supcon::index_t i = 0; i < dy.size(); ++i) dy[i] = rng.normal();
  const Tensor<double> dx = a.backward(dy), dx_owned = b.backward(dy);
  CHECK(dx_owned.vec() == dx.vec());
  const auto pa = a.parameter_list(), pb = b.parameter_list();
  REQUIRE(pa.size() == pb.size());
  for (std::size_t k = 0; k < pa.size(); ++k) CHECK(pb[k]->grad.vec() == pa[k]->grad.vec());
  Tensor<double> wrong({2, 1});
  CHECK_THROWS_AS(b.forward_owned(std::move(wrong)), ShapeError);
}
}  // namespace

TEST_CASE("Layers that cache their input give the same results when handed it with forward_owned") {
  check_owned_forward([] { Rng r(1); return supcon::Conv2d<double>(2, 3, 3, 2, 1, true, r); }, {2, 2, 5, 4});
  check_owned_forward([] { return supcon::BatchNorm2d<double>(3); }, {4, 3, 2, 2});
  check_owned_forward([] { Rng r(1); return supcon::Linear<double>(4, 3, true, r); }, {5, 4});
}

namespace {
// relu(bn(x)) of a BatchNorm2d with its ReLU fused against the two layers in
// a row: the same y, dx and parameter gradients, in the current mode of both.
void check_fused_relu(supcon::BatchNorm2d<double>& fused, supcon::BatchNorm2d<double>& bn, std::uint64_t seed) {
  supcon::ReLU<double> relu;
  Rng rng(seed);
  Tensor<double> x({6, 3, 3, 2}), dy(x.shape());
  for (supcon::index_t i = 0; i < x.size(); ++i) x[i] = rng.normal(), dy[i] = rng.normal();
  const Tensor<double> y = fused.forward(x), y_ref = relu.forward(bn.forward(x));
  REQUIRE(y.shape() == y_ref.shape());
  for (supcon::index_t i = 0; i < y.size(); ++i) CHECK(y[i] == Approx(y_ref[i]).margin(1e-14));
  const Tensor<double> dx = fused.backward(dy), dx_ref = bn.backward(relu.backward(dy));
  for (supcon::index_t i = 0; i < dx.size(); ++i) CHECK(dx[i] == Approx(dx_ref[i]).margin(1e-13));
  for (supcon::index_t c = 0; c < 3; ++c) {
    CHECK(fused.weight.grad[c] == Approx(bn.weight.grad[c]).margin(1e-13));
    CHECK(fused.bias.grad[c] == Approx(bn.bias.grad[c]).margin(1e-13));
    CHECK(fused.running_var[c] == Approx(bn.running_var[c]).margin(1e-15));
  }
}
}  // namespace

TEST_CASE("Batch norm with its ReLU fused equals a batch norm then a ReLU, in training, evaluation and sync") {
  supcon::BatchNorm2d<double> fused(3), bn(3);
  fused.fuse_relu(true);
  CHECK(fused.fused_relu());
  CHECK(fused.name() == "BatchNorm2d(3) + ReLU");
  supcon::BatchNorm2d<float> fused_f(3), bn_f(3);
  fused_f.fuse_relu(true);
  CHECK(keys(fused_f) == keys(bn_f));  // the ReLU adds no state
  for (auto* b : {&fused, &bn}) b->bias.value = Tensor<double>({3}, std::vector<double>{0.2, -0.3, 0.0});
  SECTION("training") { check_fused_relu(fused, bn, 11); }
  SECTION("evaluation") {
    for (auto* b : {&fused, &bn}) b->set_training(false), b->running_mean[1] = 0.4;
    check_fused_relu(fused, bn, 12);
  }
  SECTION("synchronised statistics") {
    supcon::BatchNormSyncScope scope([](double*, supcon::index_t) {});
    check_fused_relu(fused, bn, 13);
  }
  SECTION("switched off again") {
    fused.fuse_relu(false);
    Tensor<double> x({4, 3, 2, 2}, -1.0);
    x[0] = 2.0;
    CHECK(fused.forward(x).vec() == bn.forward(x).vec());
  }
}

TEST_CASE("Batch norm's backward through a later ReLU's mask equals its backward of the masked gradient") {
  // g = dy where the mask is set: formed inside the passes in training, first otherwise
  Rng rng(15);
  Tensor<double> x({3, 2, 3, 3}), dy(x.shape());
  for (supcon::index_t i = 0; i < x.size(); ++i) x[i] = rng.normal(), dy[i] = rng.normal();
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(x.size()));
  for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = rng.normal() > 0;
  Tensor<double> g(x.shape());
  for (supcon::index_t i = 0; i < x.size(); ++i) g[i] = mask[static_cast<std::size_t>(i)] ? dy[i] : 0.0;
  const auto check = [&](bool training, bool fused) {
    supcon::BatchNorm2d<double> a(2), b(2);
    for (auto* bn : {&a, &b}) bn->set_training(training), bn->fuse_relu(fused), bn->forward(x);
    const Tensor<double> dx = a.backward_masked(dy, mask.data()), dx_ref = b.backward(g);
    REQUIRE(dx.shape() == dx_ref.shape());
    for (supcon::index_t i = 0; i < x.size(); ++i) CHECK(dx[i] == Approx(dx_ref[i]).margin(1e-12));
    for (supcon::index_t c = 0; c < 2; ++c) {
      CHECK(a.weight.grad[c] == Approx(b.weight.grad[c]).margin(1e-12));
      CHECK(a.bias.grad[c] == Approx(b.bias.grad[c]).margin(1e-12));
    }
  };
  SECTION("training") { check(true, false); }
  SECTION("evaluation") { check(false, false); }
  SECTION("with its own ReLU fused too") { check(true, true); }
  SECTION("synchronised statistics") {
    supcon::BatchNormSyncScope scope([](double*, supcon::index_t) {});
    check(true, false);
  }
  supcon::BatchNorm2d<double> fresh(2);
  CHECK_THROWS_WITH(fresh.backward_masked(dy, mask.data()), Contains("backward"));
}

TEST_CASE("Batch norm ending a residual block equals batch norm then the join's ReLU, in every mode") {
  Rng rng(16);
  Tensor<double> x({3, 2, 3, 3}), skip(x.shape()), dy(x.shape());
  for (supcon::index_t i = 0; i < x.size(); ++i) x[i] = rng.normal(), skip[i] = rng.normal(), dy[i] = rng.normal();
  const auto check = [&](bool training) {
    supcon::BatchNorm2d<double> a(2), b(2);
    supcon::ReLU<double> relu_a, relu_b;
    for (auto* bn : {&a, &b}) bn->set_training(training), bn->bias.value[1] = 0.3;
    Tensor<double> xa = x, xb = x;
    const Tensor<double> y = a.forward_owned_add_relu(std::move(xa), skip, relu_a.mask_for_fused_forward(x.shape()));
    const Tensor<double> y_ref = relu_b.forward_sum(b.forward_owned(std::move(xb)), skip);
    REQUIRE(y.shape() == y_ref.shape());
    for (supcon::index_t i = 0; i < x.size(); ++i) CHECK(y[i] == Approx(y_ref[i]).margin(1e-14));
    for (supcon::index_t c = 0; c < 2; ++c) {
      CHECK(a.running_mean[c] == b.running_mean[c]);
      CHECK(a.running_var[c] == b.running_var[c]);
    }
    // the ReLU's mask and batch norm's cache serve the backward as after the two calls
    const Tensor<double> dx = a.backward_masked(dy, relu_a.backward_mask(dy)), dx_ref = b.backward(relu_b.backward(dy));
    for (supcon::index_t i = 0; i < x.size(); ++i) CHECK(dx[i] == Approx(dx_ref[i]).margin(1e-12));
  };
  SECTION("training") { check(true); }
  SECTION("evaluation") { check(false); }
  SECTION("synchronised statistics") {
    supcon::BatchNormSyncScope scope([](double*, supcon::index_t) {});
    check(true);
  }
  supcon::BatchNorm2d<double> bn(2);
  std::vector<std::uint8_t> mask;
  CHECK_THROWS_WITH(bn.forward_owned_add_relu(Tensor<double>(x.shape()), Tensor<double>({3, 2, 3, 2}), mask),
                    Contains("residual join"));
}

TEST_CASE("A ReLU given a residual sum's two terms equals the ReLU of their sum, forward and backward") {
  Rng rng(14);
  Tensor<double> a({2, 3, 4, 4}), b(a.shape()), dy(a.shape());
  for (supcon::index_t i = 0; i < a.size(); ++i) a[i] = rng.normal(), b[i] = rng.normal(), dy[i] = rng.normal();
  Tensor<double> sum = a;
  for (supcon::index_t i = 0; i < a.size(); ++i) sum[i] += b[i];
  supcon::ReLU<double> fused, plain;
  Tensor<double> a_copy = a;
  const Tensor<double> y = fused.forward_sum(std::move(a_copy), b), y_ref = plain.forward(sum);
  REQUIRE(y.shape() == y_ref.shape());
  CHECK(y.vec() == y_ref.vec());
  CHECK(fused.backward(dy).vec() == plain.backward(dy).vec());
  Tensor<double> wrong({2, 3, 4, 3});
  CHECK_THROWS_WITH(fused.forward_sum(std::move(wrong), b), Contains("residual join"));
}

TEST_CASE("A Sequential hands each output on to the next layer and still matches the layers called one by one") {
  Rng r1(3), r2(3);
  supcon::Sequential<double> seq;
  seq.add(supcon::Linear<double>(4, 6, true, r1));
  seq.add(supcon::BatchNorm1d<double>(6));
  seq.add(supcon::ReLU<double>());
  seq.add(supcon::Linear<double>(6, 2, true, r1));
  supcon::Linear<double> fc1(4, 6, true, r2), fc2(6, 2, true, r2);
  supcon::BatchNorm1d<double> bn(6);
  supcon::ReLU<double> relu;
  Rng rng(7);
  Tensor<double> x({8, 4});
  for (supcon::index_t i = 0; i < x.size(); ++i) x[i] = rng.normal();
  const Tensor<double> y = seq.forward(x), y_ref = fc2.forward(relu.forward(bn.forward(fc1.forward(x))));
  CHECK(y.vec() == y_ref.vec());
  const Tensor<double> dy({8, 2}, 0.5);
  const Tensor<double> dx = seq.backward(dy),
                       dx_ref = fc1.backward(bn.backward(relu.backward(fc2.backward(dy))));
  CHECK(dx.vec() == dx_ref.vec());
}
