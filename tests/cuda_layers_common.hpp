// Shared by the CUDA layer tests (tests/cuda_layer_math.test.cpp on the CPU,
// tests/cuda_layers.test.cu on the GPU): random tensors, the convolution
// geometries and the SGD settings both check.
#pragma once
#include <vector>

#include <supcon/core/rng.hpp>
#include <supcon/core/tensor.hpp>
#include <supcon/optim/sgd.hpp>

namespace cuda_layers_test {

using supcon::index_t;

// Normal entries plus `shift`, from one seed.
template <class T = double>
supcon::Tensor<T> random_tensor(supcon::Shape shape, std::uint64_t seed, double shift = 0) {
  supcon::Rng rng(seed);
  supcon::Tensor<T> t(std::move(shape));
  for (T& v : t) v = static_cast<T>(rng.normal() + shift);
  return t;
}

struct ConvCase {
  index_t N, C, H, W, OC, K, stride, pad;
};

// 3x3 with padding 1 at stride 1 and 2, 1x1 at stride 1 and 2, 5x5 without
// padding, odd sizes everywhere, one single-pixel-channel case.
inline std::vector<ConvCase> conv_cases() {
  return {{3, 2, 5, 7, 4, 3, 1, 1}, {3, 3, 7, 6, 2, 3, 2, 1}, {2, 3, 5, 5, 4, 1, 1, 0},
          {3, 4, 7, 5, 3, 1, 2, 0}, {2, 2, 9, 7, 3, 5, 1, 0}, {1, 1, 4, 4, 1, 3, 2, 1}};
}

// Plain SGD; momentum with weight decay; Nesterov with biases excluded from
// decay; dampening. Learning rate 0.05.
inline std::vector<supcon::SgdOptions> sgd_cases() {
  struct Opt {
    double momentum, dampening, wd;
    bool nesterov, exclude;
  };
  std::vector<supcon::SgdOptions> out;
  for (const Opt& o : {Opt{0, 0, 0, false, false}, Opt{0.9, 0, 5e-4, false, false}, Opt{0.9, 0, 1e-3, true, true},
                       Opt{0.8, 0.3, 1e-2, false, true}}) {
    supcon::SgdOptions so;
    so.lr = 0.05;
    so.momentum = o.momentum;
    so.dampening = o.dampening;
    so.weight_decay = o.wd;
    so.nesterov = o.nesterov;
    so.exclude_no_decay = o.exclude;
    out.push_back(so);
  }
  return out;
}

}  // namespace cuda_layers_test
