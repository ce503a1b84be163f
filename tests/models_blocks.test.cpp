

// Residual blocks and whole networks: central-difference gradient checks in
// double, the accumulation contract, and the zero-initialised residual.
#include <catch2/catch.hpp>
#include <functional>
#include <supcon/losses/cross_entropy.hpp>
#include <supcon/losses/supcon_reference.hpp>
#include <supcon/models/classifier.hpp>
#include <supcon/models/supcon_model.hpp>
#include <supcon/testing/check_module.hpp>

using namespace supcon;

namespace {

Tensor<double> random_input(const Shape& shape, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<double> x(shape);
  for (double& v : x) v = rng.normal();
  return x;
}

// Gradient check of a whole block in training mode (batch statistics) and,
// when `eval` is set, in evaluation mode with non-trivial running statistics.
template <class Block>
void check_block(Block& block, const Tensor<double>& x, bool eval) {
  block.set_training(!eval);
  if (eval) {
    std::vector<NamedTensor<double>> state;
    block.state("", state);
    Rng rng(11);
    for (auto& s : state) {
      if (s.name.find("running_mean") != std::string::npos)
        for (double& v : *s.tensor) v = 0.3 * rng.normal();
      if (s.name.find("running_var") != std::string::npos)
        for (double& v : *s.tensor) v = rng.uniform(0.5, 1.5);
    }
  }
  const testing::ModuleCheckReport r = testing::check_module(block, x);
  INFO(r.str());
  CHECK(r.passed(1e-6));
}

}  // namespace

TEST_CASE("BasicBlock gradients match central differences (identity shortcut, stride 1)", "[models]") {
  Rng rng(1);
  BasicBlock<double> b(3, 3, 1, rng);
  REQUIRE_FALSE(b.name().find("projection") != std::string::npos);
  check_block(b, random_input({2, 3, 5, 5}, 2), false);
  check_block(b, random_input({2, 3, 5, 5}, 2), true);
}

TEST_CASE("BasicBlock gradients match central differences (projection, stride 2)", "[models]") {
  Rng rng(3);
  BasicBlock<double> b(2, 3, 2, rng);
  check_block(b, random_input({2, 2, 6, 5}, 4), false);
  check_block(b, random_input({2, 2, 6, 5}, 4), true);
}

TEST_CASE("BasicBlock gradients match central differences (projection for new width, stride 1)",
          "[models]") {
  Rng rng(5);
  BasicBlock<double> b(2, 4, 1, rng);
  check_block(b, random_input({2, 2, 4, 4}, 6), false);
}

TEST_CASE("Bottleneck gradients match central differences (identity shortcut, stride 1)", "[models]") {
  Rng rng(7);
  Bottleneck<double> b(8, 2, 1, rng);  // 8 = 4 * 2 channels in and out
  check_block(b, random_input({2, 8, 4, 4}, 8), false);
  check_block(b, random_input({2, 8, 4, 4}, 8), true);
}

TEST_CASE("Bottleneck gradients match central differences (projection, stride 2)", "[models]") {
  Rng rng(9);
  Bottleneck<double> b(3, 2, 2, rng);
  check_block(b, random_input({2, 3, 5, 6}, 10), false);
  check_block(b, random_input({2, 3, 5, 6}, 10), true);
}

TEST_CASE("Residual blocks add their parameter gradients to what the grads held", "[models]") {
  Rng rng(12);
  BasicBlock<double> basic(2, 3, 2, rng);
  Bottleneck<double> bottle(3, 2, 2, rng);
  const auto rb = testing::check_accumulates(basic, random_input({2, 2, 6, 6}, 13));
  const auto rn = testing::check_accumulates(bottle, random_input({2, 3, 6, 6}, 14));
  INFO(rb.str() << rn.str());
  CHECK(rb.passed(1e-12));
  CHECK(rn.passed(1e-12));
}

TEST_CASE("A block with zero-initialised residual starts as the ReLU of its input", "[models]") {
  // With the last batch-norm scale 0 and its shift 0, the main path outputs 0
  // and y = relu(0 + x) for an identity shortcut.
  Rng rng(15);
  BasicBlock<double> basic(3, 3, 1, rng);
  Bottleneck<double> bottle(8, 2, 1, rng);
  basic.zero_init_residual();
  bottle.zero_init_residual();
  for (Module<double>* m : std::vector<Module<double>*>{&basic, &bottle}) {
    const Tensor<double> x = random_input({2, m == &basic ? 3 : 8, 4, 4}, 16);
    const Tensor<double> y = m->forward(x);
    for (index_t k = 0; k < x.size(); ++k) CHECK(y[k] == std::max(x[k], 0.0));
  }
}

