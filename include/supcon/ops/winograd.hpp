#pragma once
/// \file winograd.hpp
/// 3x3 stride-1 convolution by Winograd's minimal filtering F(4x4, 3x3)
/// (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
///
/// A 4x4 block of outputs depends on a 6x6 tile d of the (padded) input. With
///   U = G g G^T (6x6, per weight g),  V = B^T d B (6x6, per input tile),
/// the block is Y = A^T (U .* V) A: 36 multiplications instead of 144. Summed
/// over input channels, each of the 36 positions xi of the 6x6 grid becomes a
/// matrix product  M[xi] (OC, T) = U[xi] (OC, C) V[xi] (C, T)  over T tiles,
/// so the convolution is 36 GEMMs with 4 times fewer flops than im2col's one,
/// plus transforms. The matrices (interpolation points 0, +-1, +-2, infinity):
///
///   B^T = [4  0 -5  0  1  0]    G = [ 1/4    0     0  ]    A^T = [1 1  1 1  1 0]
///         [0 -4 -4  1  1  0]        [-1/6  -1/6  -1/6 ]          [0 1 -1 2 -2 0]
///         [0  4 -4 -1  1  0]        [-1/6   1/6  -1/6 ]          [0 1  1 4  4 0]
///         [0 -2 -1  2  1  0]        [1/24  1/12   1/6 ]          [0 1 -1 8 -8 1]
///         [0  2 -1 -2  1  0]        [1/24 -1/12   1/6 ]
///         [0  4  0 -5  0  1]        [  0     0     1  ]
///
/// The identity is exact in real arithmetic. In float the entries up to 8 and
/// the sixths of G cost accuracy: up to about 1e-5 of the largest output on
/// deep layers, some ten times the error of F(2x2, 3x3), for 1.78 times fewer
/// products (the trade that cuDNN and NNPACK make too).
///
/// Backward, exactly the gradient of the convolution:
/// - dx is the convolution of dy with the weights flipped and transposed,
///   g'[c, oc] = rot180(g[oc, c]), padding 2 - p: the same algorithm again.
/// - dW: from y = A^T (U .* V) A, dU = sum over tiles of (A dY A^T) .* V, a
///   product  dU[xi] (OC, C) += Z[xi] (OC, T) V[xi]^T  with Z = A dY A^T, and
///   dg = G^T dU G.
/// Output positions past OH or OW are computed and dropped in the forward; in
/// the backward their dy is zero, so the gradient stays exact.
///
/// Shapes as in conv2d.hpp: x (N, C, H, W), weight (OC, C, 3, 3), y (N, OC, OH, OW)
/// with OH = H + 2p - 2. Tested against the direct loops in
/// tests/ops_winograd.test.cpp.

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "supcon/core/gemm.hpp"
#include "supcon/core/prefetch.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/ops/im2col.hpp"
#include "supcon/ops/winograd_vec.hpp"

