#pragma once
/// \file gemm.hpp
/// A single-threaded float matrix product with an AVX2 + FMA micro-kernel,
/// chosen at run time, for the products of the convolutions and of the fused
/// SupCon loss.
///
///     C (M, N) = A (M, K) B (K, N)      or      C += A B
///
/// A, B are read through strides (element (i, k) of A at A[i * rsa + k * csa]),
/// so a transposed operand costs nothing but a different packing order; C is
/// row-major with row stride ldc.
///
/// Structure (the classic blocked GEMM of Goto and van de Geijn, "Anatomy of
/// high-performance matrix multiplication", ACM TOMS 2008):
///
///     for each KC-deep slice of K:      pack B's slice into NR-wide column panels
///       for each MC-tall block of A:    pack it into MR-tall row panels
///         for each NR panel, MR panel:  the micro-kernel adds an MR x NR tile
///
/// The micro-kernel keeps its 6 x 16 tile of C in twelve 8-float registers
/// and, per step of k, loads two vectors of the B panel, broadcasts six
/// entries of the A panel and issues twelve fused multiply-adds (with the two
/// B vectors and the broadcast, 15 of the 16 AVX2 registers). On CPUs with
/// AVX-512 a wide kernel takes two B panels side by side instead: a 6 x 32
/// tile in twelve 16-float registers, twice the work per instruction on the
/// same panel layouts, and where two A panels are packed one after the other,
/// a tall kernel takes both: a 12 x 32 tile in twenty-four registers, with
/// fewer loads per multiply-add; a product with a single panel of columns
/// (N <= 16) takes a narrow kernel, one 16-float register per row of C and up
/// to twelve rows. Operands are packed into panels (see sgemm_blocked for
/// when one is read in place); the B panels (KC x NR floats, 16 KiB each) stay
/// in the L1 cache while the A panels stream from L2. Rows or columns beyond
/// the edge are packed as zeros and the tile is written back through a small
/// buffer, so any M, N, K work.
///
/// `gemm_fast` returns false (and does nothing) for double, on CPUs without
/// AVX2 and FMA, on compilers other than GCC and Clang for x86-64, and under
/// SUPCON_GEMM=eigen (see use_kernel); callers then use Eigen's product.
/// SUPCON_GEMM=avx2 keeps the 6 x 16 kernel on an AVX-512 CPU. Either way the
/// result is deterministic.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "supcon/core/tensor.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define SUPCON_GEMM_AVX2 1
#include <immintrin.h>
#else
#define SUPCON_GEMM_AVX2 0
#endif
// the unrolling hint of GCC and Clang; nvcc's front end, which also reads these host paths, warns on it
#if defined(__GNUC__) && !defined(__CUDACC__)
#define SUPCON_GEMM_UNROLL6 _Pragma("GCC unroll 6")
#define SUPCON_GEMM_UNROLL12 _Pragma("GCC unroll 12")
#else
#define SUPCON_GEMM_UNROLL6
#define SUPCON_GEMM_UNROLL12
#endif

