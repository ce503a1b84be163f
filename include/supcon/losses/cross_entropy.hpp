#pragma once
/// \file cross_entropy.hpp
/// Softmax and cross-entropy from logits, with PyTorch's label smoothing.
/// Derivation of the gradient: docs/losses.md, "Cross-entropy".

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/losses/supcon_options.hpp"

namespace supcon {

/// Row-wise softmax: probs(n, c) = exp(z_nc - max_c' z_nc') / sum_c'' exp(z_nc'' - max).
///
/// logits is (N, C). Requires rank 2 (ShapeError) and finite logits
/// (ValueError). Ensures: probs is resized to (N, C) and assigned; each row
/// sums to 1.
template <class T>
void softmax_rows(const Tensor<T>& logits, Tensor<T>& probs) {
  // logits is (N, C), probs is (N, C)
  require<ShapeError>(logits.rank() == 2, "softmax_rows: logits must be (N, C), got shape ",
                      shape_str(logits.shape()));
  require<ValueError>(logits.all_finite(), "softmax_rows: logits contain NaN or infinity");
  const index_t N = logits.dim(0), C = logits.dim(1);
  probs.resize(logits.shape());
#pragma omp parallel for schedule(static) if (N * C > 4096)
  for (index_t n = 0; n < N; ++n) {
    const T* z = logits.data() + n * C;
    T* p = probs.data() + n * C;
    const T zmax = C > 0 ? *std::max_element(z, z + C) : T(0);
    T sum = 0;
    for (index_t c = 0; c < C; ++c) sum += (p[c] = std::exp(z[c] - zmax));
    for (index_t c = 0; c < C; ++c) p[c] /= sum;
  }
}

/// Mean cross-entropy of logits against integer labels, with label smoothing.
///
/// logits is (N, C), labels has N entries in [0, C). With eps = label_smoothing
/// the target of row n is q = (1 - eps) onehot(y_n) + eps / C (PyTorch's
/// definition), and loss_n = -sum_c q_c log softmax(z_n)_c.
/// Requires (else ShapeError / ValueError naming the culprit): N >= 1, C >= 1,
/// labels.size() == N, each label in [0, C), finite logits, 0 <= eps < 1.
/// Ensures: value = mean_n loss_n; grad is (N, C), assigned, = (softmax - q) / N;
/// per_anchor[n] = loss_n; anchors = anchors_with_positives = N; positives empty.
template <class T>
LossResult<T> cross_entropy(const Tensor<T>& logits, const std::vector<std::int64_t>& labels,
                            double label_smoothing = 0.0) {
  // logits is (N, C), labels is (N,)
  require<ShapeError>(logits.rank() == 2, "cross_entropy: logits must be (N, C), got shape ",
                      shape_str(logits.shape()));
  const index_t N = logits.dim(0), C = logits.dim(1);
  require<ShapeError>(N >= 1 && C >= 1, "cross_entropy: empty logits of shape ", shape_str(logits.shape()));
  require<ShapeError>(static_cast<index_t>(labels.size()) == N, "cross_entropy: ", labels.size(),
                      " labels for ", N, " rows of logits");
  require<ValueError>(label_smoothing >= 0 && label_smoothing < 1,
                      "label_smoothing must be in [0, 1), got ", label_smoothing);
  for (index_t n = 0; n < N; ++n) {
    const std::int64_t y = labels[static_cast<std::size_t>(n)];
    require<ValueError>(y >= 0 && y < C, "cross_entropy: label ", y, " at row ", n,
                        " is outside [0, ", C, ")");
  }
  LossResult<T> out;
  out.grad = Tensor<T>({N, C});
  softmax_rows(logits, out.grad);  // checks finiteness; grad holds the probabilities for now
  out.per_anchor.assign(static_cast<std::size_t>(N), T(0));
  const T eps = static_cast<T>(label_smoothing);
  const T off = eps / static_cast<T>(C);  // target of every class but the label
  const T inv_n = T(1) / static_cast<T>(N);
#pragma omp parallel for schedule(static) if (N * C > 4096)
  for (index_t n = 0; n < N; ++n) {
    const T* z = logits.data() + n * C;
    T* g = out.grad.data() + n * C;
    const index_t y = static_cast<index_t>(labels[static_cast<std::size_t>(n)]);
    const T zmax = *std::max_element(z, z + C);
    T sum = 0, qz = 0;
    for (index_t c = 0; c < C; ++c) {
      const T q = off + (c == y ? T(1) - eps : T(0));
      sum += std::exp(z[c] - zmax);
      qz += q * (z[c] - zmax);
      // forward: loss_n = logsumexp(z_n) - sum_c q_c z_nc, so dloss_n/dz_nc = p_c - q_c
      g[c] = (g[c] - q) * inv_n;
    }
    // sum_c q_c = 1, so the shift by zmax cancels
    out.per_anchor[static_cast<std::size_t>(n)] = std::log(sum) - qz;
  }
  T total = 0;
  for (T l : out.per_anchor) total += l;
  out.value = total * inv_n;
  out.anchors = out.anchors_with_positives = N;
  return out;
}

}  // namespace supcon
