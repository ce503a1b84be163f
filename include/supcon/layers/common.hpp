#pragma once
/// \file common.hpp
/// Checks shared by the layers: every error names the layer (its `name()`)
/// and the shapes involved, in one line.

#include <string>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/module.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon::detail {

/// Checks a backward call: throws Error unless the layer has a cached forward,
/// and ShapeError unless dy has the shape of that forward's output.
template <class T>
void require_backward(bool cached, const Tensor<T>& dy, const Shape& y_shape,
                      const std::string& layer) {
  require<Error>(cached, layer, ": backward called before forward");
  require<ShapeError>(dy.shape() == y_shape, layer, ": dy has shape ", shape_str(dy.shape()),
                      ", expected the forward output's shape ", shape_str(y_shape));
}

/// Throws ShapeError unless x has rank `rank` and (when channels >= 0)
/// dim(1) == channels; `expected` describes the shape, e.g. "(N, 3, H, W)".
template <class T>
void require_input(const Tensor<T>& x, index_t rank, index_t channels, const std::string& expected,
                   const std::string& layer) {
  require<ShapeError>(x.rank() == rank && (channels < 0 || x.dim(1) == channels), layer,
                      ": expected input ", expected, ", got ", shape_str(x.shape()));
}

/// Appends a weight and, when present, a bias: to a parameter list ...
template <class T>
void list_weight_bias(Parameter<T>& weight, Parameter<T>& bias, bool has_bias,
                      std::vector<Parameter<T>*>& out) {
  out.push_back(&weight);
  if (has_bias) out.push_back(&bias);
}
/// ... and to a state list under the keys "weight" and "bias".
template <class T>
void state_weight_bias(Parameter<T>& weight, Parameter<T>& bias, bool has_bias,
                       const std::string& prefix, std::vector<NamedTensor<T>>& out) {
  out.push_back({prefix + "weight", &weight.value});
  if (has_bias) out.push_back({prefix + "bias", &bias.value});
}

}  // namespace supcon::detail