namespace supcon {
namespace detail::gemm {

constexpr index_t MR = 6, NR = 16;    // micro-tile of C held in registers
constexpr index_t KC = 256;           // depth of one packed slice: KC x NR floats (16 KiB) in L1
constexpr index_t MC = 120;           // rows of A packed at once: MC x KC floats (120 KiB) in L2
constexpr index_t NC = 16 * 192;      // columns of B packed at once (a multiple of NR)

/// Packing buffers of the calling thread, kept between calls.
struct Buffers {
  std::vector<float> a, b;
  static float* aligned(std::vector<float>& v, index_t n) {
    if (static_cast<index_t>(v.size()) < n + 8) v.resize(static_cast<std::size_t>(n + 8));
    auto p = reinterpret_cast<std::uintptr_t>(v.data());
    return v.data() + ((32 - p % 32) % 32) / sizeof(float);
  }
};

inline Buffers& buffers() {
  thread_local Buffers b;
  return b;
}

/// A product with K = 0: C = 0, or C unchanged when accumulating.
inline void empty_product(index_t M, index_t N, float* C, index_t ldc, bool accumulate) {
  if (!accumulate)
    for (index_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.f);
}

#if SUPCON_GEMM_AVX2
/// r[i][j] <- r[j][i]: an 8 x 8 block of floats transposed in registers.
__attribute__((target("avx2"))) inline void transpose8(__m256 (&r)[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {  // pairs of rows interleaved
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // then pairs of pairs: each 128-bit lane holds a 4 x 4 block's column
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {  // low lanes of rows 0-3 with those of rows 4-7, then the high lanes
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

/// pack_a's full panel of a row-major A: out[k MR + i] = A[i rsa + k], eight
/// steps of k at a time through transpose8 (rows 6 and 7 are padding).
__attribute__((target("avx2"))) inline void pack_a_rows(const float* A, index_t rsa, index_t kc, float* out) {
  index_t k = 0;
  for (; k + 8 <= kc; k += 8, out += 8 * MR) {
    __m256 r[8];
    for (int i = 0; i < MR; ++i) r[i] = _mm256_loadu_ps(A + i * rsa + k);
    r[6] = r[7] = _mm256_setzero_ps();
    transpose8(r);
    for (int j = 0; j < 8; ++j) {  // six floats per step: four, then two
      _mm_storeu_ps(out + j * MR, _mm256_castps256_ps128(r[j]));
      _mm_storel_pi(reinterpret_cast<__m64*>(out + j * MR + 4), _mm256_extractf128_ps(r[j], 1));
    }
  }
  for (; k < kc; ++k, out += MR)
    for (index_t i = 0; i < MR; ++i) out[i] = A[i * rsa + k];
}

/// pack_b's full panel of a column-major B: out[k NR + j] = B[j csb + k],
/// two 8 x 8 transposes per eight steps of k.
__attribute__((target("avx2"))) inline void pack_b_columns(const float* B, index_t csb, index_t kc, float* out) {
  index_t k = 0;
  for (; k + 8 <= kc; k += 8)
    for (int h = 0; h < 2; ++h) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(B + (8 * h + j) * csb + k);
      transpose8(r);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(out + (k + i) * NR + 8 * h, r[i]);
    }
  for (; k < kc; ++k)
    for (index_t j = 0; j < NR; ++j) out[k * NR + j] = B[j * csb + k];
}
#endif

/// Packs A[0 : mc, 0 : kc] into ceil(mc / MR) panels, each kc steps of MR
/// consecutive floats (row entries of one column), zero-padded.
inline void pack_a(const float* A, index_t rsa, index_t csa, index_t mc, index_t kc, float* out) {
  for (index_t i0 = 0; i0 < mc; i0 += MR) {
    const index_t m = std::min(MR, mc - i0);
    if (m == MR && csa == 1) {
#if SUPCON_GEMM_AVX2
      pack_a_rows(A + i0 * rsa, rsa, kc, out);
      out += kc * MR;
#else
      // row-major A: six rows read along k, interleaved
      const float* r[MR];
      for (index_t i = 0; i < MR; ++i) r[i] = A + (i0 + i) * rsa;
      for (index_t k = 0; k < kc; ++k, out += MR)
        for (index_t i = 0; i < MR; ++i) out[i] = r[i][k];
#endif
      continue;
    }
    for (index_t k = 0; k < kc; ++k, out += MR) {
      const float* src = A + i0 * rsa + k * csa;
      index_t i = 0;
      for (; i < m; ++i) out[i] = src[i * rsa];
      for (; i < MR; ++i) out[i] = 0.f;
    }
  }
}

/// Packs B[0 : kc, 0 : nc] into ceil(nc / NR) panels, each kc steps of NR
/// consecutive floats (column entries of one row), zero-padded.
inline void pack_b(const float* B, index_t rsb, index_t csb, index_t kc, index_t nc, float* out) {
  for (index_t j0 = 0; j0 < nc; j0 += NR) {
    const index_t n = std::min(NR, nc - j0);
    if (csb == 1 && n == NR) {
      for (index_t k = 0; k < kc; ++k) std::memcpy(out + k * NR, B + k * rsb + j0, NR * sizeof(float));
    } else if (rsb == 1) {
      // column-major B (a transposed operand): walk each column down k
#if SUPCON_GEMM_AVX2
      if (n == NR) {
        pack_b_columns(B + j0 * csb, csb, kc, out);
        out += kc * NR;
        continue;
      }
#endif
      for (index_t j = 0; j < NR; ++j) {
        if (j < n) {
          const float* src = B + (j0 + j) * csb;
          for (index_t k = 0; k < kc; ++k) out[k * NR + j] = src[k];
        } else {
          for (index_t k = 0; k < kc; ++k) out[k * NR + j] = 0.f;
        }
      }
    } else {
      for (index_t k = 0; k < kc; ++k) {
        const float* src = B + k * rsb + j0 * csb;
        index_t j = 0;
        for (; j < n; ++j) out[k * NR + j] = src[j * csb];
        for (; j < NR; ++j) out[k * NR + j] = 0.f;
      }
    }
    out += kc * NR;
  }
}

/// The m x n corner of a micro-tile (row stride ld) written to C(i, j) =
/// c[i * rsc + j * csc], or added to it: the kernels' path at the edges of C.
inline void store_edge(const float* tile, index_t ld, float* c, index_t rsc, index_t csc, index_t m, index_t n,
                       bool accumulate) {
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      float& cij = c[i * rsc + j * csc];
      cij = accumulate ? cij + tile[i * ld + j] : tile[i * ld + j];
    }
}

#if SUPCON_GEMM_AVX2
/// One micro-tile: C[0:m, 0:n] (+)= A[0:m, 0:kc] B[0:kc, 0:n], m <= MR, n <= NR.
/// A(i, k) = a[i * ars + k * acs]: a packed panel (ars = 1, acs = MR) or rows
/// read in place (acs = 1); B(k, j) = b[k * bks + j], NR floats of each row
/// readable (a packed panel, bks = NR, or rows read in place); C(i, j) =
/// c[i * rsc + j * csc].
__attribute__((target("avx2,fma"))) inline void kernel(index_t kc, const float* a, index_t ars, index_t acs,
                                                       const float* b, index_t bks, float* c, index_t rsc,
                                                       index_t csc, index_t m, index_t n, bool accumulate) {
  // rows past m repeat the last row: read in bounds, never stored
  const float* a0 = a;
  const float* a1 = a + std::min<index_t>(1, m - 1) * ars;
  const float* a2 = a + std::min<index_t>(2, m - 1) * ars;
  const float* a3 = a + std::min<index_t>(3, m - 1) * ars;
  const float* a4 = a + std::min<index_t>(4, m - 1) * ars;
  const float* a5 = a + std::min<index_t>(5, m - 1) * ars;
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (index_t k = 0, ka = 0; k < kc; ++k, ka += acs, b += bks) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * bks), _MM_HINT_T0);
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 ai = _mm256_broadcast_ss(a0 + ka);
    c00 = _mm256_fmadd_ps(ai, b0, c00);
    c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a1 + ka);
    c10 = _mm256_fmadd_ps(ai, b0, c10);
    c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a2 + ka);
    c20 = _mm256_fmadd_ps(ai, b0, c20);
    c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a3 + ka);
    c30 = _mm256_fmadd_ps(ai, b0, c30);
    c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a4 + ka);
    c40 = _mm256_fmadd_ps(ai, b0, c40);
    c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a5 + ka);
    c50 = _mm256_fmadd_ps(ai, b0, c50);
    c51 = _mm256_fmadd_ps(ai, b1, c51);
  }
  const __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (m == MR && n == NR && csc == 1) {
    for (index_t i = 0; i < MR; ++i) {
      float* ci = c + i * rsc;
      for (int v = 0; v < 2; ++v) {
        const __m256 r = accumulate ? _mm256_add_ps(_mm256_loadu_ps(ci + 8 * v), rows[i][v]) : rows[i][v];
        _mm256_storeu_ps(ci + 8 * v, r);
      }
    }
    return;
  }
  alignas(32) float tile[MR * NR];
  for (index_t i = 0; i < MR; ++i)
    for (int v = 0; v < 2; ++v) _mm256_store_ps(tile + i * NR + 8 * v, rows[i][v]);
  store_edge(tile, NR, c, rsc, csc, m, n, accumulate);
}

