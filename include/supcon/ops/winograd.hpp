#pragma once
/// \file winograd.hpp
/// 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3)
/// (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
///
/// A 2x2 block of outputs depends on a 4x4 tile d of the (padded) input. With
///   U = G g G^T (4x4, per weight g),  V = B^T d B (4x4, per input tile),
/// the block is Y = A^T (U .* V) A: 16 multiplications instead of 36. Summed
/// over input channels, each of the 16 positions xi of the 4x4 grid becomes a
/// matrix product  M[xi] (OC, T) = U[xi] (OC, C) V[xi] (C, T)  over T tiles,
/// so the convolution is 16 GEMMs with 2.25 times fewer flops than im2col's
/// one, plus cheap transforms. The matrices (exact in binary: entries 0, +-1,
/// +-1/2):
///
///   B^T = [1  0 -1  0]    G = [ 1    0    0 ]    A^T = [1 1  1  0]
///         [0  1  1  0]        [1/2  1/2  1/2]          [0 1 -1 -1]
///         [0 -1  1  0]        [1/2 -1/2  1/2]
///         [0  1  0 -1]        [ 0    0    1 ]
///
/// Backward, exactly the gradient of the convolution:
/// - dx is the convolution of dy with the weights flipped and transposed,
///   g'[c, oc] = rot180(g[oc, c]), padding 2 - p: the same algorithm again.
/// - dW: from y = A^T (U .* V) A, dU = sum over tiles of (A dY A^T) .* V, a
///   product  dU[xi] (OC, C) += Z[xi] (OC, T) V[xi]^T  with Z = A dY A^T, and
///   dg = G^T dU G.
/// Output positions past OH or OW (odd sizes) are computed and dropped in the
/// forward; in the backward their dy is zero, so the gradient stays exact.
///
/// Shapes as in conv2d.hpp: x (N, C, H, W), weight (OC, C, 3, 3), y (N, OC, OH, OW)
/// with OH = H + 2p - 2. Tested against the direct loops in
/// tests/ops_winograd.test.cpp.

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "supcon/core/gemm.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/ops/im2col.hpp"

