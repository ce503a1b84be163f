#pragma once
/// \file shortcut.hpp
/// Shortcut<T>: the skip path of a residual block. The identity when the block
/// keeps the shape; otherwise a projection, a 1x1 convolution with the block's
/// stride followed by batch norm (option B of He et al., 2016), which maps
/// (N, C, H, W) to (N, OC, OH, OW).
///
///     Shortcut<T>(in_channels, out_channels, stride, rng)
///     projection() is true when stride != 1 or in_channels != out_channels
///     state   "0.weight" (conv), "1.weight", "1.bias", "1.running_mean",
///             "1.running_var" (batch norm), under the caller's prefix, e.g.
///             "encoder.layer2.0.shortcut."; nothing for the identity
///
/// Also provides add_into, the residual join y += x, and NamedChild, the
/// list of children through which the blocks report parameters and state.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "supcon/config.hpp"
#include "supcon/core/module.hpp"
#include "supcon/core/rng.hpp"
#include "supcon/layers/batchnorm.hpp"
#include "supcon/layers/conv2d.hpp"
#include "supcon/models/summary.hpp"
#include "supcon/ops/activation.hpp"

namespace supcon {

/// y += x element-wise; both of the same shape.
template <class T>
void add_into(Tensor<T>& y, const Tensor<T>& x) {
  require<ShapeError>(y.shape() == x.shape(), "residual join: shapes ", shape_str(y.shape()),
                      " and ", shape_str(x.shape()), " differ");
  parallel_ranges(y.size(), [&](index_t b, index_t e) {
    VectorMap<T>(y.data() + b, e - b) += ConstVectorMap<T>(x.data() + b, e - b);
  });
}

/// A child module and its state_dict key relative to its parent ("conv1.").
/// Blocks build the list on demand (members move with the block, so no
/// pointer to them is kept).
template <class T>
struct NamedChild {
  const char* key;
  Module<T>* module;
};

/// parameters(), state() and set_training() of a composite, from its children.
template <class T>
void children_parameters(const std::vector<NamedChild<T>>& children, std::vector<Parameter<T>*>& out) {
  for (const NamedChild<T>& c : children) c.module->parameters(out);
}
template <class T>
void children_state(const std::vector<NamedChild<T>>& children, const std::string& prefix,
                    std::vector<NamedTensor<T>>& out) {
  for (const NamedChild<T>& c : children) c.module->state(prefix + c.key, out);
}
template <class T>
void children_set_training(const std::vector<NamedChild<T>>& children, bool on) {
  for (const NamedChild<T>& c : children) c.module->set_training(on);
}

template <class T>
class Shortcut : public Module<T> {
 public:
  Shortcut(index_t in_channels, index_t out_channels, index_t stride, Rng& rng)
      : projection_(stride != 1 || in_channels != out_channels) {
    if (!projection_) return;
    conv_.emplace(in_channels, out_channels, 1, stride, 0, false, rng);
    bn_.emplace(out_channels);
  }

  bool projection() const { return projection_; }

  /// x is (N, C, H, W); returns x itself, or bn(conv1x1(x)) of (N, OC, OH, OW).
  Tensor<T> forward(const Tensor<T>& x) override {
    if (!projection_) return x;
    return bn_->forward_owned(conv_->forward(x));
  }
  /// dy has the output's shape; returns dx; adds into the projection's grads.
  Tensor<T> backward(const Tensor<T>& dy) override {
    if (!projection_) return dy;  // forward: y = x
    // forward: y = bn(conv(x))
    const Tensor<T> dconv = bn_->backward(dy);
    return conv_->backward(dconv);
  }

  /// dx += backward(g) for g = dy where `mask` is set, 0 elsewhere: the skip
  /// path of a block that ends in y = relu(main + shortcut(x)), with the
  /// mask of that ReLU. The identity adds g in one pass, the projection's
  /// batch norm takes the mask in its own passes; g is never written out.
  void add_backward_masked(const Tensor<T>& dy, const std::uint8_t* mask, Tensor<T>& dx) {
    if (!projection_) return ops::relu_backward_mask_add(dy, mask, dx);  // forward: y = x
    // forward: y = bn(conv(x))
    add_into(dx, conv_->backward(bn_->backward_masked(dy, mask)));
  }

  void parameters(std::vector<Parameter<T>*>& out) override {
    if (!projection_) return;
    conv_->parameters(out);
    bn_->parameters(out);
  }
  void state(const std::string& prefix, std::vector<NamedTensor<T>>& out) override {
    if (!projection_) return;
    conv_->state(prefix + "0.", out);
    bn_->state(prefix + "1.", out);
  }
  void set_training(bool on) override {
    this->training_ = on;
    if (bn_) bn_->set_training(on);
  }
  std::string name() const override {
    return projection_ ? "Projection(" + conv_->name() + ", " + bn_->name() + ")" : "Identity";
  }
  /// FLOPs for one image of (C, H, W) (0 for the identity).
  double flops(index_t H, index_t W) const {
    if (!projection_) return 0;
    return conv_flops(conv_->in_channels(), conv_->out_channels(), 1, conv_->stride(), 0, H, W);
  }

 private:
  bool projection_;
  std::optional<Conv2d<T>> conv_;        // both empty for the identity
  std::optional<BatchNorm2d<T>> bn_;
};

}  // namespace supcon