/// A tile of R rows of 2 NR floats in registers (left[i]: columns 0..NR-1
/// of row i, right[i]: NR..2 NR-1), written to C[0:m, 0:n] or added to it:
/// whole rows straight to C, an edge tile through a buffer. Inlined with its
/// loops unrolled, so that the caller's accumulators stay registers.
template <int R>
__attribute__((target("avx512f"), always_inline)) inline void store_wide(const __m512 (&left)[R],
                                                                         const __m512 (&right)[R], float* c,
                                                                         index_t rsc, index_t csc, index_t m,
                                                                         index_t n, bool accumulate) {
  if (m == R && n == 2 * NR && csc == 1) {
    SUPCON_GEMM_UNROLL12
    for (int i = 0; i < R; ++i) {
      float* ci = c + i * rsc;
      const __m512 l = accumulate ? _mm512_add_ps(_mm512_loadu_ps(ci), left[i]) : left[i];
      const __m512 r = accumulate ? _mm512_add_ps(_mm512_loadu_ps(ci + NR), right[i]) : right[i];
      _mm512_storeu_ps(ci, l), _mm512_storeu_ps(ci + NR, r);
    }
    return;
  }
  alignas(64) float tile[R * 2 * NR];
  SUPCON_GEMM_UNROLL12
  for (int i = 0; i < R; ++i) {
    _mm512_store_ps(tile + i * 2 * NR, left[i]);
    _mm512_store_ps(tile + i * 2 * NR + NR, right[i]);
  }
  store_edge(tile, 2 * NR, c, rsc, csc, m, n, accumulate);
}

