#pragma once
/// \file classifier.hpp
/// The two classifiers of the SupCon code:
///
/// - CEModel<T>: encoder + Linear(d, num_classes), trained end to end with
///   cross-entropy (the baseline). x (N, C, H, W) -> logits (N, num_classes).
///   State keys: encoder.*, fc.weight, fc.bias.
/// - LinearClassifier<T>: Linear(d, num_classes) alone, trained on the frozen
///   encoder features of a SupCon model (linear probing).
///   r (N, d) -> logits (N, num_classes). State keys: fc.weight, fc.bias.

#include <string>
#include <vector>

#include "supcon/layers/linear.hpp"
#include "supcon/models/resnet.hpp"

namespace supcon {

template <class T>
class CEModel : public Module<T> {
 public:
  CEModel(const ResNetConfig& encoder, index_t num_classes, Rng& rng)
      : encoder_(encoder, rng), fc_(encoder_.feature_dim(), num_classes, true, rng) {}

  ResNet<T>& encoder() { return encoder_; }
  index_t num_classes() const { return fc_.out_features(); }

  /// x is (N, C, H, W); returns logits (N, num_classes).
  Tensor<T> forward(const Tensor<T>& x) override { return fc_.forward(encoder_.forward(x)); }

  /// dy is (N, num_classes); returns dx; adds into every grad.
  Tensor<T> backward(const Tensor<T>& dy) override {
    // forward: logits = fc(encoder(x))
    const Tensor<T> dfeatures = fc_.backward(dy);
    return encoder_.backward(dfeatures);
  }

  void parameters(std::vector<Parameter<T>*>& out) override {
    encoder_.parameters(out);
    fc_.parameters(out);
  }
  void state(const std::string& prefix, std::vector<NamedTensor<T>>& out) override {
    encoder_.state(prefix + "encoder.", out);
    fc_.state(prefix + "fc.", out);
  }
  void set_training(bool on) override {
    this->training_ = on;
    encoder_.set_training(on);
  }
  std::string name() const override {
    return "CEModel(" + encoder_.name() + ", " + std::to_string(num_classes()) + " classes)";
  }

  /// Rows of the encoder and the classifier for one image of shape (C, H, W).
  std::vector<LayerSummary> summary(Shape chw) {
    std::vector<LayerSummary> rows;
    encoder_.summary("encoder.", chw, rows);
    rows.push_back({"fc", fc_.name(), {num_classes()}, count_parameters(fc_),
                    linear_flops(encoder_.feature_dim(), num_classes())});
    return rows;
  }

 private:
  ResNet<T> encoder_;
  Linear<T> fc_;
};

template <class T>
class LinearClassifier : public Module<T> {
 public:
  /// feature_dim = d of the encoder being probed.
  LinearClassifier(index_t feature_dim, index_t num_classes, Rng& rng)
      : fc_(feature_dim, num_classes, true, rng) {}

  Linear<T>& fc() { return fc_; }

  /// r is (N, d); returns logits (N, num_classes).
  Tensor<T> forward(const Tensor<T>& r) override { return fc_.forward(r); }
  /// dy is (N, num_classes); returns dr (N, d); adds into fc's grads.
  Tensor<T> backward(const Tensor<T>& dy) override { return fc_.backward(dy); }

  void parameters(std::vector<Parameter<T>*>& out) override { fc_.parameters(out); }
  void state(const std::string& prefix, std::vector<NamedTensor<T>>& out) override {
    fc_.state(prefix + "fc.", out);
  }
  std::string name() const override { return "LinearClassifier(" + fc_.name() + ")"; }

 private:
  Linear<T> fc_;
};

}  // namespace supcon
