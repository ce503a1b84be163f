#pragma once
/// \file init.hpp
/// Weight initialisation as in PyTorch and torchvision, drawn from supcon::Rng
/// so that the same seed gives the same weights on every platform.
///
/// - Convolutions: Kaiming normal in fan-out mode with the ReLU gain
///   (He et al., 2015), as torchvision's ResNet does:
///   w ~ N(0, 2 / fan_out), fan_out = OC * KH * KW.
/// - Linear weight and bias (PyTorch's default, also its default conv bias):
///   uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = IN (or C * KH * KW).
/// - Batch norm: weight 1, bias 0, running mean 0, running variance 1.
///
/// The fans of a weight of shape (OUT, IN, k1, k2, ...) are
/// fan_in = IN * k1 * k2 * ... and fan_out = OUT * k1 * k2 * ...

#include <cmath>

#include "supcon/core/rng.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon::init {

/// IN times the receptive field of a weight (OUT, IN, ...). Requires rank >= 2.
template <class T>
index_t fan_in(const Tensor<T>& w) {
  require<ShapeError>(w.rank() >= 2, "init::fan_in: weight must have rank >= 2, got ",
                      shape_str(w.shape()));
  return w.dim(0) == 0 ? 0 : w.size() / w.dim(0);
}

/// OUT times the receptive field of a weight (OUT, IN, ...). Requires rank >= 2.
template <class T>
index_t fan_out(const Tensor<T>& w) {
  require<ShapeError>(w.rank() >= 2, "init::fan_out: weight must have rank >= 2, got ",
                      shape_str(w.shape()));
  return w.dim(1) == 0 ? 0 : w.size() / w.dim(1);
}

/// Every element ~ N(mean, std^2).
template <class T>
void normal(Tensor<T>& t, double mean, double std, Rng& rng) {
  for (T& v : t) v = static_cast<T>(rng.normal(mean, std));
}

/// Every element ~ uniform(-bound, bound).
template <class T>
void uniform(Tensor<T>& t, double bound, Rng& rng) {
  for (T& v : t) v = static_cast<T>(rng.uniform(-bound, bound));
}

/// Kaiming normal, fan-out mode, ReLU gain sqrt(2): std = sqrt(2 / fan_out).
template <class T>
void kaiming_normal_fan_out(Tensor<T>& w, Rng& rng) {
  const index_t fo = fan_out(w);
  require<ValueError>(fo > 0, "init::kaiming_normal_fan_out: empty weight ", shape_str(w.shape()));
  normal(w, 0.0, std::sqrt(2.0 / static_cast<double>(fo)), rng);
}

/// PyTorch's default for Linear (and conv) weights and biases:
/// uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
template <class T>
void uniform_fan_in(Tensor<T>& t, index_t fan_in, Rng& rng) {
  require<ValueError>(fan_in > 0, "init::uniform_fan_in: fan_in must be > 0, got ", fan_in);
  uniform(t, 1.0 / std::sqrt(static_cast<double>(fan_in)), rng);
}

}  // namespace supcon::init
