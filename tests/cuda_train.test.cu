// GPU training against the CPU: the new device ops (max pooling, L2
// normalisation), whole networks forward and backward (every block type and
// stem, both heads, the CE classifier), and Trainer steps moved to the GPU
// (supcon, supcon-in, simclr, ce; SGD and LARS), which must reach the CPU
// trainer's weights to 1e-9 in double and its losses to 1e-4 in float; a
// checkpoint written on one side continues on the other. Without a CUDA
// device the program prints one line and exits with 77 (CTest: skipped).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include <supcon/cuda/maxpool.cuh>
#include <supcon/cuda/model.cuh>
#include <supcon/cuda/normalize.cuh>
#include <supcon/cuda/train_step.cuh>
#include <supcon/ops/normalize.hpp>
#include <supcon/ops/pool.hpp>
#include <supcon/train/trainer.hpp>

#include "cuda_layers_common.hpp"
#include "cuda_train_common.hpp"

using namespace supcon;
using cuda::DeviceTensor;
using cuda::to_device;
using cuda_layers_test::random_tensor;
using cuda_train_test::halves;
using cuda_train_test::rel_error;
using cuda_train_test::small_augment;

// The tiny run with a ResNet-18 of width 4.
TrainConfig tiny(Method m, const std::string& optimizer = "sgd") { return cuda_train_test::tiny(m, optimizer, 4); }

