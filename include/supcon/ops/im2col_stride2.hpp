#pragma once
/// \file im2col_stride2.hpp
/// im2col and col2im for the downsampling convolutions of the ResNets (3x3,
/// stride 2, padding 1) through parity planes.
///
/// Output (oh, ow) of a 3x3 window reads input rows 2 oh - 1, 2 oh, 2 oh + 1
/// and the same columns. Split a map once by row and column parity into four
/// planes of OH x OW entries,
///
///     X_pq[r][s] = x[2 r + p][2 s + q]   (0 past the edges),
///
/// and each tap's window becomes one plane shifted by at most a row and a
/// column: row 2 oh - 1 is row oh - 1 of the odd rows (tap i = 0), 2 oh is
/// row oh of the even rows (i = 1), 2 oh + 1 row oh of the odd rows (i = 2),
/// and likewise for the columns. So each of the 9 C rows of the column matrix
/// is a single contiguous copy of OH OW entries, from the plane's start moved
/// back by OW (i = 0) and by 1 (j = 0); the entries that the move takes out
/// of the plane, which are the padding (oh = 0 for i = 0, ow = 0 for j = 0),
/// are zeroed after the copy. The direct path copies rows of OW <= 16
/// entries with a stride of 2, or gathers them through tables, and spent
/// 30-44 % of these convolutions doing so (docs/performance.md). (Not for
/// 1x1 windows: they read a single plane, which the split would copy along
/// with three unused ones.)
///
/// col2im runs the same moves backwards: each column row is added, whole, to
/// its plane moved back, once its padding entries are zeroed (they would
/// otherwise land on a neighbouring entry), and the planes are interleaved
/// into dx. The sums run in the same order as col2im_ld's, so into a zeroed
/// dx, as the convolution's backward calls them, both give the same bits.

#include <algorithm>
#include <vector>

#include "supcon/core/tensor.hpp"

namespace supcon::ops::detail {

/// Whether a convolution's unfolding takes the parity planes: stride 2, a
/// window of 2 or 3, every tap i reading row 2 oh + d with d = i - padding
/// in {-1, 0, 1} (K = 3 with padding 1, K = 2 with padding 0 or 1).
inline bool im2col_use_parity(index_t K, index_t stride, index_t padding) {
  return stride == 2 && K >= 2 && (padding == 0 || padding == 1) && (K - padding == 1 || K - padding == 2);
}

namespace parity {
/// Tap i reads row 2 oh + d, d = i - padding: row oh - 1 of the odd rows
/// (d = -1), row oh of the even (d = 0) or of the odd rows (d = 1). Its
/// plane's parity, and how far back its window starts in that plane:
inline index_t parity_of(index_t i, index_t padding) { return (i - padding) == 0 ? 0 : 1; }
inline index_t back_of(index_t i, index_t padding) { return (i - padding) < 0 ? 1 : 0; }

/// Four planes of P = OH OW entries, each after OW + 1 entries of slack that
/// the moved copies read (and col2im's moved sums write zeros into).
inline index_t slack(index_t OW) { return OW + 1; }
inline index_t plane_stride(index_t OH, index_t OW) { return slack(OW) + OH * OW; }

/// The calling thread's planes, zeroed; kept between calls.
template <class T>
T* planes(index_t OH, index_t OW) {
  thread_local std::vector<T> buf;
  const auto n = static_cast<std::size_t>(4 * plane_stride(OH, OW));
  if (buf.size() < n) buf.resize(n);
  std::fill(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n), T(0));
  return buf.data();
}
/// Plane pq of the four at `base` (its first entry, past the slack).
template <class T>
T* plane(T* base, index_t p, index_t q, index_t OH, index_t OW) {
  return base + (2 * p + q) * plane_stride(OH, OW) + slack(OW);
}

/// Calls f(h, even, odd, pairs, last) for each row h of a map (H, W) that
/// the planes at `base` hold: even and odd point at its entries in X_p0 and
/// X_p1 (p = h mod 2); columns 2 s and 2 s + 1 are both inside and held for
/// s < pairs, and with `last` column W - 1 = 2 pairs is held alone, in even.
/// The one place that knows which entries the planes cover, for split and
/// its inverse.
template <class T, class F>
void for_each_plane_row(index_t H, index_t W, index_t OH, index_t OW, T* base, const F& f) {
  const index_t pairs = std::min(W / 2, OW);
  const bool last = 2 * pairs < W && pairs < OW;
  for (index_t p = 0; p < 2; ++p)
    for (index_t r = 0; r < OH && 2 * r + p < H; ++r)
      f(2 * r + p, plane(base, p, 0, OH, OW) + r * OW, plane(base, p, 1, OH, OW) + r * OW, pairs, last);
}

/// X_pq[r][s] = xc[2 r + p][2 s + q] for the map xc (H, W), 0 past its edges.
template <class T>
void split(const T* xc, index_t H, index_t W, index_t OH, index_t OW, T* base) {
  for_each_plane_row(H, W, OH, OW, base, [&](index_t h, T* even, T* odd, index_t pairs, bool last) {
    const T* row = xc + h * W;
#pragma omp simd
    for (index_t s = 0; s < pairs; ++s) even[s] = row[2 * s], odd[s] = row[2 * s + 1];
    if (last) even[pairs] = row[W - 1];  // odd[pairs] stays 0
  });
}

/// Zeroes the entries of one column row that read padding after a move back
/// by bi rows and bj columns: the first row of outputs, the first column.
template <class T>
void zero_moved_padding(T* row, index_t bi, index_t bj, index_t OH, index_t OW) {
  if (bi != 0) std::fill(row, row + OW, T(0));
  if (bj != 0)
    for (index_t oh = 0; oh < OH; ++oh) row[oh * OW] = T(0);
}
/// The start of tap (i, j)'s window: its plane, moved back.
template <class T>
T* window(T* base, index_t i, index_t j, index_t padding, index_t OH, index_t OW) {
  return plane(base, parity_of(i, padding), parity_of(j, padding), OH, OW) - back_of(i, padding) * OW -
         back_of(j, padding);
}
}  // namespace parity

