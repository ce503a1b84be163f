#pragma once
/// \file module.hpp
/// Parameter<T> and Module<T>: the contract every layer and model follows.
///
/// **Backward contract.** Let f = <forward(x), dy> (the sum of the element-wise
/// product). `backward(dy)` returns df/dx and ADDS df/dθ into `grad` of each of
/// its parameters; it never overwrites them. So the gradients of two views, or
/// of two losses, accumulate by calling backward twice, and an optimizer step
/// is preceded by `zero_grad()`.
///
/// `forward` caches what `backward` needs; `backward` uses the cache of the
/// latest `forward` call.

#include <string>
#include <vector>

#include "supcon/core/tensor.hpp"

namespace supcon {

/// A trainable tensor and its gradient, of the same shape.
template <class T>
struct Parameter {
  Tensor<T> value;
  Tensor<T> grad;
  /// False for batch-norm affine parameters and biases: optimizers that
  /// exclude such parameters from weight decay or LARS adaptation read this.
  bool decay = true;

  Parameter() = default;
  explicit Parameter(Shape shape, bool decay_ = true)
      : value(shape), grad(shape), decay(decay_) {}

  void zero_grad() { grad.zero(); }
};

/// A tensor of a module's state under its PyTorch state_dict name (parameters
/// and buffers such as batch-norm running statistics).
template <class T>
struct NamedTensor {
  std::string name;
  Tensor<T>* tensor;
};

/// Base class of layers and models (one level of virtual inheritance;
/// composites hold their children as members).
template <class T>
class Module {
 public:
  virtual ~Module() = default;

  /// Computes the output and caches what backward needs.
  virtual Tensor<T> forward(const Tensor<T>& x) = 0;
  /// The same forward for an input the caller hands over and no longer
  /// needs: a module that caches its input keeps x itself instead of a copy.
  /// The result is that of forward(x); x is left valid but unspecified.
  virtual Tensor<T> forward_owned(Tensor<T>&& x) { return forward(x); }
  /// Returns dL/dx for dy = dL/dy and adds dL/dθ into the parameters' grads.
  virtual Tensor<T> backward(const Tensor<T>& dy) = 0;

  /// Appends pointers to this module's trainable parameters (children included).
  virtual void parameters(std::vector<Parameter<T>*>& /*out*/) {}
  /// Appends every tensor of the state (parameters and buffers) with its
  /// PyTorch state_dict key, prefixed by `prefix` (e.g. "encoder.layer1.0.").
  virtual void state(const std::string& /*prefix*/, std::vector<NamedTensor<T>>& /*out*/) {}
  /// Training mode (batch statistics) or evaluation mode (running statistics).
  virtual void set_training(bool on) { training_ = on; }
  bool training() const { return training_; }
  /// A short human-readable description, e.g. "Conv2d(3, 64, k=3, s=1, p=1)".
  virtual std::string name() const = 0;

  /// Convenience: all parameters as a new vector.
  std::vector<Parameter<T>*> parameter_list() {
    std::vector<Parameter<T>*> out;
    parameters(out);
    return out;
  }
  /// Sets every parameter gradient to zero.
  void zero_grad() {
    for (Parameter<T>* p : parameter_list()) p->zero_grad();
  }

 protected:
  bool training_ = true;
};

}  // namespace supcon
