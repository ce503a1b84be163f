// Shared by the GPU training tests (tests/cuda_train_math.test.cpp on the
// CPU, tests/cuda_train.test.cu on the GPU): a tiny separable data set, its
// augmentation, a small run configuration, and a relative error.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <supcon/core/rng.hpp>
#include <supcon/data/augment.hpp>
#include <supcon/data/dataset.hpp>
#include <supcon/train/config.hpp>

namespace cuda_train_test {

using supcon::index_t;

// Largest |a - b| relative to the largest |b|.
template <class T>
double rel_error(const supcon::Tensor<T>& a, const supcon::Tensor<T>& b) {
  REQUIRE(a.shape() == b.shape());
  double diff = 0, scale = 1e-30;
  for (index_t k = 0; k < a.size(); ++k) {
    diff = std::max(diff, std::abs(static_cast<double>(a[k]) - static_cast<double>(b[k])));
    scale = std::max(scale, std::abs(static_cast<double>(b[k])));
  }
  return diff / scale;
}

// n grayscale 8x8 images of two classes: a bright left half (class 0) or a
// bright right half (class 1), with pixel noise.
inline supcon::data::InMemoryDataset halves(index_t n = 32) {
  supcon::Rng rng(3);
  std::vector<std::uint8_t> px;
  std::vector<std::int64_t> labels;
  for (index_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(i % 2);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x)
        px.push_back(static_cast<std::uint8_t>((((x < 4) == (c == 0)) ? 180 : 40) + rng.below(60)));
    labels.push_back(c);
  }
  return supcon::data::InMemoryDataset(px, labels, 1, 8, 8, 2);
}

inline supcon::data::AugmentConfig small_augment() {
  supcon::data::AugmentConfig a = supcon::data::AugmentConfig::fashion_mnist();
  a.out_height = a.out_width = 8;
  a.crop_scale_min = 0.6;
  return a;
}

// Two epochs of two steps (32 images, batch 16), a ResNet-18 of the given width.
inline supcon::TrainConfig tiny(supcon::Method m, const std::string& optimizer = "sgd", index_t width = 2) {
  supcon::TrainConfig c;
  c.method = m;
  c.encoder.width = width;
  c.feat_dim = 8;
  c.num_classes = 2;
  c.epochs = 2;
  c.batch_size = 16;
  c.lr = 0.05;
  c.optimizer = optimizer;
  c.seed = 11;
  return c;
}

}  // namespace cuda_train_test
