#pragma once
/// \file bottleneck.hpp
/// Bottleneck<T>: the residual block of ResNet-50 and -101 (He et al., 2016),
/// with the stride on the 3x3 convolution as in the SupCon and torchvision code:
///
///     h1 = relu(bn1(conv1(x)))          conv1: 1x1, C -> P
///     h2 = relu(bn2(conv2(h1)))         conv2: 3x3, stride s, padding 1, P -> P
///     m  = bn3(conv3(h2))               conv3: 1x1, P -> 4P
///     y  = relu(m + shortcut(x))        shortcut: identity or 1x1/s conv + bn
///
/// x is (N, C, H, W), y is (N, 4P, OH, OW), OH = (H - 1) / s + 1. State keys
/// (under the caller's prefix): conv1.weight, bn1.*, conv2.weight, bn2.*,
/// conv3.weight, bn3.*, shortcut.0.weight, shortcut.1.*.
/// The backward is derived in docs/backprop.md, "Residual blocks".

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "supcon/layers/activation.hpp"
#include "supcon/layers/batchnorm.hpp"
#include "supcon/layers/conv2d.hpp"
#include "supcon/models/shortcut.hpp"
#include "supcon/models/summary.hpp"

namespace supcon {

template <class T>
class Bottleneck : public Module<T> {
 public:
  static constexpr index_t expansion = 4;

  /// in_planes = C, planes = P (the output has 4P channels), stride = s.
  Bottleneck(index_t in_planes, index_t planes, index_t stride, Rng& rng)
      : in_(in_planes), planes_(planes), stride_(stride),
        conv1_(in_planes, planes, 1, 1, 0, false, rng), bn1_(planes),
        conv2_(planes, planes, 3, stride, 1, false, rng), bn2_(planes),
        conv3_(planes, expansion * planes, 1, 1, 0, false, rng), bn3_(expansion * planes),
        shortcut_(in_planes, expansion * planes, stride, rng) {
    bn1_.fuse_relu(true), bn2_.fuse_relu(true);  // relu(bn(.)) in batch norm's passes
  }

  index_t out_channels() const { return expansion * planes_; }
  /// Sets the scale of the last batch norm (bn3) to 0: the block starts as
  /// y = relu(shortcut(x)).
  void zero_init_residual() { bn3_.weight.value.zero(); }

  /// x is (N, C, H, W); returns (N, 4P, OH, OW).
  Tensor<T> forward(const Tensor<T>& x) override {
    Tensor<T> own;
    copy_parallel(x, own);
    return forward_owned(std::move(own));
  }
  /// As forward; conv1 keeps x as its cache, and the shortcut reads it there.
  Tensor<T> forward_owned(Tensor<T>&& x) override {
    // each intermediate is handed to the layer that caches it, not copied
    Tensor<T> h1 = bn1_.forward_owned(conv1_.forward_owned(std::move(x)));  // relu(bn1(conv1(x)))
    const Tensor<T>& xin = conv1_.cached_input();
    Tensor<T> h2 = bn2_.forward_owned(conv2_.forward_owned(std::move(h1)));  // relu(bn2(conv2(h1)))
    Tensor<T> z = conv3_.forward_owned(std::move(h2));
    // y = relu(bn3(z) + shortcut(x)): batch norm, the join and the ReLU in one
    // pass, bn3(z) never written out; relu_out_ keeps the mask for backward
    std::vector<std::uint8_t>& positive = relu_out_.mask_for_fused_forward(z.shape());
    if (shortcut_.projection()) return bn3_.forward_owned_add_relu(std::move(z), shortcut_.forward(xin), positive);
    return bn3_.forward_owned_add_relu(std::move(z), xin, positive);  // the identity, without its copy
  }

  /// dy is (N, 4P, OH, OW); returns dx (N, C, H, W); adds into every grad.
  Tensor<T> backward(const Tensor<T>& dy) override {
    // forward: y = relu(m + shortcut(x)); the sum passes g = dy where it was
    // positive to both terms, applied by the mask inside their own passes
    const std::uint8_t* positive = relu_out_.backward_mask(dy);
    // main path, last op first. forward: m = bn3(conv3(h2))
    Tensor<T> d = bn3_.backward_masked(dy, positive);
    d = conv3_.backward(d);
    // forward: h2 = relu(bn2(conv2(h1))), bn2 with the ReLU fused
    d = bn2_.backward(d);
    d = conv2_.backward(d);
    // forward: h1 = relu(bn1(conv1(x))), bn1 with the ReLU fused
    d = bn1_.backward(d);
    Tensor<T> d_main = conv1_.backward(d);
    // skip path. forward: shortcut(x); x feeds both paths: dx = d_main + d_shortcut
    shortcut_.add_backward_masked(dy, positive, d_main);
    return d_main;
  }

  void parameters(std::vector<Parameter<T>*>& out) override { children_parameters(children(), out); }
  void state(const std::string& prefix, std::vector<NamedTensor<T>>& out) override {
    children_state(children(), prefix, out);
  }
  void set_training(bool on) override {
    this->training_ = on;
    children_set_training(children(), on);
  }
  std::string name() const override {
    return "Bottleneck(" + std::to_string(in_) + " -> " + std::to_string(planes_) + " -> " +
           std::to_string(expansion * planes_) + ", stride " + std::to_string(stride_) +
           (shortcut_.projection() ? ", projection)" : ")");
  }

  /// One summary row for an input image of shape chw = (C, H, W); chw becomes
  /// the output's shape.
  LayerSummary summary(const std::string& key, Shape& chw) {
    index_t H = chw[1], W = chw[2];
    const double skip = shortcut_.flops(H, W);
    double flops = conv_flops(in_, planes_, 1, 1, 0, H, W);
    flops += conv_flops(planes_, planes_, 3, stride_, 1, H, W);
    flops += conv_flops(planes_, expansion * planes_, 1, 1, 0, H, W) + skip;
    chw = {expansion * planes_, H, W};
    return {key, name(), chw, count_parameters(*this), flops};
  }

 private:
  // The children with state, in PyTorch's registration order.
  std::vector<NamedChild<T>> children() {
    return {{"conv1.", &conv1_}, {"bn1.", &bn1_}, {"conv2.", &conv2_}, {"bn2.", &bn2_}, {"conv3.", &conv3_}, {"bn3.", &bn3_}, {"shortcut.", &shortcut_}};
  }

  index_t in_, planes_, stride_;
  Conv2d<T> conv1_;
  BatchNorm2d<T> bn1_;  // with the ReLU after it
  Conv2d<T> conv2_;
  BatchNorm2d<T> bn2_;  // with the ReLU after it
  Conv2d<T> conv3_;
  BatchNorm2d<T> bn3_;
  Shortcut<T> shortcut_;
  ReLU<T> relu_out_;
};

}  // namespace supcon
