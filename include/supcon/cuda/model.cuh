#pragma once
/// \file model.cuh
/// The trained networks on the GPU, built from their CPU counterparts:
///
///   SupConModel:  r = encoder(x);  z = head(r)  (mlp: fc, ReLU, fc; linear: fc);
///                 y = z / max(||z||, 1e-12)                  (N, feat_dim)
///   CEModel:      logits = fc(encoder(x))                    (N, num_classes)
///
/// A Network copies the CPU model's parameters and running statistics in by
/// state name (load) and back out (store), so a model trained here is saved,
/// probed, evaluated and embedded by the CPU code unchanged. parameters()
/// lists the device parameters in the order of the CPU model's
/// parameter_list(), which is the order of the optimizers' state
/// ("momentum.<i>"), and each carries its CPU parameter's decay flag.

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "supcon/cuda/cublas.cuh"
#include "supcon/cuda/elementwise.cuh"
#include "supcon/cuda/linear.cuh"
#include "supcon/cuda/normalize.cuh"
#include "supcon/cuda/resnet.cuh"
#include "supcon/cuda/tensor.cuh"
#include "supcon/models/classifier.hpp"
#include "supcon/models/supcon_model.hpp"

namespace supcon::cuda {

/// A fully connected layer's device parameters, (OUT, IN) and (OUT,), and its input cache.
template <class T>
struct DeviceLinear {
  DeviceParameter<T> weight, bias;
  const DeviceTensor<T>* x = nullptr;

  DeviceLinear() = default;
  DeviceLinear(index_t in, index_t out) {
    weight.value = DeviceTensor<T>({out, in});
    weight.grad = DeviceTensor<T>({out, in});
    bias.value = DeviceTensor<T>({out});
    bias.grad = DeviceTensor<T>({out});
    bias.decay = false;
  }
  /// forward: y = x W^T + b (x kept for the backward)
  void forward(const CublasHandle& h, const DeviceTensor<T>& in, DeviceTensor<T>& y) {
    x = &in;
    linear_forward<T>(h, in, weight.value, &bias.value, y);
  }
  /// dx assigned, dW and db accumulated
  void backward(const CublasHandle& h, const DeviceTensor<T>& dy, DeviceTensor<T>& dx, DeviceBuffer<Sums2>& sums) {
    linear_backward<T>(h, dy, *x, weight.value, dx, weight.grad, &bias.grad, sums);
  }
  void state(const std::string& prefix, std::vector<NamedDeviceTensor<T>>& out) {
    out.push_back({prefix + "weight", &weight.value});
    out.push_back({prefix + "bias", &bias.value});
  }
  void parameters(const std::string& prefix, std::vector<NamedDeviceParameter<T>>& out) {
    out.push_back({prefix + "weight", &weight});
    out.push_back({prefix + "bias", &bias});
  }
};

template <class T>
class Network {
 public:
  /// The GPU copy of a SupCon model: encoder, head and normalisation.
  explicit Network(SupConModel<T>& cpu) : encoder_(cpu.encoder().config()), contrastive_(true) {
    const index_t d = encoder_.feature_dim();
    if (cpu.head() == HeadKind::mlp) {
      fc1_ = DeviceLinear<T>(d, d);
      fc2_ = std::make_unique<DeviceLinear<T>>(d, cpu.feat_dim());
    } else {
      fc1_ = DeviceLinear<T>(d, cpu.feat_dim());
    }
    link(cpu);
  }
  /// The GPU copy of a cross-entropy model: encoder and classifier.
  explicit Network(CEModel<T>& cpu) : encoder_(cpu.encoder().config()), contrastive_(false) {
    fc1_ = DeviceLinear<T>(encoder_.feature_dim(), cpu.num_classes());
    link(cpu);
  }

  /// x is (N, C, H, W) on the device, unchanged until backward; returns the
  /// unit-length projections (N, feat_dim) or the logits (N, num_classes).
  const DeviceTensor<T>& forward(const DeviceTensor<T>& x, bool training = true) {
    training_ = training;
    encoder_.forward(h_, x, training, r_, ws_);
    if (!contrastive_) {
      fc1_.forward(h_, r_, out_);
      return out_;
    }
    fc1_.forward(h_, r_, z1_);
    if (fc2_) {
      relu_forward(z1_, z1_);
      fc2_->forward(h_, z1_, z_);
    }
    l2_normalize_forward(fc2_ ? z_ : z1_, eps_, out_, norms_);
    return out_;
  }