TEST_CASE("zero_init_residual in the encoder config zeroes the last batch-norm scale of every block",
          "[models]") {
  Rng rng(17);
  ResNetConfig cfg{"resnet50", 3, 2, Stem::cifar, true};
  ResNet<float> net(cfg, rng);
  std::vector<NamedTensor<float>> state;
  net.state("", state);
  int zeroed = 0;
  for (const auto& s : state) {
    const bool last_bn = s.name.find(".bn3.weight") != std::string::npos;
    if (last_bn) {
      ++zeroed;
      CHECK(s.tensor->vec().cwiseAbs().maxCoeff() == 0.0f);
    }
  }
  CHECK(zeroed == 16);  // 3 + 4 + 6 + 3 blocks
}

namespace {

// dL/dθ and dL/dx of a whole network followed by a loss, probed against
// central differences at `probes` random parameter entries and input entries.
// `h` is the central-difference step, `tol` the relative tolerance.
template <class Model>
void probe_network(Model& model, Tensor<double> x,
                   const std::function<LossResult<double>(const Tensor<double>&)>& loss, int probes,
                   double h, double tol) {
  model.set_training(true);
  model.zero_grad();
  const LossResult<double> l = loss(model.forward(x));
  const Tensor<double> dx = model.backward(l.grad);
  auto f = [&]() { return loss(model.forward(x)).value; };
  auto central = [&](double& v) {
    const double saved = v;
    v = saved + h;
    const double fp = f();
    v = saved - h;
    const double fm = f();
    v = saved;
    return (fp - fm) / (2 * h);
  };
  auto close = [&](double analytic, double numeric) {
    return std::abs(analytic - numeric) <= tol * std::max({std::abs(analytic), std::abs(numeric), 1e-3});
  };
  Rng rng(99);
  const auto params = model.parameter_list();
  for (int k = 0; k < probes; ++k) {
    Parameter<double>* p = params[rng.below(params.size())];
    const index_t i = static_cast<index_t>(rng.below(static_cast<std::uint64_t>(p->value.size())));
    const double numeric = central(p->value[i]);
    INFO("parameter " << p->value.size() << " entries, index " << i);
    INFO("analytic " << p->grad[i] << " numeric " << numeric);
    CHECK(close(p->grad[i], numeric));
    const index_t j = static_cast<index_t>(rng.below(static_cast<std::uint64_t>(x.size())));
    INFO("input index " << j);
    const double numeric_x = central(x[j]);
    INFO("analytic " << dx[j] << " numeric " << numeric_x);
    CHECK(close(dx[j], numeric_x));
  }
}

}  // namespace

TEST_CASE("A whole ResNet-18 with mlp head and SupCon loss has the gradients of central differences",
          "[models]") {
  Rng rng(21);
  SupConModel<double> model({"resnet18", 1, 2, Stem::cifar}, HeadKind::mlp, 4, rng);
  // two views of three samples, view-major; samples 0 and 2 share a label
  const Tensor<double> x = random_input({6, 1, 8, 8}, 22);
  const Pairing pairing = Pairing::from_labels({0, 1, 0});
  SupConOptions opt;
  opt.temperature = 0.5;
  probe_network(model, x, [&](const Tensor<double>& z) { return supcon_loss_reference(z, pairing, opt); },
                30, 1e-5, 1e-6);
}

TEST_CASE("A whole ResNet-50 with ImageNet stem and cross-entropy has the gradients of central differences",
          "[models]") {
  Rng rng(23);
  CEModel<double> model({"resnet50", 2, 2, Stem::imagenet}, 3, rng);
  const Tensor<double> x = random_input({6, 2, 32, 32}, 24);
  // layer4 sees 1x1 maps, so its batch norms average 6 values per channel and
  // divide by small deviations: f is strongly curved there and a central
  // difference is only good to about 1e-5. The strict check of this network
  // is the comparison with PyTorch in double (models_pytorch).
  probe_network(model, x, [](const Tensor<double>& z) { return cross_entropy(z, {0, 2, 1, 2, 1, 0}); },
                20, 1e-7, 1e-4);
}