namespace supcon::ops {

/// Work buffers of the Winograd path, kept by the caller between calls.
template <class T>
struct WinogradWorkspace {
  Tensor<T> u;     ///< (36, OC, C) transformed weights, in the product's panels when packed_products
  Tensor<T> v;     ///< (threads, 36, C, T) transformed input tiles of one block (T rounded up to panels)
  Tensor<T> m;     ///< (threads, 36, OC, T) products, or Z = A dY A^T in the backward
  Tensor<T> du;    ///< (runs, 36, OC, C) partial weight gradients, one per run of blocks
  Tensor<T> work;  ///< (threads, work_len) work of the transforms
};

/// Whether conv2d_forward / conv2d_backward take the Winograd path: a 3x3
/// kernel, stride 1, padding at most 2, and at least 8 input and output
/// channels (with fewer, the transforms cost more than the flops they save).
/// SUPCON_CONV=im2col or =winograd in the environment overrides the choice
/// for every convolution the path can take.
inline bool conv2d_use_winograd(index_t C, index_t OC, index_t K, index_t stride, index_t padding) {
  if (K != 3 || stride != 1 || padding < 0 || padding > 2) return false;
  static const int forced = [] {
    const char* env = std::getenv("SUPCON_CONV");
    if (env && std::strcmp(env, "winograd") == 0) return 1;
    if (env && std::strcmp(env, "im2col") == 0) return -1;
    return 0;
  }();
  if (forced != 0) return forced > 0;
  return C >= 8 && OC >= 8;
}

namespace detail::winograd {

/// Positions of the 6x6 transformed grid: one product each.
constexpr index_t kPositions = 36;

/// The one-dimensional transforms; each 2-D one applies it to the columns,
/// then to the rows of the result. Six or four values travel as structs of
/// scalars, not arrays: the compiler keeps them in registers and vectorises
/// the loops over tiles around them.
template <class T>
struct Six {
  T x0, x1, x2, x3, x4, x5;
};
template <class T>
struct Four {
  T x0, x1, x2, x3;
};
template <class T>
struct Three {
  T x0, x1, x2;
};
/// B^T x (6 from 6).
template <class T>
inline Six<T> input_1d(T x0, T x1, T x2, T x3, T x4, T x5) {
  const T a = x4 - T(4) * x2, b = x3 - T(4) * x1, c = x4 - x2, e = T(2) * (x3 - x1);
  return {T(4) * x0 - T(5) * x2 + x4, a + b, a - b, c + e, c - e, T(4) * x1 - T(5) * x3 + x5};
}
/// A^T m (4 from 6).
template <class T>
inline Four<T> output_1d(T m0, T m1, T m2, T m3, T m4, T m5) {
  const T s = m1 + m2, d = m1 - m2, S = m3 + m4, D = m3 - m4;
  return {m0 + s + S, d + T(2) * D, s + T(4) * S, d + T(8) * D + m5};
}
/// A g (6 from 4): the transpose of output_1d.
template <class T>
inline Six<T> output_grad_1d(T g0, T g1, T g2, T g3) {
  const T s = g0 + g2, d = g1 + g3, S = g0 + T(4) * g2, D = T(2) * g1 + T(8) * g3;
  return {g0, s + d, s - d, S + D, S - D, g3};
}
/// G k (6 from 3).
template <class T>
inline Six<T> weight_1d(T k0, T k1, T k2) {
  // products with the rounded reciprocals: a division each would cost more than the rest together
  const T sixth = T(1) / T(6), p = k0 + k2, q = k0 * (T(1) / T(24)) + k2 * sixth, h = k1 * (T(1) / T(12));
  return {k0 * T(0.25), -(p + k1) * sixth, -(p - k1) * sixth, q + h, q - h, k2};
}
/// G^T v (3 from 6): the transpose of weight_1d.
template <class T>
inline Three<T> weight_grad_1d(T v0, T v1, T v2, T v3, T v4, T v5) {
  const T s = v1 + v2, d = v2 - v1, S = v3 + v4, D = v3 - v4;
  const T sixth = T(1) / T(6);
  return {v0 * T(0.25) - s * sixth + S * (T(1) / T(24)), d * sixth + D * (T(1) / T(12)), (S - s) * sixth + v5};
}
/// o[k stride] = r.xk, k < 6.
template <class T>
inline void store6(Six<T> r, T* o, index_t stride) {
  o[0] = r.x0, o[stride] = r.x1, o[2 * stride] = r.x2, o[3 * stride] = r.x3, o[4 * stride] = r.x4;
  o[5 * stride] = r.x5;
}
/// o[k stride] = r.xk + b, k < 4.
template <class T>
inline void store4(Four<T> r, T b, T* o, index_t stride) {
  o[0] = r.x0 + b, o[stride] = r.x1 + b, o[2 * stride] = r.x2 + b, o[3 * stride] = r.x3 + b;
}

/// Layout of the work of the transforms: 36 arrays E[i][j] of tile entries,
/// each Tmax + 8 long (the tiles of one block and a group of 8 of slack),
/// then one padded channel of 4 TH + 4 rows, each 4 TW + 2 entries rounded up
/// so that the row splits below run in whole groups of 8. The 16 output
/// arrays of transform_output and transform_output_grad reuse E's entries.
inline index_t entries_stride(index_t Tmax) { return Tmax + 8; }
inline index_t split_row_len(index_t TW) { return 4 * ((TW + 7) / 8 * 8) + 8; }
inline index_t work_len(index_t TH, index_t TW, index_t Tmax) {
  return kPositions * entries_stride(Tmax) + (4 * TH + 4) * split_row_len(TW);
}

/// How a batch is cut: TH x TW tiles (4x4 output blocks) per image, P of
/// them; B images per block, about 128 tiles per product but never fewer
/// blocks than threads; Tmax = B P columns, Tpad that rounded up to whole
/// panels of the product; work_len entries of per-thread work of the transforms.
struct Blocks {
  index_t TH, TW, P, B, blocks, Tmax, Tpad, work_len, v_len, m_len;
};

/// Whether the 36 products run on operands the transforms write in the
/// kernel's panel layouts (gemm_packed): U once per call, V once per block,
/// so that no product packs anything. Float on a CPU with the kernel.
template <class T>
bool packed_products() {
  return gemm_available<T>();
}

/// Columns of the products rounded up to whole panels (one row of a packed B).
inline index_t padded_tiles(index_t L) { return gemm_packed_b_len(1, L); }

/// Entries from one of the 36 planes of a transformed operand to the next, for
/// planes of n entries: n rounded up to an odd number of 64-byte lines. The
/// transforms read or write all 36 planes at once; planes a multiple of 4 KiB
/// apart (32 channels of 128 tiles, say) would all fall into the same L1 sets
/// and evict each other.
inline index_t plane_stride(index_t n) { return ((n + 15) / 16 | 1) * 16; }
/// The planes of V (C, L), in panels or row-major, and of M or Z (OC, L).
inline index_t v_plane(index_t C, index_t L, bool panels) { return plane_stride(C * (panels ? padded_tiles(L) : L)); }
inline index_t m_plane(index_t OC, index_t L) { return plane_stride(OC * L); }

/// The blocks of N images with (OH, OW) outputs; sizes the per-thread buffers
/// of C input and OC output channels.
template <class T>
Blocks plan(index_t N, index_t C, index_t OC, index_t OH, index_t OW, WinogradWorkspace<T>& ws) {
  Blocks k{};
  k.TH = (OH + 3) / 4, k.TW = (OW + 3) / 4, k.P = k.TH * k.TW;
  const int threads = max_threads();
  k.B = vec::images_per_block(N, k.P, threads);
  k.blocks = (N + k.B - 1) / k.B, k.Tmax = k.B * k.P, k.Tpad = padded_tiles(k.Tmax);
  k.work_len = work_len(k.TH, k.TW, k.Tmax);
  k.v_len = kPositions * v_plane(C, k.Tpad, true), k.m_len = kPositions * m_plane(OC, k.Tmax);
  ws.v.resize({threads, k.v_len});
  ws.m.resize({threads, k.m_len});
  ws.work.resize({threads, k.work_len});
  return k;
}

/// Entries of one transformed weight matrix U[xi] (rows, cols).
inline index_t weight_plane(index_t rows, index_t cols, bool packed) {
  return plane_stride(packed ? gemm_packed_a_len(rows, cols) : rows * cols);
}

/// G k G^T of n kernels whose entries are k[e][m] (entry e = 3 i + j of
/// kernel m); kernel m's entry xi goes to u[xi plane + m].
template <class T, index_t Width>
void weight_tiles(const T (&k)[9][Width], index_t n, T* u, index_t plane) {
#pragma omp simd
  for (index_t m = 0; m < n; ++m) {
    // G k, column by column, then (G k) G^T row by row
    const Six<T> c0 = weight_1d(k[0][m], k[3][m], k[6][m]), c1 = weight_1d(k[1][m], k[4][m], k[7][m]),
                 c2 = weight_1d(k[2][m], k[5][m], k[8][m]);
    T* o = u + m;
    store6(weight_1d(c0.x0, c1.x0, c2.x0), o, plane), store6(weight_1d(c0.x1, c1.x1, c2.x1), o + 6 * plane, plane);
    store6(weight_1d(c0.x2, c1.x2, c2.x2), o + 12 * plane, plane);
    store6(weight_1d(c0.x3, c1.x3, c2.x3), o + 18 * plane, plane);
    store6(weight_1d(c0.x4, c1.x4, c2.x4), o + 24 * plane, plane);
    store6(weight_1d(c0.x5, c1.x5, c2.x5), o + 30 * plane, plane);
  }
}

/// k[e][m] = g[e], or with Flip the rot180 of g: (i, j) -> (2 - i, 2 - j).
template <bool Flip, class T, index_t Width>
inline void gather_kernel(const T* g, T (&k)[9][Width], index_t m) {
  for (int e = 0; e < 9; ++e) k[e][m] = Flip ? g[8 - e] : g[e];
}

/// U[xi][o][c] = (G g G^T)[xi] for g = weight[o, c] (OC, C, 3, 3); with
/// `flip`, the weights of the data gradient: U[xi][c][o] from rot180(weight[o, c]).
/// Each U[xi] is row-major, or with `packed` in the panel layout of gemm_packed's
/// A, weight_plane entries apart. In that layout the 6 rows of a panel times
/// 8 columns are 48 consecutive entries of each U[xi]: their kernels are
/// gathered first, then transformed in one vector loop (kernels in a panel's
/// rows past `rows` are zero, and so are their entries).
template <class T>
void transform_weights(const T* weight, index_t OC, index_t C, bool flip, bool packed, T* U) {
  const index_t rows = flip ? C : OC, cols = flip ? OC : C, plane = weight_plane(rows, cols, packed);
  const auto kernel = [&](index_t r, index_t col) {  // g of U's entry (r, col)
    return flip ? weight + (col * C + r) * 9 : weight + (r * C + col) * 9;
  };
  constexpr index_t R = gemm_panel_rows, Width = 8 * gemm_panel_rows;
  if (packed) {
    const index_t panels = (rows + R - 1) / R;
#pragma omp parallel for schedule(static)
    for (index_t p = 0; p < panels; ++p) {
      T k[9][Width];
      for (index_t c0 = 0; c0 < cols; c0 += 8) {
        const index_t nc = std::min<index_t>(8, cols - c0);
        for (index_t i = 0; i < R; ++i) {  // kernel m = j R + i is in row p R + i, column c0 + j, as in the panel
          const index_t r = p * R + i;
          if (r >= rows) {
            for (index_t j = 0; j < nc; ++j)
              for (int e = 0; e < 9; ++e) k[e][j * R + i] = T(0);
          } else if (flip) {
            for (index_t j = 0; j < nc; ++j) gather_kernel<true>(kernel(r, c0 + j), k, j * R + i);
          } else {
            for (index_t j = 0; j < nc; ++j) gather_kernel<false>(kernel(r, c0 + j), k, j * R + i);
          }
        }
        weight_tiles(k, nc * R, U + gemm_packed_a_index(p * R, c0, cols), plane);
      }
    }
    return;
  }
#pragma omp parallel for schedule(static)
  for (index_t r = 0; r < rows; ++r) {
    T k[9][1];
    for (index_t col = 0; col < cols; ++col) {
      const T* g = kernel(r, col);
      for (int e = 0; e < 9; ++e) k[e][0] = flip ? g[8 - e] : g[e];
      weight_tiles(k, 1, U + r * cols + col, plane);
    }
  }
}

#if SUPCON_GEMM_AVX2
/// row[0 .. 4) in the low 128-bit lane, row[16 .. 20) in the high one.
__attribute__((target("avx2"))) inline __m256 load_quarters(const float* row) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(row)), _mm_loadu_ps(row + 16), 1);
}

/// Per 128-bit lane, the rows v0..v3 of a 4x4 block to its columns:
/// t[j] = (v0[j], v1[j], v2[j], v3[j]).
__attribute__((target("avx2"))) inline void transpose_lanes(__m256 v0, __m256 v1, __m256 v2, __m256 v3, __m256 t[4]) {
  const __m256d a = _mm256_castps_pd(_mm256_unpacklo_ps(v0, v1)), b = _mm256_castps_pd(_mm256_unpackhi_ps(v0, v1));
  const __m256d c = _mm256_castps_pd(_mm256_unpacklo_ps(v2, v3)), d = _mm256_castps_pd(_mm256_unpackhi_ps(v2, v3));
  t[0] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c)), t[1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
  t[2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d)), t[3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
}

