#pragma once
/// \file resnet.cuh
/// The ResNet encoder of models/resnet.hpp on the GPU, for every architecture
/// (BasicBlock: resnet18/34; Bottleneck: resnet50/101) and both stems:
///
///     stem     h = relu(bn1(conv1(x)))          [then maxpool 3x3/2, padding 1: imagenet]
///     stages   h = block(h), block after block  (ResidualBlock below)
///     pooling  r = mean of h over H, W          (N, feature_dim)
///
/// The structure comes from a ResNetConfig; the values are copied in from a
/// CPU encoder by name (state(): PyTorch's state names, the same as the CPU
/// model's), so the two compute the same function and the weights go back
/// the same way. Batch norm has eps 1e-5 and momentum 0.1, as on the CPU.

#include <string>
#include <utility>
#include <vector>

#include "supcon/cuda/basic_block.cuh"
#include "supcon/cuda/batchnorm.cuh"
#include "supcon/cuda/conv2d.cuh"
#include "supcon/cuda/cublas.cuh"
#include "supcon/cuda/elementwise.cuh"
#include "supcon/cuda/maxpool.cuh"
#include "supcon/cuda/pool.cuh"
#include "supcon/cuda/tensor.cuh"
#include "supcon/models/resnet.hpp"

namespace supcon::cuda {

/// A device tensor under its state name.
template <class T>
using NamedDeviceTensor = std::pair<std::string, DeviceTensor<T>*>;
/// A device parameter under the state name of its value.
template <class T>
using NamedDeviceParameter = std::pair<std::string, DeviceParameter<T>*>;

/// Work buffers shared by every layer of one network.
template <class T>
struct Workspace {
  Conv2dWorkspace<T> conv;
  BatchNormWorkspace<T> bn;
  DeviceTensor<T> tmp;  ///< between a batch norm's and its convolution's backward
};

/// A ConvBn of OC x C x K x K at the given stride and padding, all zero (the
/// values are loaded by name afterwards); weights decayed, batch norm not.
template <class T>
ConvBn<T> make_conv_bn(index_t C, index_t OC, index_t K, index_t stride, index_t padding) {
  ConvBn<T> c;
  c.stride = stride;
  c.padding = padding;
  auto param = [](DeviceParameter<T>& p, Shape s, bool decay) {
    p.value = DeviceTensor<T>(s);
    p.grad = DeviceTensor<T>(s);
    p.decay = decay;
  };
  param(c.weight, {OC, C, K, K}, true);
  param(c.gamma, {OC}, false);
  param(c.beta, {OC}, false);
  c.running_mean = DeviceTensor<T>({OC});
  c.running_var = DeviceTensor<T>({OC});
  return c;
}

/// Appends a ConvBn's state as "<conv>weight" and "<bn>weight|bias|running_mean|running_var".
template <class T>
void conv_bn_state(ConvBn<T>& c, const std::string& conv, const std::string& bn, std::vector<NamedDeviceTensor<T>>& out) {
  out.push_back({conv + "weight", &c.weight.value});
  out.push_back({bn + "weight", &c.gamma.value});
  out.push_back({bn + "bias", &c.beta.value});
  out.push_back({bn + "running_mean", &c.running_mean});
  out.push_back({bn + "running_var", &c.running_var});
}
template <class T>
void conv_bn_parameters(ConvBn<T>& c, const std::string& conv, const std::string& bn,
                        std::vector<NamedDeviceParameter<T>>& out) {
  out.push_back({conv + "weight", &c.weight});
  out.push_back({bn + "weight", &c.gamma});
  out.push_back({bn + "bias", &c.beta});
}

/// A residual block: a main path of ConvBn layers with ReLU between them, a
/// shortcut (identity or ConvBn 1x1/s), and y = relu(main(x) + shortcut(x)).
///   BasicBlock: 3x3/s, 3x3           (P channels out)
///   Bottleneck: 1x1, 3x3/s, 1x1      (4P channels out; stride on the 3x3)
/// State names: conv<i>.weight, bn<i>.*, shortcut.0.weight, shortcut.1.*.
template <class T>
class ResidualBlock {
 public:
  ResidualBlock(bool bottleneck, index_t in, index_t planes, index_t stride) {
    if (bottleneck) {
      main_.push_back(make_conv_bn<T>(in, planes, 1, 1, 0));
      main_.push_back(make_conv_bn<T>(planes, planes, 3, stride, 1));
      main_.push_back(make_conv_bn<T>(planes, 4 * planes, 1, 1, 0));
    } else {
      main_.push_back(make_conv_bn<T>(in, planes, 3, stride, 1));
      main_.push_back(make_conv_bn<T>(planes, planes, 3, 1, 1));
    }
    out_ = bottleneck ? 4 * planes : planes;
    projection_ = stride != 1 || in != out_;  // as supcon::Shortcut
    if (projection_) shortcut_ = make_conv_bn<T>(in, out_, 1, stride, 0);
    h_.resize(main_.size() - 1);
  }
  index_t out_channels() const { return out_; }

