#pragma once
/// \file optim.cuh
/// The optimizer of a GPU training run: a device copy of a host Sgd<T> or
/// Lars<T> (optim/), with the same options and the same per-parameter state,
/// which it can take from and give back to the host optimizer, so that a
/// checkpoint written from either side continues on the other.
///
///   SGD   one thread per entry calling sgd_update (layer_math.cuh), the loop
///         body of optim/sgd.hpp
///   LARS  per parameter: one block sums ||w||^2 and ||g + wd w||^2 in double
///         in a fixed order (lars_norms_push), then one thread per entry
///         forms the trust ratio from the sums and applies lars_update
///         (train_math.cuh); no host round trip

#include <cmath>
#include <cstdint>
#include <vector>

#include "supcon/cuda/device.cuh"
#include "supcon/cuda/elementwise.cuh"
#include "supcon/cuda/layer_math.cuh"
#include "supcon/cuda/sgd.cuh"
#include "supcon/cuda/tensor.cuh"
#include "supcon/cuda/train_math.cuh"
#include "supcon/optim/lars.hpp"
#include "supcon/optim/sgd.hpp"

namespace supcon::cuda {

/// sums[0] = {sum w^2, sum (grad + wd w)^2} over n entries; one block of kReduceThreads.
template <class T>
__global__ void lars_norms_kernel(const T* w, const T* grad, std::int64_t n, double wd, Sums2* sums) {
  __shared__ Sums2 part[kReduceThreads];
  const int t = threadIdx.x;
  Sums2 s = sums_empty();
  for (std::int64_t k = t; k < n; k += kReduceThreads) lars_norms_push(s, w[k], grad[k], wd);
  part[t] = s;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (t < half) sums_merge(part[t], part[t + half]);
    __syncthreads();
  }
  if (t == 0) *sums = part[0];
}

/// One LARS step on n entries; the rate lr * trust ratio is formed from *sums in double.
template <class T>
__global__ void lars_step_kernel(T* w, const T* grad, T* v, std::int64_t n, const Sums2* sums, double lr, double eta,
                                 bool decay, T mu, T wd) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= n) return;
  const T scaled_lr = static_cast<T>(lr * lars_trust_ratio(*sums, decay, eta));
  lars_update(w[k], grad[k], v[k], mu, wd, scaled_lr);
}

template <class T>
class DeviceOptimizer {
 public:
  /// Mirrors `host`, an Sgd<T> or Lars<T> over the host parameters that
  /// `params` copy, in the same order (ValueError for another optimizer or
  /// another count); its state (buffers, step count) is copied in.
  DeviceOptimizer(Optimizer<T>& host, std::vector<DeviceParameter<T>*> params) : params_(std::move(params)) {
    require<ValueError>(host.params().size() == params_.size(), "cuda optimizer: ", params_.size(),
                        " device parameters for ", host.params().size(), " host ones");
    if (auto* s = dynamic_cast<supcon::Sgd<T>*>(&host)) {
      sgd_ = s->options();
      has_buffers_ = sgd_.momentum > 0;
    } else if (auto* l = dynamic_cast<supcon::Lars<T>*>(&host)) {
      lars_ = true;
      lars_opt_ = l->options();
      has_buffers_ = true;
      sums_.resize(params_.size());
    } else {
      throw ValueError("--device cuda: the optimizer '" + host.name() + "' has no GPU version (sgd and lars have)");
    }
    if (has_buffers_)
      for (DeviceParameter<T>* p : params_) buffers_.emplace_back(p->value.shape());
    load(host);
  }

  /// One update of every parameter at rate lr, from its gradient on the device.
  void step(double lr) {
    require(std::isfinite(lr) && lr >= 0, "cuda optimizer: lr must be finite and >= 0, got ", lr);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      DeviceParameter<T>& p = *params_[i];
      DeviceTensor<T>* b = has_buffers_ ? &buffers_[i] : nullptr;
      if (lars_) {
        lars_step(p, *b, i, lr);
        continue;
      }
      const bool decayed = p.decay || !sgd_.exclude_no_decay;
      const SgdStep<T> s{static_cast<T>(lr),
                         static_cast<T>(sgd_.momentum),
                         static_cast<T>(1 - sgd_.dampening),
                         decayed ? static_cast<T>(sgd_.weight_decay) : T(0),
                         sgd_.nesterov,
                         steps_ == 0};
      sgd_step(p.value, p.grad, b, s);
    }
    ++steps_;
  }
  void zero_grad() {
    for (DeviceParameter<T>* p : params_) p->zero_grad();
  }
  std::int64_t steps() const { return steps_; }

  /// Takes the host optimizer's buffers ("momentum.<i>") and step count.
  void load(Optimizer<T>& host) {
    const std::vector<NamedTensor<T>> st = host.state_tensors();
    require<ValueError>(st.size() == buffers_.size(), "cuda optimizer: the host ", host.name(), " has ", st.size(),
                        " state tensors, the device one ", buffers_.size());
    for (std::size_t i = 0; i < st.size(); ++i) buffers_[i].copy_from(*st[i].tensor);
    steps_ = host.steps();
  }
  /// Gives the buffers and step count back to the host optimizer.
  void store(Optimizer<T>& host) const {
    const std::vector<NamedTensor<T>> st = host.state_tensors();
    require<ValueError>(st.size() == buffers_.size(), "cuda optimizer: the host ", host.name(), " has ", st.size(),
                        " state tensors, the device one ", buffers_.size());
    for (std::size_t i = 0; i < st.size(); ++i) buffers_[i].copy_to(*st[i].tensor);
    host.set_steps(steps_);
  }

 private:
  void lars_step(DeviceParameter<T>& p, DeviceTensor<T>& v, std::size_t i, double lr) {
    const std::int64_t n = p.value.size();
    if (n == 0) return;
    const double wd = p.decay ? lars_opt_.weight_decay : 0.0;
    lars_norms_kernel<T><<<1, kReduceThreads>>>(p.value.data(), p.grad.data(), n, lars_opt_.weight_decay,
                                                sums_.data() + i);
    check_launch("lars_norms_kernel");
    lars_step_kernel<T><<<blocks_for(n, kElementThreads), kElementThreads>>>(
        p.value.data(), p.grad.data(), v.data(), n, sums_.data() + i, lr, lars_opt_.trust_coefficient, p.decay,
        static_cast<T>(lars_opt_.momentum), static_cast<T>(wd));
    check_launch("lars_step_kernel");
  }

  std::vector<DeviceParameter<T>*> params_;
  SgdOptions sgd_;
  LarsOptions lars_opt_;
  bool lars_ = false, has_buffers_ = false;
  std::vector<DeviceTensor<T>> buffers_;  // parallel to params_: SGD momentum or LARS velocity
  DeviceBuffer<Sums2> sums_;              // LARS: one pair of norms per parameter
  std::int64_t steps_ = 0;
};

}  // namespace supcon::cuda