  /// dout has forward()'s output shape; every parameter gradient is
  /// ACCUMULATED. Needs a training-mode forward.
  void backward(const DeviceTensor<T>& dout) {
    require<ValueError>(training_, "cuda::Network::backward needs a training-mode forward first");
    if (!contrastive_) {
      // forward: logits = fc(r)
      fc1_.backward(h_, dout, dr_, sums_);
    } else {
      // forward: y = z / max(||z||, eps)
      l2_normalize_backward(dout, out_, norms_, eps_, dz_);
      if (fc2_) {
        // forward: z = fc2(relu(fc1(r)))
        fc2_->backward(h_, dz_, dz1_, sums_);
        relu_backward(dz1_, z1_, dz1_);
        fc1_.backward(h_, dz1_, dr_, sums_);
      } else {
        fc1_.backward(h_, dz_, dr_, sums_);  // forward: z = fc1(r)
      }
    }
    // forward: r = encoder(x)
    encoder_.backward(h_, dr_, ws_);
  }

  /// The device parameters, in the order of the CPU model's parameter_list().
  const std::vector<DeviceParameter<T>*>& parameters() const { return params_; }
  void zero_grad() {
    for (DeviceParameter<T>* p : params_) p->zero_grad();
  }

  /// Copies every parameter and running statistic of `cpu` in (ShapeError /
  /// ValueError naming the tensor when the models differ).
  void load(Module<T>& cpu) {
    for (const auto& [name, host, dev] : pair_state(cpu)) dev->copy_from(*host);
  }
  /// Copies them back out into `cpu` (waits for the device).
  void store(Module<T>& cpu) {
    for (const auto& [name, host, dev] : pair_state(cpu)) dev->copy_to(*host);
  }

 private:
  struct Pair {
    std::string name;
    Tensor<T>* host;
    DeviceTensor<T>* dev;
  };

  // The fully connected layers under their state prefixes.
  std::vector<std::pair<std::string, DeviceLinear<T>*>> linears() {
    if (!contrastive_) return {{"fc.", &fc1_}};
    if (fc2_) return {{"head.0.", &fc1_}, {"head.2.", fc2_.get()}};
    return {{"head.", &fc1_}};
  }
  void state(std::vector<NamedDeviceTensor<T>>& out) {
    encoder_.state("encoder.", out);
    for (const auto& [prefix, fc] : linears()) fc->state(prefix, out);
  }
  void named_parameters(std::vector<NamedDeviceParameter<T>>& out) {
    encoder_.parameters("encoder.", out);
    for (const auto& [prefix, fc] : linears()) fc->parameters(prefix, out);
  }

  // The CPU and device tensors of one name, every name of both sides paired.
  std::vector<Pair> pair_state(Module<T>& cpu) {
    std::vector<NamedTensor<T>> host;
    cpu.state("", host);
    std::vector<NamedDeviceTensor<T>> dev;
    state(dev);
    std::map<std::string, DeviceTensor<T>*> by_name(dev.begin(), dev.end());
    require<ValueError>(host.size() == dev.size(), "cuda::Network: the CPU model ", cpu.name(), " has ", host.size(),
                        " state tensors, the GPU one ", dev.size());
    std::vector<Pair> out;
    for (const NamedTensor<T>& t : host) {
      const auto it = by_name.find(t.name);
      require<ValueError>(it != by_name.end(), "cuda::Network: the GPU model has no state ", t.name);
      require_shape(t.tensor->shape(), it->second->shape(), "cuda::Network", t.name.c_str());
      out.push_back({t.name, t.tensor, it->second});
    }
    return out;
  }

  // Loads `cpu` and orders the device parameters as cpu.parameter_list(),
  // naming each CPU parameter by the state entry of its value.
  void link(Module<T>& cpu) {
    load(cpu);
    std::vector<NamedTensor<T>> host;
    cpu.state("", host);
    std::map<const Tensor<T>*, std::string> name_of;
    for (const NamedTensor<T>& t : host) name_of[t.tensor] = t.name;
    std::vector<NamedDeviceParameter<T>> dev;
    named_parameters(dev);
    std::map<std::string, DeviceParameter<T>*> by_name(dev.begin(), dev.end());
    for (Parameter<T>* p : cpu.parameter_list()) {
      const auto n = name_of.find(&p->value);
      require<ValueError>(n != name_of.end(), "cuda::Network: a parameter of ", cpu.name(), " has no state name");
      const auto it = by_name.find(n->second);
      require<ValueError>(it != by_name.end(), "cuda::Network: the GPU model has no parameter ", n->second);
      it->second->decay = p->decay;
      params_.push_back(it->second);
    }
    require<ValueError>(params_.size() == dev.size(), "cuda::Network: the CPU model has ", params_.size(),
                        " parameters, the GPU one ", dev.size());
  }

  CublasHandle h_;
  Workspace<T> ws_;
  ResNet<T> encoder_;
  bool contrastive_, training_ = true;
  DeviceLinear<T> fc1_;                    // head.0 / head (contrastive) or fc (ce)
  std::unique_ptr<DeviceLinear<T>> fc2_;  // head.2 of an mlp head
  T eps_ = T(1e-12);
  std::vector<DeviceParameter<T>*> params_;
  DeviceBuffer<Sums2> sums_;
  DeviceTensor<T> r_, z1_, z_, out_, norms_, dz_, dz1_, dr_;
};

}  // namespace supcon::cuda
