#pragma once
/// \file batchnorm.hpp
/// BatchNorm1d<T> on (N, C) and BatchNorm2d<T> on (N, C, H, W), with
/// PyTorch's semantics (math in ops/batchnorm.hpp): eps 1e-5, momentum 0.1,
/// affine; training normalises with the batch statistics and updates the
/// running ones (unbiased variance); evaluation uses the running statistics.
///
///     BatchNorm2d<T>(channels, eps = 1e-5, momentum = 0.1)
///     weight        Parameter (C,), 1, decay = false
///     bias          Parameter (C,), 0, decay = false
///     running_mean  (C,), 0        running_var  (C,), 1
///     state         "weight", "bias", "running_mean", "running_var"
///
/// backward follows the mode of the latest forward: the three-term gradient
/// through the batch statistics in training, an affine map in evaluation.
///
/// With fuse_relu(true) the layer computes relu(bn(x)), the pair that every
/// residual block has: in training the ReLU runs inside batch norm's own
/// passes (ops::batchnorm_relu_forward_train), saving a pass over the
/// activations each way. The state is that of the batch norm alone.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "supcon/core/module.hpp"
#include "supcon/layers/common.hpp"
#include "supcon/ops/activation.hpp"
#include "supcon/ops/batchnorm.hpp"

namespace supcon {

/// Synchronised batch norm for data-parallel training: while this reducer is
/// set, every BatchNorm in training mode normalises with the statistics of
/// all processes (ops::batchnorm_forward_train_sync); empty (the default) =
/// each process its own batch. Set it for the span of a step with
/// BatchNormSyncScope.
inline ops::StatReducer& batchnorm_sync_reducer() {
  static ops::StatReducer reduce;
  return reduce;
}

/// Sets batchnorm_sync_reducer() for its lifetime, then restores the previous one.
class BatchNormSyncScope {
 public:
  explicit BatchNormSyncScope(ops::StatReducer reduce) : saved_(batchnorm_sync_reducer()) {
    batchnorm_sync_reducer() = std::move(reduce);
  }
  ~BatchNormSyncScope() { batchnorm_sync_reducer() = std::move(saved_); }
  BatchNormSyncScope(const BatchNormSyncScope&) = delete;
  BatchNormSyncScope& operator=(const BatchNormSyncScope&) = delete;

 private:
  ops::StatReducer saved_;
};

/// Batch normalisation of inputs of rank `Rank` (2: (N, C); 4: (N, C, H, W)).
/// Use the aliases BatchNorm1d and BatchNorm2d.
template <class T, int Rank>
class BatchNorm : public Module<T> {
  static_assert(Rank == 2 || Rank == 4, "BatchNorm: Rank is 2 (N, C) or 4 (N, C, H, W)");

 public:
  Parameter<T> weight;     ///< (C,) scale gamma
  Parameter<T> bias;       ///< (C,) shift beta
  Tensor<T> running_mean;  ///< (C,)
  Tensor<T> running_var;   ///< (C,), unbiased

  explicit BatchNorm(index_t channels, double eps = 1e-5, double momentum = 0.1)
      : c_(channels), eps_(static_cast<T>(eps)), momentum_(static_cast<T>(momentum)) {
    require<ValueError>(channels > 0, kind(), ": channels must be > 0, got ", channels);
    require<ValueError>(eps > 0, kind(), ": eps must be > 0, got ", eps);
    require<ValueError>(momentum >= 0 && momentum <= 1, kind(), ": momentum must be in [0, 1], got ",
                        momentum);
    weight = Parameter<T>({c_}, /*decay=*/false);
    bias = Parameter<T>({c_}, /*decay=*/false);
    weight.value.fill(T(1));
    running_mean = Tensor<T>({c_});
    running_var = Tensor<T>({c_}, T(1));
  }

