#pragma once
/// \file masked_avx512.hpp
/// AVX-512 loops for the passes that pair floats with one mask byte per
/// entry: ReLU, the residual join with its ReLU, and batch norm with a ReLU.
/// Sixteen entries per step, the mask read or written as one 16-byte vector.
/// Left to the compiler, these loops step 64 entries at a time (one vector
/// of bytes) and send short slices (a 7x7 or 4x4 map's 49 or 16 entries)
/// and every remainder through scalar code, which `perf` showed as most of
/// batch norm's masked backward in the demo network's step.
///
/// Each function processes entries [b, i) for the largest i <= e that
/// leaves fewer than 16 and returns i; the caller finishes with its own
/// scalar loop, which is also the whole loop on CPUs without AVX-512F or
/// other compilers (then i = b). Same arithmetic as those loops, operation
/// by operation, and a NaN stays NaN through the ReLU.

#include <cstdint>

#include "supcon/core/gemm.hpp"  // SUPCON_GEMM_AVX2, <immintrin.h>, cpu_has_avx512f

namespace supcon::ops::detail::avx512 {

#if SUPCON_GEMM_AVX2
// (The maskz_ forms of the conversions and shuffles, all lanes on: GCC 12's
// plain forms, and its _mm512_reduce_add_ps, start from an undefined vector
// and warn under -Wall.)

/// The 16 mask bytes at m as a bit mask: bit j set where m[j] != 0.
__attribute__((target("avx512f"))) inline __mmask16 load_mask16(const std::uint8_t* m) {
  const __m512i v = _mm512_maskz_cvtepu8_epi32(0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(m)));
  return _mm512_test_epi32_mask(v, v);
}
/// relu(v) (0 where v <= 0, so a NaN stays NaN), and m[j] = (v[j] > 0).
__attribute__((target("avx512f"))) inline __m512 relu16(__m512 v, std::uint8_t* m) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512i ones = _mm512_maskz_set1_epi32(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), 1);
  const __m128i bytes = _mm512_maskz_cvtepi32_epi8(0xFFFF, ones);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(m), bytes);
  return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ), zero);
}

__attribute__((target("avx512f"))) inline index_t relu_mask_16(const float* x, float* y, std::uint8_t* mask,
                                                               index_t b, index_t e) {
  index_t i = b;
  for (; i + 16 <= e; i += 16) _mm512_storeu_ps(y + i, relu16(_mm512_loadu_ps(x + i), mask + i));
  return i;
}
__attribute__((target("avx512f"))) inline index_t add_relu_mask_16(float* a, const float* b, std::uint8_t* mask,
                                                                   index_t lo, index_t hi) {
  index_t i = lo;
  for (; i + 16 <= hi; i += 16)
    _mm512_storeu_ps(a + i, relu16(_mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)), mask + i));
  return i;
}
/// y = relu(scale x + shift), or with skip relu(scale x + shift + skip), with its mask.
__attribute__((target("avx512f"))) inline index_t affine_relu_mask_16(const float* x, const float* skip, float* y,
                                                                      std::uint8_t* mask, index_t n, float scale,
                                                                      float shift) {
  const __m512 s = _mm512_set1_ps(scale), t = _mm512_set1_ps(shift);
  index_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_add_ps(_mm512_mul_ps(s, _mm512_loadu_ps(x + i)), t);
    if (skip) v = _mm512_add_ps(v, _mm512_loadu_ps(skip + i));
    _mm512_storeu_ps(y + i, relu16(v, mask + i));
  }
  return i;
}
/// dx = g, or dx += g with `add`, for g = dy where the mask is set, else 0.
__attribute__((target("avx512f"))) inline index_t mask_grad_16(const float* dy, const std::uint8_t* mask, float* dx,
                                                               index_t b, index_t e, bool add) {
  index_t i = b;
  for (; i + 16 <= e; i += 16) {
    const __m512 g = _mm512_maskz_mov_ps(load_mask16(mask + i), _mm512_loadu_ps(dy + i));
    _mm512_storeu_ps(dx + i, add ? _mm512_add_ps(_mm512_loadu_ps(dx + i), g) : g);
  }
  return i;
}
/// dx = a g + k (x - mu) + c, g as in mask_grad_16.
__attribute__((target("avx512f"))) inline index_t batchnorm_dx_mask_16(const float* dy, const std::uint8_t* mask,
                                                                       const float* x, float* dx, index_t n, float a,
                                                                       float k, float mu, float c) {
  const __m512 va = _mm512_set1_ps(a), vk = _mm512_set1_ps(k), vmu = _mm512_set1_ps(mu), vc = _mm512_set1_ps(c);
  index_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_maskz_mov_ps(load_mask16(mask + i), _mm512_loadu_ps(dy + i));
    const __m512 xc = _mm512_mul_ps(vk, _mm512_sub_ps(_mm512_loadu_ps(x + i), vmu));
    _mm512_storeu_ps(dx + i, _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(va, g), xc), vc));
  }
  return i;
}
/// The sum of v's 16 entries: halves, then quarters added, then one quarter's four.
__attribute__((target("avx512f"))) inline float sum16(__m512 v) {
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0x4E));  // 256-bit halves swapped
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0xB1));  // 128-bit quarters swapped in pairs
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  return (t[0] + t[1]) + (t[2] + t[3]);
}