/// The wide micro-tile for CPUs with AVX-512: C[0:m, 0:n] (+)= A[0:m, 0:kc]
/// B[0:kc, 0:n], m <= MR, n <= 2 NR, from two B panels side by side (b0 for
/// columns 0..15, b1 for 16..31, same bks). Twelve 16-float accumulators, so
/// each step of k issues twelve fused multiply-adds of twice the width of
/// `kernel`'s, on the same panel layouts. A and C as in `kernel`.
__attribute__((target("avx512f"))) inline void kernel_wide(index_t kc, const float* a, index_t ars, index_t acs,
                                                           const float* b0, const float* b1, index_t bks, float* c,
                                                           index_t rsc, index_t csc, index_t m, index_t n,
                                                           bool accumulate) {
  const float* ai[MR];  // rows past m repeat the last row: read in bounds, never stored
  for (index_t i = 0; i < MR; ++i) ai[i] = a + std::min<index_t>(i, m - 1) * ars;
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (index_t k = 0, ka = 0, kb = 0; k < kc; ++k, ka += acs, kb += bks) {
    _mm_prefetch(reinterpret_cast<const char*>(b0 + kb + 8 * bks), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b1 + kb + 8 * bks), _MM_HINT_T0);
    const __m512 x0 = _mm512_loadu_ps(b0 + kb), x1 = _mm512_loadu_ps(b1 + kb);
    __m512 r = _mm512_set1_ps(ai[0][ka]);
    c00 = _mm512_fmadd_ps(r, x0, c00);
    c01 = _mm512_fmadd_ps(r, x1, c01);
    r = _mm512_set1_ps(ai[1][ka]);
    c10 = _mm512_fmadd_ps(r, x0, c10);
    c11 = _mm512_fmadd_ps(r, x1, c11);
    r = _mm512_set1_ps(ai[2][ka]);
    c20 = _mm512_fmadd_ps(r, x0, c20);
    c21 = _mm512_fmadd_ps(r, x1, c21);
    r = _mm512_set1_ps(ai[3][ka]);
    c30 = _mm512_fmadd_ps(r, x0, c30);
    c31 = _mm512_fmadd_ps(r, x1, c31);
    r = _mm512_set1_ps(ai[4][ka]);
    c40 = _mm512_fmadd_ps(r, x0, c40);
    c41 = _mm512_fmadd_ps(r, x1, c41);
    r = _mm512_set1_ps(ai[5][ka]);
    c50 = _mm512_fmadd_ps(r, x0, c50);
    c51 = _mm512_fmadd_ps(r, x1, c51);
  }
  const __m512 left[MR] = {c00, c10, c20, c30, c40, c50}, right[MR] = {c01, c11, c21, c31, c41, c51};
  store_wide(left, right, c, rsc, csc, m, n, accumulate);
}