  index_t channels() const { return c_; }
  T eps() const { return eps_; }
  T momentum() const { return momentum_; }
  /// Whether the layer computes relu(bn(x)) instead of bn(x).
  bool fused_relu() const { return fuse_relu_; }
  /// Makes the layer compute relu(bn(x)) (on) or bn(x) (off) from the next forward.
  void fuse_relu(bool on) { fuse_relu_ = on; }

  /// x is (N, C) or (N, C, H, W) per Rank; returns the same shape. In training
  /// mode also updates running_mean and running_var.
  Tensor<T> forward(const Tensor<T>& x) override {
    check_input(x);
    copy_parallel(x, x_);
    return forward_cached();
  }
  /// As forward, keeping x itself as the cache.
  Tensor<T> forward_owned(Tensor<T>&& x) override {
    check_input(x);
    x_ = std::move(x);
    return forward_cached();
  }

  /// relu(bn(x) + skip) and the ReLU's mask (resized to x's size): the end of
  /// a residual block, its last batch norm (this layer, without a fused
  /// ReLU), the join and the ReLU after it. In training with this process's
  /// statistics it runs in batch norm's own passes, without writing bn(x)
  /// out; otherwise as forward_owned, then the join. skip has x's shape.
  /// The cache and backward are this layer's alone.
  Tensor<T> forward_owned_add_relu(Tensor<T>&& x, const Tensor<T>& skip, std::vector<std::uint8_t>& mask) {
    check_input(x);
    x_ = std::move(x);
    return forward_cached(&skip, &mask);
  }

  /// dy has the input's shape; returns dx; adds into weight.grad and bias.grad.
  Tensor<T> backward(const Tensor<T>& dy) override {
    detail::require_backward(cached_, dy, x_.shape(), name());
    Tensor<T> dx;
    require(!(cached_training_ && synced_) || batchnorm_sync_reducer(), name(),
            ": the forward used synchronised statistics, so its backward needs the reducer still set");
    const bool relu = cached_relu_;
    if (relu && cached_training_ && !synced_) {  // forward: y = relu(bn(x)), one op
      ops::batchnorm_relu_backward_train(dy, positive_.data(), x_, weight.value, mean_, var_, eps_, dx, weight.grad,
                                         bias.grad);
      return dx;
    }
    Tensor<T> drelu;
    if (relu) ops::relu_backward_mask(dy, positive_.data(), drelu);  // forward: y = relu(b), b = bn(x)
    const Tensor<T>& db = relu ? drelu : dy;
    if (cached_training_ && synced_)
      ops::batchnorm_backward_train_sync(db, x_, weight.value, mean_, var_, eps_, count_, batchnorm_sync_reducer(),
                                         dx, weight.grad, bias.grad);
    else if (cached_training_)
      ops::batchnorm_backward_train(db, x_, weight.value, mean_, var_, eps_, dx, weight.grad, bias.grad);
    else
      ops::batchnorm_backward_eval(db, x_, weight.value, running_mean, running_var, eps_, dx, weight.grad,
                                   bias.grad);
    return dx;
  }

  /// backward(g) for g = dy where `mask` is set and 0 elsewhere (mask holds
  /// dy.size() bytes): the gradient that a ReLU after this layer, or after a
  /// sum with its output, passes back. In training (batch statistics of this
  /// process, no fused ReLU) g is formed inside batch norm's passes and never
  /// written out; otherwise it is formed first.
  Tensor<T> backward_masked(const Tensor<T>& dy, const std::uint8_t* mask) {
    detail::require_backward(cached_, dy, x_.shape(), name());
    if (cached_training_ && !synced_ && !cached_relu_) {  // forward: y = bn(x), then relu(y + ...) outside
      Tensor<T> dx;
      ops::batchnorm_relu_backward_train(dy, mask, x_, weight.value, mean_, var_, eps_, dx, weight.grad, bias.grad);
      return dx;
    }
    Tensor<T> g;
    ops::relu_backward_mask(dy, mask, g);
    return backward(g);
  }

