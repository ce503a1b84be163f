#pragma once
/// \file sgd.cuh
/// SGD with momentum, dampening, weight decay and Nesterov's form on device
/// parameters: the update rule of optim/sgd.hpp (torch.optim.SGD), one thread
/// per parameter entry calling sgd_update (layer_math.cuh), the very loop body
/// of the CPU optimizer.

#include <cstdint>
#include <vector>

#include "supcon/cuda/device.cuh"
#include "supcon/cuda/elementwise.cuh"
#include "supcon/cuda/layer_math.cuh"
#include "supcon/cuda/layer_shapes.cuh"
#include "supcon/cuda/tensor.cuh"
#include "supcon/optim/sgd.hpp"

namespace supcon::cuda {

/// One step on n entries: w, and the momentum buffer b when not null, updated in place.
template <class T>
__global__ void sgd_step_kernel(T* w, const T* grad, T* b, std::int64_t n, SgdStep<T> s) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k < n) sgd_update(w[k], grad[k], b ? b + k : nullptr, s);
}

/// One SGD step on one parameter buffer: value (any shape) and grad of the
/// same shape (ShapeError otherwise); momentum, when not null, has that shape
/// too and holds the buffer b (its content is ignored when s.first).
template <class T>
void sgd_step(DeviceTensor<T>& value, const DeviceTensor<T>& grad, DeviceTensor<T>* momentum, const SgdStep<T>& s) {
  require_shape(grad.shape(), value.shape(), "cuda::sgd_step", "grad");
  if (momentum) require_shape(momentum->shape(), value.shape(), "cuda::sgd_step", "momentum buffer");
  const std::int64_t n = value.size();
  if (n == 0) return;
  sgd_step_kernel<T><<<blocks_for(n, kElementThreads), kElementThreads>>>(value.data(), grad.data(),
                                                                          momentum ? momentum->data() : nullptr, n, s);
  check_launch("sgd_step_kernel");
}

/// SGD over device parameters, with SgdOptions validated as on the CPU
/// (ValueError naming the option). The momentum buffers live on the device,
/// in a vector parallel to the parameters; the step count on the host.
template <class T>
class Sgd {
 public:
  Sgd(std::vector<DeviceParameter<T>*> params, const SgdOptions& o) : params_(std::move(params)), o_(o) {
    validate(o_);
    if (o_.momentum > 0)
      for (DeviceParameter<T>* p : params_) momentum_.emplace_back(p->value.shape());
  }

  /// w <- w - lr u for every parameter, u as in optim/sgd.hpp.
  void step() {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      DeviceParameter<T>& p = *params_[i];
      const bool decayed = p.decay || !o_.exclude_no_decay;
      const SgdStep<T> s{static_cast<T>(o_.lr),
                         static_cast<T>(o_.momentum),
                         static_cast<T>(1 - o_.dampening),
                         decayed ? static_cast<T>(o_.weight_decay) : T(0),
                         o_.nesterov,
                         steps_ == 0};
      sgd_step(p.value, p.grad, momentum_.empty() ? nullptr : &momentum_[i], s);
    }
    ++steps_;
  }
  void zero_grad() {
    for (DeviceParameter<T>* p : params_) p->zero_grad();
  }
  void set_lr(double lr) {
    require_in_range(lr, 0, false, HUGE_VAL, true, "SGD", "lr");
    o_.lr = lr;
  }
  long long steps() const { return steps_; }

 private:
  std::vector<DeviceParameter<T>*> params_;
  SgdOptions o_;
  std::vector<DeviceTensor<T>> momentum_;  // parallel to params_; empty when momentum == 0
  long long steps_ = 0;
};

}  // namespace supcon::cuda
