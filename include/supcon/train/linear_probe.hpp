#pragma once
/// \file linear_probe.hpp
/// Stage two of SupCon: a linear classifier on frozen encoder features.
///
/// The encoder runs once, in evaluation mode (batch-norm running statistics),
/// on un-augmented images; its features r (N, d) are kept in memory. The
/// classifier logits = r W^T + b is then trained with cross-entropy and SGD
/// (momentum, cosine schedule) on those fixed features for many epochs,
/// which costs a tiny fraction of one encoder epoch. Training on augmented
/// views, as the reference code does, would need an encoder pass per epoch.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "supcon/core/rng.hpp"
#include "supcon/data/augment.hpp"
#include "supcon/data/loader.hpp"
#include "supcon/losses/cross_entropy.hpp"
#include "supcon/models/classifier.hpp"
#include "supcon/models/resnet.hpp"
#include "supcon/optim/schedule.hpp"
#include "supcon/optim/sgd.hpp"

namespace supcon {

/// Features of a whole data set.
template <class T>
struct FeatureSet {
  Tensor<T> features;                ///< (N, d)
  std::vector<std::int64_t> labels;  ///< (N)
};

/// The encoder's features of every image of `ds`, in data-set order, after
/// the deterministic part of `augment` (resize, normalisation). Puts the
/// encoder in evaluation mode and leaves it there.
template <class T>
FeatureSet<T> extract_features(ResNet<T>& encoder, const data::Dataset& ds,
                               const data::AugmentConfig& augment, index_t batch_size = 256) {
  encoder.set_training(false);
  data::Loader<T> loader(ds, data::make_augment<T>(augment.deterministic()),
                         {batch_size, 1, false, false, 0});
  FeatureSet<T> out;
  out.features = Tensor<T>({ds.size(), encoder.feature_dim()});
  out.labels.reserve(static_cast<std::size_t>(ds.size()));
  index_t row = 0;
  for (index_t b = 0; b < loader.num_batches(); ++b) {
    const data::Batch<T> batch = loader.batch(b);
    const Tensor<T> r = encoder.forward(batch.images);
    std::copy(r.begin(), r.end(), out.features.data() + row * encoder.feature_dim());
    row += batch.batch_size();
    out.labels.insert(out.labels.end(), batch.labels.begin(), batch.labels.end());
  }
  return out;
}

/// Options of the linear probe (the reference recipe: SGD, momentum 0.9,
/// cosine schedule; many epochs are cheap on cached features).
struct ProbeOptions {
  index_t epochs = 30;
  index_t batch_size = 256;
  double lr = 0.5;
  double momentum = 0.9;
  double weight_decay = 0;
  std::uint64_t seed = 0;
  /// Standardise each feature (mean 0, variance 1 over the training set)
  /// before the classifier, so one learning rate suits every encoder width.
  bool standardize = true;
};

/// A trained probe: the classifier and the feature standardisation it expects.
template <class T>
struct LinearProbe {
  LinearClassifier<T> classifier;
  std::vector<T> mean, inv_std;  ///< (d) each; empty when not standardised
  std::vector<double> epoch_loss;  ///< mean training loss of each epoch

  /// Logits (N, C) of raw features (N, d).
  Tensor<T> logits(const Tensor<T>& features) {
    return classifier.forward(standardized(features));
  }
  /// features with the training set's standardisation applied.
  Tensor<T> standardized(const Tensor<T>& features) const {
    if (mean.empty()) return features;
    require<ShapeError>(features.rank() == 2 && features.dim(1) == static_cast<index_t>(mean.size()),
                        "linear probe: features must be (N, ", mean.size(), "), got ",
                        shape_str(features.shape()));
    Tensor<T> x = features;
    const index_t d = x.dim(1);
    for (index_t n = 0; n < x.dim(0); ++n)
      for (index_t j = 0; j < d; ++j)
        x(n, j) = (x(n, j) - mean[static_cast<std::size_t>(j)]) * inv_std[static_cast<std::size_t>(j)];
    return x;
  }
};

/// Trains a linear classifier over `classes` classes on `train` features.
/// Throws ValueError for bad options or labels, ShapeError for bad shapes.
template <class T>
LinearProbe<T> train_linear_probe(const FeatureSet<T>& train, index_t classes,
                                  const ProbeOptions& opt = {}) {
  require(opt.epochs >= 1, "linear probe: epochs must be >= 1, got ", opt.epochs);
  require(opt.batch_size >= 1, "linear probe: batch size must be >= 1, got ", opt.batch_size);
  require<ShapeError>(train.features.rank() == 2 && train.features.dim(0) >= 1,
                      "linear probe: features must be (N, d) with N >= 1, got ",
                      shape_str(train.features.shape()));
  check_finite(train.features, "linear probe: features");
  const index_t N = train.features.dim(0), d = train.features.dim(1);
  require<ShapeError>(static_cast<index_t>(train.labels.size()) == N, "linear probe: ",
                      train.labels.size(), " labels for ", N, " feature rows");
  Rng rng(opt.seed);
  LinearProbe<T> probe{LinearClassifier<T>(d, classes, rng), {}, {}, {}};
  if (opt.standardize) {
    probe.mean.assign(static_cast<std::size_t>(d), T(0));
    probe.inv_std.assign(static_cast<std::size_t>(d), T(1));
    for (index_t j = 0; j < d; ++j) {
      double s = 0, ss = 0;
      for (index_t n = 0; n < N; ++n) s += train.features(n, j);
      const double mu = s / N;
      for (index_t n = 0; n < N; ++n) ss += (train.features(n, j) - mu) * (train.features(n, j) - mu);
      const double sd = std::sqrt(ss / N);
      probe.mean[static_cast<std::size_t>(j)] = static_cast<T>(mu);
      probe.inv_std[static_cast<std::size_t>(j)] = static_cast<T>(sd > 1e-8 ? 1.0 / sd : 1.0);
    }
  }
  const Tensor<T> x = probe.standardized(train.features);
  Sgd<T> sgd(probe.classifier.parameter_list(),
             SgdOptions{opt.lr, opt.momentum, 0, opt.weight_decay, false, false});
  LrSchedule sched;
  sched.lr = opt.lr;
  sched.total = static_cast<double>(opt.epochs);
  const index_t B = std::min(opt.batch_size, N), nb = (N + B - 1) / B;
  std::vector<index_t> order(static_cast<std::size_t>(N));
  for (index_t i = 0; i < N; ++i) order[static_cast<std::size_t>(i)] = i;
  for (index_t e = 0; e < opt.epochs; ++e) {
    rng.shuffle(order);
    double loss = 0;
    for (index_t b = 0; b < nb; ++b) {
      const index_t lo = b * B, n = std::min(B, N - lo);
      Tensor<T> xb({n, d});
      std::vector<std::int64_t> yb(static_cast<std::size_t>(n));
      for (index_t k = 0; k < n; ++k) {
        const index_t i = order[static_cast<std::size_t>(lo + k)];
        std::copy(x.data() + i * d, x.data() + (i + 1) * d, xb.data() + k * d);
        yb[static_cast<std::size_t>(k)] = train.labels[static_cast<std::size_t>(i)];
      }
      sgd.zero_grad();
      const LossResult<T> r = cross_entropy(probe.classifier.forward(xb), yb);
      probe.classifier.backward(r.grad);
      sgd.set_lr(lr_at(sched, epoch_position(e, b, nb)));
      sgd.step();
      loss += static_cast<double>(r.value);
    }
    probe.epoch_loss.push_back(loss / nb);
  }
  return probe;
}

}  // namespace supcon