  /// x is (N, C, H, W); y is resized and assigned. x and y must stay
  /// unchanged until backward (read again, not copied).
  void forward(const CublasHandle& h, const DeviceTensor<T>& x, bool training, DeviceTensor<T>& y, Workspace<T>& ws) {
    x_ = &x;
    y_ = &y;
    const DeviceTensor<T>* in = &x;
    for (std::size_t i = 0; i < main_.size(); ++i) {
      const bool last = i + 1 == main_.size();
      DeviceTensor<T>& out = last ? y : h_[i];
      main_[i].forward(h, *in, training, eps_, momentum_, out, ws.conv, ws.bn);
      if (!last) relu_forward(out, out);
      in = &out;
    }
    if (projection_) {
      shortcut_.forward(h, x, training, eps_, momentum_, skip_, ws.conv, ws.bn);
      add_into(y, skip_);
    } else {
      add_into(y, x);
    }
    relu_forward(y, y);
  }

  /// dy has y's shape; dx is resized to x's shape and ASSIGNED; the
  /// parameter gradients are ACCUMULATED. Needs a training-mode forward.
  void backward(const CublasHandle& h, const DeviceTensor<T>& dy, DeviceTensor<T>& dx, Workspace<T>& ws) {
    require<ValueError>(x_ != nullptr, "cuda::ResidualBlock::backward needs a forward first");
    // forward: y = relu(m + shortcut(x)); the sum passes its gradient to both terms
    relu_backward(dy, *y_, dsum_);
    // main path, last layer first. forward: h_i = relu(bn_i(conv_i(h_{i-1}))), m = bn(conv(h_last))
    const DeviceTensor<T>* d = &dsum_;
    for (std::size_t i = main_.size(); i-- > 0;) {
      DeviceTensor<T>& out = i == 0 ? dx : d_[i % 2];
      main_[i].backward(h, *d, i == 0 ? *x_ : h_[i - 1], eps_, out, ws.tmp, ws.conv, ws.bn);
      if (i > 0) relu_backward(out, h_[i - 1], out);
      d = &out;
    }
    // skip path; x feeds both paths: dx = d_main + d_shortcut
    if (projection_) {
      shortcut_.backward(h, dsum_, *x_, eps_, d_[0], ws.tmp, ws.conv, ws.bn);
      add_into(dx, d_[0]);
    } else {
      add_into(dx, dsum_);
    }
  }

  void state(const std::string& prefix, std::vector<NamedDeviceTensor<T>>& out) {
    for (std::size_t i = 0; i < main_.size(); ++i) {
      const std::string k = std::to_string(i + 1);
      conv_bn_state(main_[i], prefix + "conv" + k + ".", prefix + "bn" + k + ".", out);
    }
    if (projection_) conv_bn_state(shortcut_, prefix + "shortcut.0.", prefix + "shortcut.1.", out);
  }
  void parameters(const std::string& prefix, std::vector<NamedDeviceParameter<T>>& out) {
    for (std::size_t i = 0; i < main_.size(); ++i) {
      const std::string k = std::to_string(i + 1);
      conv_bn_parameters(main_[i], prefix + "conv" + k + ".", prefix + "bn" + k + ".", out);
    }
    if (projection_) conv_bn_parameters(shortcut_, prefix + "shortcut.0.", prefix + "shortcut.1.", out);
  }

