#pragma once
/// \file winograd_vec.hpp
/// The Winograd convolution of ops/winograd.hpp with sixteen channels in each
/// AVX-512 vector, for layers whose channel counts are multiples of 16.
///
/// winograd.hpp puts sixteen tiles of one channel in a vector: the tiles of
/// a row of an (N, C, H, W) map are read with their columns interleaved, so
/// the transforms spend most of their instructions on shuffles, short
/// strided copies and the padded copy of each map. Here a vector holds
/// sixteen channels of one pixel instead. Each group of sixteen channels of
/// an image is turned into that layout once, by 16 x 16 transposes of its
/// planes into a zero-padded image in the thread's work; each tile's
/// transform is then 36 loads, the arithmetic and 36 stores, with no
/// shuffle at all; the products read V[xi] as (tiles, C) and U[xi] as
/// (C, OC); and the output transform writes whole 4 x 4 blocks of sixteen
/// channels, turned back into y's planes by transposes again. Same
/// arithmetic as winograd.hpp, transform by transform, so the two paths
/// agree to rounding (tests/ops_winograd.test.cpp compares both with the
/// direct loops).
///
/// Layouts, per block of L tiles (L rounded up to the product's rows, Lr):
///   V[xi][t][c]   (36 planes of Lr x C)    M[xi][t][o]   (36 planes of Lr x OC)
///   U[xi][c][o]   (36 planes of C x OC), from transform_weights_vec;
///   in the weight gradient Z[xi][t][o] = (A dY A^T)[xi] beside V, and
///   dU[xi] (OC, C) += Z[xi]^T V[xi].
/// The drivers are in winograd.hpp (convolve_vec, weight_grad_vec); the
/// transposes and products also serve the strided layers of conv2d_vec.hpp.

#include <algorithm>
#include <type_traits>

#include "supcon/core/gemm.hpp"  // SUPCON_GEMM_AVX2, <immintrin.h>, wide_kernel
#include "supcon/core/tensor.hpp"

namespace supcon::ops::detail::winograd::vec {

/// Channels per vector.
constexpr index_t kLanes = 16;

/// Images per block for maps of P tiles (or output pixels): about 128 per
/// block, but never fewer blocks than threads. The rule of winograd.hpp's
/// plan, which the paths with channels in vectors share.
inline index_t images_per_block(index_t N, index_t P, int threads) {
  return std::min(std::max<index_t>(1, (128 + P - 1) / P), std::max<index_t>(1, (N + threads - 1) / threads));
}

/// Whether a convolution of C input and OC output channels takes this path:
/// float, both counts multiples of 16, and the products' AVX-512 kernels on
/// (a CPU with AVX-512F, and not SUPCON_GEMM=avx2: core/gemm.hpp's
/// wide_kernel(), which the tests also use to run both paths).
template <class T>
bool usable(index_t C, index_t OC) {
#if SUPCON_GEMM_AVX2
  if constexpr (std::is_same_v<T, float>)
    return C % kLanes == 0 && OC % kLanes == 0 && supcon::detail::gemm::wide_kernel();
#endif
  (void)C, (void)OC;
  return false;
}

#if SUPCON_GEMM_AVX2
#define SUPCON_AVX512F __attribute__((target("avx512f")))

/// Two 128-bit lanes of a, then two of b, as Imm selects (shuffle_f32x4).
template <int Imm>
SUPCON_AVX512F inline __m512 lanes(__m512 a, __m512 b) {
  return _mm512_maskz_shuffle_f32x4(0xFFFF, a, b, Imm);
}

/// r[i] (row i of a 16 x 16 block) becomes column i: r[i][j] <- r[j][i].
/// Three rounds of two-input shuffles, 64 in all.
SUPCON_AVX512F inline void transpose16(__m512 r[16]) {
  // (the maskz_ forms, all lanes on: GCC 12's plain forms start from an
  // undefined vector and warn under -Wall)
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {  // per 128-bit lane: (a0 b0 a1 b1), (a2 b2 a3 b3)
    t[2 * i] = _mm512_maskz_unpacklo_ps(0xFFFF, r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_maskz_unpackhi_ps(0xFFFF, r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // u[4 i + m], lane k: entry 4 k + m of rows 4 i .. 4 i + 3
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, a, c));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, a, c));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, b, d));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, b, d));
  }
  // 128-bit lanes (0, 1 of a, then of b), (2, 3 ...), (0, 2 ...) and (1, 3 ...)
  constexpr int lo_halves = 0x44, hi_halves = 0xEE, evens = 0x88, odds = 0xDD;
  for (int m = 0; m < 4; ++m) {  // column 4 k + m: lane k of u[m], u[4 + m], u[8 + m], u[12 + m]
    const __m512 lo01 = lanes<lo_halves>(u[m], u[4 + m]), hi01 = lanes<hi_halves>(u[m], u[4 + m]);
    const __m512 lo23 = lanes<lo_halves>(u[8 + m], u[12 + m]), hi23 = lanes<hi_halves>(u[8 + m], u[12 + m]);
    r[m] = lanes<evens>(lo01, lo23), r[4 + m] = lanes<odds>(lo01, lo23);
    r[8 + m] = lanes<evens>(hi01, hi23), r[12 + m] = lanes<odds>(hi01, hi23);
  }
}

