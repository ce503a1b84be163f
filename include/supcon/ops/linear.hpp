#pragma once
/// \file linear.hpp
/// Fully connected map y = x W^T + b, forward and backward
/// (docs/backprop.md, "Linear").

#include "supcon/core/tensor.hpp"
#include "supcon/ops/im2col.hpp"

namespace supcon::ops {

/// Forward. x is (N, IN), weight is (OUT, IN), bias is (OUT,) or null.
/// y is resized to (N, OUT) and assigned: y = x weight^T + bias.
template <class T>
void linear_forward(const Tensor<T>& x, const Tensor<T>& weight, const TensorArg<T>* bias,
                    Tensor<T>& y) {
  require<ShapeError>(x.rank() == 2 && weight.rank() == 2 && x.dim(1) == weight.dim(1),
                      "linear: x ", shape_str(x.shape()), " and weight ", shape_str(weight.shape()),
                      " must be (N, IN) and (OUT, IN)");
  require<ShapeError>(!bias || bias->shape() == Shape{weight.dim(0)}, "linear: bias must be (",
                      weight.dim(0), ",)");
  y.resize({x.dim(0), weight.dim(0)});
  y.matrix().noalias() = x.matrix() * weight.matrix().transpose();
  if (bias) y.matrix().rowwise() += bias->vec().transpose();
}

/// Backward. dy is (N, OUT); x and weight as in the forward.
/// dx is resized to (N, IN) and ASSIGNED; dweight (OUT, IN) and dbias (OUT,)
/// (when not null) are ACCUMULATED.
template <class T>
void linear_backward(const Tensor<T>& dy, const Tensor<T>& x, const Tensor<T>& weight,
                     Tensor<T>& dx, Tensor<T>& dweight, TensorArg<T>* dbias) {
  require<ShapeError>(dy.rank() == 2 && dy.dim(0) == x.dim(0) && dy.dim(1) == weight.dim(0),
                      "linear_backward: dy has shape ", shape_str(dy.shape()), ", expected (",
                      x.dim(0), ", ", weight.dim(0), ")");
  require<ShapeError>(dweight.shape() == weight.shape(), "linear_backward: dweight has shape ",
                      shape_str(dweight.shape()), ", expected ", shape_str(weight.shape()));
  // forward: y = x W^T + b
  dx.resize(x.shape());
  dx.matrix().noalias() = dy.matrix() * weight.matrix();             // dx = dy W
  dweight.matrix().noalias() += dy.matrix().transpose() * x.matrix();  // dW += dy^T x
  if (dbias) dbias->vec() += dy.matrix().colwise().sum().transpose();  // db += sum_n dy
}

}  // namespace supcon::ops