/// The tall wide micro-tile: C[0:m, 0:n] (+)= A B for m <= 2 MR, n <= 2 NR,
/// from two packed A panels (rows 0..5 at a, rows 6..11 at a + a_next, each
/// MR floats per step of k) and two B panels as in kernel_wide. Twenty-four
/// 16-float accumulators: per step of k, two loads of B and twelve broadcasts
/// of A feed twenty-four fused multiply-adds, against two and six for twelve
/// in kernel_wide, so fewer loads per multiply-add. Rows of the second panel
/// past m are the zeros of its packing, read and never stored.
__attribute__((target("avx512f"))) inline void kernel_tall(index_t kc, const float* a, index_t a_next,
                                                           const float* b0, const float* b1, index_t bks, float* c,
                                                           index_t rsc, index_t csc, index_t m, index_t n,
                                                           bool accumulate) {
  constexpr int R = 2 * MR;
  const float* a1 = a + a_next;
  // two arrays of twelve, not one of 24 pairs: GCC keeps arrays of this size in registers, not that one
  __m512 acc0[R], acc1[R];
  SUPCON_GEMM_UNROLL12
  for (int i = 0; i < R; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (index_t k = 0, ka = 0, kb = 0; k < kc; ++k, ka += MR, kb += bks) {
    _mm_prefetch(reinterpret_cast<const char*>(b0 + kb + 8 * bks), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b1 + kb + 8 * bks), _MM_HINT_T0);
    const __m512 x0 = _mm512_loadu_ps(b0 + kb), x1 = _mm512_loadu_ps(b1 + kb);
    SUPCON_GEMM_UNROLL6
    for (int i = 0; i < MR; ++i) {
      const __m512 r = _mm512_set1_ps(a[ka + i]);
      acc0[i] = _mm512_fmadd_ps(r, x0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(r, x1, acc1[i]);
    }
    SUPCON_GEMM_UNROLL6
    for (int i = 0; i < MR; ++i) {
      const __m512 r = _mm512_set1_ps(a1[ka + i]);
      acc0[MR + i] = _mm512_fmadd_ps(r, x0, acc0[MR + i]);
      acc1[MR + i] = _mm512_fmadd_ps(r, x1, acc1[MR + i]);
    }
  }
  store_wide(acc0, acc1, c, rsc, csc, m, n, accumulate);
}

/// The narrow micro-tile for CPUs with AVX-512, for products whose C has a
/// single panel of columns (the weight gradients dU (16, 16) of the
/// 16-channel Winograd layers): C[0:m, 0:n] (+)= A B for m <= R, n <= NR,
/// one 16-float accumulator per row, so each step of k feeds R fused
/// multiply-adds of full width from one load of B, where `kernel` feeds
/// twelve of half the width. Row i of A is arow[i][k * acs] (rows past m
/// point at rows that exist, read and never stored); B as in `kernel`.
template <int R>
__attribute__((target("avx512f"))) inline void kernel_narrow(index_t kc, const float* const (&arow)[R], index_t acs,
                                                             const float* b, index_t bks, float* c, index_t rsc,
                                                             index_t csc, index_t m, index_t n, bool accumulate) {
  __m512 acc[R];
  for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_ps();
  for (index_t k = 0, ka = 0, kb = 0; k < kc; ++k, ka += acs, kb += bks) {
    _mm_prefetch(reinterpret_cast<const char*>(b + kb + 8 * bks), _MM_HINT_T0);
    const __m512 x = _mm512_loadu_ps(b + kb);
    SUPCON_GEMM_UNROLL12
    for (int i = 0; i < R; ++i) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(arow[i][ka]), x, acc[i]);
  }
  if (n == NR && csc == 1) {  // whole rows straight to C
    for (index_t i = 0; i < m; ++i) {
      float* ci = c + i * rsc;
      _mm512_storeu_ps(ci, accumulate ? _mm512_add_ps(_mm512_loadu_ps(ci), acc[i]) : acc[i]);
    }
    return;
  }
  alignas(64) float tile[R * NR];
  for (int i = 0; i < R; ++i) _mm512_store_ps(tile + i * NR, acc[i]);
  store_edge(tile, NR, c, rsc, csc, m, n, accumulate);
}

/// kernel_narrow on the m <= 2 MR rows of A at a: read in place (ars = row
/// stride, acs = 1), or packed (ars = 1, acs = MR), rows 6..11 then from
/// the next panel, a_next floats on. Twelve, eight or six accumulators,
/// the fewest that hold m rows.
__attribute__((target("avx512f"))) inline void kernel_narrow_rows(index_t kc, const float* a, index_t ars,
                                                                  index_t acs, index_t a_next, const float* b,
                                                                  index_t bks, float* c, index_t rsc, index_t csc,
                                                                  index_t m, index_t n, bool accumulate) {
  const auto row = [&](index_t i) {
    i = std::min(i, m - 1);
    return i < MR ? a + i * ars : a + a_next + (i - MR) * ars;
  };
  if (m > 8) {
    const float* const rows[2 * MR] = {row(0), row(1), row(2), row(3), row(4),  row(5),
                                       row(6), row(7), row(8), row(9), row(10), row(11)};
    kernel_narrow<2 * MR>(kc, rows, acs, b, bks, c, rsc, csc, m, n, accumulate);
  } else if (m > MR) {
    const float* const rows[8] = {row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7)};
    kernel_narrow<8>(kc, rows, acs, b, bks, c, rsc, csc, m, n, accumulate);
  } else {
    const float* const rows[MR] = {row(0), row(1), row(2), row(3), row(4), row(5)};
    kernel_narrow<MR>(kc, rows, acs, b, bks, c, rsc, csc, m, n, accumulate);
  }
}

