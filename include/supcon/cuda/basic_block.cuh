#pragma once
/// \file basic_block.cuh
/// The ResNet BasicBlock of models/basic_block.hpp on the GPU, composed of
/// the device layers:
///
///     h   = relu(bn1(conv1(x)))         conv1: 3x3, stride s, padding 1
///     m   = bn2(conv2(h))               conv2: 3x3, stride 1, padding 1
///     y   = relu(m + shortcut(x))       shortcut: identity or bn(1x1/s conv)
///
/// Built from a CPU block (same parameters and running statistics, PyTorch's
/// state names), so the two can be compared and the weights moved back.
/// Batch norm has eps 1e-5 and momentum 0.1, as the CPU block's layers.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "supcon/cuda/batchnorm.cuh"
#include "supcon/cuda/conv2d.cuh"
#include "supcon/cuda/cublas.cuh"
#include "supcon/cuda/elementwise.cuh"
#include "supcon/cuda/tensor.cuh"
#include "supcon/models/basic_block.hpp"

namespace supcon::cuda {

/// A bias-free convolution followed by batch norm, caching what its backward needs.
template <class T>
struct ConvBn {
  index_t stride = 1, padding = 0;
  DeviceParameter<T> weight, gamma, beta;  ///< (OC, C, K, K), (OC,), (OC,)
  DeviceTensor<T> running_mean, running_var;
  DeviceTensor<T> conv_out, mean, var;  ///< cache: the batch norm's input and batch statistics

  /// x is (N, C, H, W); y (N, OC, OH, OW) assigned. In training mode the
  /// running statistics move by `momentum`.
  void forward(const CublasHandle& h, const DeviceTensor<T>& x, bool training, T eps, T momentum, DeviceTensor<T>& y,
               Conv2dWorkspace<T>& cws, BatchNormWorkspace<T>& bws) {
    conv2d_forward<T>(h, x, weight.value, nullptr, stride, padding, conv_out, cws);
    if (!training) {
      batchnorm_forward_eval(conv_out, gamma.value, beta.value, running_mean, running_var, eps, y, bws);
      return;
    }
    batchnorm_forward_train(conv_out, gamma.value, beta.value, eps, y, mean, var, bws);
    batchnorm_update_running(running_mean, running_var, mean, var, conv_out.size() / conv_out.dim(1), momentum);
  }

  /// dy has y's shape, x is the forward's input; dx assigned, the three
  /// gradients accumulated. `tmp` is scratch. forward: y = bn(conv(x))
  void backward(const CublasHandle& h, const DeviceTensor<T>& dy, const DeviceTensor<T>& x, T eps, DeviceTensor<T>& dx,
                DeviceTensor<T>& tmp, Conv2dWorkspace<T>& cws, BatchNormWorkspace<T>& bws) {
    batchnorm_backward_train(dy, conv_out, gamma.value, mean, var, eps, tmp, gamma.grad, beta.grad, bws);
    conv2d_backward<T>(h, tmp, x, weight.value, stride, padding, dx, weight.grad, nullptr, cws);
  }
};

template <class T>
class BasicBlock {
 public:
  /// Copies the parameters and running statistics of `cpu`, whose conv1 has
  /// the given stride (ValueError when the stride does not fit the block: an
  /// identity shortcut needs stride 1).
  BasicBlock(supcon::BasicBlock<T>& cpu, index_t stride) : stride_(stride) {
    std::vector<NamedTensor<T>> st;
    cpu.state("", st);
    std::map<std::string, const Tensor<T>*> by_name;
    for (const NamedTensor<T>& t : st) by_name[t.name] = t.tensor;
    projection_ = by_name.count("shortcut.0.weight") > 0;
    require<ValueError>(stride >= 1 && (projection_ || stride == 1), "cuda::BasicBlock: stride ", stride,
                        " does not fit a block with ", projection_ ? "a projection" : "an identity", " shortcut");
    load(by_name, "conv1.", "bn1.", stride, 1, c1_);
    load(by_name, "conv2.", "bn2.", 1, 1, c2_);
    if (projection_) load(by_name, "shortcut.0.", "shortcut.1.", stride, 0, cs_);
  }

  void set_training(bool on) { training_ = on; }
  bool training() const { return training_; }

  /// x is (N, C, H, W); y is resized to (N, P, OH, OW) and assigned. x must
  /// stay unchanged until backward (it is read again, not copied).
  void forward(const CublasHandle& h, const DeviceTensor<T>& x, DeviceTensor<T>& y) {
    x_ = &x;
    forward_training_ = training_;
    c1_.forward(h, x, training_, eps_, momentum_, h_, cws_, bws_);
    relu_forward(h_, h_);
    c2_.forward(h, h_, training_, eps_, momentum_, y, cws_, bws_);
    if (projection_) {
      cs_.forward(h, x, training_, eps_, momentum_, skip_, cws_, bws_);
      add_into(y, skip_);
    } else {
      add_into(y, x);
    }
    relu_forward(y, y);
    y_ = &y;
  }

