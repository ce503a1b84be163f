#pragma once
/// \file supcon_model.hpp
/// SupConModel<T>: encoder + projection head, with L2-normalised output, the
/// network trained by the SupCon and SimCLR losses (Khosla et al., 2020):
///
///     r = encoder(x)                       (N, d), d = encoder.feature_dim()
///     z = head(r)                          mlp:    Linear(d, d), ReLU, Linear(d, feat_dim)
///                                          linear: Linear(d, feat_dim)
///     y = z / ||z||                        (N, feat_dim), rows of unit length
///
/// After training, the head is dropped and r (from `encoder().forward(x)`,
/// in evaluation mode) is what a linear classifier probes.
/// State keys: encoder.*, and head.0.*, head.2.* (mlp) or head.* (linear).

#include <optional>
#include <string>
#include <vector>

#include "supcon/layers/activation.hpp"
#include "supcon/layers/linear.hpp"
#include "supcon/layers/normalize.hpp"
#include "supcon/models/resnet.hpp"

namespace supcon {

/// The projection head's form.
enum class HeadKind { mlp, linear };

/// "mlp" or "linear"; throws ValueError naming the option otherwise.
inline HeadKind parse_head(const std::string& s) {
  if (s == "mlp") return HeadKind::mlp;
  if (s == "linear") return HeadKind::linear;
  throw ValueError("head: expected mlp or linear, got '" + s + "'");
}

template <class T>
class SupConModel : public Module<T> {
 public:
  SupConModel(const ResNetConfig& encoder, HeadKind head, index_t feat_dim, Rng& rng)
      : encoder_(encoder, rng), head_(head), feat_dim_(feat_dim),
        fc1_(encoder_.feature_dim(),
             head == HeadKind::mlp ? encoder_.feature_dim() : checked(feat_dim), true, rng) {
    if (head == HeadKind::mlp) fc2_.emplace(encoder_.feature_dim(), checked(feat_dim), true, rng);
  }

  ResNet<T>& encoder() { return encoder_; }
  HeadKind head() const { return head_; }
  index_t feat_dim() const { return feat_dim_; }

  /// x is (N, C, H, W); returns the unit-length projections (N, feat_dim).
  Tensor<T> forward(const Tensor<T>& x) override {
    Tensor<T> z = fc1_.forward_owned(encoder_.forward(x));
    if (head_ == HeadKind::mlp) z = fc2_->forward_owned(relu_.forward(z));
    return normalize_.forward(z);
  }

  /// dy is (N, feat_dim); returns dx (N, C, H, W); adds into every grad.
  Tensor<T> backward(const Tensor<T>& dy) override {
    // forward: y = z / ||z||
    Tensor<T> d = normalize_.backward(dy);
    // forward (mlp): z = fc2(relu(fc1(r)));  (linear): z = fc1(r)
    if (head_ == HeadKind::mlp) d = relu_.backward(fc2_->backward(d));
    d = fc1_.backward(d);
    // forward: r = encoder(x)
    return encoder_.backward(d);
  }

  void parameters(std::vector<Parameter<T>*>& out) override {
    encoder_.parameters(out);
    fc1_.parameters(out);
    if (fc2_) fc2_->parameters(out);
  }
  void state(const std::string& prefix, std::vector<NamedTensor<T>>& out) override {
    encoder_.state(prefix + "encoder.", out);
    if (head_ == HeadKind::linear) {
      fc1_.state(prefix + "head.", out);
      return;
    }
    fc1_.state(prefix + "head.0.", out);
    fc2_->state(prefix + "head.2.", out);
  }
  void set_training(bool on) override {
    this->training_ = on;
    encoder_.set_training(on);
  }
  std::string name() const override {
    return "SupConModel(" + encoder_.name() + ", " + (head_ == HeadKind::mlp ? "mlp" : "linear") +
           " head to " + std::to_string(feat_dim_) + ")";
  }

  /// Rows of the encoder and the head for one image of shape (C, H, W).
  std::vector<LayerSummary> summary(Shape chw) {
    std::vector<LayerSummary> rows;
    encoder_.summary("encoder.", chw, rows);
    const index_t d = encoder_.feature_dim();
    if (head_ == HeadKind::linear) {
      rows.push_back({"head", fc1_.name(), {feat_dim_}, count_parameters(fc1_), linear_flops(d, feat_dim_)});
    } else {
      rows.push_back({"head.0", fc1_.name() + " + ReLU", {d}, count_parameters(fc1_), linear_flops(d, d)});
      rows.push_back({"head.2", fc2_->name(), {feat_dim_}, count_parameters(*fc2_), linear_flops(d, feat_dim_)});
    }
    rows.push_back({"normalize", normalize_.name(), {feat_dim_}, 0, 0});
    return rows;
  }

 private:
  ResNet<T> encoder_;
  HeadKind head_;
  index_t feat_dim_;
  Linear<T> fc1_;  // head.0 (mlp) or head (linear)
  ReLU<T> relu_;
  std::optional<Linear<T>> fc2_;  // head.2, mlp head only
  L2Normalize<T> normalize_;

  static index_t checked(index_t feat_dim) {
    require<ValueError>(feat_dim >= 1, "feat_dim must be >= 1, got ", feat_dim);
    return feat_dim;
  }
};

}  // namespace supcon