/// input_1d of winograd.hpp, sixteen channels at a time: r = B^T x.
SUPCON_AVX512F inline void input_1d(const __m512 x[6], __m512 r[6]) {
  const __m512 two = _mm512_set1_ps(2.f), four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f);
  const __m512 a = _mm512_fnmadd_ps(four, x[2], x[4]), b = _mm512_fnmadd_ps(four, x[1], x[3]);
  const __m512 c = _mm512_sub_ps(x[4], x[2]), e = _mm512_mul_ps(two, _mm512_sub_ps(x[3], x[1]));
  r[0] = _mm512_add_ps(_mm512_fnmadd_ps(five, x[2], _mm512_mul_ps(four, x[0])), x[4]);
  r[1] = _mm512_add_ps(a, b), r[2] = _mm512_sub_ps(a, b), r[3] = _mm512_add_ps(c, e), r[4] = _mm512_sub_ps(c, e);
  r[5] = _mm512_add_ps(_mm512_fnmadd_ps(five, x[3], _mm512_mul_ps(four, x[1])), x[5]);
}

/// output_1d of winograd.hpp, sixteen channels at a time: r = A^T m.
SUPCON_AVX512F inline void output_1d(const __m512 m[6], __m512 r[4]) {
  const __m512 s = _mm512_add_ps(m[1], m[2]), d = _mm512_sub_ps(m[1], m[2]);
  const __m512 S = _mm512_add_ps(m[3], m[4]), D = _mm512_sub_ps(m[3], m[4]);
  r[0] = _mm512_add_ps(_mm512_add_ps(m[0], s), S);
  r[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.f), D, d);
  r[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.f), S, s);
  r[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.f), D, d), m[5]);
}

/// output_grad_1d of winograd.hpp, sixteen channels at a time: r = A g.
SUPCON_AVX512F inline void output_grad_1d(const __m512 g[4], __m512 r[6]) {
  const __m512 s = _mm512_add_ps(g[0], g[2]), d = _mm512_add_ps(g[1], g[3]);
  const __m512 S = _mm512_fmadd_ps(_mm512_set1_ps(4.f), g[2], g[0]);
  const __m512 D = _mm512_fmadd_ps(_mm512_set1_ps(8.f), g[3], _mm512_mul_ps(_mm512_set1_ps(2.f), g[1]));
  r[0] = g[0], r[1] = _mm512_add_ps(s, d), r[2] = _mm512_sub_ps(s, d);
  r[3] = _mm512_add_ps(S, D), r[4] = _mm512_sub_ps(S, D), r[5] = g[3];
}

/// Sixteen channels of one image into `stage`, one vector per pixel: pixel
/// k of the planes (n of them, `ps` apart) goes to stage + stride at[k]
/// (stride 16 for a stage of sixteen channels, C where the stage holds all C
/// and `stage` points at the group's first). Sixteen pixels at a time, one
/// transpose each.
SUPCON_AVX512F inline void planes_to_pixels(const float* x, index_t ps, index_t n, const index_t* at, float* stage,
                                            index_t stride = kLanes) {
  for (index_t k0 = 0; k0 < n; k0 += kLanes) {
    const index_t cnt = std::min(kLanes, n - k0);
    const __mmask16 mask = static_cast<__mmask16>((1u << cnt) - 1u);
    __m512 r[16];
    for (int l = 0; l < 16; ++l) r[l] = _mm512_maskz_loadu_ps(mask, x + l * ps + k0);
    transpose16(r);
    for (index_t j = 0; j < cnt; ++j) _mm512_storeu_ps(stage + stride * at[k0 + j], r[j]);
  }
}

/// The inverse: pixel k of sixteen planes (`ps` apart) from stage + stride at[k].
SUPCON_AVX512F inline void pixels_to_planes(const float* stage, const index_t* at, index_t n, float* y, index_t ps,
                                            index_t stride = kLanes) {
  for (index_t k0 = 0; k0 < n; k0 += kLanes) {
    const index_t cnt = std::min(kLanes, n - k0);
    const __mmask16 mask = static_cast<__mmask16>((1u << cnt) - 1u);
    __m512 r[16];
    for (index_t j = 0; j < 16; ++j)
      r[j] = j < cnt ? _mm512_loadu_ps(stage + stride * at[k0 + j]) : _mm512_setzero_ps();
    transpose16(r);
    for (int l = 0; l < 16; ++l) _mm512_mask_storeu_ps(y + l * ps + k0, mask, r[l]);
  }
}

