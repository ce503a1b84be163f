#pragma once
// The options that describe a network (`--arch`, `--kind`, `--head`, ...),
// shared by `supcon model` and `supcon forward`, and a helper that builds the
// network they describe and hands it to a function.
#include <CLI/CLI.hpp>
#include <string>
#include <supcon/core/rng.hpp>
#include <supcon/models/classifier.hpp>
#include <supcon/models/supcon_model.hpp>

namespace supcon::cli {

struct ModelOptions {
  std::string arch = "resnet18";
  std::string kind = "supcon";
  std::string head = "mlp";
  std::string stem = "cifar";
  index_t feat_dim = 128;
  index_t num_classes = 10;
  index_t in_channels = 3;
  index_t width = 64;
};

inline void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("--arch", o.arch, "Encoder")
      ->check(CLI::IsMember({"resnet18", "resnet34", "resnet50", "resnet101"}))
      ->capture_default_str();
  cmd->add_option("--kind", o.kind, "supcon: encoder + projection head; ce: encoder + classifier")
      ->check(CLI::IsMember({"supcon", "ce"}))
      ->capture_default_str();
  cmd->add_option("--head", o.head, "Projection head of --kind supcon")
      ->check(CLI::IsMember({"mlp", "linear"}))
      ->capture_default_str();
  cmd->add_option("--feat-dim", o.feat_dim, "Output dimension of the projection head")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--num-classes", o.num_classes, "Classes of --kind ce")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--in-channels", o.in_channels, "Input channels (1 for grayscale)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--width", o.width, "Channels of the first stage (stages: w, 2w, 4w, 8w)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--stem", o.stem, "cifar: 3x3 conv; imagenet: 7x7/2 conv + 3x3/2 max-pool")
      ->check(CLI::IsMember({"cifar", "imagenet"}))
      ->capture_default_str();
}

inline ResNetConfig encoder_config(const ModelOptions& o) {
  ResNetConfig c;
  c.arch = o.arch;
  c.in_channels = o.in_channels;
  c.width = o.width;
  c.stem = parse_stem(o.stem);
  return c;
}

/// A one-line description of the network, e.g.
/// "resnet18 (cifar stem, width 64, 3 input channels) + mlp head to 128".
inline std::string describe(const ModelOptions& o) {
  std::string s = o.arch + " (" + o.stem + " stem, width " + std::to_string(o.width) + ", " +
                  std::to_string(o.in_channels) + " input channel" +
                  (o.in_channels == 1 ? "" : "s") + ")";
  if (o.kind == "supcon") return s + " + " + o.head + " head to " + std::to_string(o.feat_dim);
  return s + " + classifier over " + std::to_string(o.num_classes) + " classes";
}

/// Builds the network of `o` in scalar type T (seeded initialisation) and
/// returns f(network); f receives a SupConModel<T>& or a CEModel<T>&.
template <class T, class F>
auto with_model(const ModelOptions& o, F&& f) {
  Rng rng(0);
  if (o.kind == "supcon") {
    SupConModel<T> m(encoder_config(o), parse_head(o.head), o.feat_dim, rng);
    return f(m);
  }
  CEModel<T> m(encoder_config(o), o.num_classes, rng);
  return f(m);
}

}  // namespace supcon::cli
