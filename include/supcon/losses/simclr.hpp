#pragma once
/// \file simclr.hpp
/// SimCLR's NT-Xent loss (Chen et al., 2020) as the special case of SupCon in
/// which every sample is its own class: the positives of a row are the other
/// views of the same sample, everything else is a negative.

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/losses/supcon_fused.hpp"
#include "supcon/losses/supcon_options.hpp"

namespace supcon {

/// NT-Xent loss and gradient of `views` views of N / views samples.
///
/// features is (N, D), view-major as for the SupCon losses. Requires views >= 1
/// dividing N (ShapeError) and everything supcon_loss_reference requires.
/// Ensures: the result of supcon_loss_fused with Pairing::identity(N / views).
template <class T>
LossResult<T> simclr_loss(const Tensor<T>& features, index_t views, const SupConOptions& opt = {}) {
  // features is (N, D) with N = views * B
  require<ShapeError>(features.rank() == 2, "simclr_loss: features must be (N, D), got shape ",
                      shape_str(features.shape()));
  require<ShapeError>(views >= 1 && features.dim(0) % views == 0, "simclr_loss: views must be >= 1 and divide the ",
                      features.dim(0), " feature rows, got views = ", views);
  return supcon_loss_fused(features, Pairing::identity(features.dim(0) / views), opt);
}

}  // namespace supcon