int main(int argc, char** argv) {
  std::string why;
  if (cuda::device_count(&why) == 0) {
    std::printf("skipped: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  return Catch::Session().run(argc, argv);
}

namespace {

// The largest rel_error over the state tensors of two models of one structure.
template <class T>
double state_error(Module<T>& a, Module<T>& b) {
  std::vector<NamedTensor<T>> sa, sb;
  a.state("", sa);
  b.state("", sb);
  REQUIRE(sa.size() == sb.size());
  double worst = 0;
  for (std::size_t i = 0; i < sa.size(); ++i) {
    REQUIRE(sa[i].name == sb[i].name);
    worst = std::max(worst, rel_error(*sa[i].tensor, *sb[i].tensor));
  }
  return worst;
}

// The largest rel_error between the device gradients and the CPU ones, in parameter order.
template <class T>
double grad_error(cuda::Network<T>& net, Module<T>& cpu) {
  const std::vector<Parameter<T>*> p = cpu.parameter_list();
  REQUIRE(p.size() == net.parameters().size());
  double worst = 0;
  for (std::size_t i = 0; i < p.size(); ++i)
    worst = std::max(worst, rel_error(net.parameters()[i]->grad.to_host(), p[i]->grad));
  return worst;
}

template <class T>
std::vector<double> run_epoch_losses(Trainer<T>& tr) {
  std::vector<double> losses;
  EpochReport r;
  REQUIRE(tr.run_epoch(nullptr, [&](const StepReport& s) { losses.push_back(s.loss); }, r));
  return losses;
}

}  // namespace

TEST_CASE("GPU max pooling equals the CPU's, ties after a ReLU and the gradient's gather included") {
  // half the inputs clamped to 0, so windows hold ties the first-wins rule must break alike
  Tensor<double> x = random_tensor<double>({2, 3, 9, 7}, 5);
  for (double& v : x) v = std::max(v, 0.0);
  Tensor<double> y;
  std::vector<index_t> argmax;
  ops::maxpool2d_forward(x, 3, 2, 1, y, argmax);
  const Tensor<double> dy = random_tensor<double>(y.shape(), 6);
  Tensor<double> dx;
  ops::maxpool2d_backward(dy, argmax, x.shape(), dx);

  cuda::MaxPool<double> pool(3, 2, 1);
  DeviceTensor<double> gx = to_device(x), gy, gdx;
  pool.forward(gx, gy);
  pool.backward(to_device(dy), gdx);
  CHECK(rel_error(gy.to_host(), y) == 0);
  CHECK(rel_error(gdx.to_host(), dx) == 0);
}

TEST_CASE("GPU L2 normalisation equals the CPU's, forward and backward, short rows included") {
  Tensor<double> x = random_tensor<double>({6, 5}, 7);
  for (index_t d = 0; d < 5; ++d) x(2, d) = 1e-14;  // a row shorter than eps
  Tensor<double> y, norms, dx;
  ops::l2_normalize_forward(x, 1e-12, y, norms);
  const Tensor<double> dy = random_tensor<double>({6, 5}, 8);
  ops::l2_normalize_backward(dy, y, norms, 1e-12, dx);

  DeviceTensor<double> gy, gn, gdx;
  cuda::l2_normalize_forward(to_device(x), 1e-12, gy, gn);
  cuda::l2_normalize_backward(to_device(dy), gy, gn, 1e-12, gdx);
  CHECK(rel_error(gy.to_host(), y) < 1e-14);
  CHECK(rel_error(gdx.to_host(), dx) < 1e-12);
}

TEST_CASE("GPU networks equal the CPU models, forward and parameter gradients, for every block and stem") {
  struct Case {
    std::string arch;
    Stem stem;
    HeadKind head;
    bool ce;
  };
  for (const Case& c : {Case{"resnet18", Stem::cifar, HeadKind::mlp, false},
                        Case{"resnet18", Stem::imagenet, HeadKind::linear, false},
                        Case{"resnet50", Stem::cifar, HeadKind::mlp, false},
                        Case{"resnet50", Stem::imagenet, HeadKind::mlp, true}}) {
    CAPTURE(c.arch, c.stem == Stem::cifar, c.head == HeadKind::mlp, c.ce);
    const ResNetConfig rc{c.arch, 3, 4, c.stem, false};
    Rng rng(9);
    std::unique_ptr<Module<double>> cpu;
    std::unique_ptr<cuda::Network<double>> gpu;
    if (c.ce) {
      auto m = std::make_unique<CEModel<double>>(rc, 5, rng);
      gpu = std::make_unique<cuda::Network<double>>(*m);
      cpu = std::move(m);
    } else {
      auto m = std::make_unique<SupConModel<double>>(rc, c.head, 6, rng);
      gpu = std::make_unique<cuda::Network<double>>(*m);
      cpu = std::move(m);
    }
    const index_t side = c.stem == Stem::cifar ? 8 : 16;
    const Tensor<double> x = random_tensor<double>({6, 3, side, side}, 10);
    const Tensor<double> y = cpu->forward(x);
    const DeviceTensor<double> gx = to_device(x);
    CHECK(rel_error(gpu->forward(gx).to_host(), y) < 1e-10);

    const Tensor<double> dy = random_tensor<double>(y.shape(), 11);
    cpu->zero_grad();
    cpu->backward(dy);
    gpu->zero_grad();
    gpu->backward(to_device(dy));
    CHECK(grad_error(*gpu, *cpu) < 1e-9);

    // the running statistics moved alike, and come back by name into a fresh model
    Rng other(1);
    std::unique_ptr<Module<double>> blank;
    if (c.ce)
      blank = std::make_unique<CEModel<double>>(rc, 5, other);
    else
      blank = std::make_unique<SupConModel<double>>(rc, c.head, 6, other);
    gpu->store(*blank);
    CHECK(state_error(*blank, *cpu) < 1e-10);
  }
}

TEMPLATE_TEST_CASE("Training steps on the GPU reach the CPU trainer's weights and losses", "", double, float) {
  using T = TestType;
  const double tol = std::is_same_v<T, double> ? 1e-9 : 1e-4;
  const data::InMemoryDataset ds = halves();
  struct Case {
    Method method;
    std::string optimizer;
  };
  for (const Case& c : {Case{Method::supcon, "sgd"}, Case{Method::supcon_in, "sgd"}, Case{Method::simclr, "lars"},
                        Case{Method::ce, "sgd"}, Case{Method::supcon, "lars"}}) {
    CAPTURE(method_name(c.method), c.optimizer);
    Trainer<T> cpu(tiny(c.method, c.optimizer), ds, small_augment());
    Trainer<T> gpu(tiny(c.method, c.optimizer), ds, small_augment());
    cuda::use_gpu(gpu);
    const std::vector<double> lc = run_epoch_losses(cpu), lg = run_epoch_losses(gpu);
    REQUIRE(lc.size() == lg.size());
    for (std::size_t i = 0; i < lc.size(); ++i) CHECK(std::abs(lg[i] - lc[i]) <= tol * std::max(1.0, std::abs(lc[i])));
    // the host model holds the GPU's weights after the epoch
    if (std::is_same_v<T, double>) CHECK(state_error(gpu.model(), cpu.model()) < tol);
    CHECK(gpu.optimizer().steps() == cpu.optimizer().steps());
  }
}

TEST_CASE("A checkpoint written on the GPU continues on the CPU, and one written on the CPU on the GPU") {
  const data::InMemoryDataset ds = halves();
  Trainer<double> straight(tiny(Method::supcon), ds, small_augment());
  run_epoch_losses(straight);
  run_epoch_losses(straight);

  Trainer<double> gpu_first(tiny(Method::supcon), ds, small_augment());
  cuda::use_gpu(gpu_first);
  run_epoch_losses(gpu_first);
  Trainer<double> cpu_second(tiny(Method::supcon), ds, small_augment());
  cpu_second.restore(gpu_first.checkpoint());
  run_epoch_losses(cpu_second);
  CHECK(state_error(cpu_second.model(), straight.model()) < 1e-9);

  Trainer<double> cpu_first(tiny(Method::supcon), ds, small_augment());
  run_epoch_losses(cpu_first);
  Trainer<double> gpu_second(tiny(Method::supcon), ds, small_augment());
  cuda::use_gpu(gpu_second);
  gpu_second.restore(cpu_first.checkpoint());
  run_epoch_losses(gpu_second);
  CHECK(state_error(gpu_second.model(), straight.model()) < 1e-9);
}

TEST_CASE("The GPU step refuses what it cannot run, naming it") {
  const data::InMemoryDataset ds = halves();
  Trainer<float> tr(tiny(Method::supcon), ds, small_augment());
  Rng rng(1);
  LinearClassifier<float> probe(16, 2, rng);
  CHECK_THROWS_WITH((cuda::TrainStep<float>(tr.config(), probe, tr.optimizer())),
                    Catch::Contains("has no GPU version"));
}
