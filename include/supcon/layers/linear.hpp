#pragma once
/// \file linear.hpp
/// Linear<T>: the fully connected layer y = x W^T + b (math in ops/linear.hpp).
///
///     Linear<T>(in_features, out_features, bias, rng)
///     weight   Parameter (out, in), init uniform(+-1/sqrt(in))
///     bias     Parameter (out,), same init, decay = false; empty when bias = false
///     forward  x (N, in) -> (N, out);  backward dy (N, out) -> dx (N, in)
///     state    "weight", "bias" (PyTorch's state_dict keys)

#include <string>
#include <utility>
#include <vector>

#include "supcon/core/module.hpp"
#include "supcon/core/rng.hpp"
#include "supcon/layers/common.hpp"
#include "supcon/layers/init.hpp"
#include "supcon/ops/linear.hpp"

namespace supcon {

template <class T>
class Linear : public Module<T> {
 public:
  Parameter<T> weight;  ///< (out, in)
  Parameter<T> bias;    ///< (out,), or empty without bias

  Linear(index_t in_features, index_t out_features, bool with_bias, Rng& rng)
      : in_(in_features), out_(out_features), has_bias_(with_bias) {
    require<ValueError>(in_features > 0 && out_features > 0, "Linear: in_features (", in_features,
                        ") and out_features (", out_features, ") must be > 0");
    weight = Parameter<T>({out_, in_});
    init::uniform_fan_in(weight.value, in_, rng);
    if (has_bias_) {
      bias = Parameter<T>({out_}, /*decay=*/false);
      init::uniform_fan_in(bias.value, in_, rng);
    }
  }

  index_t in_features() const { return in_; }
  index_t out_features() const { return out_; }
  bool has_bias() const { return has_bias_; }

  /// x is (N, in); returns (N, out). Caches x.
  Tensor<T> forward(const Tensor<T>& x) override {
    check_input(x);
    x_ = x;
    return forward_cached();
  }
  /// As forward, keeping x itself as the cache.
  Tensor<T> forward_owned(Tensor<T>&& x) override {
    check_input(x);
    x_ = std::move(x);
    return forward_cached();
  }

  /// dy is (N, out); returns dx (N, in); adds into weight.grad and bias.grad.
  Tensor<T> backward(const Tensor<T>& dy) override {
    detail::require_backward(cached_, dy, y_shape_, name());
    Tensor<T> dx;
    ops::linear_backward(dy, x_, weight.value, dx, weight.grad, has_bias_ ? &bias.grad : nullptr);
    return dx;
  }

  void parameters(std::vector<Parameter<T>*>& out) override {
    detail::list_weight_bias(weight, bias, has_bias_, out);
  }
  void state(const std::string& prefix, std::vector<NamedTensor<T>>& out) override {
    detail::state_weight_bias(weight, bias, has_bias_, prefix, out);
  }
  std::string name() const override {
    return "Linear(" + std::to_string(in_) + ", " + std::to_string(out_) +
           (has_bias_ ? ")" : ", bias=false)");
  }

 private:
  void check_input(const Tensor<T>& x) const {
    detail::require_input(x, 2, -1, "(N, " + std::to_string(in_) + ")", name());
    require<ShapeError>(x.dim(1) == in_, name(), ": expected input (N, ", in_, "), got ",
                        shape_str(x.shape()));
  }
  /// y = x_ W^T + b for the cached input.
  Tensor<T> forward_cached() {
    cached_ = true;
    Tensor<T> y;
    ops::linear_forward(x_, weight.value, has_bias_ ? &bias.value : nullptr, y);
    y_shape_ = y.shape();
    return y;
  }

  index_t in_, out_;
  bool has_bias_;
  Tensor<T> x_;
  Shape y_shape_;
  bool cached_ = false;
};

}  // namespace supcon
