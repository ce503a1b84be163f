#pragma once
/// \file random_batch.hpp
/// Seeded random batches for the analyses and demonstrations: unit-norm
/// features stacked view-major, and labels drawn uniformly from C classes.

#include <cmath>
#include <cstdint>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/rng.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon {

/// Features (V * B, D), view-major, every row of unit L2 norm; labels (B,).
template <class T>
struct RandomBatch {
  Tensor<T> features;
  std::vector<std::int64_t> labels;
};

/// Scales every row of the (N, D) matrix `x` to unit L2 norm, in place.
/// Requires every row to be non-zero (a zero row has no direction).
template <class T>
void normalize_rows(Tensor<T>& x) {
  // x is (N, D)
  require<ShapeError>(x.rank() == 2, "normalize_rows: expected an (N, D) matrix, got ",
                      shape_str(x.shape()));
  auto m = x.matrix();
  for (index_t r = 0; r < m.rows(); ++r) {
    const T norm = m.row(r).norm();
    require(norm > T(0), "normalize_rows: row ", r, " is zero");
    m.row(r) /= norm;
  }
}

/// B samples in V views of dimension D, drawn from `rng`: each row an
/// isotropic Gaussian direction (so uniform on the unit sphere), each label
/// uniform in [0, classes). Views of one sample are independent draws, so the
/// batch has no structure beyond its labels.
template <class T>
RandomBatch<T> random_batch(Rng& rng, index_t batch, index_t views, index_t dim, index_t classes) {
  require(batch >= 1, "random_batch: batch must be >= 1, got ", batch);
  require(views >= 1, "random_batch: views must be >= 1, got ", views);
  require(dim >= 1, "random_batch: dim must be >= 1, got ", dim);
  require(classes >= 1, "random_batch: classes must be >= 1, got ", classes);
  RandomBatch<T> b;
  b.features = Tensor<T>({views * batch, dim});
  for (T& v : b.features) v = static_cast<T>(rng.normal());
  // A Gaussian draw is zero with probability 0, but a float row could round to
  // it in principle; redraw rather than divide by zero.
  auto m = b.features.matrix();
  for (index_t r = 0; r < m.rows(); ++r)
    while (m.row(r).norm() == T(0))
      for (index_t c = 0; c < dim; ++c) m(r, c) = static_cast<T>(rng.normal());
  normalize_rows(b.features);
  b.labels.resize(static_cast<std::size_t>(batch));
  for (auto& l : b.labels) l = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(classes)));
  return b;
}

}  // namespace supcon