inline bool cpu_has_avx2_fma() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return ok;
}

/// Whether the products take kernel_wide where two B panels are side by
/// side: on CPUs with AVX-512F, unless SUPCON_GEMM=avx2 in the environment.
/// A reference, so that the tests can compare both kernels on one machine.
inline bool cpu_has_avx512f() {
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return ok;
}
inline bool& wide_kernel() {
  static bool on = [] {
    const char* env = std::getenv("SUPCON_GEMM");
    return cpu_has_avx512f() && !(env && std::strcmp(env, "avx2") == 0);
  }();
  return on;
}

/// The blocked product with C(i, j) = C[i * rsc + j * csc]. Operands are
/// packed into contiguous panels, which keeps the micro-kernel at its rate,
/// except where a packed entry would be read only a few times:
/// - a row-major A when C has few columns (N < 64, at most four B panels);
/// - a row-major B when C has few rows (M <= 2 MR, at most two A panels),
///   but for its last, partial panel.
/// Those are read in place. (A row-major B whose rows are a multiple of 4 KiB
/// apart puts every row of a panel into the same L1 set, so it is worth
/// reading in place only when the packed copy would not be reused.)
inline void sgemm_blocked(index_t M, index_t N, index_t K, const float* A, index_t rsa, index_t csa,
                          const float* B, index_t rsb, index_t csb, float* C, index_t rsc, index_t csc,
                          bool accumulate) {
  Buffers& buf = buffers();
  const bool a_in_place = csa == 1 && N < 64, b_in_place = csb == 1 && M <= 2 * MR, wide = wide_kernel();
  for (index_t jc = 0; jc < N; jc += NC) {
    const index_t nc = std::min(NC, N - jc);
    const index_t full = b_in_place ? (nc / NR) * NR : 0;  // columns read in place
    for (index_t pc = 0; pc < K; pc += KC) {
      const index_t kc = std::min(KC, K - pc);
      const float* bsrc = B + pc * rsb + jc * csb;
      float* bp = Buffers::aligned(buf.b, ((nc - full + NR - 1) / NR) * NR * kc);
      if (nc > full) pack_b(bsrc + full * csb, rsb, csb, kc, nc - full, bp);
      const bool acc = accumulate || pc > 0;
      for (index_t ic = 0; ic < M; ic += MC) {
        const index_t mc = std::min(MC, M - ic);
        const float* asrc = A + ic * rsa + pc * csa;
        float* ap = nullptr;
        if (!a_in_place) {
          ap = Buffers::aligned(buf.a, ((mc + MR - 1) / MR) * MR * kc);
          pack_a(asrc, rsa, csa, mc, kc, ap);
        }
        const auto panel = [&](index_t jr) { return jr < full ? bsrc + jr : bp + (jr - full) * kc; };
        for (index_t jr = 0; jr < nc;) {
          const index_t bks = jr < full ? rsb : NR;
          // two panels of the same kind (both read in place or both packed) for the wide kernel
          const bool two = wide && jr + NR < nc && (jr >= full || jr + 2 * NR <= full);
          const index_t width = two ? 2 * NR : NR, n = std::min(width, nc - jr);
          for (index_t ir = 0; ir < mc;) {
            float* ctile = C + (ic + ir) * rsc + (jc + jr) * csc;
            const float* a = a_in_place ? asrc + ir * rsa : ap + ir * kc;
            if (two && !a_in_place && ir + MR < mc) {  // two packed A panels, MR kc apart
              kernel_tall(kc, a, MR * kc, panel(jr), panel(jr + NR), bks, ctile, rsc, csc,
                          std::min(2 * MR, mc - ir), n, acc);
              ir += 2 * MR;
              continue;
            }
            const index_t ars = a_in_place ? rsa : 1, acs = a_in_place ? 1 : MR;
            if (wide && !two) {  // one panel of columns: up to twelve rows (two packed panels, MR kc apart)
              // in place, 13 to 16 rows go as two eights (sixteen: the weight gradient dU (16, 16))
              const index_t left = mc - ir;
              const index_t m = a_in_place ? (left > 2 * MR && left <= 16 ? 8 : std::min(2 * MR, left))
                                           : std::min(ir + MR < mc ? 2 * MR : MR, left);
              kernel_narrow_rows(kc, a, ars, acs, a_in_place ? MR * rsa : MR * kc, panel(jr), bks, ctile, rsc, csc,
                                 m, n, acc);
              ir += m;
              continue;
            }
            const index_t m = std::min(MR, mc - ir);
            if (two)
              kernel_wide(kc, a, ars, acs, panel(jr), panel(jr + NR), bks, ctile, rsc, csc, m, n, acc);
            else
              kernel(kc, a, ars, acs, panel(jr), bks, ctile, rsc, csc, m, n, acc);
            ir += MR;
          }
          jr += width;
        }
      }
    }
  }
}