 private:
  std::vector<ConvBn<T>> main_;
  ConvBn<T> shortcut_;
  bool projection_ = false;
  index_t out_ = 0;
  T eps_ = T(1e-5), momentum_ = T(0.1);
  const DeviceTensor<T>* x_ = nullptr;
  const DeviceTensor<T>* y_ = nullptr;
  std::vector<DeviceTensor<T>> h_;  // the main path's inner activations (after ReLU)
  DeviceTensor<T> skip_, dsum_, d_[2];
};

template <class T>
class ResNet {
 public:
  /// The encoder of `cfg` (ValueError for an unknown architecture), zero until loaded.
  explicit ResNet(const ResNetConfig& cfg) : cfg_(cfg), pool_(3, 2, 1) {
    const ResNetArch arch = resnet_arch(cfg.arch);
    const bool cifar = cfg.stem == Stem::cifar;
    conv1_ = make_conv_bn<T>(cfg.in_channels, cfg.width, cifar ? 3 : 7, cifar ? 1 : 2, cifar ? 1 : 3);
    index_t in = cfg.width;
    for (int stage = 0; stage < 4; ++stage)
      for (index_t j = 0; j < arch.blocks[stage]; ++j) {
        blocks_.emplace_back(arch.bottleneck, in, cfg.width << stage, (stage > 0 && j == 0) ? 2 : 1);
        keys_.push_back("layer" + std::to_string(stage + 1) + "." + std::to_string(j) + ".");
        in = blocks_.back().out_channels();
      }
    dim_ = in;
    acts_.resize(blocks_.size() + 1);
  }

  index_t feature_dim() const { return dim_; }
  const ResNetConfig& config() const { return cfg_; }

  /// x is (N, in_channels, H, W); r is resized to (N, feature_dim()) and
  /// assigned. x must stay unchanged until backward.
  void forward(const CublasHandle& h, const DeviceTensor<T>& x, bool training, DeviceTensor<T>& r,
               Workspace<T>& ws) {
    x_ = &x;
    training_ = training;
    conv1_.forward(h, x, training, T(1e-5), T(0.1), stem_, ws.conv, ws.bn);
    relu_forward(stem_, stem_);
    if (cfg_.stem == Stem::imagenet)
      pool_.forward(stem_, acts_[0]);
    const DeviceTensor<T>* in = cfg_.stem == Stem::imagenet ? &acts_[0] : &stem_;
    for (std::size_t k = 0; k < blocks_.size(); ++k) {
      blocks_[k].forward(h, *in, training, acts_[k + 1], ws);
      in = &acts_[k + 1];
    }
    global_avgpool_forward(*in, r);
  }

  /// dr is (N, feature_dim()); every parameter gradient is ACCUMULATED (the
  /// image gradient is not needed and is left in a scratch tensor).
  void backward(const CublasHandle& h, const DeviceTensor<T>& dr, Workspace<T>& ws) {
    require<ValueError>(x_ != nullptr && training_, "cuda::ResNet::backward needs a training-mode forward first");
    // forward: r = mean over H, W of the last block's output
    global_avgpool_backward(dr, acts_.back().shape(), d_[0]);
    // forward: h = block_k(h) for k = 0, 1, ...; undone from the last block
    int cur = 0;
    for (std::size_t k = blocks_.size(); k-- > 0;) {
      blocks_[k].backward(h, d_[cur], d_[1 - cur], ws);
      cur = 1 - cur;
    }
    // forward: h = [maxpool](relu(bn1(conv1(x))))
    if (cfg_.stem == Stem::imagenet) {
      pool_.backward(d_[cur], d_[1 - cur]);
      cur = 1 - cur;
    }
    relu_backward(d_[cur], stem_, d_[cur]);
    conv1_.backward(h, d_[cur], *x_, T(1e-5), d_[1 - cur], ws.tmp, ws.conv, ws.bn);
  }

  /// Parameters and running statistics under the CPU encoder's state names.
  void state(const std::string& prefix, std::vector<NamedDeviceTensor<T>>& out) {
    conv_bn_state(conv1_, prefix + "conv1.", prefix + "bn1.", out);
    for (std::size_t k = 0; k < blocks_.size(); ++k) blocks_[k].state(prefix + keys_[k], out);
  }
  void parameters(const std::string& prefix, std::vector<NamedDeviceParameter<T>>& out) {
    conv_bn_parameters(conv1_, prefix + "conv1.", prefix + "bn1.", out);
    for (std::size_t k = 0; k < blocks_.size(); ++k) blocks_[k].parameters(prefix + keys_[k], out);
  }

 private:
  ResNetConfig cfg_;
  ConvBn<T> conv1_;
  MaxPool<T> pool_;  // imagenet stem only
  std::vector<ResidualBlock<T>> blocks_;
  std::vector<std::string> keys_;
  index_t dim_ = 0;
  bool training_ = true;
  const DeviceTensor<T>* x_ = nullptr;
  DeviceTensor<T> stem_;              // relu(bn1(conv1(x)))
  std::vector<DeviceTensor<T>> acts_;  // [0]: the pooled stem (imagenet); [k + 1]: block k's output
  DeviceTensor<T> d_[2];
};

}  // namespace supcon::cuda