  void parameters(std::vector<Parameter<T>*>& out) override {
    detail::list_weight_bias(weight, bias, true, out);
  }
  void state(const std::string& prefix, std::vector<NamedTensor<T>>& out) override {
    detail::state_weight_bias(weight, bias, true, prefix, out);
    out.push_back({prefix + "running_mean", &running_mean});
    out.push_back({prefix + "running_var", &running_var});
  }
  std::string name() const override {
    return kind() + "(" + std::to_string(c_) + ")" + (fuse_relu_ ? " + ReLU" : "");
  }

 private:
  void check_input(const Tensor<T>& x) const {
    detail::require_input(x, Rank, c_, Rank == 2 ? "(N, " + std::to_string(c_) + ")"
                                                 : "(N, " + std::to_string(c_) + ", H, W)",
                          name());
  }
  /// y = bn(x_), or relu(bn(x_)), for the cached input; in training mode also
  /// the statistics. With skip, relu(y + skip) and its mask into join_mask.
  Tensor<T> forward_cached(const Tensor<T>* skip = nullptr, std::vector<std::uint8_t>* join_mask = nullptr) {
    const Tensor<T>& x = x_;
    cached_ = true;
    cached_training_ = this->training_;
    cached_relu_ = fuse_relu_;
    Tensor<T> y;
    if (this->training_) {
      require<ValueError>(x.size() / c_ > 1, name(),
                          ": training needs more than one value per channel, got input ",
                          shape_str(x.shape()));
      synced_ = static_cast<bool>(batchnorm_sync_reducer());
      if (synced_) {
        count_ = ops::batchnorm_forward_train_sync(x, weight.value, bias.value, eps_, batchnorm_sync_reducer(),
                                                   y, mean_, var_);
      } else if (fuse_relu_) {
        ops::batchnorm_relu_forward_train(x, weight.value, bias.value, eps_, y, positive_, mean_, var_);
        count_ = x.size() / c_;
      } else if (skip) {  // relu(bn(x) + skip), one op
        ops::batchnorm_add_relu_forward_train(x, *skip, weight.value, bias.value, eps_, y, *join_mask, mean_, var_);
        count_ = x.size() / c_;
        skip = nullptr;  // joined already
      } else {
        ops::batchnorm_forward_train(x, weight.value, bias.value, eps_, y, mean_, var_);
        count_ = x.size() / c_;
      }
      ops::batchnorm_update_running(running_mean, running_var, mean_, var_, count_, momentum_);
      if (fuse_relu_ && !synced_) return join(std::move(y), skip, join_mask);
    } else {
      ops::batchnorm_forward_eval(x, weight.value, bias.value, running_mean, running_var, eps_, y);
    }
    if (fuse_relu_) {
      Tensor<T> r;  // the ReLU as a pass of its own
      ops::relu_forward_mask(y, r, positive_);
      y = std::move(r);
    }
    return join(std::move(y), skip, join_mask);
  }
  /// y itself, or with skip relu(y + skip) over y and its mask into join_mask.
  static Tensor<T> join(Tensor<T>&& y, const Tensor<T>* skip, std::vector<std::uint8_t>* join_mask) {
    if (skip) ops::add_relu_forward_mask(y, *skip, *join_mask);
    return std::move(y);
  }

  index_t c_;
  T eps_, momentum_;
  Tensor<T> x_, mean_, var_;  // cache: input and batch statistics
  bool cached_ = false, cached_training_ = true;
  bool synced_ = false;  // the latest training forward used synchronised statistics
  bool fuse_relu_ = false, cached_relu_ = false;
  std::vector<std::uint8_t> positive_;  // with a fused ReLU: bn(x) > 0, one byte per entry
  index_t count_ = 0;    // its values per channel (over all processes when synced)

  static std::string kind() { return Rank == 2 ? "BatchNorm1d" : "BatchNorm2d"; }
};

/// Batch normalisation of (N, C).
template <class T>
using BatchNorm1d = BatchNorm<T, 2>;
/// Batch normalisation of (N, C, H, W).
template <class T>
using BatchNorm2d = BatchNorm<T, 4>;

}  // namespace supcon
