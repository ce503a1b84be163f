#pragma once
/// \file config.hpp
/// TrainConfig: every choice of a training run (method, network, optimizer,
/// schedule, loss, augmentation seed), with the recipe of the reference
/// figures as defaults, and its round trip through the string map that
/// checkpoints carry, so `supcon linear` and `--resume` rebuild the same run.

#include <cmath>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>

#include "supcon/core/error.hpp"
#include "supcon/models/resnet.hpp"
#include "supcon/models/supcon_model.hpp"

namespace supcon {

/// What the encoder is trained with.
enum class Method {
  supcon,     ///< SupCon L_out (Eq. 2 of the paper), two views
  supcon_in,  ///< SupCon L_in (Eq. 3), two views
  simclr,     ///< SimCLR: labels ignored, two views
  ce          ///< cross-entropy on one augmented view, encoder + linear classifier
};

inline Method parse_method(const std::string& s) {
  if (s == "supcon") return Method::supcon;
  if (s == "supcon-in") return Method::supcon_in;
  if (s == "simclr") return Method::simclr;
  if (s == "ce") return Method::ce;
  throw ValueError("--method must be supcon, supcon-in, simclr or ce, got '" + s + "'");
}
inline const char* method_name(Method m) {
  switch (m) {
    case Method::supcon: return "supcon";
    case Method::supcon_in: return "supcon-in";
    case Method::simclr: return "simclr";
    default: return "ce";
  }
}
/// Whether the method trains a projection head with a contrastive loss.
inline bool is_contrastive(Method m) { return m != Method::ce; }

/// The configuration of one training run.
struct TrainConfig {
  Method method = Method::supcon;
  ResNetConfig encoder{"resnet18", 1, 16, Stem::cifar, false};
  HeadKind head = HeadKind::mlp;
  index_t feat_dim = 128;
  index_t num_classes = 10;
  index_t epochs = 10;           ///< >= 1
  index_t batch_size = 256;      ///< samples per step (>= 2); contrastive steps see 2x views
  std::string optimizer = "sgd";  ///< sgd or lars
  double lr = 0.25;               ///< peak learning rate
  double momentum = 0.9;
  double weight_decay = 1e-4;
  std::string schedule = "cosine";  ///< cosine or step (x0.1 at 60% and 80% of the epochs)
  double warmup = -1;               ///< epochs of linear warm-up; < 0 = 5% of the epochs
  double temperature = 0.1;         ///< = base temperature
  /// Smallest area fraction of the random resized crop of the training views;
  /// 0 = the augmentation's own (0.2, the paper's). 0.2 suits contrastive
  /// views; cross-entropy often does better with milder crops (0.5 and up).
  double crop_scale_min = 0;
  std::uint64_t seed = 0;

