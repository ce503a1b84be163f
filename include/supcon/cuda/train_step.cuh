#pragma once
/// \file train_step.cuh
/// A Trainer's step on the GPU (a StepBackend, train/trainer.hpp): the
/// trainer's loop, schedule, checkpoints and logs stay on the host, the
/// loader still makes the batch and its views on the CPU (same seed, same
/// images), and each step is
///
///     upload the images                                   (V*B, C, H, W)
///     out = network(x)                                    cuda::Network
///     loss, dout:  supcon / supcon-in / simclr  FusedSupCon with the
///                  trainer's options (SimCLR: one class per sample);
///                  ce  cross_entropy_kernel
///     backward, optimizer step at the trainer's rate      cuda::DeviceOptimizer
///
/// the same step as Trainer's own, on device copies of its model and
/// optimizer. Only the loss (one number, or B per-row losses for ce) comes
/// back each step; the weights come back when the trainer asks (store).

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "supcon/cuda/cross_entropy.cuh"
#include "supcon/cuda/device.cuh"
#include "supcon/cuda/model.cuh"
#include "supcon/cuda/optim.cuh"
#include "supcon/cuda/supcon_fused.cuh"
#include "supcon/cuda/tensor.cuh"
#include "supcon/train/trainer.hpp"

namespace supcon::cuda {

/// Throws CudaError "<what>: no CUDA device (<reason>)" when this machine has none.
inline void require_device(const char* what) {
  std::string why;
  if (device_count(&why) == 0) throw CudaError(detail::concat(what, ": no CUDA device (", why, ")"));
}

template <class T>
class TrainStep : public StepBackend<T> {
 public:
  /// Device copies of `model` (the SupConModel or CEModel of a run of `cfg`)
  /// and of `opt` (its Sgd or Lars), state included. Throws CudaError
  /// without a device, ValueError for a model or optimizer with no GPU version.
  TrainStep(const TrainConfig& cfg, Module<T>& model, Optimizer<T>& opt)
      : cfg_(cfg), net_(make_network(model)), opt_(opt, net_->parameters()), loss_opt_(trainer_loss_options(cfg)) {
    if (is_contrastive(cfg.method)) {
      require_fused_support(Pairing::identity(1), loss_opt_);
      validate(loss_opt_);
    }
  }

  double step(const data::Batch<T>& b, double lr) override {
    opt_.zero_grad();
    x_.resize(b.images.shape());
    x_.copy_from(b.images);
    const DeviceTensor<T>& out = net_->forward(x_);
    dout_.resize(out.shape());
    const index_t B = b.batch_size(), N = out.dim(0);
    double value = 0;
    if (cfg_.method == Method::ce) {
      value = cross_entropy_loss(out, b.labels);
    } else {
      // SimCLR: every sample its own class; SupCon: the labels' classes
      const Pairing pairing = cfg_.method == Method::simclr ? Pairing::identity(B) : Pairing::from_labels(b.labels);
      classes_.upload(pairing.classes().data(), pairing.classes().size());
      loss_.run(out.data(), classes_.data(), N, out.dim(1), B, loss_opt_, dout_.data());
      value = static_cast<double>(loss_.value());
    }
    if (!std::isfinite(value)) return value;  // the trainer reports it; nothing updated
    net_->backward(dout_);
    opt_.step(lr);
    return value;
  }

  void store(Module<T>& model, Optimizer<T>& opt) override {
    net_->store(model);
    opt_.store(opt);
  }
  void load(Module<T>& model, Optimizer<T>& opt) override {
    net_->load(model);
    opt_.load(opt);
  }

  Network<T>& network() { return *net_; }

 private:
  static std::unique_ptr<Network<T>> make_network(Module<T>& model) {
    require_device("--device cuda");
    if (auto* s = dynamic_cast<SupConModel<T>*>(&model)) return std::make_unique<Network<T>>(*s);
    if (auto* c = dynamic_cast<CEModel<T>*>(&model)) return std::make_unique<Network<T>>(*c);
    throw ValueError("--device cuda: the model " + model.name() + " has no GPU version");
  }

  // Mean cross-entropy of logits (N, C) on the device; dout_ = dL/dlogits.
  // The per-row losses come back and are summed in order, as cuda::cross_entropy.
  double cross_entropy_loss(const DeviceTensor<T>& logits, const std::vector<std::int64_t>& labels) {
    const index_t N = logits.dim(0), C = logits.dim(1);
    require<ShapeError>(static_cast<index_t>(labels.size()) == N, "cuda cross-entropy: ", labels.size(),
                        " labels for ", N, " rows of logits");
    for (std::size_t n = 0; n < labels.size(); ++n)
      require<ValueError>(labels[n] >= 0 && labels[n] < C, "cuda cross-entropy: label ", labels[n], " at row ", n,
                          " is outside [0, ", C, ")");
    labels_.upload(labels.data(), labels.size());
    rows_.resize(static_cast<std::size_t>(N));
    cross_entropy_kernel<T><<<blocks_for(N, 256), 256>>>(logits.data(), labels_.data(), N, C, T(0), dout_.data(),
                                                         rows_.data());
    check_launch("cross_entropy_kernel");
    std::vector<T> rows(static_cast<std::size_t>(N));
    rows_.download(rows.data(), rows.size());
    T value = 0;
    for (T l : rows) value += l;
    return static_cast<double>(value / static_cast<T>(N));
  }

  TrainConfig cfg_;
  std::unique_ptr<Network<T>> net_;
  DeviceOptimizer<T> opt_;
  SupConOptions loss_opt_;
  FusedSupCon<T> loss_;
  DeviceTensor<T> x_, dout_;
  DeviceBuffer<std::int32_t> classes_;
  DeviceBuffer<std::int64_t> labels_;
  DeviceBuffer<T> rows_;
};

/// Moves the steps of `tr` to the GPU (one process; CudaError without a device).
template <class T>
void use_gpu(Trainer<T>& tr) {
  tr.set_step_backend(std::make_unique<TrainStep<T>>(tr.config(), tr.model(), tr.optimizer()));
}

}  // namespace supcon::cuda
