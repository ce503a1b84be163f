#pragma once
/// \file resnet.hpp
/// ResNet<T>: the encoder of the SupCon models, ResNet-18/34/50/101
/// (He et al., 2016) as in the reference SupCon code, with a configurable
/// number of input channels and base width:
///
///     stem     cifar:    h = relu(bn1(conv1(x)))                 conv1 3x3, stride 1, padding 1
///              imagenet: h = maxpool(relu(bn1(conv1(x))))        conv1 7x7/2, padding 3; pool 3x3/2, padding 1
///     stages   layer1..layer4 of blocks with widths w, 2w, 4w, 8w; the first
///              block of layer2..4 has stride 2
///     pooling  global average over H, W
///
/// x is (N, in_channels, H, W); the output is (N, feature_dim()) with
/// feature_dim() = 8 w * expansion (512 for ResNet-18/34, 2048 for -50/101 at w = 64).
/// State keys, under the caller's prefix (the models use "encoder."):
/// conv1.weight, bn1.*, layerK.J.(block keys) as PyTorch's nn.Sequential.

#include <array>
#include <string>
#include <variant>
#include <vector>

#include "supcon/layers/activation.hpp"
#include "supcon/layers/batchnorm.hpp"
#include "supcon/layers/conv2d.hpp"
#include "supcon/layers/pool.hpp"
#include "supcon/models/basic_block.hpp"
#include "supcon/models/bottleneck.hpp"
#include "supcon/models/summary.hpp"

namespace supcon {

/// The first layers of the network.
enum class Stem {
  cifar,    ///< 3x3 convolution, stride 1: for 32x32 images (the SupCon code)
  imagenet  ///< 7x7 stride-2 convolution and a 3x3 stride-2 max-pool: for 224x224 images
};

/// "cifar" or "imagenet"; throws ValueError naming the option otherwise.
inline Stem parse_stem(const std::string& s) {
  if (s == "cifar") return Stem::cifar;
  if (s == "imagenet") return Stem::imagenet;
  throw ValueError("stem: expected cifar or imagenet, got '" + s + "'");
}

/// What an encoder is built from.
struct ResNetConfig {
  std::string arch = "resnet18";  ///< resnet18, resnet34, resnet50 or resnet101
  index_t in_channels = 3;        ///< 1 for grayscale images
  index_t width = 64;             ///< channels of layer1; the stages have w, 2w, 4w, 8w
  Stem stem = Stem::cifar;
  bool zero_init_residual = false;  ///< last batch-norm scale of every block set to 0
};

/// Block type and blocks per stage of a named architecture.
struct ResNetArch {
  bool bottleneck = false;
  std::array<index_t, 4> blocks{};
};

/// The architecture called `name`; throws ValueError listing the known ones otherwise.
inline ResNetArch resnet_arch(const std::string& name) {
  if (name == "resnet18") return {false, {2, 2, 2, 2}};
  if (name == "resnet34") return {false, {3, 4, 6, 3}};
  if (name == "resnet50") return {true, {3, 4, 6, 3}};
  if (name == "resnet101") return {true, {3, 4, 23, 3}};
  throw ValueError("arch: unknown architecture '" + name +
                   "' (known: resnet18, resnet34, resnet50, resnet101)");
}

template <class T>
class ResNet : public Module<T> {
 public:
  using Block = std::variant<BasicBlock<T>, Bottleneck<T>>;

  ResNet(const ResNetConfig& cfg, Rng& rng)
      : cfg_(cfg), arch_(resnet_arch(checked(cfg).arch)),
        conv1_(cfg.in_channels, cfg.width, cfg.stem == Stem::cifar ? 3 : 7,
               cfg.stem == Stem::cifar ? 1 : 2, cfg.stem == Stem::cifar ? 1 : 3, false, rng),
        bn1_(cfg.width), pool_(3, 2, 1) {
    bn1_.fuse_relu(true);
    index_t in = cfg.width;
    for (int stage = 0; stage < 4; ++stage) {
      const index_t planes = cfg.width << stage;
      for (index_t j = 0; j < arch_.blocks[stage]; ++j) {
        const index_t stride = (stage > 0 && j == 0) ? 2 : 1;
        if (arch_.bottleneck)
          blocks_.emplace_back(std::in_place_type<Bottleneck<T>>, in, planes, stride, rng);
        else
          blocks_.emplace_back(std::in_place_type<BasicBlock<T>>, in, planes, stride, rng);
        keys_.push_back("layer" + std::to_string(stage + 1) + "." + std::to_string(j) + ".");
        in = std::visit([](auto& b) { return b.out_channels(); }, blocks_.back());
        if (cfg.zero_init_residual) std::visit([](auto& b) { b.zero_init_residual(); }, blocks_.back());
      }
    }
    dim_ = in;
  }