  /// Warm-up length in epochs after resolving the "5%" default.
  double warmup_epochs() const { return warmup < 0 ? 0.05 * static_cast<double>(epochs) : warmup; }
};

/// Throws ValueError naming the option (as the CLI spells it) when out of range.
inline void validate(const TrainConfig& c) {
  require(c.epochs >= 1, "--epochs must be >= 1, got ", c.epochs);
  require(c.batch_size >= 2, "--batch-size must be >= 2, got ", c.batch_size);
  require(c.feat_dim >= 1, "--feat-dim must be >= 1, got ", c.feat_dim);
  require(c.num_classes >= 2, "the data set must have at least 2 classes, got ", c.num_classes);
  require(c.encoder.width >= 1, "--width must be >= 1, got ", c.encoder.width);
  require(c.optimizer == "sgd" || c.optimizer == "lars", "--optimizer must be sgd or lars, got '",
          c.optimizer, "'");
  require(c.schedule == "cosine" || c.schedule == "step", "--schedule must be cosine or step, got '",
          c.schedule, "'");
  require(std::isfinite(c.lr) && c.lr > 0, "--lr must be positive and finite, got ", c.lr);
  require(c.momentum >= 0 && c.momentum < 1, "--momentum must be in [0, 1), got ", c.momentum);
  require(std::isfinite(c.weight_decay) && c.weight_decay >= 0,
          "--weight-decay must be >= 0, got ", c.weight_decay);
  require(std::isfinite(c.temperature) && c.temperature > 0,
          "--temperature must be positive and finite, got ", c.temperature);
  require(c.crop_scale_min >= 0 && c.crop_scale_min <= 1, "--crop-scale must be in (0, 1], got ",
          c.crop_scale_min);
  require(c.warmup < 0 || (std::isfinite(c.warmup) && c.warmup <= c.epochs),
          "--warmup must be in [0, epochs = ", c.epochs, "], got ", c.warmup);
  resnet_arch(c.encoder.arch);  // throws on an unknown name
}

namespace detail {
inline std::string num_str(double v) {
  std::ostringstream o;
  o.precision(17);
  o << v;
  return o.str();
}
}  // namespace detail

/// The configuration as "train.<name>" -> value strings (exact for doubles).
/// crop_scale_min appears only when set, so that checkpoints written before it
/// existed still match their configuration.
inline std::map<std::string, std::string> to_strings(const TrainConfig& c) {
  using detail::num_str;
  std::map<std::string, std::string> m = {{"train.method", method_name(c.method)},
          {"train.arch", c.encoder.arch},
          {"train.in_channels", std::to_string(c.encoder.in_channels)},
          {"train.width", std::to_string(c.encoder.width)},
          {"train.stem", c.encoder.stem == Stem::cifar ? "cifar" : "imagenet"},
          {"train.head", c.head == HeadKind::mlp ? "mlp" : "linear"},
          {"train.feat_dim", std::to_string(c.feat_dim)},
          {"train.num_classes", std::to_string(c.num_classes)},
          {"train.epochs", std::to_string(c.epochs)},
          {"train.batch_size", std::to_string(c.batch_size)},
          {"train.optimizer", c.optimizer},
          {"train.lr", num_str(c.lr)},
          {"train.momentum", num_str(c.momentum)},
          {"train.weight_decay", num_str(c.weight_decay)},
          {"train.schedule", c.schedule},
          {"train.warmup", num_str(c.warmup)},
          {"train.temperature", num_str(c.temperature)},
          {"train.seed", std::to_string(c.seed)}};
  if (c.crop_scale_min > 0) m["train.crop_scale_min"] = num_str(c.crop_scale_min);
  return m;
}

/// The inverse of to_strings; `source` names the checkpoint in errors.
inline TrainConfig train_config_from(const std::map<std::string, std::string>& m,
                                     const std::string& source) {
  auto get = [&](const std::string& key) -> const std::string& {
    const auto it = m.find("train." + key);
    require<IoError>(it != m.end(), source, ": checkpoint has no training configuration (train.",
                     key, ")");
    return it->second;
  };
  auto num = [&](const std::string& key) {
    try {
      return std::stod(get(key));
    } catch (const std::logic_error&) {
      throw IoError(source + ": checkpoint value train." + key + " = '" + get(key) +
                    "' is not a number");
    }
  };
  TrainConfig c;
  c.method = parse_method(get("method"));
  c.encoder.arch = get("arch");
  c.encoder.in_channels = static_cast<index_t>(num("in_channels"));
  c.encoder.width = static_cast<index_t>(num("width"));
  c.encoder.stem = parse_stem(get("stem"));
  c.head = parse_head(get("head"));
  c.feat_dim = static_cast<index_t>(num("feat_dim"));
  c.num_classes = static_cast<index_t>(num("num_classes"));
  c.epochs = static_cast<index_t>(num("epochs"));
  c.batch_size = static_cast<index_t>(num("batch_size"));
  c.optimizer = get("optimizer");
  c.lr = num("lr");
  c.momentum = num("momentum");
  c.weight_decay = num("weight_decay");
  c.schedule = get("schedule");
  c.warmup = num("warmup");
  c.temperature = num("temperature");
  if (m.count("train.crop_scale_min")) c.crop_scale_min = num("crop_scale_min");
  c.seed = std::stoull(get("seed"));
  validate(c);
  return c;
}

}  // namespace supcon
