#pragma once
/// \file sequential.hpp
/// Sequential<T>: a chain of modules, y = m_k(...m_1(m_0(x))). The backward
/// runs the chain in reverse. State keys are prefixed by the child's index,
/// as PyTorch's nn.Sequential ("0.weight", "1.running_mean", ...).
///
///     Sequential<T> net;
///     net.add(Conv2d<T>(3, 8, 3, 1, 1, false, rng));
///     net.add(BatchNorm2d<T>(8));
///     net.add(ReLU<T>());

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "supcon/core/module.hpp"

namespace supcon {

template <class T>
class Sequential : public Module<T> {
 public:
  /// Appends a module (moved in); returns a reference to the stored one.
  template <class M>
  M& add(M module) {
    static_assert(std::is_base_of_v<Module<T>, M>, "Sequential::add: M must derive from Module<T>");
    auto owned = std::make_unique<M>(std::move(module));
    M& ref = *owned;
    owned->set_training(this->training_);
    children_.push_back(std::move(owned));
    return ref;
  }
  /// Appends an already allocated module.
  Module<T>& add(std::unique_ptr<Module<T>> module) {
    require<ValueError>(module != nullptr, "Sequential::add: null module");
    module->set_training(this->training_);
    children_.push_back(std::move(module));
    return *children_.back();
  }

  std::size_t size() const { return children_.size(); }
  Module<T>& operator[](std::size_t i) {
    require<ValueError>(i < children_.size(), "Sequential: index ", i, " out of range (size ",
                        children_.size(), ")");
    return *children_[i];
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    if (children_.empty()) return x;
    // each output is handed to the next module, which may keep it as its cache
    Tensor<T> h = children_.front()->forward(x);
    for (std::size_t i = 1; i < children_.size(); ++i) h = children_[i]->forward_owned(std::move(h));
    return h;
  }
  Tensor<T> backward(const Tensor<T>& dy) override {
    Tensor<T> g = dy;
    for (auto it = children_.rbegin(); it != children_.rend(); ++it) g = (*it)->backward(g);
    return g;
  }
  void parameters(std::vector<Parameter<T>*>& out) override {
    for (auto& m : children_) m->parameters(out);
  }
  void state(const std::string& prefix, std::vector<NamedTensor<T>>& out) override {
    for (std::size_t i = 0; i < children_.size(); ++i)
      children_[i]->state(prefix + std::to_string(i) + ".", out);
  }
  void set_training(bool on) override {
    this->training_ = on;
    for (auto& m : children_) m->set_training(on);
  }
  std::string name() const override {
    std::string s = "Sequential(";
    for (std::size_t i = 0; i < children_.size(); ++i) s += (i ? ", " : "") + children_[i]->name();
    return s + ")";
  }

 private:
  std::vector<std::unique_ptr<Module<T>>> children_;
};

}  // namespace supcon
