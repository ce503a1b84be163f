

// The ResNet models against an independent PyTorch implementation
// (tools/make_model_fixtures.py): the same weights, loaded by state_dict key,
// must give the same outputs, input gradients, parameter gradients and
// running statistics, in evaluation and in training mode.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <supcon/models/classifier.hpp>
#include <supcon/models/supcon_model.hpp>
#include <supcon/testing/gradcheck.hpp>
#include <supcon/train/weights_npy.hpp>

using namespace supcon;

namespace {

const std::string kDir = std::string(SUPCON_TEST_DATA_DIR) + "/models/";

// Largest |got - want| relative to each element, with a floor of `floor`
// times the tensor's largest magnitude (floor 1: relative to that magnitude).
template <class T>
double rel_error(const Tensor<T>& got, const Tensor<double>& want, double floor = 1e-3) {
  double m = 0;
  for (double v : want) m = std::max(m, std::abs(v));
  return testing::max_relative_error(got.template cast<double>(), want, floor * m);
}

// Training mode in float32 is judged relative to each tensor's scale: batch
// norm over a few values per channel divides by small batch deviations, and
// ResNet-50's 53 of them in a row turn float32 rounding into relative errors
// of 1e-3 in the smallest entries (PyTorch's own float32 run differs from
// float64 by as much). In double every entry agrees.
template <class T>
double train_error(const Tensor<T>& got, const Tensor<double>& want) {
  return rel_error(got, want, std::is_same_v<T, float> ? 1.0 : 1e-3);
}

template <class T>
Parameter<T>* parameter_named(Module<T>& model, const std::string& key) {
  std::vector<NamedTensor<T>> state;
  model.state("", state);
  for (Parameter<T>* p : model.parameter_list())
    for (const auto& s : state)
      if (s.name == key && s.tensor == &p->value) return p;
  FAIL("no parameter " << key);
  return nullptr;
}

template <class T>
Tensor<T>* state_named(Module<T>& model, const std::string& key) {
  std::vector<NamedTensor<T>> state;
  model.state("", state);
  for (const auto& s : state)
    if (s.name == key) return s.tensor;
  FAIL("no state tensor " << key);
  return nullptr;
}

// Builds the network of a fixture case (the configurations of the script) and calls f on it.
template <class T, class F>
void with_case(const std::string& name, F&& f) {
  Rng rng(7);
  if (name == "resnet18_supcon_mlp") {
    SupConModel<T> m({"resnet18", 3, 4, Stem::cifar}, HeadKind::mlp, 8, rng);
    f(m);
  } else if (name == "resnet50_ce_imagenet") {
    CEModel<T> m({"resnet50", 1, 2, Stem::imagenet}, 5, rng);
    f(m);
  } else {
    SupConModel<T> m({"resnet18", 1, 2, Stem::cifar}, HeadKind::linear, 4, rng);
    f(m);
  }
}

// float32 matches to 1e-4 relative; double, from the same float32 weights, far tighter.
template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 1e-4 : 1e-9;
}

}  // namespace

TEMPLATE_TEST_CASE("Evaluation-mode outputs and encoder features equal PyTorch's", "[models]",
                   float, double) {
  for (const std::string c : {"resnet18_supcon_mlp", "resnet50_ce_imagenet", "resnet18_supcon_linear"}) {
    with_case<TestType>(c, [&](auto& model) {
      load_weights_npy(model, kDir + c + "/weights");
      model.set_training(false);
      const auto x = load_npy<TestType>(kDir + c + "/input.npy");
      INFO(c);
      CHECK(rel_error(model.forward(x), load_npy<double>(kDir + c + "/eval_output.npy")) <
            tolerance<TestType>());
      CHECK(rel_error(model.encoder().forward(x), load_npy<double>(kDir + c + "/eval_features.npy")) <
            tolerance<TestType>());
    });
  }
}

TEMPLATE_TEST_CASE("Training-mode outputs, gradients and running statistics equal PyTorch's",
                   "[models]", float, double) {
  namespace fs = std::filesystem;
  for (const std::string c : {"resnet18_supcon_mlp", "resnet50_ce_imagenet", "resnet18_supcon_linear"}) {
    with_case<TestType>(c, [&](auto& model) {
      INFO(c);
      load_weights_npy(model, kDir + c + "/weights");
      model.set_training(true);
      model.zero_grad();
      const auto x = load_npy<TestType>(kDir + c + "/input.npy");
      CHECK(train_error(model.forward(x), load_npy<double>(kDir + c + "/train_output.npy")) <
            tolerance<TestType>());
      // f = sum(output * R): backward(R) returns df/dx and fills df/dtheta.
      const auto dx = model.backward(load_npy<TestType>(kDir + c + "/train_dy.npy"));
      CHECK(train_error(dx, load_npy<double>(kDir + c + "/train_dx.npy")) < tolerance<TestType>());
      int grads = 0;
      for (const auto& e : fs::directory_iterator(kDir + c + "/train_grad")) {
        const std::string key = e.path().stem().string();
        INFO(key);
        CHECK(train_error(parameter_named(model, key)->grad, load_npy<double>(e.path().string())) <
              tolerance<TestType>());
        ++grads;
      }
      CHECK(grads >= 2);
      for (const auto& e : fs::directory_iterator(kDir + c + "/train_running")) {
        INFO(e.path().stem().string());
        CHECK(train_error(*state_named(model, e.path().stem().string()),
                        load_npy<double>(e.path().string())) < tolerance<TestType>());
      }
    });
  }
}
