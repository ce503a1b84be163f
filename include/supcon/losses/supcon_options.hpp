#pragma once
/// \file supcon_options.hpp
/// Options, pairings and results shared by every contrastive loss.
///
/// Notation (docs/losses.md derives everything): the features are N = V * B
/// rows of dimension D, stacked view-major (all B samples of view 0, then of
/// view 1, ...). Row r is sample r mod B in view r / B. The similarity of
/// anchor i and contrast row k is s_ik = <f_i, f_k> / temperature.
/// P(i) = positives of i: rows k != i whose sample is paired with i's sample.
/// N(i) = negatives of i: rows whose sample is not paired with i's sample.
///
///   L_out(i) = -(1/|P(i)|) sum_{p in P(i)} log( exp(s_ip) / D_ip )
///   L_in(i)  = -log( (1/|P(i)|) sum_{p in P(i)} exp(s_ip) / D_ip )
///
/// with the denominator D_ip chosen by Denominator. The loss is
/// (temperature / base_temperature) times the mean of L(i) over the anchors.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon {

/// Which rows serve as anchors.
enum class ContrastMode {
  all,  ///< every row of every view (the default of the reference code)
  one   ///< only the rows of view 0; all rows remain in the contrast set
};

/// Where the sum over positives sits relative to the log.
enum class Summation {
  outside,  ///< L_out, Eq. 2 of the paper: mean of the log-probabilities
  inside    ///< L_in, Eq. 3 of the paper: log of the mean probability
};

/// Which rows the softmax denominator D_ip sums over, for anchor i and positive p.
enum class Denominator {
  all,            ///< every row except i: sum_{a != i} exp(s_ia)
  one_positive,   ///< p and the negatives: exp(s_ip) + sum_{n in N(i)} exp(s_in)
  only_negatives  ///< the negatives only: sum_{n in N(i)} exp(s_in)
};

/// What an anchor without any positive contributes.
enum class NoPositives {
  count_zero,  ///< contributes 0 and still counts in the mean (the reference PyTorch code)
  exclude      ///< is dropped from the mean
};

/// Every option of the contrastive losses, with the defaults of the widely
/// used PyTorch SupCon code.
struct SupConOptions {
  double temperature = 0.07;       ///< tau > 0, finite
  double base_temperature = 0.07;  ///< the loss is scaled by temperature / base_temperature
  ContrastMode contrast_mode = ContrastMode::all;
  Summation summation = Summation::outside;
  Denominator denominator = Denominator::all;
  /// Maximum number of positives per anchor other than the anchor's own views;
  /// -1 = no cap. Must be a multiple of the number of views: cap / V samples
  /// are kept per anchor, the lowest-indexed ones, each with all its views.
  /// Positives dropped by the cap leave the denominator too (they are neither
  /// positives nor negatives), as in the TensorFlow code of the paper.
  std::int64_t positives_cap = -1;
  NoPositives no_positives = NoPositives::count_zero;
};

/// Throws ValueError naming the option when `o` is out of range.
inline void validate(const SupConOptions& o) {
  require(o.temperature > 0 && o.temperature < 1e300, "temperature must be positive and finite, got ",
          o.temperature);
  require(o.base_temperature > 0 && o.base_temperature < 1e300,
          "base_temperature must be positive and finite, got ", o.base_temperature);
  require(o.positives_cap >= -1, "positives_cap must be -1 (no cap) or >= 0, got ", o.positives_cap);
}

/// Who is paired with whom among the B samples of a batch: an explicit 0/1
/// mask (B, B), possibly asymmetric; mask(i, j) = 1 makes sample j a positive
/// of anchor sample i (in every view except the anchor row itself).
class Pairing {
 public:
  /// Same label, same class. Labels may be any integers.
  /// Stored as one class index per sample (O(B) memory), not as a mask.
  static Pairing from_labels(const std::vector<std::int64_t>& labels) {
    std::vector<std::int64_t> distinct(labels);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    Pairing p;
    p.b_ = static_cast<index_t>(labels.size());
    p.class_.reserve(labels.size());
    for (std::int64_t l : labels)
      p.class_.push_back(static_cast<std::int32_t>(
          std::lower_bound(distinct.begin(), distinct.end(), l) - distinct.begin()));
    return p;
  }
  /// Every sample its own class: the only positives are the other views (SimCLR).
  static Pairing identity(index_t batch) {
    Pairing p;
    p.b_ = batch;
    p.class_.resize(static_cast<std::size_t>(batch));
    for (index_t i = 0; i < batch; ++i) p.class_[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i);
    return p;
  }
  /// An explicit (B, B) mask whose entries are 0 or 1.
  template <class T>
  static Pairing from_mask(const Tensor<T>& mask) {
    require<ShapeError>(mask.rank() == 2 && mask.dim(0) == mask.dim(1),
                        "mask must be square (B, B), got shape ", shape_str(mask.shape()));
    Pairing p;
    p.b_ = mask.dim(0);
    p.mask_.resize(static_cast<std::size_t>(mask.size()));
    for (index_t k = 0; k < mask.size(); ++k) {
      const T v = mask[k];
      require(v == T(0) || v == T(1), "mask entries must be 0 or 1, found ", v, " at flat index ", k);
      p.mask_[static_cast<std::size_t>(k)] = v == T(1);
    }
    return p;
  }

  /// B, the number of samples.
  index_t batch_size() const { return b_; }
  /// Whether sample j is a positive candidate for anchor sample i (i == j included).
  bool paired(index_t i, index_t j) const {
    if (mask_.empty()) return class_[static_cast<std::size_t>(i)] == class_[static_cast<std::size_t>(j)];
    return mask_[static_cast<std::size_t>(i * b_ + j)] != 0;
  }
  /// Class index (0, 1, ...) of each sample when built from labels or as the
  /// identity; empty when built from a mask (B >= 1).
  const std::vector<std::int32_t>& classes() const { return class_; }

 private:
  index_t b_ = 0;
  std::vector<std::uint8_t> mask_;    ///< (B, B) from a mask, else empty
  std::vector<std::int32_t> class_;  ///< (B,) from labels, else empty
};

/// Value and gradient of a loss, with per-anchor diagnostics.
template <class T>
struct LossResult {
  T value = 0;     ///< the loss
  Tensor<T> grad;  ///< dL/d(input), the input's shape
  /// Each anchor's scaled loss (T/base_T) * L(i), in anchor row order; 0 for
  /// anchors without positives.
  std::vector<T> per_anchor;
  std::vector<index_t> positives;  ///< |P(i)| of each anchor (after the cap)
  index_t anchors = 0;             ///< number of anchor rows
  index_t anchors_with_positives = 0;
};

}  // namespace supcon
