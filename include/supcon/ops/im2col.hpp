#pragma once
/// \file im2col.hpp
/// Sliding-window geometry shared by convolution and pooling, and the im2col /
/// col2im pair that turns a convolution into one matrix product
/// (docs/backprop.md, "Convolution as a product").
///
/// A window of size k, stride s and symmetric zero padding p over an input of
/// size n has `window_output_size(n, k, s, p) = (n + 2p - k) / s + 1` positions
/// (PyTorch's floor mode). Output position o reads input rows o*s - p + i for
/// i in [0, k); rows outside [0, n) are padding.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "supcon/config.hpp"
#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/ops/im2col_stride2.hpp"

namespace supcon::ops {

/// Number of window positions along one axis. Requires kernel >= 1,
/// stride >= 1, padding >= 0 and a padded input at least one kernel wide;
/// `what` names the caller in the error message.
inline index_t window_output_size(index_t in, index_t kernel, index_t stride, index_t padding,
                                  const std::string& what) {
  require<ValueError>(kernel >= 1, what, ": kernel must be >= 1, got ", kernel);
  require<ValueError>(stride >= 1, what, ": stride must be >= 1, got ", stride);
  require<ValueError>(padding >= 0, what, ": padding must be >= 0, got ", padding);
  require<ShapeError>(in + 2 * padding >= kernel, what, ": input size ", in, " with padding ",
                      padding, " is smaller than the kernel ", kernel);
  return (in + 2 * padding - kernel) / stride + 1;
}

namespace detail {
/// Output positions [lo, hi) of one axis whose input index o*s - p + i lies in
/// [0, n): the rest read padding. Lets the copy loops run without a branch.
inline void window_valid_range(index_t n, index_t out, index_t stride, index_t padding, index_t i,
                               index_t& lo, index_t& hi) {
  const index_t first = padding - i;  // o*s >= first  and  o*s <= n - 1 + first
  lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  hi = (n - 1 + first) < 0 ? 0 : (n - 1 + first) / stride + 1;
  lo = std::min(lo, out);
  hi = std::max(lo, std::min(hi, out));
}

/// im2col of short output rows (at most 8 entries, where the row loops below
/// spend more on their bounds than on the copies; at 14 entries they were the
/// faster, at 8 and 4 this was, by 6-13 %): per tap (i, j), a
/// table of the OH*OW input offsets, and per channel one loop over all
/// positions that gathers through it (vector gathers where the CPU has them).
/// Positions that read padding take offset 0 and are then zeroed.
template <class T>
void im2col_gather(const T* x, index_t C, index_t H, index_t W, index_t K, index_t stride, index_t padding,
                   index_t OH, index_t OW, T* col, index_t ld) {
  const index_t P = OH * OW;
  std::vector<std::int32_t> offset(static_cast<std::size_t>(P));
  std::vector<std::uint8_t> inside(static_cast<std::size_t>(P));
  for (index_t i = 0; i < K; ++i)
    for (index_t j = 0; j < K; ++j) {
      for (index_t q = 0; q < P; ++q) {
        const index_t h = (q / OW) * stride - padding + i, w = (q % OW) * stride - padding + j;
        const bool in = h >= 0 && h < H && w >= 0 && w < W;
        offset[static_cast<std::size_t>(q)] = in ? static_cast<std::int32_t>(h * W + w) : 0;
        inside[static_cast<std::size_t>(q)] = in;
      }
      const std::int32_t* off = offset.data();
      const std::uint8_t* keep = inside.data();
      for (index_t c = 0; c < C; ++c) {
        const T* xc = x + c * H * W;
        T* row = col + ((c * K + i) * K + j) * ld;
#pragma omp simd
        for (index_t q = 0; q < P; ++q) {
          const T v = xc[off[q]];
          row[q] = keep[q] != 0 ? v : T(0);
        }
      }
    }
}

/// im2col row by row of the output: copies of contiguous (stride 1) or
/// strided runs, with the padding's entries zeroed around them.
template <class T>
void im2col_rows(const T* x, index_t C, index_t H, index_t W, index_t K, index_t stride, index_t padding,
                 index_t OH, index_t OW, T* col, index_t ld) {
  for (index_t c = 0; c < C; ++c)
    for (index_t i = 0; i < K; ++i) {
      index_t oh_lo, oh_hi;
      window_valid_range(H, OH, stride, padding, i, oh_lo, oh_hi);
      for (index_t j = 0; j < K; ++j) {
        T* row = col + ((c * K + i) * K + j) * ld;
        index_t ow_lo, ow_hi;
        window_valid_range(W, OW, stride, padding, j, ow_lo, ow_hi);
        std::fill(row, row + oh_lo * OW, T(0));
        for (index_t oh = oh_lo; oh < oh_hi; ++oh) {
          const T* in = x + (c * H + oh * stride - padding + i) * W - padding + j;
          T* out = row + oh * OW;
          std::fill(out, out + ow_lo, T(0));
          if (stride == 1)
            std::copy(in + ow_lo, in + ow_hi, out + ow_lo);
          else if (stride == 2)  // a constant stride the compiler vectorises
            for (index_t ow = ow_lo; ow < ow_hi; ++ow) out[ow] = in[2 * ow];
          else
            for (index_t ow = ow_lo; ow < ow_hi; ++ow) out[ow] = in[ow * stride];
          std::fill(out + ow_hi, out + OW, T(0));
        }
        std::fill(row + oh_hi * OW, row + OH * OW, T(0));
      }
    }
}

/// im2col into a matrix whose rows are `ld` apart (ld >= OH*OW), so that the
/// columns of several images can sit side by side in one (C*K*K, B*OH*OW) block.
/// 3x3 windows of stride 2 and padding 1 go through parity planes (im2col_stride2.hpp).
template <class T>
void im2col_ld(const T* x, index_t C, index_t H, index_t W, index_t K, index_t stride,
               index_t padding, index_t OH, index_t OW, T* col, index_t ld) {
  if (im2col_use_parity(K, stride, padding)) return im2col_parity(x, C, H, W, K, padding, OH, OW, col, ld);
  if (OW <= 8 && H * W <= (index_t(1) << 30)) return im2col_gather(x, C, H, W, K, stride, padding, OH, OW, col, ld);
  im2col_rows(x, C, H, W, K, stride, padding, OH, OW, col, ld);
}

/// col2im from a matrix whose rows are `ld` apart; dx is accumulated.
template <class T>
void col2im_ld(const T* col, index_t ld, index_t C, index_t H, index_t W, index_t K,
               index_t stride, index_t padding, index_t OH, index_t OW, T* dx) {
  for (index_t c = 0; c < C; ++c)
    for (index_t i = 0; i < K; ++i) {
      index_t oh_lo, oh_hi;
      window_valid_range(H, OH, stride, padding, i, oh_lo, oh_hi);
      for (index_t j = 0; j < K; ++j) {
        const T* row = col + ((c * K + i) * K + j) * ld;
        index_t ow_lo, ow_hi;
        window_valid_range(W, OW, stride, padding, j, ow_lo, ow_hi);
        for (index_t oh = oh_lo; oh < oh_hi; ++oh) {
          const T* in = row + oh * OW;
          T* out = dx + (c * H + oh * stride - padding + i) * W - padding + j;
          if (stride == 1)  // contiguous: a loop the compiler vectorises
            for (index_t ow = ow_lo; ow < ow_hi; ++ow) out[ow] += in[ow];
          else
            for (index_t ow = ow_lo; ow < ow_hi; ++ow) out[ow * stride] += in[ow];
        }
      }
    }
}

/// col2im_ld for a column block the caller no longer needs: the inverse of
/// im2col_ld's choice, so 3x3 stride-2 windows go through parity planes,
/// which zero col's padding entries on the way; dx is accumulated.
template <class T>
void col2im_ld_consuming(T* col, index_t ld, index_t C, index_t H, index_t W, index_t K, index_t stride,
                         index_t padding, index_t OH, index_t OW, T* dx) {
  if (im2col_use_parity(K, stride, padding)) return col2im_parity(col, ld, C, H, W, K, padding, OH, OW, dx);
  col2im_ld(col, ld, C, H, W, K, stride, padding, OH, OW, dx);
}
}  // namespace detail

/// Unfolds one image into columns.
/// x is (C, H, W) at `x`; col is (C*K*K, OH*OW) at `col`, assigned:
///   col[(c*K + i)*K + j, oh*OW + ow] = x[c, oh*s - p + i, ow*s - p + j]  (0 in the padding)
/// Row order (c, i, j) is the flattening of a (OC, C, K, K) weight, so a
/// convolution is weight(OC, C*K*K) * col.
template <class T>
void im2col(const T* x, index_t C, index_t H, index_t W, index_t K, index_t stride,
            index_t padding, index_t OH, index_t OW, T* col) {
  detail::im2col_ld(x, C, H, W, K, stride, padding, OH, OW, col, OH * OW);
}

/// Folds columns back into an image, the adjoint of im2col: every column entry
/// is ADDED to the input pixel it was read from (padding entries are dropped).
/// col is (C*K*K, OH*OW); dx is (C, H, W), accumulated.
template <class T>
void col2im(const T* col, index_t C, index_t H, index_t W, index_t K, index_t stride,
            index_t padding, index_t OH, index_t OW, T* dx) {
  detail::col2im_ld(col, OH * OW, C, H, W, K, stride, padding, OH, OW, dx);
}

namespace detail {
template <class T>
struct identity {
  using type = T;
};
}  // namespace detail
/// T in a position where it is not deduced, so `nullptr` can be passed for an
/// optional tensor argument such as a bias.
template <class T>
using TensorArg = typename detail::identity<Tensor<T>>::type;

/// Index of the calling OpenMP thread (0 without OpenMP).
inline int thread_index() {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace supcon::ops