namespace supcon::ops {

/// Work buffers of the Winograd path, kept by the caller between calls.
template <class T>
struct WinogradWorkspace {
  Tensor<T> u;     ///< (16, OC, C) transformed weights, in the product's panels when packed_products
  Tensor<T> v;     ///< (threads, 16, C, T) transformed input tiles of one block (T rounded up to panels)
  Tensor<T> m;     ///< (threads, 16, OC, T) products, or Z = A dY A^T in the backward
  Tensor<T> du;    ///< (threads, 16, OC, C) partial weight gradients
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

/// Layout of the work of split_channel: each of its 8 arrays holds (TH + 1)
/// TW entries and a group of 8 of slack, and its padded row 2 TW + 2 entries
/// rounded up, so that the copies below run in whole groups of 8.
inline index_t split_stride(index_t TH, index_t TW) { return (TH + 1) * TW + 8; }
inline index_t split_row_len(index_t TW) { return 2 * ((TW + 7) / 8 * 8) + 4; }
/// Entries of per-thread work the transforms need (the outputs' 4 P fit too).
inline index_t work_len(index_t TH, index_t TW) {
  return 8 * split_stride(TH, TW) + (2 * TH + 3) * split_row_len(TW);
}

/// How a batch is cut: TH x TW tiles (2x2 output blocks) per image, P of
/// them; B images per block, about 256 tiles per product but never fewer
/// blocks than threads; Tmax = B P columns, Tpad that rounded up to whole
/// panels of the product; work_len entries of per-thread work of the transforms.
struct Blocks {
  index_t TH, TW, P, B, blocks, Tmax, Tpad, work_len;
};

/// Whether the 16 products run on operands the transforms write in the
/// kernel's panel layouts (gemm_packed): U once per call, V once per block,
/// so that no product packs anything. Float on a CPU with the kernel.
template <class T>
bool packed_products() {
  return gemm_available<T>();
}

/// Columns of the products rounded up to whole panels (one row of a packed B).
inline index_t padded_tiles(index_t L) { return gemm_packed_b_len(1, L); }

/// The blocks of N images with (OH, OW) outputs; sizes the per-thread buffers
/// of C input and OC output channels.
template <class T>
Blocks plan(index_t N, index_t C, index_t OC, index_t OH, index_t OW, WinogradWorkspace<T>& ws) {
  Blocks k{};
  k.TH = (OH + 1) / 2, k.TW = (OW + 1) / 2, k.P = k.TH * k.TW;
  const int threads = max_threads();
  k.B = std::min(std::max<index_t>(1, (256 + k.P - 1) / k.P), std::max<index_t>(1, (N + threads - 1) / threads));
  k.blocks = (N + k.B - 1) / k.B, k.Tmax = k.B * k.P, k.Tpad = padded_tiles(k.Tmax);
  k.work_len = work_len(k.TH, k.TW);
  ws.v.resize({threads, 16 * C * k.Tpad});
  ws.m.resize({threads, 16 * OC * k.Tmax});
  ws.work.resize({threads, k.work_len});
  return k;
}

/// Entries of one transformed weight matrix U[xi] (rows, cols).
inline index_t weight_plane(index_t rows, index_t cols, bool packed) {
  return packed ? gemm_packed_a_len(rows, cols) : rows * cols;
}

/// U[xi][o][c] = (G g G^T)[xi] for g = weight[o, c] (OC, C, 3, 3); with
/// `flip`, the weights of the data gradient: U[xi][c][o] from rot180(weight[o, c]).
/// Each U[xi] is row-major, or with `packed` in the panel layout of gemm_packed's
/// A, weight_plane entries apart.
template <class T>
void transform_weights(const T* weight, index_t OC, index_t C, bool flip, bool packed, T* U) {
  const index_t rows = flip ? C : OC, cols = flip ? OC : C, plane = weight_plane(rows, cols, packed);
  if (packed && rows % gemm_panel_rows != 0)  // the last panel's rows past `rows` are zero
    for (index_t xi = 0; xi < 16; ++xi)
      std::fill(U + xi * plane + rows / gemm_panel_rows * gemm_panel_rows * cols, U + (xi + 1) * plane, T(0));
  // along rows of U, so that its entries are written in order within each plane
#pragma omp parallel for schedule(static)
  for (index_t r = 0; r < rows; ++r)
    for (index_t col = 0; col < cols; ++col) {
      const index_t o = flip ? col : r, c = flip ? r : col;
      const T* g = weight + (o * C + c) * 9;
      T k[3][3];
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) k[i][j] = flip ? g[(2 - i) * 3 + (2 - j)] : g[i * 3 + j];
      T gk[4][3];  // G k
      for (int j = 0; j < 3; ++j) {
        gk[0][j] = k[0][j];
        gk[1][j] = T(0.5) * (k[0][j] + k[1][j] + k[2][j]);
        gk[2][j] = T(0.5) * (k[0][j] - k[1][j] + k[2][j]);
        gk[3][j] = k[2][j];
      }
      T* u = U + (packed ? gemm_packed_a_index(r, col, cols) : r * cols + col);
      for (int i = 0; i < 4; ++i) {  // (G k) G^T
        u[(4 * i + 0) * plane] = gk[i][0];
        u[(4 * i + 1) * plane] = T(0.5) * (gk[i][0] + gk[i][1] + gk[i][2]);
        u[(4 * i + 2) * plane] = T(0.5) * (gk[i][0] - gk[i][1] + gk[i][2]);
        u[(4 * i + 3) * plane] = gk[i][2];
      }
    }
}

#if SUPCON_GEMM_AVX2
/// One padded row's four splits, in groups of 8 entries: out[2 b + s][k] =
/// row[2 (k + s) + b] for k < 8 groups, two loads, a shuffle and a lane
/// permute per 8 (compilers leave this stride-2 copy mostly scalar).
__attribute__((target("avx2"))) inline void split_row_avx2(const float* row, index_t groups, float* const out[4]) {
  for (index_t g = 0; g < groups; ++g) {
    const index_t k = 8 * g;
    for (index_t s = 0; s < 2; ++s) {
      const __m256 lo = _mm256_loadu_ps(row + 2 * (k + s)), hi = _mm256_loadu_ps(row + 2 * (k + s) + 8);
      // per 128-bit lane (lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6), then the 64-bit pairs in order
      const __m256 even = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
      const __m256 odd = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
      constexpr int order = _MM_SHUFFLE(3, 1, 2, 0);
      _mm256_storeu_ps(out[s] + k, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), order)));
      _mm256_storeu_ps(out[2 + s] + k, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(odd), order)));
    }
  }
}
#endif