/// C (M, N) (+)= A B from operands already in the kernel's panel layout
/// (packed_a_index, packed_b_index), each panel the full depth K: the same
/// loops as sgemm_blocked with no packing, for callers that write their
/// operands in that layout once and multiply them many times.
inline void sgemm_packed(index_t M, index_t N, index_t K, const float* Ap, const float* Bp, float* C, index_t ldc,
                         bool accumulate) {
  const bool wide = wide_kernel();
  for (index_t jc = 0; jc < N; jc += NC) {
    const index_t nc = std::min(NC, N - jc);
    for (index_t pc = 0; pc < K; pc += KC) {
      const index_t kc = std::min(KC, K - pc);
      const bool acc = accumulate || pc > 0;
      for (index_t ic = 0; ic < M; ic += MC) {
        const index_t mc = std::min(MC, M - ic);
        for (index_t jr = jc; jr < jc + nc;) {
          const float* bpanel = Bp + jr * K + pc * NR;  // panel jr / NR starts at (jr / NR) NR K
          const bool two = wide && jr + NR < jc + nc;
          const index_t width = two ? 2 * NR : NR, n = std::min(width, jc + nc - jr);
          for (index_t ir = ic; ir < ic + mc;) {
            const float* a = Ap + ir * K + pc * MR;
            if (two && ir + MR < ic + mc) {  // two A panels, MR K apart
              kernel_tall(kc, a, MR * K, bpanel, bpanel + NR * K, NR, C + ir * ldc + jr, ldc, 1,
                          std::min(2 * MR, M - ir), n, acc);
              ir += 2 * MR;
              continue;
            }
            if (two)
              kernel_wide(kc, a, 1, MR, bpanel, bpanel + NR * K, NR, C + ir * ldc + jr, ldc, 1,
                          std::min(MR, M - ir), n, acc);
            else if (wide) {  // one panel of columns: up to twelve rows from two A panels
              const index_t m = std::min(ir + MR < ic + mc ? 2 * MR : MR, ic + mc - ir);
              kernel_narrow_rows(kc, a, 1, MR, MR * K, bpanel, NR, C + ir * ldc + jr, ldc, 1, m, n, acc);
              ir += m;
              continue;
            } else
              kernel(kc, a, 1, MR, bpanel, NR, C + ir * ldc + jr, ldc, 1, std::min(MR, M - ir), n, acc);
            ir += MR;
          }
          jr += width;
        }
      }
    }
  }
}
#else
inline bool cpu_has_avx2_fma() { return false; }
inline bool cpu_has_avx512f() { return false; }
inline bool& wide_kernel() {
  static bool on = false;
  return on;
}
#endif

/// The product; requires cpu_has_avx2_fma(). When B is column-major (a
/// transposed operand) and C has few rows (M < 64, fewer than N), the
/// transposed product C^T = B^T A^T is formed instead: its A, the large B^T,
/// is then row-major with few columns of C^T and is read in place, so neither
/// large operand is copied (the weight gradient of a convolution, dW += dY
/// COL^T, is this case).
inline void sgemm(index_t M, index_t N, index_t K, const float* A, index_t rsa, index_t csa, const float* B,
                  index_t rsb, index_t csb, float* C, index_t ldc, bool accumulate) {
#if SUPCON_GEMM_AVX2
  if (K == 0) return empty_product(M, N, C, ldc, accumulate);
  if (csb != 1 && rsb == 1 && M < 64 && M < N)
    sgemm_blocked(N, M, K, B, csb, rsb, A, csa, rsa, C, 1, ldc, accumulate);
  else
    sgemm_blocked(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, 1, accumulate);
#else
  (void)M, (void)N, (void)K, (void)A, (void)rsa, (void)csa, (void)B, (void)rsb, (void)csb, (void)C, (void)ldc,
      (void)accumulate;
#endif
}