/// input_1d on the six values of eight tiles at once, one tile per lane.
__attribute__((target("avx2"))) inline void input_1d_avx2(const __m256 x[6], __m256 r[6]) {
  const __m256 two = _mm256_set1_ps(2.f), four = _mm256_set1_ps(4.f), five = _mm256_set1_ps(5.f);
  const __m256 a = _mm256_sub_ps(x[4], _mm256_mul_ps(four, x[2])), b = _mm256_sub_ps(x[3], _mm256_mul_ps(four, x[1]));
  const __m256 c = _mm256_sub_ps(x[4], x[2]), e = _mm256_mul_ps(two, _mm256_sub_ps(x[3], x[1]));
  r[0] = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(four, x[0]), _mm256_mul_ps(five, x[2])), x[4]);
  r[1] = _mm256_add_ps(a, b), r[2] = _mm256_sub_ps(a, b), r[3] = _mm256_add_ps(c, e), r[4] = _mm256_sub_ps(c, e);
  r[5] = _mm256_add_ps(_mm256_sub_ps(_mm256_mul_ps(four, x[1]), _mm256_mul_ps(five, x[3])), x[5]);
}

/// One padded row's row transforms, in groups of 8 tiles: out[j][k] =
/// input_1d(row[4 k .. 4 k + 5]).xj for k < 8 groups. Per group, five loads
/// of two quarters each and a 4x4 transpose in each lane, twice, give the six
/// columns (the stride-4 copy is otherwise scalar); the transform runs on them
/// in the registers.
__attribute__((target("avx2"))) inline void split_row_avx2(const float* row, index_t groups, float* const out[6]) {
  for (index_t g = 0; g < groups; ++g) {
    const index_t k = 8 * g;
    const float* r = row + 4 * k;  // entries k .. k + 3 in the low lanes, k + 4 .. k + 7 in the high ones
    const __m256 v0 = load_quarters(r), v1 = load_quarters(r + 4), v2 = load_quarters(r + 8);
    const __m256 v3 = load_quarters(r + 12), v4 = load_quarters(r + 16);
    __m256 t[4], u[4];
    transpose_lanes(v0, v1, v2, v3, t);
    transpose_lanes(v1, v2, v3, v4, u);  // one group of 4 on: columns 4 and 5 are its columns 0 and 1
    const __m256 cols[6] = {t[0], t[1], t[2], t[3], u[0], u[1]};
    __m256 res[6];
    input_1d_avx2(cols, res);
    for (int j = 0; j < 6; ++j) _mm256_storeu_ps(out[j] + k, res[j]);
  }
}
#endif

/// One channel of one image into the row-transformed tile entries
/// E[i][j][t0 + t] = (d B)[i][j] of its tiles t = ty TW + tx, d (6x6) the
/// tile at row 4 ty, column 4 tx of the channel zero-padded by `pad`, the 36
/// arrays ES apart. The channel's rows are first all copied into `padded`
/// (4 TH + 4 rows of split_row_len), whose entries outside the map are zero
/// on entry and stay so; then each padded row r is split by column phase,
/// row[4 k + j] for j < 6, and transformed, into the entries i = r & 3 of
/// tile row r >> 2 and, for r & 3 < 2, i = 4 + (r & 3) of the tile row
/// above. Splitting right after each row's copy would make the strided loads
/// straddle the copy's stores, which the CPU cannot forward. The splits run in
/// whole groups of 8: past TW they spill into the next tile row or image,
/// written later, or the slack.
template <class T>
void split_channel(const T* xc, index_t H, index_t W, index_t pad, index_t TH, index_t TW, T* E, index_t ES,
                   index_t t0, T* padded) {
  const index_t RL = split_row_len(TW);
  for (index_t h = 0; h < H; ++h) std::copy(xc + h * W, xc + (h + 1) * W, padded + (h + pad) * RL + pad);
  const auto split = [&](const T* row, index_t i, index_t ty) {
    T* const base = E + i * 6 * ES + t0 + ty * TW;
    T* const out[6] = {base, base + ES, base + 2 * ES, base + 3 * ES, base + 4 * ES, base + 5 * ES};
#if SUPCON_GEMM_AVX2
    if constexpr (std::is_same_v<T, float>) {
      if (supcon::detail::gemm::cpu_has_avx2_fma()) return split_row_avx2(row, (TW + 7) / 8, out);
    }
#endif
    for (index_t k0 = 0; k0 < TW; k0 += 8)
#pragma omp simd
      for (index_t k = k0; k < k0 + 8; ++k) {
        const T* d = row + 4 * k;
        store6(input_1d(d[0], d[1], d[2], d[3], d[4], d[5]), out[0] + k, ES);
      }
  };
  for (index_t r = 0; r < 4 * TH + 2; ++r) {  // tile row TH - 1 reads padded rows up to 4 TH + 1
    const index_t a = r & 3, q = r >> 2;
    const T* row = padded + r * RL;
    if (q < TH) split(row, a, q);
    if (a < 2 && q >= 1) split(row, 4 + a, q - 1);
  }
}

/// Interleaves the four entries of one block row of n tiles: dst[4 t + j] =
/// src[j L + t] for t < n, j < 4 (src's four arrays L apart). On x86 four
/// tiles at a time are a 4x4 transpose in SSE registers; n >= 4 ends with a
/// group that overlaps the one before, rewriting the same values.
template <class T>
inline void interleave_tiles(const T* src, index_t L, index_t n, T* dst) {
#if SUPCON_GEMM_AVX2
  if constexpr (std::is_same_v<T, float>) {
    if (n >= 4) {
      const auto group = [&](index_t t) {
        __m128 r0 = _mm_loadu_ps(src + t), r1 = _mm_loadu_ps(src + L + t), r2 = _mm_loadu_ps(src + 2 * L + t),
               r3 = _mm_loadu_ps(src + 3 * L + t);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(dst + 4 * t, r0), _mm_storeu_ps(dst + 4 * t + 4, r1);
        _mm_storeu_ps(dst + 4 * t + 8, r2), _mm_storeu_ps(dst + 4 * t + 12, r3);
      };
      for (index_t t = 0; t + 4 <= n; t += 4) group(t);
      if (n % 4 != 0) group(n - 4);
      return;
    }
  }
#endif
  for (index_t t = 0; t < n; ++t)
    for (index_t j = 0; j < 4; ++j) dst[4 * t + j] = src[j * L + t];
}

/// The inverse of interleave_tiles: dst[j L + t] = src[4 t + j] for t < n, j < 4.
template <class T>
inline void deinterleave_tiles(const T* src, index_t n, T* dst, index_t L) {
#if SUPCON_GEMM_AVX2
  if constexpr (std::is_same_v<T, float>) {
    if (n >= 4) {
      const auto group = [&](index_t t) {
        __m128 r0 = _mm_loadu_ps(src + 4 * t), r1 = _mm_loadu_ps(src + 4 * t + 4), r2 = _mm_loadu_ps(src + 4 * t + 8),
               r3 = _mm_loadu_ps(src + 4 * t + 12);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(dst + t, r0), _mm_storeu_ps(dst + L + t, r1);
        _mm_storeu_ps(dst + 2 * L + t, r2), _mm_storeu_ps(dst + 3 * L + t, r3);
      };
      for (index_t t = 0; t + 4 <= n; t += 4) group(t);
      if (n % 4 != 0) group(n - 4);
      return;
    }
  }
#endif
  for (index_t t = 0; t < n; ++t)
    for (index_t j = 0; j < 4; ++j) dst[j * L + t] = src[4 * t + j];
}

#if SUPCON_GEMM_AVX2
/// Eight rows of up to 8 entries (row + b stride, b < 8; entries past W are
/// not read) transposed: cols[w] holds entry w of the eight rows.
__attribute__((target("avx2"))) inline void load_columns8(const float* row, index_t stride, index_t W,
                                                          __m256 cols[8]) {
  const __m256i mask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(W)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 r[8];
  for (int b = 0; b < 8; ++b) r[b] = _mm256_maskload_ps(row + b * stride, mask);
  __m256 t[4], u[4];
  transpose_lanes(r[0], r[1], r[2], r[3], t);  // per 128-bit lane: t[j] = entry j (or 4 + j) of rows 0..3
  transpose_lanes(r[4], r[5], r[6], r[7], u);
  for (int j = 0; j < 4; ++j) {
    cols[j] = _mm256_permute2f128_ps(t[j], u[j], 0x20);
    cols[4 + j] = _mm256_permute2f128_ps(t[j], u[j], 0x31);
  }
}

