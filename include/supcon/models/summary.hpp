#pragma once
/// \file summary.hpp
/// Per-layer summaries of a network: output shape, parameter count and FLOPs
/// for one image, as printed by `supcon model`.
///
/// FLOPs convention: 2 per multiply-accumulate of every convolution and linear
/// layer (a K x K convolution from C to OC channels on an OH x OW output costs
/// 2 * OC * C * K * K * OH * OW). Batch norm, ReLU, pooling, normalisation and
/// the residual additions are element-wise and left out; for the ResNets they
/// are well under 1% of the total. With this convention ResNet-50 on a
/// 224 x 224 image costs 8.18 GFLOPs (4.09 G multiply-accumulates).

#include <string>
#include <vector>

#include "supcon/core/module.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/ops/im2col.hpp"

namespace supcon {

/// One row of a network summary.
struct LayerSummary {
  std::string key;          ///< state_dict prefix, e.g. "encoder.layer1.0"
  std::string description;  ///< e.g. "BasicBlock(64 -> 64, stride 1)"
  Shape output;             ///< output of one image: (C, H, W) or (D,)
  index_t params = 0;       ///< trainable parameters (buffers not counted)
  double flops = 0;         ///< per image, see the convention above
};

/// Number of trainable scalars of a module (what PyTorch's
/// `sum(p.numel() for p in model.parameters())` reports).
template <class T>
index_t count_parameters(Module<T>& m) {
  index_t n = 0;
  for (Parameter<T>* p : m.parameter_list()) n += p->value.size();
  return n;
}

/// FLOPs of a square convolution with C inputs and OC outputs on one
/// (C, H, W) image; `H`, `W` are updated to the output size.
inline double conv_flops(index_t C, index_t OC, index_t kernel, index_t stride, index_t padding,
                         index_t& H, index_t& W) {
  H = ops::window_output_size(H, kernel, stride, padding, "summary");
  W = ops::window_output_size(W, kernel, stride, padding, "summary");
  return 2.0 * static_cast<double>(OC * C * kernel * kernel) * static_cast<double>(H * W);
}

/// FLOPs of a linear layer from `in` to `out` features, for one sample.
inline double linear_flops(index_t in, index_t out) {
  return 2.0 * static_cast<double>(in) * static_cast<double>(out);
}

/// Sums of a list of rows: {parameters, FLOPs}.
inline std::pair<index_t, double> summary_totals(const std::vector<LayerSummary>& rows) {
  index_t params = 0;
  double flops = 0;
  for (const LayerSummary& r : rows) {
    params += r.params;
    flops += r.flops;
  }
  return {params, flops};
}

}  // namespace supcon