/// The policy: the kernel computes every float product on a CPU with AVX2
/// and FMA, whatever flags Eigen was compiled with; at the shapes of the
/// convolutions and of the fused loss it measured mostly 1.1-1.7 x faster
/// than Eigen's AVX2 product (docs/performance.md, "The 6 x 16 kernel").
/// SUPCON_GEMM=eigen in the environment switches to Eigen's product.
inline bool use_kernel() {
  static const bool on = [] {
    if (!cpu_has_avx2_fma()) return false;
    const char* env = std::getenv("SUPCON_GEMM");
    return !(env && std::strcmp(env, "eigen") == 0);
  }();
  return on;
}

}  // namespace detail::gemm

/// Whether gemm_fast<T> computes products: float, on a CPU with AVX2 and FMA,
/// under the policy of detail::gemm::use_kernel.
template <class T>
bool gemm_available() {
  if constexpr (std::is_same_v<T, float>)
    return detail::gemm::use_kernel();
  else
    return false;
}

/// C (M, N) = A (M, K) B (K, N), or C += A B when `accumulate`, with the
/// kernels above (AVX2, or AVX-512 where the CPU has it); A(i, k) =
/// A[i * rsa + k * csa], B(k, j) = B[k * rsb + j * csb], C(i, j) =
/// C[i * ldc + j]. C must not overlap A or B.
/// Returns false, touching nothing, when the kernel is not to be used
/// (gemm_available<T>() is false): the caller then computes the same product
/// another way.
template <class T>
bool gemm_fast(index_t M, index_t N, index_t K, const T* A, index_t rsa, index_t csa, const T* B, index_t rsb,
               index_t csb, T* C, index_t ldc, bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    if (!detail::gemm::use_kernel()) return false;
    detail::gemm::sgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate);
    return true;
  } else {
    (void)M, (void)N, (void)K, (void)A, (void)rsa, (void)csa, (void)B, (void)rsb, (void)csb, (void)C, (void)ldc,
        (void)accumulate;
    return false;
  }
}

/// The kernel's panel layouts, for operands written once and multiplied many
/// times (gemm_packed). A (M, K) is cut into MR-row panels, B (K, N) into
/// NR-column panels; each panel holds its K steps one after the other, and
/// the rows or columns past M or N in the last panel are zero.
inline constexpr index_t gemm_panel_rows = detail::gemm::MR, gemm_panel_cols = detail::gemm::NR;
inline index_t gemm_packed_a_len(index_t M, index_t K) {
  return (M + gemm_panel_rows - 1) / gemm_panel_rows * gemm_panel_rows * K;
}
inline index_t gemm_packed_b_len(index_t K, index_t N) {
  return (N + gemm_panel_cols - 1) / gemm_panel_cols * gemm_panel_cols * K;
}
/// Where A(i, k) and B(k, j) lie in the packed operands.
inline index_t gemm_packed_a_index(index_t i, index_t k, index_t K) {
  return (i / gemm_panel_rows) * gemm_panel_rows * K + k * gemm_panel_rows + i % gemm_panel_rows;
}
inline index_t gemm_packed_b_index(index_t k, index_t j, index_t K) {
  return (j / gemm_panel_cols) * gemm_panel_cols * K + k * gemm_panel_cols + j % gemm_panel_cols;
}

/// C (M, N) = A B, or += when `accumulate`, from packed operands Ap
/// (gemm_packed_a_len(M, K) floats) and Bp (gemm_packed_b_len(K, N));
/// C row-major with row stride ldc. Requires gemm_available<float>().
inline void gemm_packed(index_t M, index_t N, index_t K, const float* Ap, const float* Bp, float* C, index_t ldc,
                        bool accumulate) {
#if SUPCON_GEMM_AVX2
  if (K == 0) return detail::gemm::empty_product(M, N, C, ldc, accumulate);
  detail::gemm::sgemm_packed(M, N, K, Ap, Bp, C, ldc, accumulate);
#else
  (void)M, (void)N, (void)K, (void)Ap, (void)Bp, (void)C, (void)ldc, (void)accumulate;
#endif
}

}  // namespace supcon