/// The padded input of one channel split by row parity a, column parity b and
/// a shift s of one column pair: S[a][b][s][q TW + k] = d[2q + a][2(k + s) + b]
/// for q in [0, TH], k in [0, TW), d the zero-padded channel, the arrays
/// split_stride apart. Tile t = ty TW + tx then reads its entry d[2 ty + i]
/// [2 tx + j] at S[i & 1][j & 1][j >> 1][t + (i >> 1) TW]: every load of the
/// transform is unit-stride in t, so one vector loop runs over all P tiles of
/// the channel (the maps of the deep layers are too narrow for a loop over
/// one tile row). The channel's rows are first all copied into `padded`
/// (2 TH + 2 rows of split_row_len), whose entries outside the map are zero
/// on entry and stay so: split right after each row's copy, the strided
/// loads would straddle the copy's stores, which the CPU cannot forward.
/// `zeros` (split_row_len) is zero.
template <class T>
void split_channel(const T* xc, index_t H, index_t W, index_t pad, index_t TH, index_t TW, T* S, T* padded,
                   const T* zeros) {
  const index_t SS = split_stride(TH, TW), RL = split_row_len(TW);
  for (index_t h = 0; h < std::min(H, 2 * TH + 2 - pad); ++h)
    std::copy(xc + h * W, xc + (h + 1) * W, padded + (h + pad) * RL + pad);
  for (index_t r = 0; r < 2 * TH + 2; ++r) {
    const index_t h = r - pad, a = r & 1, q = r >> 1;
    const T* row = h >= 0 && h < H ? padded + r * RL : zeros;
#if SUPCON_GEMM_AVX2
    if constexpr (std::is_same_v<T, float>) {
      if (supcon::detail::gemm::cpu_has_avx2_fma()) {
        T* const out[4] = {S + (a * 4 + 0) * SS + q * TW, S + (a * 4 + 1) * SS + q * TW,
                           S + (a * 4 + 2) * SS + q * TW, S + (a * 4 + 3) * SS + q * TW};
        split_row_avx2(row, (TW + 7) / 8, out);
        continue;
      }
    }
#endif
    for (index_t b = 0; b < 2; ++b)
      for (index_t s = 0; s < 2; ++s) {
        // whole groups of 8: past TW they spill into row q + 1, written later, or the slack
        T* dst = S + ((a * 2 + b) * 2 + s) * SS + q * TW;
        const T* src = row + 2 * s + b;
        for (index_t k0 = 0; k0 < TW; k0 += 8)
#pragma omp simd
          for (index_t k = k0; k < k0 + 8; ++k) dst[k] = src[2 * k];
      }
  }
}