/// s1 += sum g, s2 += sum g (x - mu) over runs of 16, g as in mask_grad_16:
/// a channel slice's two sums of batch norm's backward behind a ReLU.
__attribute__((target("avx512f"))) inline index_t grad_sums_mask_16(const float* dy, const std::uint8_t* mask,
                                                                    const float* x, float mu, index_t n, float& s1,
                                                                    float& s2) {
  const __m512 vmu = _mm512_set1_ps(mu);
  __m512 a1 = _mm512_setzero_ps(), a2 = a1;
  index_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_maskz_mov_ps(load_mask16(mask + i), _mm512_loadu_ps(dy + i));
    a1 = _mm512_add_ps(a1, g);
    a2 = _mm512_add_ps(a2, _mm512_mul_ps(g, _mm512_sub_ps(_mm512_loadu_ps(x + i), vmu)));
  }
  s1 += sum16(a1), s2 += sum16(a2);
  return i;
}
#endif

/// Whether the functions below run their AVX-512 loops.
inline bool enabled() {
#if SUPCON_GEMM_AVX2
  return supcon::detail::gemm::cpu_has_avx512f();
#else
  return false;
#endif
}

// The dispatching entry points, one per loop of ops/activation.hpp and
// ops/batchnorm.hpp; each returns where the caller's scalar loop starts.
inline index_t relu_mask(const float* x, float* y, std::uint8_t* mask, index_t b, index_t e) {
#if SUPCON_GEMM_AVX2
  if (enabled()) return relu_mask_16(x, y, mask, b, e);
#endif
  (void)x, (void)y, (void)mask, (void)e;
  return b;
}
inline index_t add_relu_mask(float* a, const float* b, std::uint8_t* mask, index_t lo, index_t hi) {
#if SUPCON_GEMM_AVX2
  if (enabled()) return add_relu_mask_16(a, b, mask, lo, hi);
#endif
  (void)a, (void)b, (void)mask, (void)hi;
  return lo;
}
inline index_t affine_relu_mask(const float* x, const float* skip, float* y, std::uint8_t* mask, index_t n,
                                float scale, float shift) {
#if SUPCON_GEMM_AVX2
  if (enabled()) return affine_relu_mask_16(x, skip, y, mask, n, scale, shift);
#endif
  (void)x, (void)skip, (void)y, (void)mask, (void)n, (void)scale, (void)shift;
  return 0;
}
inline index_t mask_grad(const float* dy, const std::uint8_t* mask, float* dx, index_t b, index_t e, bool add) {
#if SUPCON_GEMM_AVX2
  if (enabled()) return mask_grad_16(dy, mask, dx, b, e, add);
#endif
  (void)dy, (void)mask, (void)dx, (void)e, (void)add;
  return b;
}
inline index_t batchnorm_dx_mask(const float* dy, const std::uint8_t* mask, const float* x, float* dx, index_t n,
                                 float a, float k, float mu, float c) {
#if SUPCON_GEMM_AVX2
  if (enabled()) return batchnorm_dx_mask_16(dy, mask, x, dx, n, a, k, mu, c);
#endif
  (void)dy, (void)mask, (void)x, (void)dx, (void)n, (void)a, (void)k, (void)mu, (void)c;
  return 0;
}

inline index_t grad_sums_mask(const float* dy, const std::uint8_t* mask, const float* x, float mu, index_t n,
                              float& s1, float& s2) {
#if SUPCON_GEMM_AVX2
  if (enabled()) return grad_sums_mask_16(dy, mask, x, mu, n, s1, s2);
#endif
  (void)dy, (void)mask, (void)x, (void)mu, (void)n, (void)s1, (void)s2;
  return 0;
}

}  // namespace supcon::ops::detail::avx512
