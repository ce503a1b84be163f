#pragma once
/// \file normalize.hpp
/// L2 normalisation of the rows of (N, D), as PyTorch's
/// F.normalize(x, dim=1, eps): y = x / max(||x||, eps).
/// The backward is that of this exact formula (docs/backprop.md,
/// "L2 normalisation"): for a row with ||x|| >= eps,
///   dx = (dy - y <y, dy>) / ||x||,
/// and for a row with ||x|| < eps the denominator is the constant eps, so
///   dx = dy / eps.

#include <algorithm>
#include <cmath>

#include "supcon/core/tensor.hpp"

namespace supcon::ops {

/// Forward. x is (N, D), eps > 0. y is resized to (N, D) and norms to (N,),
/// both assigned; norms keeps ||x_n|| (not clamped) for the backward.
template <class T>
void l2_normalize_forward(const Tensor<T>& x, T eps, Tensor<T>& y, Tensor<T>& norms) {
  require<ShapeError>(x.rank() == 2, "l2_normalize: x must be (N, D), got ", shape_str(x.shape()));
  require<ValueError>(eps > 0, "l2_normalize: eps must be > 0, got ", eps);
  const index_t N = x.dim(0);
  y.resize(x.shape());
  norms.resize({N});
  norms.vec().noalias() = x.matrix().rowwise().norm();
  for (index_t n = 0; n < N; ++n) y.matrix().row(n) = x.matrix().row(n) / std::max(norms[n], eps);
}

/// Backward from the forward's output y and norms. dy is (N, D); dx is
/// resized and ASSIGNED.
template <class T>
void l2_normalize_backward(const Tensor<T>& dy, const Tensor<T>& y, const Tensor<T>& norms, T eps,
                           Tensor<T>& dx) {
  require<ShapeError>(dy.shape() == y.shape(), "l2_normalize_backward: dy has shape ",
                      shape_str(dy.shape()), ", expected ", shape_str(y.shape()));
  dx.resize(y.shape());
  for (index_t n = 0; n < y.dim(0); ++n) {
    if (norms[n] >= eps) {
      // forward: y = x / ||x||  =>  dx = (dy - y <y, dy>) / ||x||
      const T ydy = y.matrix().row(n).dot(dy.matrix().row(n));
      dx.matrix().row(n) = (dy.matrix().row(n) - ydy * y.matrix().row(n)) / norms[n];
    } else {
      // forward: y = x / eps (the norm is clamped, its gradient does not flow)
      dx.matrix().row(n) = dy.matrix().row(n) / eps;
    }
  }
}

}  // namespace supcon::ops