/// row_across_images for eight images at a time, rows of W <= 8 entries:
/// the rows are loaded whole and transposed, one image per lane.
__attribute__((target("avx2"))) inline index_t row_across_images_avx2(const float* row, index_t stride, index_t W,
                                                                      index_t n, const index_t* col, const bool* in,
                                                                      float* out, index_t ES) {
  index_t b = 0;
  for (; b + 8 <= n; b += 8) {
    __m256 cols[8], d[6], res[6];
    load_columns8(row + b * stride, stride, W, cols);
    for (int k = 0; k < 6; ++k) d[k] = in[k] ? cols[col[k]] : _mm256_setzero_ps();
    input_1d_avx2(d, res);
    for (int j = 0; j < 6; ++j) _mm256_storeu_ps(out + j * ES + b, res[j]);
  }
  return b;
}
#endif

/// The row transform of one tile row across n images, image b's row of W
/// entries at row + b stride: out[j ES + b] = input_1d(d).xj with d[k] =
/// row[col[k]] where in[k], else 0 (the padding). With AVX2, eight images at
/// a time from transposed rows; otherwise, and for the rest, one loop whose
/// entries are read unconditionally (col is clamped into the row) and then
/// selected.
template <class T>
void row_across_images(const T* row, index_t stride, index_t W, index_t n, const index_t* col, const bool* in,
                       T* out, index_t ES) {
  index_t b0 = 0;
#if SUPCON_GEMM_AVX2
  if constexpr (std::is_same_v<T, float>) {
    if (W <= 8 && supcon::detail::gemm::cpu_has_avx2_fma())
      b0 = row_across_images_avx2(row, stride, W, n, col, in, out, ES);
  }
#endif
  const index_t c0 = col[0], c1 = col[1], c2 = col[2], c3 = col[3], c4 = col[4], c5 = col[5];
  const bool i0 = in[0], i1 = in[1], i2 = in[2], i3 = in[3], i4 = in[4], i5 = in[5];
  for (index_t b = b0; b < n; ++b) {
    const T* r = row + b * stride;
    const T v0 = r[c0], v1 = r[c1], v2 = r[c2], v3 = r[c3], v4 = r[c4], v5 = r[c5];
    store6(input_1d(i0 ? v0 : T(0), i1 ? v1 : T(0), i2 ? v2 : T(0), i3 ? v3 : T(0), i4 ? v4 : T(0),
                    i5 ? v5 : T(0)),
           out + b, ES);
  }
}

/// For the first n columns k of a row of W entries zero-padded by `pad`:
/// in[k], whether column k lies in the row, and wc[k], its entry clamped
/// into the row (read, then replaced by 0 where !in[k]).
inline void padded_columns(index_t W, index_t pad, index_t n, index_t* wc, bool* in) {
  for (index_t k = 0; k < n; ++k) {
    in[k] = k - pad >= 0 && k - pad < W;
    wc[k] = std::min(std::max<index_t>(k - pad, 0), W - 1);
  }
}

/// Prefetches the map that follows (image b, channel c) of x (nb, C, maps
/// of n entries) in the order the transforms visit a block: image b + 1 of
/// channel c, or image 0 of channel c + 1 (core/prefetch.hpp says why).
template <class T>
inline void prefetch_next_map(const T* x, index_t nb, index_t C, index_t b, index_t c, index_t n) {
  const index_t next_b = b + 1 < nb ? b + 1 : 0, next_c = b + 1 < nb ? c : c + 1;
  if (next_c < C) prefetch_bytes(x + (next_b * C + next_c) * n, n * index_t(sizeof(T)));
}

/// split_channel for maps of a single tile (TH = TW = 1, OH and OW <= 4),
/// for channel c of nb images at once: tile t is image t, so E[i][j][t] is
/// contiguous across images and the row transforms are one vector loop over
/// them, reading each image's entries in place. split_channel would spend a
/// group of 8 tiles and a padded copy on each one.
template <class T>
void split_single_tiles(const T* x, index_t nb, index_t C, index_t c, index_t H, index_t W, index_t pad, T* E,
                        index_t ES) {
  index_t wc[6];
  bool in[6];
  padded_columns(W, pad, 6, wc, in);
  for (index_t i = 0; i < 6; ++i) {
    T* const out = E + i * 6 * ES;  // E[i][j] at out + j ES
    const index_t h = i - pad;
    if (h < 0 || h >= H) {
      for (index_t j = 0; j < 6; ++j) std::fill(out + j * ES, out + j * ES + nb, T(0));
      continue;
    }
    row_across_images(x + (c * H + h) * W, C * H * W, W, nb, wc, in, out, ES);
  }
}

/// split_channel for maps of 2 x 2 tiles (TH = TW = 2, OH and OW <= 8), for
/// channel c of nb images at once: per tile position, one vector loop over
/// the images, reading their entries in place, into four arrays that are
/// then interleaved into E (tile t = 4 b + position).
template <class T>
void split_four_tiles(const T* x, index_t nb, index_t C, index_t c, index_t H, index_t W, index_t pad, T* E,
                      index_t ES) {
  constexpr index_t chunk = 32;
  T tmp[6 * 4 * chunk];  // tmp[j][position][b]
  index_t wc[10];
  bool in[10];
  padded_columns(W, pad, 10, wc, in);
  for (index_t b0 = 0; b0 < nb; b0 += chunk) {
    const index_t n = std::min(chunk, nb - b0);
    for (index_t i = 0; i < 6; ++i) {
      for (index_t pos = 0; pos < 4; ++pos) {
        const index_t h = 4 * (pos >> 1) + i - pad, k0 = 4 * (pos & 1);
        T* out = tmp + pos * chunk;
        if (h < 0 || h >= H) {
          for (index_t j = 0; j < 6; ++j) std::fill(out + j * 4 * chunk, out + j * 4 * chunk + n, T(0));
          continue;
        }
        row_across_images(x + ((b0 * C + c) * H + h) * W, C * H * W, W, n, wc + k0, in + k0, out, 4 * chunk);
      }
      for (index_t j = 0; j < 6; ++j) interleave_tiles(tmp + j * 4 * chunk, chunk, n, E + (i * 6 + j) * ES + 4 * b0);
    }
  }
}

/// B^T of column j of the row-transformed entries at e = E[0][j] + t, the arrays ES apart.
template <class T>
inline Six<T> input_column(const T* e, index_t ES) {
  return input_1d(e[0], e[6 * ES], e[12 * ES], e[18 * ES], e[24 * ES], e[30 * ES]);
}
/// A^T of the six entries m[k stride].
template <class T>
inline Four<T> output_strided(const T* m, index_t stride) {
  return output_1d(m[0], m[stride], m[2 * stride], m[3 * stride], m[4 * stride], m[5 * stride]);
}

/// B^T (d B) of tiles s .. s + n - 1 from their row-transformed entries E
/// (arrays ES apart); tile s + i's entry xi goes to out[xi plane + i]. One
/// column j of d B at a time, six values in and six out: with all 36 at
/// once they spill from the registers.
template <class T>
void input_tiles(const T* E, index_t ES, index_t s, index_t n, T* out, index_t plane) {
  for (index_t j = 0; j < 6; ++j) {
    const T* e = E + j * ES + s;
    T* o = out + j * plane;
#pragma omp simd
    for (index_t i = 0; i < n; ++i) store6(input_column(e + i, ES), o + i, 6 * plane);
  }
}

/// input_tiles of tiles 0 .. L - 1 into the panel layout: the tiles of
/// panel p (gemm_panel_cols of them) go to out + p pstride. Whole panels in
/// one loop of fixed width, one vector per column j on a 16-float machine,
/// without input_tiles' call, loop set-up and remainder per panel.
template <class T>
void input_panels(const T* E, index_t ES, index_t L, T* out, index_t pstride, index_t plane) {
  constexpr index_t NC = gemm_panel_cols;
  const index_t whole = L / NC;
  for (index_t j = 0; j < 6; ++j) {
    const T* e = E + j * ES;
    T* o = out + j * plane;
    for (index_t p = 0; p < whole; ++p) {
      const T* ep = e + p * NC;
      T* op = o + p * pstride;
#pragma omp simd
      for (index_t i = 0; i < NC; ++i) store6(input_column(ep + i, ES), op + i, 6 * plane);
    }
  }
  if (whole * NC < L) input_tiles(E, ES, whole * NC, L - whole * NC, out + whole * pstride, plane);
}