/// im2col where im2col_use_parity(K, 2, padding): the columns of one image
/// (C, H, W) at x into rows `ld` apart, as im2col_ld.
template <class T>
void im2col_parity(const T* x, index_t C, index_t H, index_t W, index_t K, index_t padding, index_t OH,
                   index_t OW, T* col, index_t ld) {
  const index_t P = OH * OW;
  T* base = parity::planes<T>(OH, OW);
  for (index_t c = 0; c < C; ++c) {
    parity::split(x + c * H * W, H, W, OH, OW, base);
    for (index_t i = 0; i < K; ++i)
      for (index_t j = 0; j < K; ++j) {
        const T* src = parity::window(base, i, j, padding, OH, OW);
        T* row = col + ((c * K + i) * K + j) * ld;
        std::copy(src, src + P, row);
        parity::zero_moved_padding(row, parity::back_of(i, padding), parity::back_of(j, padding), OH, OW);
      }
  }
}

/// col2im where im2col_use_parity(K, 2, padding): adds the columns of one
/// image into dx (C, H, W), as col2im_ld. Zeroes col's padding entries on the way.
template <class T>
void col2im_parity(T* col, index_t ld, index_t C, index_t H, index_t W, index_t K, index_t padding, index_t OH,
                   index_t OW, T* dx) {
  const index_t P = OH * OW;
  for (index_t c = 0; c < C; ++c) {
    T* base = parity::planes<T>(OH, OW);
    for (index_t i = 0; i < K; ++i)
      for (index_t j = 0; j < K; ++j) {
        T* row = col + ((c * K + i) * K + j) * ld;
        parity::zero_moved_padding(row, parity::back_of(i, padding), parity::back_of(j, padding), OH, OW);
        T* dst = parity::window(base, i, j, padding, OH, OW);
#pragma omp simd
        for (index_t q = 0; q < P; ++q) dst[q] += row[q];
      }
    // forward: X_pq[r][s] = x[2 r + p][2 s + q]  =>  dx[2 r + p][2 s + q] += dX_pq[r][s]
    T* dxc = dx + c * H * W;
    parity::for_each_plane_row(H, W, OH, OW, base, [&](index_t h, T* even, T* odd, index_t pairs, bool last) {
      T* out = dxc + h * W;
#pragma omp simd
      for (index_t s = 0; s < pairs; ++s) out[2 * s] += even[s], out[2 * s + 1] += odd[s];
      if (last) out[W - 1] += even[pairs];
    });
  }
}

}  // namespace supcon::ops::detail
