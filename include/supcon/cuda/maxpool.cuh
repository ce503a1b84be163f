#pragma once
/// \file maxpool.cuh
/// Max pooling on device tensors (ops::maxpool2d_forward / _backward): the
/// ImageNet stem's 3x3 window at stride 2, padding 1. One thread per output
/// in the forward (it also stores the winner's index), one thread per input
/// pixel in the backward, which gathers from the windows the pixel won: no
/// atomics, and the CPU's order of additions (train_math.cuh).

#include <cstdint>

#include "supcon/cuda/device.cuh"
#include "supcon/cuda/elementwise.cuh"
#include "supcon/cuda/tensor.cuh"
#include "supcon/cuda/train_math.cuh"
#include "supcon/cuda/train_shapes.cuh"

namespace supcon::cuda {

/// y (NC, OH, OW) and argmax (plane-local winner indices) for NC planes of x.
template <class T>
__global__ void maxpool_forward_kernel(const T* x, PoolGeom g, std::int64_t NC, T* y, std::int64_t* argmax) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= NC * g.OH * g.OW) return;
  const std::int64_t nc = k / (g.OH * g.OW), ow = k % g.OW, oh = (k / g.OW) % g.OH;
  const T* plane = x + nc * g.H * g.W;
  const std::int64_t at = maxpool_argmax(plane, g, oh, ow);
  argmax[k] = at;
  y[k] = plane[at];
}

/// dx (NC, H, W) assigned from dy (NC, OH, OW) and the forward's argmax.
template <class T>
__global__ void maxpool_backward_kernel(const T* dy, const std::int64_t* argmax, PoolGeom g, std::int64_t NC,
                                        T* dx) {
  const std::int64_t k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= NC * g.H * g.W) return;
  const std::int64_t nc = k / (g.H * g.W), w = k % g.W, h = (k / g.W) % g.H;
  const std::int64_t P = g.OH * g.OW;
  dx[k] = maxpool_grad_entry(dy + nc * P, argmax + nc * P, g, h, w);
}

/// A max pooling layer: its geometry and the forward's winners.
template <class T>
class MaxPool {
 public:
  MaxPool(index_t kernel, index_t stride, index_t padding) : kernel_(kernel), stride_(stride), padding_(padding) {}

  /// x is (N, C, H, W); y is resized to (N, C, OH, OW) and assigned the
  /// maximum of each window (ShapeError / ValueError naming cuda::maxpool
  /// before any launch).
  void forward(const DeviceTensor<T>& x, DeviceTensor<T>& y) {
    const PoolGeom g = maxpool_geometry(x.shape(), kernel_, stride_, padding_, "cuda::maxpool");
    const std::int64_t NC = x.dim(0) * x.dim(1);
    y.resize({x.dim(0), x.dim(1), g.OH, g.OW});
    argmax_.resize(static_cast<std::size_t>(y.size()));
    x_shape_ = x.shape();
    if (y.size() == 0) return;
    maxpool_forward_kernel<T>
        <<<blocks_for(y.size(), kElementThreads), kElementThreads>>>(x.data(), g, NC, y.data(), argmax_.data());
    check_launch("maxpool_forward_kernel");
  }

  /// dy has the latest forward's output shape (ShapeError naming
  /// cuda::maxpool_backward otherwise); dx is resized to its input's shape and
  /// ASSIGNED. forward: y[k] = x[argmax[k]]
  void backward(const DeviceTensor<T>& dy, DeviceTensor<T>& dx) {
    require<ShapeError>(x_shape_.size() == 4, "cuda::maxpool_backward: no forward ran");
    const PoolGeom g = maxpool_geometry(x_shape_, kernel_, stride_, padding_, "cuda::maxpool_backward");
    require_shape(dy.shape(), {x_shape_[0], x_shape_[1], g.OH, g.OW}, "cuda::maxpool_backward", "dy");
    dx.resize(x_shape_);
    if (dx.size() == 0) return;
    maxpool_backward_kernel<T><<<blocks_for(dx.size(), kElementThreads), kElementThreads>>>(
        dy.data(), argmax_.data(), g, x_shape_[0] * x_shape_[1], dx.data());
    check_launch("maxpool_backward_kernel");
  }

 private:
  index_t kernel_, stride_, padding_;
  Shape x_shape_;
  DeviceBuffer<std::int64_t> argmax_;
};

}  // namespace supcon::cuda
