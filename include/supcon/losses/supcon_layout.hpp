#pragma once
/// \file supcon_layout.hpp
/// What both SupCon implementations agree on before any arithmetic: input
/// checks, which rows are anchors, and which contrast rows are positives,
/// negatives or left out for each anchor (docs/losses.md, "Sets").

#include <cstdint>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/losses/supcon_options.hpp"

namespace supcon {

/// Anchor rows [begin, end): a part of the anchors whose share of the loss is
/// wanted (the anchors a process holds in a data-parallel batch).
struct RowRange {
  index_t begin = 0;
  index_t end = 0;
};

}  // namespace supcon

namespace supcon::detail {

/// Role of contrast row k for anchor row i.
enum class Role : std::uint8_t {
  none,      ///< k == i, or a positive dropped by the positives cap: in no sum
  positive,  ///< in P(i)
  negative   ///< in N(i)
};

/// The anchor/contrast structure of one batch, computed from the pairing and
/// the options alone (no feature values).
///
/// Ensures: n = views * batch, anchors = n (contrast mode all) or batch (one);
/// role(i, k) follows the definitions of supcon_options.hpp, including the cap;
/// positives[i] = |P(i)| and negatives[i] = |N(i)| for every anchor row i;
/// divisor = the number of anchors the mean runs over (0 only with the exclude
/// policy when no anchor has a positive).
struct ContrastLayout {
  index_t n = 0;        ///< contrast rows, N = V * B
  index_t dim = 0;      ///< feature dimension D
  index_t batch = 0;    ///< samples B
  index_t views = 0;    ///< views V
  index_t anchors = 0;  ///< anchor rows A: the first A rows of the features
  /// (B, B): role of sample b for anchor sample a; empty when sample_class
  /// decides (labels without a positives cap), so memory stays O(B)
  std::vector<Role> sample_role;
  std::vector<std::int32_t> sample_class;  ///< (B,) class of each sample when sample_role is empty
  std::vector<index_t> positives;  ///< |P(i)| per anchor row
  std::vector<index_t> negatives;  ///< |N(i)| per anchor row
  index_t anchors_with_positives = 0;
  index_t divisor = 0;

