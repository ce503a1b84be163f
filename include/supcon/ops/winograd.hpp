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

#include "supcon/core/gemm.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/ops/im2col.hpp"

namespace supcon::ops {

/// Work buffers of the Winograd path, kept by the caller between calls.
template <class T>
struct WinogradWorkspace {
  Tensor<T> u;     ///< (16, OC, C) transformed weights
  Tensor<T> v;     ///< (threads, 16, C, T) transformed input tiles of one block
  Tensor<T> m;     ///< (threads, 16, OC, T) products, or Z = A dY A^T in the backward
  Tensor<T> du;    ///< (threads, 16, OC, C) partial weight gradients
  Tensor<T> rows;  ///< (threads, 4, row length) zero-padded input rows
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

/// How a batch is cut: TH x TW tiles (2x2 output blocks) per image, P of
/// them; B images per block, about 256 tiles per product but never fewer
/// blocks than threads; Tmax = B P columns; row_len entries of padded rows.
struct Blocks {
  index_t TH, TW, P, B, blocks, Tmax, row_len;
};

/// The blocks of N images with (OH, OW) outputs; sizes the per-thread buffers
/// of C input and OC output channels.
template <class T>
Blocks plan(index_t N, index_t C, index_t OC, index_t OH, index_t OW, WinogradWorkspace<T>& ws) {
  Blocks k{};
  k.TH = (OH + 1) / 2, k.TW = (OW + 1) / 2, k.P = k.TH * k.TW;
  const int threads = max_threads();
  k.B = std::min(std::max<index_t>(1, (256 + k.P - 1) / k.P), std::max<index_t>(1, (N + threads - 1) / threads));
  k.blocks = (N + k.B - 1) / k.B, k.Tmax = k.B * k.P, k.row_len = 4 * (2 * k.TW + 2);
  ws.v.resize({threads, 16 * C * k.Tmax});
  ws.m.resize({threads, 16 * OC * k.Tmax});
  ws.rows.resize({threads, k.row_len});
  return k;
}

/// U[xi][o][c] = (G g G^T)[xi] for g = weight[o, c] (OC, C, 3, 3); with
/// `flip`, the weights of the data gradient: U[xi][c][o] from rot180(weight[o, c]).
template <class T>
void transform_weights(const T* weight, index_t OC, index_t C, bool flip, T* U) {
  const index_t rows = flip ? C : OC, cols = flip ? OC : C;
#pragma omp parallel for schedule(static)
  for (index_t o = 0; o < OC; ++o)
    for (index_t c = 0; c < C; ++c) {
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
      const index_t at = flip ? c * cols + o : o * cols + c;
      for (int i = 0; i < 4; ++i) {  // (G k) G^T
        T* u = U + i * 4 * rows * cols + at;
        u[0 * rows * cols] = gk[i][0];
        u[1 * rows * cols] = T(0.5) * (gk[i][0] + gk[i][1] + gk[i][2]);
        u[2 * rows * cols] = T(0.5) * (gk[i][0] - gk[i][1] + gk[i][2]);
        u[3 * rows * cols] = gk[i][2];
      }
    }
}

/// V[xi][c][t0 + t] = (B^T d B)[xi] for every 4x4 tile d of one image's
/// channels (C, H, W), zero-padded by `pad`; tile t = ty * TW + tx starts at
/// row 2 ty - pad, column 2 tx - pad. `ldv` = columns of V (tiles of the block);
/// `rows` holds 4 padded rows of 2 TW + 2 entries.
template <class T>
void transform_input(const T* x, index_t C, index_t H, index_t W, index_t pad, index_t TH, index_t TW,
                     T* V, index_t ldv, index_t t0, T* rows) {
  const index_t len = 2 * TW + 2, plane = C * ldv;
  for (index_t c = 0; c < C; ++c) {
    const T* xc = x + c * H * W;
    for (index_t ty = 0; ty < TH; ++ty) {
      for (index_t i = 0; i < 4; ++i) {
        T* r = rows + i * len;
        const index_t h = 2 * ty - pad + i;
        std::fill(r, r + len, T(0));
        if (h < 0 || h >= H) continue;
        const index_t lo = std::max<index_t>(0, pad), hi = std::min<index_t>(len, W + pad);
        std::copy(xc + h * W + (lo - pad), xc + h * W + (hi - pad), r + lo);
      }
      const T *r0 = rows, *r1 = rows + len, *r2 = rows + 2 * len, *r3 = rows + 3 * len;
      T* out = V + c * ldv + t0 + ty * TW;
#pragma omp simd
      for (index_t tx = 0; tx < TW; ++tx) {
        const index_t j = 2 * tx;
        // B^T d: rows 0 - 2, 1 + 2, 2 - 1, 1 - 3, then the same on columns
        const T a0 = r0[j] - r2[j], a1 = r0[j + 1] - r2[j + 1], a2 = r0[j + 2] - r2[j + 2], a3 = r0[j + 3] - r2[j + 3];
        const T b0 = r1[j] + r2[j], b1 = r1[j + 1] + r2[j + 1], b2 = r1[j + 2] + r2[j + 2], b3 = r1[j + 3] + r2[j + 3];
        const T c0 = r2[j] - r1[j], c1 = r2[j + 1] - r1[j + 1], c2 = r2[j + 2] - r1[j + 2], c3 = r2[j + 3] - r1[j + 3];
        const T d0 = r1[j] - r3[j], d1 = r1[j + 1] - r3[j + 1], d2 = r1[j + 2] - r3[j + 2], d3 = r1[j + 3] - r3[j + 3];
        out[0 * plane + tx] = a0 - a2, out[1 * plane + tx] = a1 + a2, out[2 * plane + tx] = a2 - a1,
        out[3 * plane + tx] = a1 - a3;
        out[4 * plane + tx] = b0 - b2, out[5 * plane + tx] = b1 + b2, out[6 * plane + tx] = b2 - b1,
        out[7 * plane + tx] = b1 - b3;
        out[8 * plane + tx] = c0 - c2, out[9 * plane + tx] = c1 + c2, out[10 * plane + tx] = c2 - c1,
        out[11 * plane + tx] = c1 - c3;
        out[12 * plane + tx] = d0 - d2, out[13 * plane + tx] = d1 + d2, out[14 * plane + tx] = d2 - d1,
        out[15 * plane + tx] = d1 - d3;
      }
    }
  }
}

/// y[o] (OH, OW) of one image = A^T M[.][o][t0 + t] A for each tile, plus bias;
/// `rows` holds 2 rows of 2 TW entries (the blocks of a tile row before cropping).
template <class T>
void transform_output(const T* M, index_t ldm, index_t OC, index_t t0, index_t TH, index_t TW, const T* bias,
                      T* y, index_t OH, index_t OW, T* rows) {
  const index_t plane = OC * ldm;
  for (index_t o = 0; o < OC; ++o) {
    const T b = bias ? bias[o] : T(0);
    for (index_t ty = 0; ty < TH; ++ty) {
      const T* m = M + o * ldm + t0 + ty * TW;
      T *y0 = rows, *y1 = rows + 2 * TW;
#pragma omp simd
      for (index_t tx = 0; tx < TW; ++tx) {
        T s[4][2];  // M A: per row i, columns 0 + 1 + 2 and 1 - 2 - 3
        for (int i = 0; i < 4; ++i) {
          const T* mi = m + 4 * i * plane + tx;
          s[i][0] = mi[0] + mi[plane] + mi[2 * plane];
          s[i][1] = mi[plane] - mi[2 * plane] - mi[3 * plane];
        }
        for (int k = 0; k < 2; ++k) {  // A^T (M A)
          y0[2 * tx + k] = s[0][k] + s[1][k] + s[2][k] + b;
          y1[2 * tx + k] = s[1][k] - s[2][k] - s[3][k] + b;
        }
      }
      T* yo = y + (o * OH + 2 * ty) * OW;
      std::copy(y0, y0 + OW, yo);
      if (2 * ty + 1 < OH) std::copy(y1, y1 + OW, yo + OW);
    }
  }
}

/// Z[xi][o][t0 + t] = (A dY A^T)[xi] for each 2x2 block dY of one image's
/// dy (OC, OH, OW), zero past the edges; `rows` holds 2 rows of 2 TW entries.
template <class T>
void transform_output_grad(const T* dy, index_t OC, index_t OH, index_t OW, index_t TH, index_t TW, T* Z,
                           index_t ldz, index_t t0, T* rows) {
  const index_t plane = OC * ldz;
  for (index_t o = 0; o < OC; ++o)
    for (index_t ty = 0; ty < TH; ++ty) {
      T *g0 = rows, *g1 = rows + 2 * TW;
      std::fill(g0, g0 + 4 * TW, T(0));
      const T* src = dy + (o * OH + 2 * ty) * OW;
      std::copy(src, src + OW, g0);
      if (2 * ty + 1 < OH) std::copy(src + OW, src + 2 * OW, g1);
      T* z = Z + o * ldz + t0 + ty * TW;
#pragma omp simd
      for (index_t tx = 0; tx < TW; ++tx) {
        // A g: rows (g0, g0 + g1, g0 - g1, -g1), then the same on columns
        const T p0 = g0[2 * tx], p1 = g0[2 * tx + 1], q0 = g1[2 * tx], q1 = g1[2 * tx + 1];
        const T r[4][2] = {{p0, p1}, {p0 + q0, p1 + q1}, {p0 - q0, p1 - q1}, {-q0, -q1}};
        for (int i = 0; i < 4; ++i) {
          T* zi = z + 4 * i * plane + tx;
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

/// Calls f(n0, nb, L, V, M, rows) for every block of the plan k over N images
/// (first image n0, nb images, L = nb P tiles), OpenMP over blocks; V, M and
/// rows are the calling thread's buffers, sized by plan for C and OC channels.
template <class T, class F>
void for_each_block(const Blocks& k, index_t N, index_t C, index_t OC, WinogradWorkspace<T>& ws, const F& f) {
#pragma omp parallel for schedule(static)
  for (index_t blk = 0; blk < k.blocks; ++blk) {
    const int t = thread_index();
    const index_t n0 = blk * k.B, nb = std::min(k.B, N - n0);
    f(n0, nb, nb * k.P, ws.v.data() + t * 16 * C * k.Tmax, ws.m.data() + t * 16 * OC * k.Tmax,
      ws.rows.data() + t * k.row_len);
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

/// out (N, OC, OH, OW) = the 3x3 convolution of in (N, C, H, W), padding
/// `pad`, with transformed weights U (16, OC, C), plus bias (OC,) or null.
/// OpenMP over blocks of images; each block's 16 products on one thread.
template <class T>
void convolve(const T* in, index_t N, index_t C, index_t H, index_t W, index_t pad, const T* U, index_t OC,
              const T* bias, T* out, WinogradWorkspace<T>& ws) {
  const index_t OH = H + 2 * pad - 2, OW = W + 2 * pad - 2;
  const Blocks k = plan(N, C, OC, OH, OW, ws);
  for_each_block(k, N, C, OC, ws, [&](index_t n0, index_t nb, index_t L, T* V, T* M, T* rows) {
    for (index_t b = 0; b < nb; ++b)
      transform_input(in + (n0 + b) * C * H * W, C, H, W, pad, k.TH, k.TW, V, L, b * k.P, rows);
    // M[xi] (OC, L) = U[xi] (OC, C) V[xi] (C, L)
    for (index_t xi = 0; xi < 16; ++xi)
      product(OC, L, C, U + xi * OC * C, V + xi * C * L, false, M + xi * OC * L, false);
    for (index_t b = 0; b < nb; ++b)
      transform_output(M, L, OC, b * k.P, k.TH, k.TW, bias, out + (n0 + b) * OC * OH * OW, OH, OW, rows);
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
  y.resize({N, OC, OH, OW});
  ws.u.resize({16, OC, C});
  detail::winograd::transform_weights(weight.data(), OC, C, false, ws.u.data());
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
  dx.resize(x.shape());
  ws.u.resize({16, C, OC});
  wg::transform_weights(weight.data(), OC, C, true, ws.u.data());
  wg::convolve(dy.data(), N, OC, OH, OW, 2 - padding, ws.u.data(), C, static_cast<const T*>(nullptr), dx.data(),
               ws);

  // forward: Y = A^T (U .* V) A, U = G g G^T  =>  dU = sum_t (A dY A^T) .* V, dg = G^T dU G
  const wg::Blocks k = wg::plan(N, C, OC, OH, OW, ws);
  const int threads = max_threads();
  ws.du.resize({threads, 16 * OC * C});
  ws.du.zero();
  // Z is thread t's product buffer
  wg::for_each_block(k, N, C, OC, ws, [&](index_t n0, index_t nb, index_t L, T* V, T* Z, T* rows) {
    for (index_t b = 0; b < nb; ++b) {
      wg::transform_input(x.data() + (n0 + b) * C * H * W, C, H, W, padding, k.TH, k.TW, V, L, b * k.P, rows);
      wg::transform_output_grad(dy.data() + (n0 + b) * OC * OH * OW, OC, OH, OW, k.TH, k.TW, Z, L, b * k.P, rows);
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