/// dst[i] = src[i] for i < n, n a multiple of 16.
SUPCON_AVX512F inline void copy_vectors(const float* src, float* dst, index_t n) {
  for (index_t i = 0; i < n; i += kLanes) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
}
/// dst[i] += src[i] for i < n, n a multiple of 16.
SUPCON_AVX512F inline void add_vectors(const float* src, float* dst, index_t n) {
  for (index_t i = 0; i < n; i += kLanes)
    _mm512_storeu_ps(dst + i, _mm512_add_ps(_mm512_loadu_ps(dst + i), _mm512_loadu_ps(src + i)));
}

/// B^T d B of one tile of sixteen channels: d's rows are PW pixels apart in
/// `d` (its top-left pixel); entry xi goes to v + xi plane.
SUPCON_AVX512F inline void input_tile(const float* d, index_t PW, float* v, index_t plane) {
  __m512 db[6][6];  // d B, row by row
  for (int i = 0; i < 6; ++i) {
    __m512 row[6];
    for (int j = 0; j < 6; ++j) row[j] = _mm512_loadu_ps(d + (i * PW + j) * kLanes);
    input_1d(row, db[i]);
  }
  for (int j = 0; j < 6; ++j) {  // B^T (d B), column by column
    const __m512 col[6] = {db[0][j], db[1][j], db[2][j], db[3][j], db[4][j], db[5][j]};
    __m512 r[6];
    input_1d(col, r);
    for (int i = 0; i < 6; ++i) _mm512_storeu_ps(v + (6 * i + j) * plane, r[i]);
  }
}

/// A^T m A + bias of one tile of sixteen output channels, m's entry xi at
/// m + xi plane; output (i, j) to out + (i OWp + j) 16.
SUPCON_AVX512F inline void output_tile(const float* m, index_t plane, __m512 bias, float* out, index_t OWp) {
  __m512 ma[6][4];  // M A, row by row
  for (int i = 0; i < 6; ++i) {
    __m512 row[6];
    for (int j = 0; j < 6; ++j) row[j] = _mm512_loadu_ps(m + (6 * i + j) * plane);
    output_1d(row, ma[i]);
  }
  for (int j = 0; j < 4; ++j) {  // A^T (M A), column by column
    const __m512 col[6] = {ma[0][j], ma[1][j], ma[2][j], ma[3][j], ma[4][j], ma[5][j]};
    __m512 r[4];
    output_1d(col, r);
    for (int i = 0; i < 4; ++i) _mm512_storeu_ps(out + (i * OWp + j) * kLanes, _mm512_add_ps(r[i], bias));
  }
}

/// input_tile for the TH x TW tiles of one image's sixteen channels in
/// `stage` (rows PW = 4 TW + 2 pixels): tile t's entries to v + t C.
SUPCON_AVX512F inline void input_image(const float* stage, index_t TH, index_t TW, float* v, index_t C,
                                       index_t plane) {
  const index_t PW = 4 * TW + 2;
  for (index_t ty = 0; ty < TH; ++ty)
    for (index_t tx = 0; tx < TW; ++tx)
      input_tile(stage + (4 * ty * PW + 4 * tx) * kLanes, PW, v + (ty * TW + tx) * C, plane);
}

/// output_tile for the TH x TW tiles of one image's sixteen output channels,
/// tile t's entries at m + t OC, into `stage` (rows of 4 TW pixels); bias
/// (sixteen entries) or null.
SUPCON_AVX512F inline void output_image(const float* m, index_t OC, index_t plane, const float* bias, index_t TH,
                                        index_t TW, float* stage) {
  const index_t OWp = 4 * TW;
  const __m512 b = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  for (index_t ty = 0; ty < TH; ++ty)
    for (index_t tx = 0; tx < TW; ++tx)
      output_tile(m + (ty * TW + tx) * OC, plane, b, stage + (4 * ty * OWp + 4 * tx) * kLanes, OWp);
}

/// A dY A^T of one tile of sixteen channels of dy, its 4 x 4 pixels in rows
/// OWp pixels apart from `g`; entry xi to z + xi plane.
SUPCON_AVX512F inline void output_grad_tile(const float* g, index_t OWp, float* z, index_t plane) {
  __m512 ag[6][4];  // A dY, column by column
  for (int j = 0; j < 4; ++j) {
    __m512 col[4], r[6];
    for (int i = 0; i < 4; ++i) col[i] = _mm512_loadu_ps(g + (i * OWp + j) * kLanes);
    output_grad_1d(col, r);
    for (int i = 0; i < 6; ++i) ag[i][j] = r[i];
  }
  for (int i = 0; i < 6; ++i) {  // (A dY) A^T, row by row
    __m512 r[6];
    output_grad_1d(ag[i], r);
    for (int j = 0; j < 6; ++j) _mm512_storeu_ps(z + (6 * i + j) * plane, r[j]);
  }
}