  /// Role of contrast row k for anchor row i.
  Role role(index_t i, index_t k) const {
    if (i == k) return Role::none;
    if (sample_role.empty())
      return sample_class[static_cast<std::size_t>(i % batch)] == sample_class[static_cast<std::size_t>(k % batch)]
                 ? Role::positive
                 : Role::negative;
    return sample_role[static_cast<std::size_t>((i % batch) * batch + k % batch)];
  }
};

/// Checks the inputs of a SupCon loss and builds its layout.
///
/// Requires (else throws, naming the problem): validate(opt); features of rank
/// 2 with N >= 1 rows and D >= 1 columns (ShapeError); B = pairing.batch_size()
/// >= 1 dividing N (ShapeError); finite features (ValueError); positives_cap a
/// multiple of V (ValueError); with Denominator::only_negatives, every anchor
/// that has a positive also has a negative (ValueError: its denominator would
/// be an empty sum and its loss undefined).
template <class T>
ContrastLayout make_contrast_layout(const Tensor<T>& features, const Pairing& pairing,
                                    const SupConOptions& opt) {
  validate(opt);
  require<ShapeError>(features.rank() == 2, "supcon loss: features must be (N, D), got shape ",
                      shape_str(features.shape()));
  ContrastLayout L;
  L.n = features.dim(0);
  L.dim = features.dim(1);
  L.batch = pairing.batch_size();
  require<ShapeError>(L.n >= 1 && L.dim >= 1, "supcon loss: empty batch, features have shape ",
                      shape_str(features.shape()));
  require<ShapeError>(L.batch >= 1, "supcon loss: the labels or mask describe no sample");
  require<ShapeError>(L.n % L.batch == 0, "supcon loss: features have ", L.n,
                      " rows, not a multiple of the ", L.batch,
                      " samples of the labels or mask (rows must be views x samples)");
  require<ValueError>(features.all_finite(), "supcon loss: features contain NaN or infinity");
  L.views = L.n / L.batch;
  require<ValueError>(opt.positives_cap < 0 || opt.positives_cap % L.views == 0,
                      "positives_cap must be a multiple of the number of views (", L.views,
                      "), got ", opt.positives_cap);
  L.anchors = opt.contrast_mode == ContrastMode::all ? L.n : L.batch;

  // Per anchor sample a: its own sample stays a positive when paired; with a cap,
  // only the first cap / V other paired samples do, the rest drop out of every sum.
  const index_t B = L.batch;
  const index_t keep = opt.positives_cap < 0 ? B : opt.positives_cap / L.views;
  std::vector<index_t> pos_samples(static_cast<std::size_t>(B), 0);
  std::vector<index_t> neg_samples(static_cast<std::size_t>(B), 0);
  if (!pairing.classes().empty() && opt.positives_cap < 0) {
    // classes without a cap: the samples paired with a are those of its class
    L.sample_class = pairing.classes();
    std::vector<index_t> class_size(static_cast<std::size_t>(B), 0);
    for (std::int32_t c : L.sample_class) ++class_size[static_cast<std::size_t>(c)];
    for (index_t a = 0; a < B; ++a) {
      const std::size_t c = static_cast<std::size_t>(L.sample_class[static_cast<std::size_t>(a)]);
      pos_samples[static_cast<std::size_t>(a)] = class_size[c];
      neg_samples[static_cast<std::size_t>(a)] = B - class_size[c];
    }
  } else {
    L.sample_role.assign(static_cast<std::size_t>(B * B), Role::negative);
  }
  for (index_t a = 0; a < B && !L.sample_role.empty(); ++a) {
    index_t kept = 0;
    for (index_t b = 0; b < B; ++b) {
      Role r = Role::negative;
      if (pairing.paired(a, b)) r = (b == a || kept++ < keep) ? Role::positive : Role::none;
      L.sample_role[static_cast<std::size_t>(a * B + b)] = r;
      pos_samples[static_cast<std::size_t>(a)] += r == Role::positive;
      neg_samples[static_cast<std::size_t>(a)] += r == Role::negative;
    }
  }
  // Each sample appears in V rows; the anchor row itself is in no set.
  L.positives.resize(static_cast<std::size_t>(L.anchors));
  L.negatives.resize(static_cast<std::size_t>(L.anchors));
  for (index_t i = 0; i < L.anchors; ++i) {
    const index_t a = i % B;
    const Role self =
        L.sample_role.empty() ? Role::positive : L.sample_role[static_cast<std::size_t>(a * B + a)];
    const index_t np = L.views * pos_samples[static_cast<std::size_t>(a)] - (self == Role::positive);
    const index_t nn = L.views * neg_samples[static_cast<std::size_t>(a)] - (self == Role::negative);
    L.positives[static_cast<std::size_t>(i)] = np;
    L.negatives[static_cast<std::size_t>(i)] = nn;
    L.anchors_with_positives += np > 0;
    require<ValueError>(!(opt.denominator == Denominator::only_negatives && np > 0 && nn == 0),
                        "denominator only_negatives: anchor row ", i,
                        " has positives but no negative, so its denominator is an empty sum");
  }
  L.divisor = opt.no_positives == NoPositives::count_zero ? L.anchors : L.anchors_with_positives;
  return L;
}

/// The anchor rows 0 .. A-1 of the layout, or those of `ranges` when given.
/// Requires (ValueError) ranges in increasing order, disjoint, within [0, A).
inline std::vector<index_t> anchor_rows(const ContrastLayout& L, const std::vector<RowRange>* ranges) {
  std::vector<index_t> rows;
  if (!ranges) {
    rows.resize(static_cast<std::size_t>(L.anchors));
    for (index_t i = 0; i < L.anchors; ++i) rows[static_cast<std::size_t>(i)] = i;
    return rows;
  }
  index_t last = 0;
  for (const RowRange& r : *ranges) {
    require<ValueError>(r.begin >= last && r.begin <= r.end && r.end <= L.anchors,
                        "supcon loss: anchor rows [", r.begin, ", ", r.end,
                        ") must be increasing, disjoint ranges within the ", L.anchors, " anchors");
    for (index_t i = r.begin; i < r.end; ++i) rows.push_back(i);
    last = r.end;
  }
  return rows;
}

/// Fills the bookkeeping fields of `out` for the anchor rows `rows` (all
/// anchors, or a part) from the layout and their unscaled losses, and sets
/// out.value = (T / base_T) * sum / divisor, the divisor of the whole batch.
template <class T>
void finish_loss_result(const ContrastLayout& L, const SupConOptions& opt, const std::vector<index_t>& rows,
                        const std::vector<T>& unscaled, LossResult<T>& out) {
  const T scale = static_cast<T>(opt.temperature / opt.base_temperature);
  const std::size_t a = rows.size();
  out.anchors = static_cast<index_t>(a);
  out.anchors_with_positives = 0;
  out.positives.resize(a);
  out.per_anchor.resize(a);
  T total = 0;
  for (std::size_t j = 0; j < a; ++j) {
    const index_t np = L.positives[static_cast<std::size_t>(rows[j])];
    out.positives[j] = np;
    out.anchors_with_positives += np > 0;
    const T li = scale * unscaled[j];
    out.per_anchor[j] = li;
    total += li;
  }
  out.value = L.divisor > 0 ? total / static_cast<T>(L.divisor) : T(0);
}

/// Weight of each anchor's loss in the mean: (T / base_T) / divisor, or 0
/// when the mean runs over no anchor.
inline double anchor_weight(const ContrastLayout& L, const SupConOptions& opt) {
  return L.divisor > 0 ? opt.temperature / opt.base_temperature / static_cast<double>(L.divisor) : 0.0;
}

}  // namespace supcon::detail