/// V[xi][c][t] = (B^T d B)[xi] for every 6x6 tile d of nb images (nb, C, H,
/// W), zero-padded by `pad`; tile t = b P + ty TW + tx of image b starts at
/// row 4 ty - pad, column 4 tx - pad. Its L = nb P columns are those of the
/// product; each V[xi] (C, L) is row-major, or with `panels` in the panel
/// layout of gemm_packed's B, v_plane(C, L, panels) entries apart. Per channel, the
/// tiles of all nb images are one vector loop, so that small maps (a single
/// tile on 4x4) fill the vectors too. `work` holds work_len entries.
template <class T>
void transform_input(const T* x, index_t nb, index_t C, index_t H, index_t W, index_t pad, index_t TH, index_t TW,
                     index_t Tmax, T* V, T* work, bool panels) {
  const index_t P = TH * TW, L = nb * P, ES = entries_stride(Tmax), plane = v_plane(C, L, panels);
  T *E = work, *padded = work + kPositions * ES;
  std::fill(padded, padded + (4 * TH + 4) * split_row_len(TW), T(0));
  for (index_t c = 0; c < C; ++c) {
    if (P == 1)
      split_single_tiles(x, nb, C, c, H, W, pad, E, ES);
    else if (TH == 2 && TW == 2)
      split_four_tiles(x, nb, C, c, H, W, pad, E, ES);
    else
      for (index_t b = 0; b < nb; ++b) {
        prefetch_next_map(x, nb, C, b, c, H * W);
        split_channel(x + (b * C + c) * H * W, H, W, pad, TH, TW, E, ES, b * P, padded);
      }
    if (!panels) {
      input_tiles(E, ES, 0, L, V + c * L, plane);
      continue;
    }
    input_panels(E, ES, L, V + gemm_packed_b_index(c, 0, C), gemm_packed_b_index(0, gemm_panel_cols, C), plane);
  }
}

/// Zeroes the columns of the last panel of each V[xi] (C, L) past L, which
/// the products read and never store.
template <class T>
void zero_panel_tails(T* V, index_t C, index_t L) {
  const index_t Lp = padded_tiles(L);
  if (Lp == L) return;
  for (index_t xi = 0; xi < kPositions; ++xi)
    for (index_t c = 0; c < C; ++c) {
      T* last = V + xi * v_plane(C, L, true) + gemm_packed_b_index(c, L, C);
      std::fill(last, last + (Lp - L), T(0));
    }
}

/// A^T M A + b of L tiles of one output channel (M[xi][t] at m[xi plane + t]);
/// entry (i, j) of tile t goes to work[(4 i + j) L + t].
template <class T>
void output_tiles(const T* m, index_t plane, index_t L, T b, T* work) {
#pragma omp simd
  for (index_t t = 0; t < L; ++t) {
    // M A, row by row
    const T* mt = m + t;
    const Four<T> s0 = output_strided(mt, plane), s1 = output_strided(mt + 6 * plane, plane),
                  s2 = output_strided(mt + 12 * plane, plane), s3 = output_strided(mt + 18 * plane, plane),
                  s4 = output_strided(mt + 24 * plane, plane), s5 = output_strided(mt + 30 * plane, plane);
    // A^T (M A), column by column
    T* w = work + t;
    store4(output_1d(s0.x0, s1.x0, s2.x0, s3.x0, s4.x0, s5.x0), b, w, 4 * L);
    store4(output_1d(s0.x1, s1.x1, s2.x1, s3.x1, s4.x1, s5.x1), b, w + L, 4 * L);
    store4(output_1d(s0.x2, s1.x2, s2.x2, s3.x2, s4.x2, s5.x2), b, w + 2 * L, 4 * L);
    store4(output_1d(s0.x3, s1.x3, s2.x3, s3.x3, s4.x3, s5.x3), b, w + 3 * L, 4 * L);
  }
}

/// y (nb, OC, OH, OW) of nb images = A^T M[.][o][t] A for each tile, plus
/// bias; M[xi] is (OC, L), L = nb P, m_plane(OC, L) apart. Per output channel, one vector loop over
/// the L tiles writes the 16 entries of each 4x4 block to 16 arrays of
/// `work`, L apart; they are then interleaved into y's rows, cropped at the edges.
template <class T>
void transform_output(const T* M, index_t nb, index_t OC, index_t TH, index_t TW, const T* bias, T* y,
                      index_t OH, index_t OW, T* work) {
  const index_t P = TH * TW, L = nb * P, plane = m_plane(OC, L);
  for (index_t o = 0; o < OC; ++o) {
    output_tiles(M + o * L, plane, L, bias ? bias[o] : T(0), work);
    for (index_t b = 0; b < nb; ++b) {
      T* yo = y + (b * OC + o) * OH * OW;
      for (index_t r = 0; r < OH; ++r) {
        const T* src = work + 4 * (r & 3) * L + b * P + (r >> 2) * TW;  // entries (r & 3, j) of tile row r >> 2
        T* dst = yo + r * OW;
        interleave_tiles(src, L, OW / 4, dst);
        for (index_t col = OW / 4 * 4; col < OW; ++col) dst[col] = src[(col & 3) * L + (col >> 2)];
      }
    }
  }
}

/// Z[xi][o][t] = (A dY A^T)[xi] for each 4x4 block dY of nb images' dy (nb,
/// OC, OH, OW), zero past the edges; Z[xi] is (OC, L), L = nb P, m_plane(OC, L) apart. The blocks'
/// 16 entries are first gathered into 16 arrays of `work`, L apart, so that
/// the transform is one vector loop over the L tiles.
template <class T>
void transform_output_grad(const T* dy, index_t nb, index_t OC, index_t OH, index_t OW, index_t TH, index_t TW,
                           T* Z, T* work) {
  const index_t P = TH * TW, L = nb * P, plane = m_plane(OC, L);
  for (index_t o = 0; o < OC; ++o) {
    for (index_t b = 0; b < nb; ++b) {
      const T* src = dy + (b * OC + o) * OH * OW;
      if (P > 4) prefetch_next_map(dy, nb, OC, b, o, OH * OW);
      for (index_t r = 0; r < 4 * TH; ++r) {
        T* dst = work + 4 * (r & 3) * L + b * P + (r >> 2) * TW;  // entries (r & 3, j) of tile row r >> 2
        if (r >= OH) {
          for (index_t j = 0; j < 4; ++j) std::fill(dst + j * L, dst + j * L + TW, T(0));
          continue;
        }
        const T* s = src + r * OW;
        deinterleave_tiles(s, OW / 4, dst, L);
        for (index_t col = OW / 4 * 4; col < 4 * TW; ++col)
          dst[(col & 3) * L + (col >> 2)] = col < OW ? s[col] : T(0);
      }
    }
    T* z = Z + o * L;
#pragma omp simd
    for (index_t t = 0; t < L; ++t) {
      // A dY, column by column: cj = A dY_.j
      const T* g = work + t;
      const Six<T> c0 = output_grad_1d(g[0], g[4 * L], g[8 * L], g[12 * L]),
                   c1 = output_grad_1d(g[L], g[5 * L], g[9 * L], g[13 * L]),
                   c2 = output_grad_1d(g[2 * L], g[6 * L], g[10 * L], g[14 * L]),
                   c3 = output_grad_1d(g[3 * L], g[7 * L], g[11 * L], g[15 * L]);
      // (A dY) A^T, row by row
      T* zt = z + t;
      store6(output_grad_1d(c0.x0, c1.x0, c2.x0, c3.x0), zt, plane);
      store6(output_grad_1d(c0.x1, c1.x1, c2.x1, c3.x1), zt + 6 * plane, plane);
      store6(output_grad_1d(c0.x2, c1.x2, c2.x2, c3.x2), zt + 12 * plane, plane);
      store6(output_grad_1d(c0.x3, c1.x3, c2.x3, c3.x3), zt + 18 * plane, plane);
      store6(output_grad_1d(c0.x4, c1.x4, c2.x4, c3.x4), zt + 24 * plane, plane);
      store6(output_grad_1d(c0.x5, c1.x5, c2.x5, c3.x5), zt + 30 * plane, plane);
    }
  }
}

