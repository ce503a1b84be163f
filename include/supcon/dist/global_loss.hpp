#pragma once
/// \file global_loss.hpp
/// SupCon and SimCLR over a batch spread across K ranks, each anchor compared
/// with every sample of the global batch (docs/distributed.md).
///
/// Rank r holds B samples in V views, its features (V * B, D) view-major.
/// The global batch is rank 0's samples, then rank 1's, ... in every view:
/// global row v * K*B + r * B + b is rank r's local row v * B + b. So:
///   1. allgather the features and labels, reorder into that global order;
///   2. compute only the share of rank r's anchor rows (V ranges of B rows,
///      or one with contrast mode one) against all K * V * B contrast rows:
///      its value, and its gradient with respect to every global row;
///   3. reduce-scatter the gradients: rank r receives the sum over ranks of
///      the gradient of its own rows, which is d(total loss)/d(its features);
///   4. allreduce-sum the shares: the loss of the global batch.
/// The divisor of the mean and the policy for anchors without positives are
/// those of the global batch, so value and gradient equal the single-process
/// loss of the concatenated batch (to rounding). Per rank: O(K V B D) memory
/// and 1/K of the loss's products.

#include <cstdint>
#include <vector>

#include "supcon/dist/communicator.hpp"
#include "supcon/losses/supcon_fused.hpp"
#include "supcon/losses/supcon_reference.hpp"

namespace supcon::dist {

/// Which single-process implementation computes each rank's share.
enum class LossImpl { fused, reference };

/// The global-batch SupCon loss, seen from one rank.
///
/// features is (V * B, D), view-major, this rank's samples; labels (B,).
/// Every rank calls it with the same B, V and D and the same options.
/// Requires (else throws on every rank alike): features of rank 2 with a
/// multiple of B >= 1 rows (ShapeError); B, V and D equal on all ranks
/// (ShapeError naming the first rank that differs); and everything the
/// single-process loss requires of the global batch (ValueError for NaN ...).
/// Ensures: value = the loss of the global batch (the same on every rank);
/// grad (V * B, D), assigned, = dvalue / d(this rank's features);
/// per_anchor / positives / anchors / anchors_with_positives: this rank's
/// anchors, in its local anchor order.
template <class T>
LossResult<T> supcon_loss_global(Communicator& comm, const Tensor<T>& features,
                                 const std::vector<std::int64_t>& labels, const SupConOptions& opt = {},
                                 LossImpl impl = LossImpl::fused) {
  // features is (V*B, D), labels (B,)
  require<ShapeError>(features.rank() == 2, "distributed supcon loss: features must be (N, D), got shape ",
                      shape_str(features.shape()));
  const index_t B = static_cast<index_t>(labels.size()), D = features.dim(1);
  require<ShapeError>(B >= 1 && features.dim(0) % B == 0 && features.dim(0) >= B,
                      "distributed supcon loss: features have ", features.dim(0),
                      " rows, not a positive multiple of the ", B, " labels");
  const index_t V = features.dim(0) / B;
  const index_t K = comm.size(), r = comm.rank(), KB = K * B;
  // every rank must bring the same B, V, D
  const std::int64_t mine[3] = {B, V, D};
  std::vector<std::int64_t> dims(static_cast<std::size_t>(3 * K));
  comm.allgather(mine, 3, dims.data());
  for (index_t q = 0; q < K; ++q)
    for (int j = 0; j < 3; ++j)
      require<ShapeError>(dims[static_cast<std::size_t>(3 * q + j)] == dims[static_cast<std::size_t>(j)],
                          "distributed supcon loss: rank ", q, " holds (B, V, D) = (",
                          dims[static_cast<std::size_t>(3 * q)], ", ", dims[static_cast<std::size_t>(3 * q + 1)],
                          ", ", dims[static_cast<std::size_t>(3 * q + 2)], ") but rank 0 holds (", dims[0], ", ",
                          dims[1], ", ", dims[2], "); every rank needs the same batch, views and dimension");

  // 1. gather: buf is rank-major (K, V*B, D); Fg the global view-major (V*K*B, D)
  const index_t local = V * B * D;
  std::vector<T> buf(static_cast<std::size_t>(K * local));
  comm.allgather(features.data(), local, buf.data());
  Tensor<T> Fg({V * KB, D});
  std::vector<std::int64_t> labels_g(static_cast<std::size_t>(KB));
  comm.allgather(labels.data(), B, labels_g.data());
  // the (rank q, view v) block of B rows: local rows v*B .. in buf, global rows v*KB + q*B ..
  auto block = [&](index_t q, index_t v, index_t& from, index_t& to) {
    from = q * local + v * B * D;
    to = (v * KB + q * B) * D;
  };
  for (index_t q = 0; q < K; ++q)
    for (index_t v = 0; v < V; ++v) {
      index_t from, to;
      block(q, v, from, to);
      std::copy(buf.begin() + from, buf.begin() + from + B * D, Fg.data() + to);
    }

  // 2. this rank's anchors: its B rows of every anchor view
  const index_t anchor_views = opt.contrast_mode == ContrastMode::all ? V : 1;
  std::vector<RowRange> mine_rows;
  for (index_t v = 0; v < anchor_views; ++v) mine_rows.push_back({v * KB + r * B, v * KB + r * B + B});
  const Pairing pairing = Pairing::from_labels(labels_g);
  LossResult<T> share = impl == LossImpl::fused ? supcon_loss_fused(Fg, pairing, opt, 0, mine_rows)
                                                 : supcon_loss_reference(Fg, pairing, opt, mine_rows);

  // 3. backward of the gather: each global row's gradient goes back to its owner, summed
  for (index_t q = 0; q < K; ++q)
    for (index_t v = 0; v < V; ++v) {
      index_t from, to;
      block(q, v, from, to);
      std::copy(share.grad.data() + to, share.grad.data() + to + B * D, buf.begin() + from);
    }
  LossResult<T> out;
  out.grad = Tensor<T>({V * B, D});
  comm.reduce_scatter_sum(buf.data(), local, out.grad.data());

  // 4. the loss of the global batch
  out.value = comm.sum(share.value);
  out.per_anchor = std::move(share.per_anchor);
  out.positives = std::move(share.positives);
  out.anchors = share.anchors;
  out.anchors_with_positives = share.anchors_with_positives;
  return out;
}

/// SimCLR over the global batch: every sample of every rank its own class
/// (rank r's sample b is global sample r * B + b). features is (V * B, D)
/// with `views` = V; otherwise as supcon_loss_global.
template <class T>
LossResult<T> simclr_loss_global(Communicator& comm, const Tensor<T>& features, index_t views,
                                 const SupConOptions& opt = {}, LossImpl impl = LossImpl::fused) {
  require<ShapeError>(features.rank() == 2 && views >= 1 && features.dim(0) % views == 0 && features.dim(0) >= views,
                      "distributed simclr loss: features (", shape_str(features.shape()),
                      ") must be (V * B, D) with V = views = ", views);
  const index_t B = features.dim(0) / views;
  std::vector<std::int64_t> ids(static_cast<std::size_t>(B));
  for (index_t b = 0; b < B; ++b) ids[static_cast<std::size_t>(b)] = comm.rank() * B + b;
  return supcon_loss_global(comm, features, ids, opt, impl);
}

}  // namespace supcon::dist
