#pragma once
/// \file conv2d.hpp
/// Conv2d<T>: 2-D convolution with a square kernel, stride and symmetric zero
/// padding (math in ops/conv2d.hpp; this layer uses its fast path: im2col + GEMM,
/// or Winograd F(4x4, 3x3) for 3x3 stride-1 kernels, ops/winograd.hpp).
///
///     Conv2d<T>(in_channels, out_channels, kernel, stride, padding, bias, rng)
///     weight   Parameter (OC, C, K, K), Kaiming normal fan-out (ReLU gain)
///     bias     Parameter (OC,), uniform(+-1/sqrt(C*K*K)), decay = false;
///              empty when bias = false
///     forward  x (N, C, H, W) -> (N, OC, OH, OW), OH = (H + 2p - K) / s + 1
///     backward dy (N, OC, OH, OW) -> dx (N, C, H, W)
///     state    "weight" (+ "bias")
///
/// The im2col work buffers live in the layer and are reused across calls.

#include <string>
#include <utility>
#include <vector>

#include "supcon/core/module.hpp"
#include "supcon/core/rng.hpp"
#include "supcon/layers/common.hpp"
#include "supcon/layers/init.hpp"
#include "supcon/ops/conv2d.hpp"

namespace supcon {

template <class T>
class Conv2d : public Module<T> {
 public:
  Parameter<T> weight;  ///< (OC, C, K, K)
  Parameter<T> bias;    ///< (OC,), or empty without bias

  Conv2d(index_t in_channels, index_t out_channels, index_t kernel, index_t stride,
         index_t padding, bool with_bias, Rng& rng)
      : in_(in_channels), out_(out_channels), k_(kernel), s_(stride), p_(padding),
        has_bias_(with_bias) {
    require<ValueError>(in_ > 0 && out_ > 0, "Conv2d: in_channels (", in_, ") and out_channels (",
                        out_, ") must be > 0");
    require<ValueError>(k_ >= 1 && s_ >= 1 && p_ >= 0, "Conv2d: kernel (", k_, ") and stride (", s_,
                        ") must be >= 1 and padding (", p_, ") >= 0");
    weight = Parameter<T>({out_, in_, k_, k_});
    init::kaiming_normal_fan_out(weight.value, rng);
    if (has_bias_) {
      bias = Parameter<T>({out_}, /*decay=*/false);
      init::uniform_fan_in(bias.value, in_ * k_ * k_, rng);
    }
  }

  index_t in_channels() const { return in_; }
  index_t out_channels() const { return out_; }
  index_t kernel() const { return k_; }
  index_t stride() const { return s_; }
  index_t padding() const { return p_; }
  bool has_bias() const { return has_bias_; }
  /// The input of the latest forward, which the layer keeps for its backward
  /// (empty before the first forward).
  const Tensor<T>& cached_input() const { return x_; }

  /// x is (N, C, H, W); returns (N, OC, OH, OW). Caches x.
  Tensor<T> forward(const Tensor<T>& x) override {
    Shape y_shape = check_input(x);
    copy_parallel(x, x_);
    return forward_cached(std::move(y_shape));
  }
  /// As forward, keeping x itself as the cache.
  Tensor<T> forward_owned(Tensor<T>&& x) override {
    Shape y_shape = check_input(x);
    x_ = std::move(x);
    return forward_cached(std::move(y_shape));
  }

  /// dy is (N, OC, OH, OW); returns dx; adds into weight.grad and bias.grad.
  Tensor<T> backward(const Tensor<T>& dy) override {
    detail::require_backward(cached_, dy, y_shape_, name());
    Tensor<T> dx;
    ops::conv2d_backward(dy, x_, weight.value, s_, p_, dx, weight.grad,
                         has_bias_ ? &bias.grad : nullptr, ws_);
    return dx;
  }

  void parameters(std::vector<Parameter<T>*>& out) override {
    detail::list_weight_bias(weight, bias, has_bias_, out);
  }
  void state(const std::string& prefix, std::vector<NamedTensor<T>>& out) override {
    detail::state_weight_bias(weight, bias, has_bias_, prefix, out);
  }
  std::string name() const override {
    return "Conv2d(" + std::to_string(in_) + ", " + std::to_string(out_) +
           ", k=" + std::to_string(k_) + ", s=" + std::to_string(s_) +
           ", p=" + std::to_string(p_) + (has_bias_ ? ", bias)" : ")");
  }

 private:
  /// Refuses a bad x before it replaces the cache; returns the output's shape.
  Shape check_input(const Tensor<T>& x) const {
    detail::require_input(x, 4, in_, "(N, " + std::to_string(in_) + ", H, W)", name());
    return {x.dim(0), out_, ops::window_output_size(x.dim(2), k_, s_, p_, name()),
            ops::window_output_size(x.dim(3), k_, s_, p_, name())};
  }
  /// y = conv(x_) for the cached input, of shape y_shape.
  Tensor<T> forward_cached(Shape y_shape) {
    y_shape_ = std::move(y_shape);
    cached_ = true;
    Tensor<T> y;
    ops::conv2d_forward(x_, weight.value, has_bias_ ? &bias.value : nullptr, s_, p_, y, ws_);
    return y;
  }

  index_t in_, out_, k_, s_, p_;
  bool has_bias_;
  Tensor<T> x_;
  Shape y_shape_;
  bool cached_ = false;
  ops::Conv2dWorkspace<T> ws_;
};

}  // namespace supcon