/// G^T v of the six entries v[k stride].
template <class T>
inline Three<T> weight_grad_strided(const T* v, index_t stride) {
  return weight_grad_1d(v[0], v[stride], v[2 * stride], v[3 * stride], v[4 * stride], v[5 * stride]);
}

/// G^T dU G of n kernels, dU's entry xi of kernel m at u[xi plane + m]; entry
/// e = 3 i + j of kernel m's result goes to g[e][m]. One vector loop over the
/// kernels, as weight_tiles.
template <class T, index_t Width>
void weight_grad_tiles(const T* u, index_t plane, index_t n, T (&g)[9][Width]) {
#pragma omp simd
  for (index_t m = 0; m < n; ++m) {
    // dU G, row by row: ri = (dU G)[i][.]
    const T* e = u + m;
    const Three<T> r0 = weight_grad_strided(e, plane), r1 = weight_grad_strided(e + 6 * plane, plane),
                   r2 = weight_grad_strided(e + 12 * plane, plane), r3 = weight_grad_strided(e + 18 * plane, plane),
                   r4 = weight_grad_strided(e + 24 * plane, plane), r5 = weight_grad_strided(e + 30 * plane, plane);
    // G^T (dU G), column by column
    const Three<T> c0 = weight_grad_1d(r0.x0, r1.x0, r2.x0, r3.x0, r4.x0, r5.x0);
    const Three<T> c1 = weight_grad_1d(r0.x1, r1.x1, r2.x1, r3.x1, r4.x1, r5.x1);
    const Three<T> c2 = weight_grad_1d(r0.x2, r1.x2, r2.x2, r3.x2, r4.x2, r5.x2);
    g[0][m] = c0.x0, g[3][m] = c0.x1, g[6][m] = c0.x2;
    g[1][m] = c1.x0, g[4][m] = c1.x1, g[7][m] = c1.x2;
    g[2][m] = c2.x0, g[5][m] = c2.x1, g[8][m] = c2.x2;
  }
}

/// dweight[o, c] += G^T dU[.][o][c] G for every (o, c), where dU (36, OC, C),
/// its planes `plane` apart, is the sum of `parts` partial sums part_len
/// apart; the first part is overwritten with the sum. OpenMP over runs of
/// kernels, each summed and transformed while it is in cache.
template <class T>
void accumulate_weight_grad(T* dU, index_t parts, index_t part_len, index_t plane, index_t OC, index_t C,
                            T* dweight) {
  const index_t kernels = OC * C;
  constexpr index_t Width = 64;
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t m0 = 0; m0 < kernels; m0 += Width) {
    const index_t n = std::min(Width, kernels - m0);
    for (index_t t = 1; t < parts; ++t)
      for (index_t xi = 0; xi < kPositions; ++xi) {
        T* sum = dU + xi * plane + m0;
        const T* part = sum + t * part_len;
#pragma omp simd
        for (index_t m = 0; m < n; ++m) sum[m] += part[m];
      }
    T g[9][Width];
    weight_grad_tiles(dU + m0, plane, n, g);
    T* out = dweight + m0 * 9;
    for (index_t m = 0; m < n; ++m)
      for (index_t e = 0; e < 9; ++e) out[m * 9 + e] += g[e][m];
  }
}

/// Checks x (N, C, H, W), weight (OC, C, 3, 3) and the padding; returns OH.
template <class T>
index_t check(const Tensor<T>& x, const Tensor<T>& weight, index_t padding) {
  require<ShapeError>(x.rank() == 4 && weight.rank() == 4 && weight.dim(1) == x.dim(1) && weight.dim(2) == 3 &&
                          weight.dim(3) == 3,
                      "conv2d_winograd: x ", shape_str(x.shape()), " and weight ", shape_str(weight.shape()),
                      " must be (N, C, H, W) and (OC, C, 3, 3)");
  require<ShapeError>(padding >= 0 && padding <= 2, "conv2d_winograd: padding ", padding, " is not in [0, 2]");
  window_output_size(x.dim(3), 3, 1, padding, "conv2d_winograd");  // throws when W + 2p < 3
  return window_output_size(x.dim(2), 3, 1, padding, "conv2d_winograd");
}

/// Calls f(n0, nb, L, V, M, work) for block blk of the plan k over N images
/// (first image n0, nb images, L = nb P tiles); V, M and work are the calling
/// thread's buffers, sized by plan (k.v_len, k.m_len, k.work_len).
template <class T, class F>
void run_block(const Blocks& k, index_t N, index_t blk, WinogradWorkspace<T>& ws, const F& f) {
  const int t = thread_index();
  const index_t n0 = blk * k.B, nb = std::min(k.B, N - n0);
  f(n0, nb, nb * k.P, ws.v.data() + t * k.v_len, ws.m.data() + t * k.m_len, ws.work.data() + t * k.work_len);
}

/// run_block for every block, OpenMP over blocks, each to whichever thread is free.
template <class T, class F>
void for_each_block(const Blocks& k, index_t N, WinogradWorkspace<T>& ws, const F& f) {
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t blk = 0; blk < k.blocks; ++blk) run_block(k, N, blk, ws, f);
}

/// C (m, n) = A (m, k) B (k, n), or += when `accumulate`; B^T instead of B
/// when `b_transposed` (then B is stored (n, k)). All row-major, contiguous.
template <class T>
void product(index_t m, index_t n, index_t k, const T* A, const T* B, bool b_transposed, T* C, bool accumulate) {
  const index_t rsb = b_transposed ? 1 : n, csb = b_transposed ? k : 1;
  if (gemm_fast<T>(m, n, k, A, k, 1, B, rsb, csb, C, n, accumulate)) return;
  const ConstMatrixMap<T> a(A, m, k);
  MatrixMap<T> c(C, m, n);
  if (b_transposed) {
    const ConstMatrixMap<T> b(B, n, k);
    if (accumulate) c.noalias() += a * b.transpose(); else c.noalias() = a * b.transpose();
  } else {
    const ConstMatrixMap<T> b(B, k, n);
    if (accumulate) c.noalias() += a * b; else c.noalias() = a * b;
  }
}

/// C (m, n) = A (m, k) B (k, n) from operands in gemm_packed's panels.
template <class T>
void packed_product(index_t m, index_t n, index_t k, const T* A, const T* B, T* C) {
  if constexpr (std::is_same_v<T, float>) gemm_packed(m, n, k, A, B, C, n, false);
  else (void)m, (void)n, (void)k, (void)A, (void)B, (void)C;  // packed_products<T>() is false
}

/// out (N, OC, OH, OW) = the 3x3 convolution of in (N, C, H, W), padding
/// `pad`, with transformed weights U (36, OC, C) from transform_weights(...,
/// packed_products<T>(), U), plus bias (OC,) or null. OpenMP over blocks of
/// images; each block's 36 products on one thread.
template <class T>
void convolve(const T* in, index_t N, index_t C, index_t H, index_t W, index_t pad, const T* U, index_t OC,
              const T* bias, T* out, WinogradWorkspace<T>& ws) {
  const index_t OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
  const Blocks k = plan(N, C, OC, OH, OW, ws);
  const bool packed = packed_products<T>();
  const index_t uplane = weight_plane(OC, C, packed);
  for_each_block(k, N, ws, [&](index_t n0, index_t nb, index_t L, T* V, T* M, T* work) {
    transform_input(in + n0 * C * H * W, nb, C, H, W, pad, k.TH, k.TW, k.Tmax, V, work, packed);
    // M[xi] (OC, L) = U[xi] (OC, C) V[xi] (C, L)
    if (packed) {
      zero_panel_tails(V, C, L);
      for (index_t xi = 0; xi < kPositions; ++xi)
        packed_product(OC, L, C, U + xi * uplane, V + xi * v_plane(C, L, true), M + xi * m_plane(OC, L));
    } else {
      for (index_t xi = 0; xi < kPositions; ++xi)
        product(OC, L, C, U + xi * uplane, V + xi * v_plane(C, L, false), false, M + xi * m_plane(OC, L), false);
    }
    transform_output(M, nb, OC, k.TH, k.TW, bias, out + n0 * OC * OH * OW, OH, OW, work);
  });
}

