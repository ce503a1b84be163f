// Training speed in float32: each convolution and batch-norm of ResNet-18
// (CIFAR stem, 32x32x3) and of the small demo ResNet (ResNet-18 at width 16 on
// 28x28x1), forward and backward, and one full SupCon training step (two views,
// forward, fused loss, backward, SGD with momentum).
//
// Batch: SUPCON_BENCH_BATCH samples (default 8, so the program finishes
// quickly; bench/compare.py sets 128, i.e. 256 images per step). Layers run
// on 2 x batch images, the count a SupCon step feeds them.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <supcon/core/memory.hpp>
#include <supcon/core/rng.hpp>
#include <supcon/layers/batchnorm.hpp>
#include <supcon/layers/conv2d.hpp>
#include <supcon/losses/supcon_fused.hpp>
#include <supcon/models/supcon_model.hpp>
#include <supcon/ops/im2col.hpp>
#include <supcon/optim/sgd.hpp>

namespace {

using supcon::index_t;

index_t batch() {
  const char* env = std::getenv("SUPCON_BENCH_BATCH");
  return env ? std::atoll(env) : 8;
}

supcon::Tensor<float> normal(const supcon::Shape& shape, std::uint64_t seed) {
  supcon::Rng rng(seed);
  supcon::Tensor<float> t(shape);
  for (index_t k = 0; k < t.size(); ++k) t[k] = static_cast<float>(rng.normal());
  return t;
}

// One convolution of a network: in, out, kernel, stride, input size.
struct ConvShape {
  const char* net;
  index_t c, oc, k, s, hw;
};

// The distinct convolutions of ResNet-18 with the CIFAR stem (padding k / 2).
const std::vector<ConvShape>& conv_shapes() {
  static const std::vector<ConvShape> shapes = {
      {"resnet18", 3, 64, 3, 1, 32},    {"resnet18", 64, 64, 3, 1, 32},   {"resnet18", 64, 128, 3, 2, 32},
      {"resnet18", 128, 128, 3, 1, 16}, {"resnet18", 128, 256, 3, 2, 16}, {"resnet18", 256, 256, 3, 1, 8},
      {"resnet18", 256, 512, 3, 2, 8},  {"resnet18", 512, 512, 3, 1, 4},  {"resnet18", 64, 128, 1, 2, 32},
      {"demo", 1, 16, 3, 1, 28},        {"demo", 16, 16, 3, 1, 28},       {"demo", 16, 32, 3, 2, 28},
      {"demo", 32, 32, 3, 1, 14},       {"demo", 64, 64, 3, 1, 7},        {"demo", 128, 128, 3, 1, 4},
      {"demo", 32, 64, 3, 2, 14},       {"demo", 64, 128, 3, 2, 7},       {"demo", 16, 32, 1, 2, 28}};
  return shapes;
}

std::string conv_name(const ConvShape& c) {
  return std::string(c.net) + "/conv" + std::to_string(c.c) + "x" + std::to_string(c.oc) + "k" +
         std::to_string(c.k) + "s" + std::to_string(c.s) + "@" + std::to_string(c.hw);
}

// The convolution's output height and width (padding k / 2).
index_t output_size(const ConvShape& c) { return supcon::ops::window_output_size(c.hw, c.k, c.s, c.k / 2, "bench"); }

// The input is handed over (forward_owned), as the network does with its
// intermediates: forward(const&) would also time a copy of x for the cache,
// which neither the network nor the PyTorch peer makes. The copy it hands
// over is made outside the timed region.
void BM_ConvForward(benchmark::State& state, ConvShape c) {
  supcon::Rng rng(1);
  supcon::Conv2d<float> conv(c.c, c.oc, c.k, c.s, c.k / 2, false, rng);
  const supcon::Tensor<float> x = normal({2 * batch(), c.c, c.hw, c.hw}, 2);
  for (auto _ : state) {
    state.PauseTiming();
    supcon::Tensor<float> input = x;
    state.ResumeTiming();
    supcon::Tensor<float> y = conv.forward_owned(std::move(input));
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * x.dim(0));
}

void BM_ConvBackward(benchmark::State& state, ConvShape c) {
  supcon::Rng rng(1);
  supcon::Conv2d<float> conv(c.c, c.oc, c.k, c.s, c.k / 2, false, rng);
  const supcon::Tensor<float> x = normal({2 * batch(), c.c, c.hw, c.hw}, 2);
  const supcon::Tensor<float> y = conv.forward(x);
  const supcon::Tensor<float> dy = normal(y.shape(), 3);
  for (auto _ : state) {
    supcon::Tensor<float> dx = conv.backward(dy);
    benchmark::DoNotOptimize(dx.data());
  }
  state.SetItemsProcessed(state.iterations() * x.dim(0));
}

// Batch-norm (training mode) forward + backward at a layer's output shape.
void BM_BatchNorm(benchmark::State& state, ConvShape c) {
  supcon::BatchNorm2d<float> bn(c.oc);
  const index_t hw = output_size(c);
  const supcon::Tensor<float> x = normal({2 * batch(), c.oc, hw, hw}, 4);
  const supcon::Tensor<float> dy = normal(x.shape(), 5);
  for (auto _ : state) {
    supcon::Tensor<float> y = bn.forward(x);
    supcon::Tensor<float> dx = bn.backward(dy);
    benchmark::DoNotOptimize(dx.data());
  }
  state.SetItemsProcessed(state.iterations() * x.dim(0));
}

// One SupCon step: encoder + mlp head on both views, the fused loss, backward, SGD.
void BM_SupConStep(benchmark::State& state, supcon::ResNetConfig cfg, index_t hw) {
  supcon::Rng rng(3);
  supcon::SupConModel<float> model(cfg, supcon::HeadKind::mlp, 128, rng);
  supcon::SgdOptions so;
  so.lr = 0.05, so.momentum = 0.9, so.weight_decay = 1e-4;
  supcon::Sgd<float> sgd(model.parameter_list(), so);
  const index_t b = batch();
  const supcon::Tensor<float> x = normal({2 * b, cfg.in_channels, hw, hw}, 6);  // [view 0; view 1]
  std::vector<std::int64_t> labels(static_cast<std::size_t>(b));
  for (index_t i = 0; i < b; ++i) labels[static_cast<std::size_t>(i)] = i % 10;
  const supcon::Pairing pairing = supcon::Pairing::from_labels(labels);
  supcon::SupConOptions lo;
  lo.temperature = lo.base_temperature = 0.1;
  auto step = [&] {
    model.zero_grad();
    const supcon::Tensor<float> z = model.forward(x);
    const supcon::LossResult<float> loss = supcon::supcon_loss_fused(z, pairing, lo);
    model.backward(loss.grad);
    sgd.step();
    benchmark::DoNotOptimize(loss.value);
  };
  // one untimed step first, as the PyTorch peer does: a ResNet-18 step takes
  // seconds, so Google Benchmark would otherwise time a single cold step
  // (work buffers allocated, pages first touched) instead of a training one
  step();
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * x.dim(0));  // images per second
}

