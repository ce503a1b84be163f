// Times Trainer steps on the GPU (cuda::use_gpu): ResNet-18 with the CIFAR
// stem, SupCon with two views, float32, on a generated set of 32x32x3 images
// (the GPU machine has no data sets), batches made by the CPU loader as in
// `supcon train --device cuda`. Prints samples per second after a warm-up
// epoch, and the share of a step the loader takes on the CPU.
//
//   bench_gpu_train [--batch 256] [--width 64] [--steps 20] [--csv out.csv]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <supcon/core/rng.hpp>
#include <supcon/cuda/train_step.cuh>
#include <supcon/train/trainer.hpp>

using namespace supcon;

int main(int argc, char** argv) {
  index_t batch = 256, width = 64, steps = 20;
  std::string csv;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--batch") batch = std::stoll(v);
    else if (k == "--width") width = std::stoll(v);
    else if (k == "--steps") steps = std::stoll(v);
    else if (k == "--csv") csv = v;
    else {
      std::fprintf(stderr, "bench_gpu_train: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  std::string why;
  if (cuda::device_count(&why) == 0) {
    std::printf("skipped: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  // `steps` batches of random images of 10 classes: an epoch is the timed run
  Rng rng(1);
  const index_t n = batch * steps;
  std::vector<std::uint8_t> px(static_cast<std::size_t>(n * 3 * 32 * 32));
  for (auto& p : px) p = static_cast<std::uint8_t>(rng.below(256));
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = i % 10;
  const data::InMemoryDataset ds(px, labels, 3, 32, 32, 10);

  TrainConfig cfg;
  cfg.encoder = ResNetConfig{"resnet18", 3, width, Stem::cifar, false};
  cfg.epochs = 2;
  cfg.batch_size = batch;
  cfg.lr = 0.1;
  Trainer<float> tr(cfg, ds, data::AugmentConfig::cifar10());
  cuda::use_gpu(tr);
  EpochReport warm, timed;
  tr.run_epoch(nullptr, {}, warm);  // cuBLAS heuristics, allocations

  // the loader alone: the CPU part of every step
  const data::Loader<float> loader(ds, data::make_augment<float>(data::AugmentConfig::cifar10()),
                                   {batch, 2, true, true, 0});
  const auto t0 = std::chrono::steady_clock::now();
  for (index_t b = 0; b < std::min<index_t>(steps, 5); ++b) loader.batch(b);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / std::min<index_t>(steps, 5);
  tr.run_epoch(nullptr, {}, timed);
  const double step_s = timed.seconds / static_cast<double>(steps);
  std::printf("resnet18 width %lld, batch %lld x 2 views, %lld steps: %.1f images/s, %.1f ms/step (loader %.1f ms)\n",
              static_cast<long long>(width), static_cast<long long>(batch), static_cast<long long>(steps),
              timed.images_per_s, 1e3 * step_s, 1e3 * load_s);
  if (!csv.empty()) {
    std::ofstream f(csv);
    f << "arch,width,batch,steps,images_per_s,ms_per_step,loader_ms\n"
      << "resnet18," << width << "," << batch << "," << steps << "," << timed.images_per_s << "," << 1e3 * step_s
      << "," << 1e3 * load_s << "\n";
  }
  return 0;
}