/// Uv[xi][ci][co] = (G g G^T)[xi] for the kernel g from input channel ci to
/// output channel co: g = weight[co, ci] (OC, C, 3, 3), or with `flip` (the
/// data gradient: from the OC channels of dy to the C of dx) g =
/// rot180(weight[ci, co]). Each Uv[xi] (inputs, outputs) is row-major, the
/// planes `plane` apart; one vector loop per input channel and 16 outputs.
template <class T>
void transform_weights_vec(const T* weight, index_t OC, index_t C, bool flip, T* Uv, index_t plane) {
  const index_t in = flip ? OC : C, out = flip ? C : OC;
  constexpr index_t Width = 16;
#pragma omp parallel for schedule(static)
  for (index_t ci = 0; ci < in; ++ci) {
    T k[9][Width];
    for (index_t co0 = 0; co0 < out; co0 += Width) {
      const index_t n = std::min(Width, out - co0);
      for (index_t m = 0; m < n; ++m) {
        if (flip) gather_kernel<true>(weight + (ci * C + co0 + m) * 9, k, m);
        else gather_kernel<false>(weight + ((co0 + m) * C + ci) * 9, k, m);
      }
      weight_tiles(k, n, Uv + ci * out + co0, plane);
    }
  }
}

#if SUPCON_GEMM_AVX2
/// The blocks of the paths with sixteen channels per vector, as plan's: B
/// images of P = TH TW tiles each, rows of V and M rounded up to R; where
/// pixel k of an H x W map goes in the padded stage (at_in, rows of PW = 4
/// TW + 2) and pixel k of its OH x OW outputs in the stage of 4 TH x 4 TW
/// (at_out).
struct VecBlocks {
  index_t OH, OW, TH, TW, P, B, blocks, Lr, PW;
  std::vector<index_t> at_in, at_out;
};
inline VecBlocks vec_blocks(index_t N, index_t H, index_t W, index_t pad, index_t R) {
  VecBlocks k;
  k.OH = H + 2 * pad - 2, k.OW = W + 2 * pad - 2, k.TH = (k.OH + 3) / 4, k.TW = (k.OW + 3) / 4, k.P = k.TH * k.TW;
  const int threads = max_threads();
  k.B = vec::images_per_block(N, k.P, threads);
  k.blocks = (N + k.B - 1) / k.B, k.Lr = (k.B * k.P + R - 1) / R * R, k.PW = 4 * k.TW + 2;
  k.at_in.resize(static_cast<std::size_t>(H * W));
  k.at_out.resize(static_cast<std::size_t>(k.OH * k.OW));
  for (index_t p = 0; p < H * W; ++p) k.at_in[p] = (p / W + pad) * k.PW + p % W + pad;
  for (index_t p = 0; p < k.OH * k.OW; ++p) k.at_out[p] = p / k.OW * 4 * k.TW + p % k.OW;
  return k;
}

/// V[xi][b P + t][c] = (B^T d B)[xi] of tile t of image b of in (nb, C, H,
/// W), padding `pad`; the stage (zero outside the map on entry) holds one
/// image's sixteen channels at a time.
inline void transform_input_vec(const float* in, index_t nb, index_t C, index_t H, index_t W, const VecBlocks& k,
                                float* stage, float* V, index_t vplane) {
  for (index_t b = 0; b < nb; ++b)
    for (index_t g = 0; g < C; g += vec::kLanes) {
      vec::planes_to_pixels(in + (b * C + g) * H * W, H * W, H * W, k.at_in.data(), stage);
      vec::input_image(stage, k.TH, k.TW, V + b * k.P * C + g, C, vplane);
    }
}

/// convolve with sixteen channels per vector (ops/winograd_vec.hpp); C and OC
/// multiples of 16, U = Uv from transform_weights_vec, `uplane` apart. Per
/// thread, V, M and one image's sixteen channels (padded, or the output's
/// 4 TH x 4 TW pixels) in `work`.
inline void convolve_vec(const float* in, index_t N, index_t C, index_t H, index_t W, index_t pad, const float* U,
                         index_t uplane, index_t OC, const float* bias, float* out, WinogradWorkspace<float>& ws) {
  const VecBlocks k = vec_blocks(N, H, W, pad, vec::product_rows(OC));
  const index_t vplane = plane_stride(k.Lr * C), mplane = plane_stride(k.Lr * OC), OHW = k.OH * k.OW;
  const index_t v_len = kPositions * vplane, m_len = kPositions * mplane;
  const index_t stage_len = std::max((4 * k.TH + 2) * k.PW, 16 * k.P) * vec::kLanes;
  const int threads = max_threads();
  ws.v.resize({threads, v_len});
  ws.m.resize({threads, m_len});
  ws.work.resize({threads, stage_len});
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t blk = 0; blk < k.blocks; ++blk) {
    const int t = thread_index();
    const index_t n0 = blk * k.B, nb = std::min(k.B, N - n0), L = nb * k.P;
    float *V = ws.v.data() + t * v_len, *M = ws.m.data() + t * m_len, *stage = ws.work.data() + t * stage_len;
    std::fill(stage, stage + stage_len, 0.f);  // the padding; each image's channels then overwrite the inside
    transform_input_vec(in + n0 * C * H * W, nb, C, H, W, k, stage, V, vplane);
    for (index_t xi = 0; xi < kPositions; ++xi) std::fill(V + xi * vplane + L * C, V + xi * vplane + k.Lr * C, 0.f);
    // M[xi] (Lr, OC) = V[xi] (Lr, C) U[xi] (C, OC)
    for (index_t xi = 0; xi < kPositions; ++xi)
      vec::products(V + xi * vplane, U + xi * uplane, M + xi * mplane, k.Lr, C, OC);
    for (index_t b = 0; b < nb; ++b)
      for (index_t g = 0; g < OC; g += vec::kLanes) {
        vec::output_image(M + b * k.P * OC + g, OC, mplane, bias ? bias + g : nullptr, k.TH, k.TW, stage);
        vec::pixels_to_planes(stage, k.at_out.data(), OHW, out + ((n0 + b) * OC + g) * OHW, OHW);
      }
  }
}

/// The partial weight gradients dU (runs, 36, OC, C), planes du_plane apart,
/// with sixteen channels per vector, for x (N, C, H, W), padding `pad`, and
/// dy (N, OC, OH, OW): per run of blocks, dU[xi] (OC, C) = sum over the
/// run's tiles of Z[xi]^T V[xi], Z = A dY A^T (L, OC) and V = B^T d B (L,
/// C). ws.du is resized; returns the number of runs.
inline index_t weight_grad_vec(const float* x, const float* dy, index_t N, index_t C, index_t H, index_t W,
                               index_t pad, index_t OC, index_t du_plane, WinogradWorkspace<float>& ws) {
  const VecBlocks k = vec_blocks(N, H, W, pad, 1);
  const index_t vplane = plane_stride(k.Lr * C), zplane = plane_stride(k.Lr * OC), OHW = k.OH * k.OW;
  const index_t v_len = kPositions * vplane, z_len = kPositions * zplane, du_len = kPositions * du_plane;
  const index_t x_stage = (4 * k.TH + 2) * k.PW * vec::kLanes, stage_len = x_stage + 16 * k.P * vec::kLanes;
  const int threads = max_threads();
  ws.v.resize({threads, v_len});
  ws.m.resize({threads, z_len});
  ws.work.resize({threads, stage_len});
  const index_t runs = sum_runs(k.blocks, du_len, N * (C * H * W + OC * OHW));
  ws.du.resize({runs, du_len});
  for_each_run(k.blocks, runs, [&](index_t r, index_t first, index_t end) {
    const int t = thread_index();
    float *V = ws.v.data() + t * v_len, *Z = ws.m.data() + t * z_len, *stage = ws.work.data() + t * stage_len;
    float* dU = ws.du.data() + r * du_len;
    for (index_t blk = first; blk < end; ++blk) {
      const index_t n0 = blk * k.B, nb = std::min(k.B, N - n0), L = nb * k.P;
      std::fill(stage, stage + stage_len, 0.f);  // the padding of x, and dy past its edges
      transform_input_vec(x + n0 * C * H * W, nb, C, H, W, k, stage, V, vplane);
      for (index_t b = 0; b < nb; ++b)
        for (index_t g = 0; g < OC; g += vec::kLanes) {
          vec::planes_to_pixels(dy + ((n0 + b) * OC + g) * OHW, OHW, OHW, k.at_out.data(), stage + x_stage);
          vec::output_grad_image(stage + x_stage, k.TH, k.TW, Z + b * k.P * OC + g, OC, zplane);
        }
      // dU[xi] (OC, C) += Z[xi]^T (OC, L) V[xi] (L, C); the run's first block assigns
      for (index_t xi = 0; xi < kPositions; ++xi)
        vec::weight_products(Z + xi * zplane, V + xi * vplane, dU + xi * du_plane, L, OC, C, blk > first);
    }
  });
  return runs;
}
#endif