/// V[xi][c][t0 + t] = (B^T d B)[xi] for every 4x4 tile d of one image's
/// channels (C, H, W), zero-padded by `pad`; tile t = ty * TW + tx starts at
/// row 2 ty - pad, column 2 tx - pad. `ldv` = columns of V (tiles of the
/// block); each V[xi] (C, ldv) is row-major, or with `panels` in the panel
/// layout of gemm_packed's B (C * padded_tiles(ldv) entries). `work` holds
/// work_len(TH, TW) entries.
template <class T>
void transform_input(const T* x, index_t C, index_t H, index_t W, index_t pad, index_t TH, index_t TW,
                     T* V, index_t ldv, index_t t0, T* work, bool panels) {
  const index_t P = TH * TW, SS = split_stride(TH, TW), plane = C * (panels ? padded_tiles(ldv) : ldv);
  T *S = work, *padded = work + 8 * SS, *zeros = padded + (2 * TH + 2) * split_row_len(TW);
  std::fill(padded, zeros + split_row_len(TW), T(0));
  for (index_t c = 0; c < C; ++c) {
    split_channel(x + c * H * W, H, W, pad, TH, TW, S, padded, zeros);
    // d_ij(t) for row i = 2 qi + a, column j = 2 s + b
    const T *e00 = S, *e01 = S + SS, *o00 = S + 2 * SS, *o01 = S + 3 * SS;  // a = 0: (b, s)
    const T *e10 = S + 4 * SS, *e11 = S + 5 * SS, *o10 = S + 6 * SS, *o11 = S + 7 * SS;  // a = 1
    // tiles s .. s + n - 1, tile s + i's entry xi at out[xi plane + i]
    const auto tiles = [&](index_t s, index_t n, T* out) {
#pragma omp simd
      for (index_t i = 0; i < n; ++i) {
        const index_t t = s + i;
        // d_ij, columns j = 0..3 are (b, s) = (0, 0), (1, 0), (0, 1), (1, 1)
        const T d00 = e00[t], d01 = o00[t], d02 = e01[t], d03 = o01[t];
        const T d10 = e10[t], d11 = o10[t], d12 = e11[t], d13 = o11[t];
        const T d20 = e00[t + TW], d21 = o00[t + TW], d22 = e01[t + TW], d23 = o01[t + TW];
        const T d30 = e10[t + TW], d31 = o10[t + TW], d32 = e11[t + TW], d33 = o11[t + TW];
        // B^T d: rows 0 - 2, 1 + 2, 2 - 1, 1 - 3, then the same on columns
        const T a0 = d00 - d20, a1 = d01 - d21, a2 = d02 - d22, a3 = d03 - d23;
        const T b0 = d10 + d20, b1 = d11 + d21, b2 = d12 + d22, b3 = d13 + d23;
        const T c0 = d20 - d10, c1 = d21 - d11, c2 = d22 - d12, c3 = d23 - d13;
        const T f0 = d10 - d30, f1 = d11 - d31, f2 = d12 - d32, f3 = d13 - d33;
        out[0 * plane + i] = a0 - a2, out[1 * plane + i] = a1 + a2, out[2 * plane + i] = a2 - a1,
        out[3 * plane + i] = a1 - a3;
        out[4 * plane + i] = b0 - b2, out[5 * plane + i] = b1 + b2, out[6 * plane + i] = b2 - b1,
        out[7 * plane + i] = b1 - b3;
        out[8 * plane + i] = c0 - c2, out[9 * plane + i] = c1 + c2, out[10 * plane + i] = c2 - c1,
        out[11 * plane + i] = c1 - c3;
        out[12 * plane + i] = f0 - f2, out[13 * plane + i] = f1 + f2, out[14 * plane + i] = f2 - f1,
        out[15 * plane + i] = f1 - f3;
      }
    };
    if (!panels) {
      tiles(0, P, V + c * ldv + t0);
      continue;
    }
    for (index_t s = 0; s < P;) {  // a run of tiles within one panel is contiguous
      const index_t g = t0 + s, n = std::min(P - s, gemm_panel_cols - g % gemm_panel_cols);
      tiles(s, n, V + gemm_packed_b_index(c, g, C));
      s += n;
    }
  }
}