  /// dy has y's shape; dx is resized to x's shape and ASSIGNED; every
  /// parameter gradient is ACCUMULATED. Uses the latest forward, which must
  /// have run in training mode (ValueError otherwise: the evaluation-mode
  /// backward of batch norm is not written for the GPU).
  void backward(const CublasHandle& h, const DeviceTensor<T>& dy, DeviceTensor<T>& dx) {
    require<ValueError>(x_ != nullptr && forward_training_,
                        "cuda::BasicBlock::backward needs a training-mode forward first");
    // forward: y = relu(m + shortcut(x)); the sum passes its gradient to both terms
    relu_backward(dy, *y_, dsum_);
    // main path, last op first. forward: m = bn2(conv2(h))
    c2_.backward(h, dsum_, h_, eps_, d_, tmp_, cws_, bws_);
    // forward: h = relu(bn1(conv1(x)))
    relu_backward(d_, h_, d_);
    c1_.backward(h, d_, *x_, eps_, dx, tmp_, cws_, bws_);
    // skip path, then x feeds both paths: dx = d_main + d_shortcut
    if (projection_) {
      cs_.backward(h, dsum_, *x_, eps_, d_, tmp_, cws_, bws_);
      add_into(dx, d_);
    } else {
      add_into(dx, dsum_);
    }
  }

  /// The parameters in the order of the CPU block's parameters().
  std::vector<DeviceParameter<T>*> parameters() {
    std::vector<DeviceParameter<T>*> out;
    for (ConvBn<T>* c : convs()) {
      out.push_back(&c->weight);
      out.push_back(&c->gamma);
      out.push_back(&c->beta);
    }
    return out;
  }
  /// Parameters and running statistics under the CPU block's state names.
  std::vector<std::pair<std::string, DeviceTensor<T>*>> state() {
    std::vector<std::pair<std::string, DeviceTensor<T>*>> out;
    const char* names[3][2] = {{"conv1.", "bn1."}, {"conv2.", "bn2."}, {"shortcut.0.", "shortcut.1."}};
    int i = 0;
    for (ConvBn<T>* c : convs()) {
      const std::string conv = names[i][0], bn = names[i][1];
      out.push_back({conv + "weight", &c->weight.value});
      out.push_back({bn + "weight", &c->gamma.value});
      out.push_back({bn + "bias", &c->beta.value});
      out.push_back({bn + "running_mean", &c->running_mean});
      out.push_back({bn + "running_var", &c->running_var});
      ++i;
    }
    return out;
  }

 private:
  std::vector<ConvBn<T>*> convs() {
    std::vector<ConvBn<T>*> out{&c1_, &c2_};
    if (projection_) out.push_back(&cs_);
    return out;
  }
  static const Tensor<T>& find(const std::map<std::string, const Tensor<T>*>& by_name, const std::string& key) {
    const auto it = by_name.find(key);
    require<ValueError>(it != by_name.end(), "cuda::BasicBlock: the CPU block has no state ", key);
    return *it->second;
  }
  void load(const std::map<std::string, const Tensor<T>*>& by_name, const std::string& conv, const std::string& bn,
            index_t stride, index_t padding, ConvBn<T>& c) {
    c.stride = stride;
    c.padding = padding;
    // a parameter's value from the CPU block, a zero gradient (biases and batch norm are not decayed)
    auto param = [&](const std::string& key, bool decay, DeviceParameter<T>& p) {
      const Tensor<T>& v = find(by_name, key);
      p.value = to_device(v);
      p.grad = DeviceTensor<T>(v.shape());
      p.decay = decay;
    };
    param(conv + "weight", true, c.weight);
    param(bn + "weight", false, c.gamma);
    param(bn + "bias", false, c.beta);
    c.running_mean = to_device(find(by_name, bn + "running_mean"));
    c.running_var = to_device(find(by_name, bn + "running_var"));
  }

  index_t stride_;
  bool projection_ = false, training_ = true, forward_training_ = true;
  T eps_ = T(1e-5), momentum_ = T(0.1);
  ConvBn<T> c1_, c2_, cs_;
  Conv2dWorkspace<T> cws_;
  BatchNormWorkspace<T> bws_;
  const DeviceTensor<T>* x_ = nullptr;
  const DeviceTensor<T>* y_ = nullptr;
  DeviceTensor<T> h_, skip_, dsum_, d_, tmp_;  // activations and gradients between the layers
};

}  // namespace supcon::cuda