/// The partial weight gradients dU (runs, 36, OC, C), planes du_plane apart,
/// of x (N, C, H, W), padding `pad`, and dy (N, OC, OH, OW), with sixteen
/// tiles per vector: per run of blocks, dU[xi] (OC, C) = sum over the run's
/// tiles of Z[xi] V[xi]^T, Z = A dY A^T (OC, L) and V = B^T d B (C, L).
/// ws.du is resized; returns the number of runs.
template <class T>
index_t weight_grad_partials(const Tensor<T>& dy, const Tensor<T>& x, index_t padding, index_t du_plane,
                             WinogradWorkspace<T>& ws) {
  const index_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const index_t OC = dy.dim(1), OH = dy.dim(2), OW = dy.dim(3), du_len = kPositions * du_plane;
  const Blocks k = plan(N, C, OC, OH, OW, ws);
  // one partial dU per run of blocks, assigned by the run's first block
  const index_t runs = sum_runs(k.blocks, du_len, N * (C * H * W + OC * OH * OW));
  ws.du.resize({runs, du_len});
  for_each_run(k.blocks, runs, [&](index_t r, index_t first, index_t end) {
    T* dU = ws.du.data() + r * du_len;
    for (index_t blk = first; blk < end; ++blk)  // Z is this thread's product buffer
      run_block(k, N, blk, ws, [&](index_t n0, index_t nb, index_t L, T* V, T* Z, T* work) {
        transform_input(x.data() + n0 * C * H * W, nb, C, H, W, padding, k.TH, k.TW, k.Tmax, V, work, false);
        transform_output_grad(dy.data() + n0 * OC * OH * OW, nb, OC, OH, OW, k.TH, k.TW, Z, work);
        // dU[xi] (OC, C) += Z[xi] (OC, L) V[xi]^T (L, C)
        for (index_t xi = 0; xi < kPositions; ++xi)
          product(OC, C, L, Z + xi * m_plane(OC, L), V + xi * v_plane(C, L, false), true, dU + xi * du_plane,
                  blk > first);
      });
  });
  return runs;
}

/// out (N, Cout, H + 2 pad - 2, W + 2 pad - 2) = the 3x3 convolution of in
/// (N, Cin, H, W), padding `pad`, with the kernels of weight (OC, C, 3, 3):
/// Cin = C and Cout = OC, or with `flip` (the data gradient) Cin = OC, Cout
/// = C and each kernel turned by 180 degrees; plus bias (Cout,) or null.
/// Sixteen channels per vector where vec::usable, else sixteen tiles.
template <class T>
void convolve_with(const T* weight, index_t OC, index_t C, bool flip, const T* in, index_t N, index_t H, index_t W,
                   index_t pad, const T* bias, T* out, WinogradWorkspace<T>& ws) {
  const index_t Cin = flip ? OC : C, Cout = flip ? C : OC;
#if SUPCON_GEMM_AVX2
  if constexpr (std::is_same_v<T, float>) {
    if (vec::usable<T>(Cin, Cout)) {
      const index_t uplane = plane_stride(C * OC);
      ws.u.resize({kPositions, uplane});
      transform_weights_vec(weight, OC, C, flip, ws.u.data(), uplane);
      return convolve_vec(in, N, Cin, H, W, pad, ws.u.data(), uplane, Cout, bias, out, ws);
    }
  }
#endif
  const bool packed = packed_products<T>();
  ws.u.resize({kPositions, weight_plane(Cout, Cin, packed)});
  transform_weights(weight, OC, C, flip, packed, ws.u.data());
  convolve(in, N, Cin, H, W, pad, ws.u.data(), Cout, bias, out, ws);
}

}  // namespace detail::winograd

/// Winograd forward: y (N, OC, H + 2p - 2, W + 2p - 2) is resized and
/// assigned the convolution of x (N, C, H, W) with weight (OC, C, 3, 3),
/// stride 1, padding p in [0, 2], plus bias (OC,) when not null.
template <class T>
void conv2d_winograd_forward(const Tensor<T>& x, const Tensor<T>& weight, const TensorArg<T>* bias,
                             index_t padding, Tensor<T>& y, WinogradWorkspace<T>& ws) {
  const index_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), OC = weight.dim(0);
  const index_t OH = detail::winograd::check(x, weight, padding), OW = W + 2 * padding - 2;
  require<ShapeError>(!bias || bias->shape() == Shape{OC}, "conv2d_winograd: bias must be (", OC, ",)");
  y.resize_for_overwrite({N, OC, OH, OW});
  detail::winograd::convolve_with(weight.data(), OC, C, false, x.data(), N, H, W, padding,
                                  bias ? bias->data() : nullptr, y.data(), ws);
}

/// Winograd backward: dx is resized to x's shape and ASSIGNED; dweight
/// (OC, C, 3, 3) and dbias (OC,) (when not null) are ACCUMULATED.
template <class T>
void conv2d_winograd_backward(const Tensor<T>& dy, const Tensor<T>& x, const Tensor<T>& weight, index_t padding,
                              Tensor<T>& dx, Tensor<T>& dweight, TensorArg<T>* dbias, WinogradWorkspace<T>& ws) {
  const index_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), OC = weight.dim(0);
  const index_t OH = detail::winograd::check(x, weight, padding), OW = W + 2 * padding - 2;
  require<ShapeError>(dy.shape() == Shape{N, OC, OH, OW}, "conv2d_winograd_backward: dy has shape ",
                      shape_str(dy.shape()), ", expected ", shape_str({N, OC, OH, OW}));
  require<ShapeError>(dweight.shape() == weight.shape(), "conv2d_winograd_backward: dweight has shape ",
                      shape_str(dweight.shape()), ", expected ", shape_str(weight.shape()));
  require<ShapeError>(!dbias || dbias->shape() == Shape{OC}, "conv2d_winograd: dbias must be (", OC, ",)");
  namespace wg = detail::winograd;
  // forward: y = conv(x, g, p)  =>  dx = conv(dy, rot180(g)^T, 2 - p)
  dx.resize_for_overwrite(x.shape());
  wg::convolve_with(weight.data(), OC, C, true, dy.data(), N, OH, OW, 2 - padding, static_cast<const T*>(nullptr),
                    dx.data(), ws);

  // forward: Y = A^T (U .* V) A, U = G g G^T  =>  dU = sum_t (A dY A^T) .* V, dg = G^T dU G
  const index_t du_plane = wg::plane_stride(OC * C), du_len = wg::kPositions * du_plane;
  index_t runs = -1;
#if SUPCON_GEMM_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (wg::vec::usable<T>(C, OC))
      runs = wg::weight_grad_vec(x.data(), dy.data(), N, C, H, W, padding, OC, du_plane, ws);
#endif
  if (runs < 0) runs = wg::weight_grad_partials(dy, x, padding, du_plane, ws);
  if (runs > 0) wg::accumulate_weight_grad(ws.du.data(), runs, du_len, du_plane, OC, C, dweight.data());
  // forward: y[n, oc, :] += bias[oc]  =>  dbias[oc] += sum over n and positions of dy
  if (dbias)
    for (index_t n = 0; n < N; ++n)
      dbias->vec() += ConstMatrixMap<T>(dy.data() + n * OC * OH * OW, OC, OH * OW).rowwise().sum();
}

}  // namespace supcon::ops