/// Zeroes the columns of the last panel of each V[xi] (C, L) past L, which
/// the products read and never store.
template <class T>
void zero_panel_tails(T* V, index_t C, index_t L) {
  const index_t Lp = padded_tiles(L);
  if (Lp == L) return;
  for (index_t xi = 0; xi < 16; ++xi)
    for (index_t c = 0; c < C; ++c) {
      T* last = V + xi * C * Lp + gemm_packed_b_index(c, L, C);
      std::fill(last, last + (Lp - L), T(0));
    }
}

/// y[o] (OH, OW) of one image = A^T M[.][o][t0 + t] A for each tile, plus bias.
/// One vector loop over the P tiles writes the four entries of each 2x2 block
/// to four arrays of `work`; they are then interleaved into y's rows, cropped
/// at odd edges.
template <class T>
void transform_output(const T* M, index_t ldm, index_t OC, index_t t0, index_t TH, index_t TW, const T* bias,
                      T* y, index_t OH, index_t OW, T* work) {
  const index_t P = TH * TW, plane = OC * ldm;
  T *y00 = work, *y01 = work + P, *y10 = work + 2 * P, *y11 = work + 3 * P;  // block entry (row, column)
  for (index_t o = 0; o < OC; ++o) {
    const T b = bias ? bias[o] : T(0);
    const T* m = M + o * ldm + t0;
#pragma omp simd
    for (index_t t = 0; t < P; ++t) {
      T s[4][2];  // M A: per row i, columns 0 + 1 + 2 and 1 - 2 - 3
      for (int i = 0; i < 4; ++i) {
        const T* mi = m + 4 * i * plane + t;
        s[i][0] = mi[0] + mi[plane] + mi[2 * plane];
        s[i][1] = mi[plane] - mi[2 * plane] - mi[3 * plane];
      }
      // A^T (M A)
      y00[t] = s[0][0] + s[1][0] + s[2][0] + b, y01[t] = s[0][1] + s[1][1] + s[2][1] + b;
      y10[t] = s[1][0] - s[2][0] - s[3][0] + b, y11[t] = s[1][1] - s[2][1] - s[3][1] + b;
    }
    T* yo = y + o * OH * OW;
    for (index_t r = 0; r < OH; ++r) {
      const T* ev = ((r & 1) ? y10 : y00) + (r >> 1) * TW;
      const T* od = ((r & 1) ? y11 : y01) + (r >> 1) * TW;
      T* dst = yo + r * OW;
      for (index_t tx = 0; tx < OW / 2; ++tx) dst[2 * tx] = ev[tx], dst[2 * tx + 1] = od[tx];
      if (OW & 1) dst[OW - 1] = ev[TW - 1];
    }
  }
}

/// Z[xi][o][t0 + t] = (A dY A^T)[xi] for each 2x2 block dY of one image's
/// dy (OC, OH, OW), zero past the edges. The blocks' four entries are first
/// gathered into four arrays of `work`, so that the transform is one vector
/// loop over the P tiles.
template <class T>
void transform_output_grad(const T* dy, index_t OC, index_t OH, index_t OW, index_t TH, index_t TW, T* Z,
                           index_t ldz, index_t t0, T* work) {
  const index_t P = TH * TW, plane = OC * ldz;
  T *g00 = work, *g01 = work + P, *g10 = work + 2 * P, *g11 = work + 3 * P;
  for (index_t o = 0; o < OC; ++o) {
    const T* src = dy + o * OH * OW;
    for (index_t r = 0; r < 2 * TH; ++r) {
      T* ev = ((r & 1) ? g10 : g00) + (r >> 1) * TW;
      T* od = ((r & 1) ? g11 : g01) + (r >> 1) * TW;
      if (r >= OH) {
        std::fill(ev, ev + TW, T(0)), std::fill(od, od + TW, T(0));
        continue;
      }
      const T* s = src + r * OW;
      for (index_t tx = 0; tx < OW / 2; ++tx) ev[tx] = s[2 * tx], od[tx] = s[2 * tx + 1];
      if (OW & 1) ev[TW - 1] = s[OW - 1], od[TW - 1] = T(0);
    }
    T* z = Z + o * ldz + t0;
#pragma omp simd
    for (index_t t = 0; t < P; ++t) {
      // A g: rows (g0, g0 + g1, g0 - g1, -g1), then the same on columns
      const T p0 = g00[t], p1 = g01[t], q0 = g10[t], q1 = g11[t];
      const T r[4][2] = {{p0, p1}, {p0 + q0, p1 + q1}, {p0 - q0, p1 - q1}, {-q0, -q1}};
      for (int i = 0; i < 4; ++i) {
        T* zi = z + 4 * i * plane + t;
        zi[0] = r[i][0];
        zi[plane] = r[i][0] + r[i][1];
        zi[2 * plane] = r[i][0] - r[i][1];
        zi[3 * plane] = -r[i][1];
      }
    }
  }
}

