#pragma once
/// \file pool.hpp
/// Pooling layers without parameters (math in ops/pool.hpp):
///
///     MaxPool2d<T>(kernel, stride = kernel, padding = 0)   (N, C, H, W) -> (N, C, OH, OW)
///     AvgPool2d<T>(kernel, stride = kernel, padding = 0)   same, count_include_pad = true
///     GlobalAvgPool<T>()                                   (N, C, H, W) -> (N, C)
///
/// OH = (H + 2p - K) / s + 1 (floor), and the padding is at most K / 2.

#include <string>
#include <vector>

#include "supcon/core/module.hpp"
#include "supcon/layers/common.hpp"
#include "supcon/ops/pool.hpp"

namespace supcon {

namespace detail {
/// Kernel, stride and padding of a pooling layer, with its checks and name.
struct PoolWindow {
  index_t k, s, p;
  std::string kind;

  PoolWindow(const char* kind_, index_t kernel, index_t stride, index_t padding)
      : k(kernel), s(stride == 0 ? kernel : stride), p(padding), kind(kind_) {
    require<ValueError>(k >= 1 && s >= 1, name(), ": kernel and stride must be >= 1");
    require<ValueError>(p >= 0 && p <= k / 2, name(), ": padding (", p, ") must be in [0, kernel / 2]");
  }
  std::string name() const {
    return kind + "(k=" + std::to_string(k) + ", s=" + std::to_string(s) + ", p=" + std::to_string(p) + ")";
  }
  /// Throws, naming the layer, unless x is (N, C, H, W) with room for a window.
  template <class T>
  void check_input(const Tensor<T>& x) const {
    require_input(x, 4, -1, "(N, C, H, W)", name());
    ops::window_output_size(x.dim(2), k, s, p, name());
    ops::window_output_size(x.dim(3), k, s, p, name());
  }
};
}  // namespace detail

/// Which window reduction a Pool2d layer applies.
enum class PoolMode { max, average };

/// Max or average pooling over K x K windows; use the aliases MaxPool2d and
/// AvgPool2d.
template <class T, PoolMode Mode>
class Pool2d : public Module<T> {
 public:
  explicit Pool2d(index_t kernel, index_t stride = 0, index_t padding = 0)
      : win_(Mode == PoolMode::max ? "MaxPool2d" : "AvgPool2d", kernel, stride, padding) {}

  /// x is (N, C, H, W); returns (N, C, OH, OW). Max pooling caches the
  /// winners' positions.
  Tensor<T> forward(const Tensor<T>& x) override {
    win_.check_input(x);
    Tensor<T> y;
    if constexpr (Mode == PoolMode::max)
      ops::maxpool2d_forward(x, win_.k, win_.s, win_.p, y, argmax_);
    else
      ops::avgpool2d_forward(x, win_.k, win_.s, win_.p, y);
    x_shape_ = x.shape();
    y_shape_ = y.shape();
    cached_ = true;
    return y;
  }
  Tensor<T> backward(const Tensor<T>& dy) override {
    detail::require_backward(cached_, dy, y_shape_, name());
    Tensor<T> dx;
    if constexpr (Mode == PoolMode::max)
      ops::maxpool2d_backward(dy, argmax_, x_shape_, dx);
    else
      ops::avgpool2d_backward(dy, x_shape_, win_.k, win_.s, win_.p, dx);
    return dx;
  }
  std::string name() const override { return win_.name(); }

 private:
  detail::PoolWindow win_;
  std::vector<index_t> argmax_;  // max pooling only
  Shape x_shape_, y_shape_;
  bool cached_ = false;
};

/// Max pooling (padding never wins).
template <class T>
using MaxPool2d = Pool2d<T, PoolMode::max>;
/// Average pooling with count_include_pad = true.
template <class T>
using AvgPool2d = Pool2d<T, PoolMode::average>;

template <class T>
class GlobalAvgPool : public Module<T> {
 public:
  /// x is (N, C, H, W) with H, W > 0; returns (N, C).
  Tensor<T> forward(const Tensor<T>& x) override {
    detail::require_input(x, 4, -1, "(N, C, H, W)", name());
    Tensor<T> y;
    ops::global_avgpool_forward(x, y);
    x_shape_ = x.shape();
    y_shape_ = y.shape();
    cached_ = true;
    return y;
  }
  Tensor<T> backward(const Tensor<T>& dy) override {
    detail::require_backward(cached_, dy, y_shape_, name());
    Tensor<T> dx;
    ops::global_avgpool_backward(dy, x_shape_, dx);
    return dx;
  }
  std::string name() const override { return "GlobalAvgPool"; }

 private:
  Shape x_shape_, y_shape_;
  bool cached_ = false;
};

}  // namespace supcon
