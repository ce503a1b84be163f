#pragma once
/// \file tensor.cuh
/// DeviceTensor<T>: a shape and an owning DeviceBuffer, the GPU counterpart of
/// Tensor<T> (row-major, contiguous, NCHW). Copies between host and device
/// are explicit (`to_device`, `to_host`, `copy_from`); a DeviceTensor is never
/// copied implicitly, only moved. DeviceParameter<T> mirrors Parameter<T>.

#include <cuda_runtime.h>

#include <initializer_list>
#include <utility>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/module.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/cuda/device.cuh"
#include "supcon/ops/im2col.hpp"

namespace supcon::cuda {

template <class T>
class DeviceTensor {
 public:
  DeviceTensor() = default;
  /// Allocates numel(shape) elements, all zero (as Tensor<T>(shape)).
  explicit DeviceTensor(Shape shape) {
    resize(std::move(shape));
    zero();
  }
  DeviceTensor(std::initializer_list<index_t> shape) : DeviceTensor(Shape(shape)) {}
  DeviceTensor(DeviceTensor&&) noexcept = default;
  DeviceTensor& operator=(DeviceTensor&&) noexcept = default;
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;

  const Shape& shape() const { return shape_; }
  index_t rank() const { return static_cast<index_t>(shape_.size()); }
  /// Size of dimension d (ShapeError when out of range; negative d counts from the end).
  index_t dim(index_t d) const {
    const index_t r = rank();
    if (d < 0) d += r;
    require<ShapeError>(d >= 0 && d < r, "DeviceTensor::dim: dimension ", d, " out of range for shape ",
                        shape_str(shape_));
    return shape_[static_cast<std::size_t>(d)];
  }
  /// Elements; 0 for a tensor never shaped (as Tensor<T>), not numel_of({}) = 1.
  index_t size() const { return shape_.empty() ? 0 : numel_of(shape_); }
  T* data() { return buf_.data(); }
  const T* data() const { return buf_.data(); }

  /// Changes the shape; the allocation is kept when it is large enough, and
  /// the content is then undefined (as after DeviceBuffer::resize).
  void resize(Shape shape) {
    for (index_t d : shape) require<ShapeError>(d >= 0, "DeviceTensor: negative dimension in shape ", shape_str(shape));
    buf_.resize(static_cast<std::size_t>(numel_of(shape)));
    shape_ = std::move(shape);
  }
  /// Same data under a new shape with the same element count.
  void reshape(Shape shape) {
    require<ShapeError>(numel_of(shape) == size(), "DeviceTensor::reshape: cannot view shape ", shape_str(shape_),
                        " as ", shape_str(shape));
    shape_ = std::move(shape);
  }
  /// Sets every element to zero (all-zero bits are 0.0 in float and double).
  void zero() {
    if (size() > 0)
      check(cudaMemset(buf_.data(), 0, static_cast<std::size_t>(size()) * sizeof(T)), "cudaMemset of a DeviceTensor");
  }

  /// Copies a host tensor of the same shape in (ShapeError otherwise).
  void copy_from(const Tensor<T>& h) {
    require<ShapeError>(h.shape() == shape_, "DeviceTensor::copy_from: host tensor has shape ", shape_str(h.shape()),
                        ", expected ", shape_str(shape_));
    buf_.upload(h.data(), static_cast<std::size_t>(h.size()));
  }
  /// Copies into a host tensor of the same shape (ShapeError otherwise).
  void copy_to(Tensor<T>& h) const {
    require<ShapeError>(h.shape() == shape_, "DeviceTensor::copy_to: host tensor has shape ", shape_str(h.shape()),
                        ", expected ", shape_str(shape_));
    buf_.download(h.data(), static_cast<std::size_t>(h.size()));
  }
  /// A new host tensor with this shape and content (waits for the device).
  Tensor<T> to_host() const {
    Tensor<T> h(shape_);
    copy_to(h);
    return h;
  }

 private:
  Shape shape_;
  DeviceBuffer<T> buf_;
};

/// A new device tensor with h's shape and content.
template <class T>
DeviceTensor<T> to_device(const Tensor<T>& h) {
  DeviceTensor<T> d;
  d.resize(h.shape());
  d.copy_from(h);
  return d;
}

/// T in a position where it is not deduced, so `nullptr` can be passed for an
/// optional device tensor such as a bias (as ops::TensorArg).
template <class T>
using DeviceTensorArg = typename ops::detail::identity<DeviceTensor<T>>::type;

/// A trainable device tensor and its gradient, of the same shape (Parameter<T> on the GPU).
template <class T>
struct DeviceParameter {
  DeviceTensor<T> value;
  DeviceTensor<T> grad;
  bool decay = true;  ///< false for biases and batch-norm parameters (see Parameter<T>)

  DeviceParameter() = default;
  /// value = p.value and a zero gradient, on the device.
  explicit DeviceParameter(const Parameter<T>& p) : value(to_device(p.value)), grad(p.value.shape()), decay(p.decay) {}
  void zero_grad() { grad.zero(); }
};

}  // namespace supcon::cuda
