#pragma once
/// \file basic_block.hpp
/// BasicBlock<T>: the residual block of ResNet-18 and -34 (He et al., 2016):
///
///     h   = relu(bn1(conv1(x)))         conv1: 3x3, stride s, padding 1
///     m   = bn2(conv2(h))               conv2: 3x3, stride 1, padding 1
///     y   = relu(m + shortcut(x))       shortcut: identity or 1x1/s conv + bn
///
/// x is (N, C, H, W), y is (N, P, OH, OW) with P = planes (expansion 1) and
/// OH = (H - 1) / s + 1. State keys (under the caller's prefix, e.g.
/// "encoder.layer1.0."): conv1.weight, bn1.*, conv2.weight, bn2.*,
/// shortcut.0.weight, shortcut.1.* (PyTorch's layout and names).
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
class BasicBlock : public Module<T> {
 public:
  static constexpr index_t expansion = 1;

  /// in_planes = C, planes = P, stride = s; draws the convolutions from rng.
  BasicBlock(index_t in_planes, index_t planes, index_t stride, Rng& rng)
      : in_(in_planes), planes_(planes), stride_(stride),
        conv1_(in_planes, planes, 3, stride, 1, false, rng), bn1_(planes),
        conv2_(planes, planes, 3, 1, 1, false, rng), bn2_(planes),
        shortcut_(in_planes, planes, stride, rng) {
    bn1_.fuse_relu(true);  // h = relu(bn1(.)) in batch norm's passes
  }

  index_t out_channels() const { return planes_; }
  /// Sets the scale of the last batch norm to 0, so the block starts as
  /// y = relu(shortcut(x)) (Goyal et al., 2017).
  void zero_init_residual() { bn2_.weight.value.zero(); }

  /// x is (N, C, H, W); returns (N, P, OH, OW).
  Tensor<T> forward(const Tensor<T>& x) override {
    Tensor<T> own;
    copy_parallel(x, own);
    return forward_owned(std::move(own));
  }
  /// As forward; conv1 keeps x as its cache, and the shortcut reads it there.
  Tensor<T> forward_owned(Tensor<T>&& x) override {
    // each intermediate is handed to the layer that caches it, not copied
    Tensor<T> h = bn1_.forward_owned(conv1_.forward_owned(std::move(x)));  // relu(bn1(conv1(x)))
    const Tensor<T>& xin = conv1_.cached_input();
    Tensor<T> z = conv2_.forward_owned(std::move(h));
    // y = relu(bn2(z) + shortcut(x)): batch norm, the join and the ReLU in one
    // pass, bn2(z) never written out; relu_out_ keeps the mask for backward
    std::vector<std::uint8_t>& positive = relu_out_.mask_for_fused_forward(z.shape());
    if (shortcut_.projection()) return bn2_.forward_owned_add_relu(std::move(z), shortcut_.forward(xin), positive);
    return bn2_.forward_owned_add_relu(std::move(z), xin, positive);  // the identity, without its copy
  }

  /// dy is (N, P, OH, OW); returns dx (N, C, H, W); adds into every grad.
  Tensor<T> backward(const Tensor<T>& dy) override {
    // forward: y = relu(m + shortcut(x)); the sum passes g = dy where it was
    // positive to both terms, applied by the mask inside their own passes
    const std::uint8_t* positive = relu_out_.backward_mask(dy);
    // main path, last op first. forward: m = bn2(conv2(h))
    Tensor<T> d = bn2_.backward_masked(dy, positive);
    d = conv2_.backward(d);
    // forward: h = relu(bn1(conv1(x))), bn1 with the ReLU fused
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
    return "BasicBlock(" + std::to_string(in_) + " -> " + std::to_string(planes_) + ", stride " +
           std::to_string(stride_) + (shortcut_.projection() ? ", projection)" : ")");
  }

  /// One summary row for an input image of shape chw = (C, H, W); chw becomes
  /// the output's shape.
  LayerSummary summary(const std::string& key, Shape& chw) {
    index_t H = chw[1], W = chw[2];
    const double skip = shortcut_.flops(H, W);
    double flops = conv_flops(in_, planes_, 3, stride_, 1, H, W);
    flops += conv_flops(planes_, planes_, 3, 1, 1, H, W) + skip;
    chw = {planes_, H, W};
    return {key, name(), chw, count_parameters(*this), flops};
  }

 private:
  // The children with state, in PyTorch's registration order.
  std::vector<NamedChild<T>> children() {
    return {{"conv1.", &conv1_}, {"bn1.", &bn1_}, {"conv2.", &conv2_}, {"bn2.", &bn2_}, {"shortcut.", &shortcut_}};
  }

  index_t in_, planes_, stride_;
  Conv2d<T> conv1_;
  BatchNorm2d<T> bn1_;  // with the ReLU after it
  Conv2d<T> conv2_;
  BatchNorm2d<T> bn2_;
  Shortcut<T> shortcut_;
  ReLU<T> relu_out_;
};

}  // namespace supcon