  const ResNetConfig& config() const { return cfg_; }
  /// Channels of the pooled features: 8 * width * expansion.
  index_t feature_dim() const { return dim_; }
  std::size_t num_blocks() const { return blocks_.size(); }

  /// x is (N, in_channels, H, W); returns the pooled features (N, feature_dim()).
  Tensor<T> forward(const Tensor<T>& x) override {
    Tensor<T> h = bn1_.forward_owned(conv1_.forward(x));  // relu(bn1(conv1(x))), the ReLU fused
    if (cfg_.stem == Stem::imagenet) h = pool_.forward(h);
    for (Block& b : blocks_) h = std::visit([&](auto& blk) { return blk.forward_owned(std::move(h)); }, b);
    return gap_.forward(h);
  }

  /// dy is (N, feature_dim()); returns dx (N, in_channels, H, W); adds into every grad.
  Tensor<T> backward(const Tensor<T>& dy) override {
    // forward: features = mean over H, W of h
    Tensor<T> d = gap_.backward(dy);
    // forward: h = block_k(h) for k = 0, 1, ...; undone from the last block
    for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it)
      d = std::visit([&](auto& blk) { return blk.backward(d); }, *it);
    // forward: h = [maxpool](relu(bn1(conv1(x))))
    if (cfg_.stem == Stem::imagenet) d = pool_.backward(d);
    d = bn1_.backward(d);  // the ReLU's too
    return conv1_.backward(d);
  }

  void parameters(std::vector<Parameter<T>*>& out) override {
    conv1_.parameters(out);
    bn1_.parameters(out);
    for (Block& b : blocks_) std::visit([&](auto& blk) { blk.parameters(out); }, b);
  }
  void state(const std::string& prefix, std::vector<NamedTensor<T>>& out) override {
    conv1_.state(prefix + "conv1.", out);
    bn1_.state(prefix + "bn1.", out);
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      std::visit([&](auto& blk) { blk.state(prefix + keys_[i], out); }, blocks_[i]);
  }
  void set_training(bool on) override {
    this->training_ = on;
    bn1_.set_training(on);
    for (Block& b : blocks_) std::visit([&](auto& blk) { blk.set_training(on); }, b);
  }
  std::string name() const override {
    return "ResNet(" + cfg_.arch + ", width " + std::to_string(cfg_.width) + ", " +
           std::to_string(cfg_.in_channels) + " input channels, " +
           (cfg_.stem == Stem::cifar ? "cifar" : "imagenet") + " stem)";
  }

  /// Rows for the stem, every block and the pooling, for one image of shape
  /// chw = (C, H, W); keys start with `prefix`. chw becomes (feature_dim(),).
  void summary(const std::string& prefix, Shape& chw, std::vector<LayerSummary>& rows) {
    require<ShapeError>(chw.size() == 3 && chw[0] == cfg_.in_channels, name(), ": image shape ",
                        shape_str(chw), " is not (", cfg_.in_channels, ", H, W)");
    index_t H = chw[1], W = chw[2];
    const double stem_flops = conv_flops(cfg_.in_channels, cfg_.width, conv1_.kernel(),
                                         conv1_.stride(), conv1_.padding(), H, W);
    chw = {cfg_.width, H, W};
    rows.push_back({prefix + "conv1", conv1_.name(), chw, count_parameters(conv1_), stem_flops});
    rows.push_back({prefix + "bn1", bn1_.name(), chw, count_parameters(bn1_), 0});
    if (cfg_.stem == Stem::imagenet) {
      chw = {cfg_.width, ops::window_output_size(H, 3, 2, 1, "summary"),
             ops::window_output_size(W, 3, 2, 1, "summary")};
      rows.push_back({prefix + "maxpool", pool_.name(), chw, 0, 0});
    }
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      const std::string key = prefix + keys_[i].substr(0, keys_[i].size() - 1);
      rows.push_back(std::visit([&](auto& blk) { return blk.summary(key, chw); }, blocks_[i]));
    }
    chw = {dim_};
    rows.push_back({prefix + "avgpool", gap_.name(), chw, 0, 0});
  }

 private:
  ResNetConfig cfg_;
  ResNetArch arch_;
  Conv2d<T> conv1_;
  BatchNorm2d<T> bn1_;  // with the ReLU after it
  MaxPool2d<T> pool_;  // used by the imagenet stem only
  std::vector<Block> blocks_;
  std::vector<std::string> keys_;  // "layer1.0.", ...
  GlobalAvgPool<T> gap_;
  index_t dim_ = 0;

  static const ResNetConfig& checked(const ResNetConfig& c) {
    require<ValueError>(c.in_channels >= 1, "in_channels must be >= 1, got ", c.in_channels);
    require<ValueError>(c.width >= 1, "width must be >= 1, got ", c.width);
    return c;
  }
};

}  // namespace supcon
