#pragma once
/// \file metrics.hpp
/// Classification metrics: top-1 and top-5 accuracy, per-class accuracy and
/// the confusion matrix, from logits (or any per-class scores) and labels.
///
/// Ties: a class counts as "in the top k" of a row when fewer than k other
/// classes score strictly higher, so a row of equal scores is a hit for every
/// k >= 1. That is the generous convention; with float logits ties are rare.

#include <cstdint>
#include <string>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon {

/// Everything `supcon eval` reports about one classifier on one data set.
struct ClassificationMetrics {
  index_t samples = 0;
  index_t classes = 0;
  double top1 = 0;                   ///< fraction in [0, 1]
  double top5 = 0;                   ///< fraction in [0, 1]; equals 1 when classes <= 5
  std::vector<double> per_class;     ///< (classes), accuracy of the samples of each true class
  std::vector<index_t> class_count;  ///< (classes), samples of each true class
  /// (classes * classes) row-major counts: confusion[t * classes + p] samples
  /// of true class t predicted as p. Each row sums to class_count[t].
  std::vector<index_t> confusion;
};

namespace detail {
inline void check_labels(const std::vector<std::int64_t>& labels, index_t n, index_t classes,
                         const char* who) {
  require<ShapeError>(static_cast<index_t>(labels.size()) == n, who, ": ", labels.size(),
                      " labels for ", n, " rows");
  for (std::size_t i = 0; i < labels.size(); ++i)
    require(labels[i] >= 0 && labels[i] < classes, who, ": label ", labels[i], " of row ", i,
            " outside [0, ", classes, ")");
}
}  // namespace detail

/// Metrics of hard predictions (N) against labels (N), both in [0, classes).
/// top5 is left at 0: hard predictions (e.g. of kNN) carry no ranking.
inline ClassificationMetrics prediction_metrics(const std::vector<std::int64_t>& predictions,
                                                const std::vector<std::int64_t>& labels,
                                                index_t classes) {
  require(classes >= 1, "prediction_metrics: classes must be >= 1, got ", classes);
  const index_t N = static_cast<index_t>(predictions.size());
  require(N >= 1, "prediction_metrics: no predictions");
  detail::check_labels(labels, N, classes, "prediction_metrics");
  detail::check_labels(predictions, N, classes, "prediction_metrics (predictions)");
  ClassificationMetrics m;
  m.samples = N;
  m.classes = classes;
  m.per_class.assign(static_cast<std::size_t>(classes), 0.0);
  m.class_count.assign(static_cast<std::size_t>(classes), 0);
  m.confusion.assign(static_cast<std::size_t>(classes * classes), 0);
  index_t hit = 0;
  for (index_t n = 0; n < N; ++n) {
    const auto t = labels[static_cast<std::size_t>(n)], p = predictions[static_cast<std::size_t>(n)];
    hit += t == p;
    ++m.class_count[static_cast<std::size_t>(t)];
    ++m.confusion[static_cast<std::size_t>(t * classes + p)];
  }
  m.top1 = static_cast<double>(hit) / static_cast<double>(N);
  for (index_t c = 0; c < classes; ++c) {
    const index_t cnt = m.class_count[static_cast<std::size_t>(c)];
    m.per_class[static_cast<std::size_t>(c)] =
        cnt ? static_cast<double>(m.confusion[static_cast<std::size_t>(c * classes + c)]) / cnt : 0.0;
  }
  return m;
}

/// Metrics of `scores` (N, C) against `labels` (N) in [0, C). The prediction
/// of a row is its first highest score.
/// Requires N >= 1, C >= 1, finite scores (ValueError / ShapeError otherwise).
template <class T>
ClassificationMetrics classification_metrics(const Tensor<T>& scores,
                                             const std::vector<std::int64_t>& labels) {
  require<ShapeError>(scores.rank() == 2 && scores.dim(0) >= 1 && scores.dim(1) >= 1,
                      "classification_metrics: scores must be (N, C) with N, C >= 1, got ",
                      shape_str(scores.shape()));
  check_finite(scores, "classification_metrics: scores");
  const index_t N = scores.dim(0), C = scores.dim(1);
  detail::check_labels(labels, N, C, "classification_metrics");
  std::vector<std::int64_t> pred(static_cast<std::size_t>(N));
  index_t hit5 = 0;
  for (index_t n = 0; n < N; ++n) {
    const index_t t = static_cast<index_t>(labels[static_cast<std::size_t>(n)]);
    const T* row = scores.data() + n * C;
    // rank = number of classes scoring strictly above the true class.
    index_t rank = 0, argmax = 0;
    for (index_t c = 0; c < C; ++c) {
      if (row[c] > row[t]) ++rank;
      if (row[c] > row[argmax]) argmax = c;
    }
    hit5 += rank < 5;
    pred[static_cast<std::size_t>(n)] = argmax;
  }
  ClassificationMetrics m = prediction_metrics(pred, labels, C);
  m.top5 = static_cast<double>(hit5) / static_cast<double>(N);
  return m;
}

}  // namespace supcon