/// output_grad_tile for the TH x TW tiles of one image's sixteen channels of
/// dy in `stage` (rows of 4 TW pixels): tile t's entries to z + t OC.
SUPCON_AVX512F inline void output_grad_image(const float* stage, index_t TH, index_t TW, float* z, index_t OC,
                                             index_t plane) {
  const index_t OWp = 4 * TW;
  for (index_t ty = 0; ty < TH; ++ty)
    for (index_t tx = 0; tx < TW; ++tx)
      output_grad_tile(stage + (4 * ty * OWp + 4 * tx) * kLanes, OWp, z + (ty * TW + tx) * OC, plane);
}

/// dU (OC, C) = Z^T V, or += with `accumulate`, over the L rows of Z (L, OC)
/// and V (L, C), all row-major: R rows of dU by NV vectors at a time, in
/// registers through all L rows.
template <int R, int NV>
SUPCON_AVX512F void weight_product(const float* Z, const float* V, float* dU, index_t L, index_t OC, index_t C,
                                   bool accumulate) {
  for (index_t o0 = 0; o0 < OC; o0 += R)
    for (index_t c0 = 0; c0 < C; c0 += NV * kLanes) {
      __m512 acc[R][NV];
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v)
          acc[r][v] = accumulate ? _mm512_loadu_ps(dU + (o0 + r) * C + c0 + v * kLanes) : _mm512_setzero_ps();
      for (index_t t = 0; t < L; ++t) {
        __m512 x[NV];
        for (int v = 0; v < NV; ++v) x[v] = _mm512_loadu_ps(V + t * C + c0 + v * kLanes);
        for (int r = 0; r < R; ++r) {
          const __m512 z = _mm512_set1_ps(Z[t * OC + o0 + r]);
          for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(z, x[v], acc[r][v]);
        }
      }
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(dU + (o0 + r) * C + c0 + v * kLanes, acc[r][v]);
    }
}

/// M (Lr, OC) = V (Lr, C) U (C, OC), all row-major, Lr a multiple of R:
/// R rows of M by NV vectors of columns at a time, in registers. The
/// columns outside: U's block of C x 16 NV stays in the cache while V's
/// rows pass (U[xi] is a megabyte at 512 channels, V[xi] a quarter of one).
template <int R, int NV>
SUPCON_AVX512F void product(const float* V, const float* U, float* M, index_t Lr, index_t C, index_t OC) {
  for (index_t o0 = 0; o0 < OC; o0 += NV * kLanes)
    for (index_t t0 = 0; t0 < Lr; t0 += R) {
      __m512 acc[R][NV];
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
      const float* vrow = V + t0 * C;
      for (index_t c = 0; c < C; ++c) {
        __m512 u[NV];
        for (int v = 0; v < NV; ++v) u[v] = _mm512_loadu_ps(U + c * OC + o0 + v * kLanes);
        for (int r = 0; r < R; ++r) {
          const __m512 b = _mm512_set1_ps(vrow[r * C + c]);
          for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(b, u[v], acc[r][v]);
        }
      }
      for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(M + (t0 + r) * OC + o0 + v * kLanes, acc[r][v]);
    }
}
#undef SUPCON_AVX512F

/// Rows of the product's register block for OC output channels: 14 rows of
/// one vector, 12 of two or 6 of four, 14 to 24 accumulators.
inline index_t product_rows(index_t OC) { return OC % 64 == 0 ? 6 : OC % 32 == 0 ? 12 : 14; }

/// product with the register block of product_rows(OC); Lr a multiple of it.
inline void products(const float* V, const float* U, float* M, index_t Lr, index_t C, index_t OC) {
  if (OC % 64 == 0) return product<6, 4>(V, U, M, Lr, C, OC);
  if (OC % 32 == 0) return product<12, 2>(V, U, M, Lr, C, OC);
  product<14, 1>(V, U, M, Lr, C, OC);
}

/// weight_product with 8 rows of two vectors or 16 of one (OC is a multiple of 16).
inline void weight_products(const float* Z, const float* V, float* dU, index_t L, index_t OC, index_t C,
                            bool accumulate) {
  if (C % 32 == 0) return weight_product<8, 2>(Z, V, dU, L, OC, C, accumulate);
  weight_product<16, 1>(Z, V, dU, L, OC, C, accumulate);
}
#endif

}  // namespace supcon::ops::detail::winograd::vec