/// dweight[o, c] += G^T dU[.][o][c] G for every (o, c).
template <class T>
void accumulate_weight_grad(const T* dU, index_t OC, index_t C, T* dweight) {
  const index_t plane = OC * C;
#pragma omp parallel for schedule(static)
  for (index_t o = 0; o < OC; ++o)
    for (index_t c = 0; c < C; ++c) {
      T h[4][3];  // dU G, per row: columns 0 + (1 + 2)/2, (1 - 2)/2, (1 + 2)/2 + 3
      for (int i = 0; i < 4; ++i) {
        const T* u = dU + 4 * i * plane + o * C + c;
        h[i][0] = u[0] + T(0.5) * (u[plane] + u[2 * plane]);
        h[i][1] = T(0.5) * (u[plane] - u[2 * plane]);
        h[i][2] = T(0.5) * (u[plane] + u[2 * plane]) + u[3 * plane];
      }
      T* g = dweight + (o * C + c) * 9;
      for (int j = 0; j < 3; ++j) {  // G^T (dU G)
        g[0 * 3 + j] += h[0][j] + T(0.5) * (h[1][j] + h[2][j]);
        g[1 * 3 + j] += T(0.5) * (h[1][j] - h[2][j]);
        g[2 * 3 + j] += T(0.5) * (h[1][j] + h[2][j]) + h[3][j];
      }
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

/// Calls f(n0, nb, L, V, M, work) for every block of the plan k over N images
/// (first image n0, nb images, L = nb P tiles), OpenMP over blocks; V, M and
/// work are the calling thread's buffers, sized by plan for C and OC channels.
template <class T, class F>
void for_each_block(const Blocks& k, index_t N, index_t C, index_t OC, WinogradWorkspace<T>& ws, const F& f) {
#pragma omp parallel for schedule(static)
  for (index_t blk = 0; blk < k.blocks; ++blk) {
    const int t = thread_index();
    const index_t n0 = blk * k.B, nb = std::min(k.B, N - n0);
    f(n0, nb, nb * k.P, ws.v.data() + t * 16 * C * k.Tpad, ws.m.data() + t * 16 * OC * k.Tmax,
      ws.work.data() + t * k.work_len);
  }
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
/// `pad`, with transformed weights U (16, OC, C) from transform_weights(...,
/// packed_products<T>(), U), plus bias (OC,) or null. OpenMP over blocks of
/// images; each block's 16 products on one thread.
template <class T>
void convolve(const T* in, index_t N, index_t C, index_t H, index_t W, index_t pad, const T* U, index_t OC,
              const T* bias, T* out, WinogradWorkspace<T>& ws) {
  const index_t OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
  const Blocks k = plan(N, C, OC, OH, OW, ws);
  const bool packed = packed_products<T>();
  const index_t uplane = weight_plane(OC, C, packed);
  for_each_block(k, N, C, OC, ws, [&](index_t n0, index_t nb, index_t L, T* V, T* M, T* work) {
    for (index_t b = 0; b < nb; ++b)
      transform_input(in + (n0 + b) * C * H * W, C, H, W, pad, k.TH, k.TW, V, L, b * k.P, work, packed);
    // M[xi] (OC, L) = U[xi] (OC, C) V[xi] (C, L)
    if (packed) {
      zero_panel_tails(V, C, L);
      for (index_t xi = 0; xi < 16; ++xi)
        packed_product(OC, L, C, U + xi * uplane, V + xi * C * padded_tiles(L), M + xi * OC * L);
    } else {
      for (index_t xi = 0; xi < 16; ++xi)
        product(OC, L, C, U + xi * OC * C, V + xi * C * L, false, M + xi * OC * L, false);
    }
    for (index_t b = 0; b < nb; ++b)
      transform_output(M, L, OC, b * k.P, k.TH, k.TW, bias, out + (n0 + b) * OC * OH * OW, OH, OW, work);
  });
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
  const bool packed = detail::winograd::packed_products<T>();
  ws.u.resize({16, detail::winograd::weight_plane(OC, C, packed)});
  detail::winograd::transform_weights(weight.data(), OC, C, false, packed, ws.u.data());
  detail::winograd::convolve(x.data(), N, C, H, W, padding, ws.u.data(), OC, bias ? bias->data() : nullptr,
                             y.data(), ws);
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
  const bool packed = wg::packed_products<T>();
  ws.u.resize({16, wg::weight_plane(C, OC, packed)});
  wg::transform_weights(weight.data(), OC, C, true, packed, ws.u.data());
  wg::convolve(dy.data(), N, OC, OH, OW, 2 - padding, ws.u.data(), C, static_cast<const T*>(nullptr), dx.data(),
               ws);

  // forward: Y = A^T (U .* V) A, U = G g G^T  =>  dU = sum_t (A dY A^T) .* V, dg = G^T dU G
  const wg::Blocks k = wg::plan(N, C, OC, OH, OW, ws);
  const int threads = max_threads();
  ws.du.resize({threads, 16 * OC * C});
  ws.du.zero();
  // Z is thread t's product buffer
  wg::for_each_block(k, N, C, OC, ws, [&](index_t n0, index_t nb, index_t L, T* V, T* Z, T* work) {
    for (index_t b = 0; b < nb; ++b) {
      wg::transform_input(x.data() + (n0 + b) * C * H * W, C, H, W, padding, k.TH, k.TW, V, L, b * k.P, work,
                          false);
      wg::transform_output_grad(dy.data() + (n0 + b) * OC * OH * OW, OC, OH, OW, k.TH, k.TW, Z, L, b * k.P, work);
    }
    // dU[xi] (OC, C) += Z[xi] (OC, L) V[xi]^T (L, C)
    T* dU = ws.du.data() + thread_index() * 16 * OC * C;
    for (index_t xi = 0; xi < 16; ++xi)
      wg::product(OC, C, L, Z + xi * OC * L, V + xi * C * L, true, dU + xi * OC * C, true);
  });
  VectorMap<T> du_sum(ws.du.data(), 16 * OC * C);
  for (int t = 1; t < threads; ++t) du_sum += ConstVectorMap<T>(ws.du.data() + t * 16 * OC * C, 16 * OC * C);
  wg::accumulate_weight_grad(ws.du.data(), OC, C, dweight.data());
  // forward: y[n, oc, :] += bias[oc]  =>  dbias[oc] += sum over n and positions of dy
  if (dbias)
    for (index_t n = 0; n < N; ++n)
      dbias->vec() += ConstMatrixMap<T>(dy.data() + n * OC * OH * OW, OC, OH * OW).rowwise().sum();
}

}  // namespace supcon::ops