const bool registered = [] {
  for (const ConvShape& c : conv_shapes()) {
    benchmark::RegisterBenchmark((conv_name(c) + "/forward").c_str(), BM_ConvForward, c)->UseRealTime();
    benchmark::RegisterBenchmark((conv_name(c) + "/backward").c_str(), BM_ConvBackward, c)->UseRealTime();
    if (c.k == 3)
      benchmark::RegisterBenchmark((std::string(c.net) + "/bn" + std::to_string(c.oc) + "@" +
                                    std::to_string(output_size(c)) + "/forward_backward")
                                       .c_str(),
                                   BM_BatchNorm, c)
          ->UseRealTime();
  }
  supcon::ResNetConfig r18;  // 3 channels, width 64, CIFAR stem
  supcon::ResNetConfig demo;
  demo.in_channels = 1, demo.width = 16;
  // the CPU column of the steps is the whole process's (every thread's) CPU
  // time: against the real time, how busy the threads were; against the same
  // step on one thread, what the second thread costs in extra work
  benchmark::RegisterBenchmark("resnet18/supcon_step", BM_SupConStep, r18, index_t(32))
      ->MeasureProcessCPUTime()
      ->UseRealTime();
  benchmark::RegisterBenchmark("demo/supcon_step", BM_SupConStep, demo, index_t(28))
      ->MeasureProcessCPUTime()
      ->UseRealTime();
  return true;
}();

}  // namespace

int main(int argc, char** argv) {
  supcon::keep_freed_memory();  // as the supcon program does
  benchmark::Initialize(&argc, argv);
  benchmark::SetDefaultTimeUnit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
