#pragma once
/// \file conv2d_vec.hpp
/// Strided convolutions with sixteen channels per AVX-512 vector, for
/// channel counts in multiples of 16. Each image is transposed once into a
/// zero-padded stage of (H + 2p) x (W + 2p) pixels of C channels; an output
/// pixel's window is then K K runs of C contiguous floats, copied as one
/// row of A (pixels, K K C); and the convolution is the product
///   Y (pixels, OC) = A W (K K C, OC)
/// of ops/winograd_vec.hpp, whose rows are transposed back into y's planes.
/// The backward undoes each step: dW += A^T dY, dA = dY W^T, and each row
/// of dA added back into a zeroed stage of dx over its window (col2im in
/// this layout, docs/backprop.md "Convolution as a product"), which is
/// transposed into dx's planes. Blocks of images as in conv2d.hpp, and the
/// weight gradient summed per run of blocks (for_each_run), so that it
/// does not depend on the threads.
///
/// conv2d.hpp takes this path for float 3x3 convolutions of stride 2 (see
/// usable): there the parity planes of im2col_stride2.hpp and the products
/// of a few output channels cost more than the flops. The plan and the
/// steps themselves take any K, stride and padding.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "supcon/config.hpp"
#include "supcon/ops/im2col.hpp"  // thread_index
#include "supcon/ops/winograd_vec.hpp"

namespace supcon::ops::detail::conv_vec {

namespace vec = winograd::vec;

/// Whether conv2d takes this path: 3x3 kernels of stride 2 from at most 128
/// channels. (Measured, docs/performance.md: 1x1 kernels gain nothing over
/// the direct products of im2col's strided rows, and from 256 channels
/// A's rows of 2,304 entries no longer stay in the cache.)
template <class T>
bool usable(index_t C, index_t OC, index_t K, index_t stride) {
  return stride == 2 && K == 3 && C <= 128 && vec::usable<T>(C, OC);
}

/// W (K K C, OC): row tap C + c, tap = i K + j, holds weight[., c, i, j];
/// or with `transposed`, (OC, K K C).
template <class T>
void arrange_weights(const T* weight, index_t OC, index_t C, index_t K, bool transposed, T* W) {
  const index_t taps = K * K, KC = taps * C;
  for (index_t o = 0; o < OC; ++o)
    for (index_t c = 0; c < C; ++c)
      for (index_t tap = 0; tap < taps; ++tap) {
        const T v = weight[(o * C + c) * taps + tap];
        if (transposed) W[o * KC + tap * C + c] = v;
        else W[(tap * C + c) * OC + o] = v;
      }
}

/// How a batch of (N, C, H, W) is cut, and where pixels go.
struct Plan {
  index_t N, C, H, W, OC, K, s, pad, OH, OW, P, PW, stage_len, KC, B, blocks, Lr;
  std::vector<index_t> at_in;   ///< pixel k of a map -> its pixel in the padded stage
  std::vector<index_t> rows;    ///< output pixel q -> stage pixel of its window's top-left corner
  std::vector<index_t> taps;    ///< tap -> its offset from the window's corner, in stage pixels
  std::vector<index_t> ident;   ///< q -> q (Y's rows as a pixel table)
};

/// The plan for x (N, C, H, W), OC outputs, a K x K kernel, stride s,
/// padding pad; blocks of about 128 output pixels, never fewer blocks than
/// threads; rows of A rounded up to R.
inline Plan plan(index_t N, index_t C, index_t H, index_t W, index_t OC, index_t K, index_t s, index_t pad,
                 index_t R) {
  Plan k;
  k.N = N, k.C = C, k.H = H, k.W = W, k.OC = OC, k.K = K, k.s = s, k.pad = pad;
  k.OH = (H + 2 * pad - K) / s + 1, k.OW = (W + 2 * pad - K) / s + 1, k.P = k.OH * k.OW;
  k.PW = W + 2 * pad, k.stage_len = (H + 2 * pad) * k.PW * C, k.KC = K * K * C;
  const int threads = max_threads();
  k.B = vec::images_per_block(N, k.P, threads);
  k.blocks = (N + k.B - 1) / k.B, k.Lr = (k.B * k.P + R - 1) / R * R;
  for (index_t p = 0; p < H * W; ++p) k.at_in.push_back((p / W + pad) * k.PW + p % W + pad);
  for (index_t q = 0; q < k.P; ++q) {
    k.rows.push_back(q / k.OW * s * k.PW + q % k.OW * s);
    k.ident.push_back(q);
  }
  for (index_t i = 0; i < K; ++i)
    for (index_t j = 0; j < K; ++j) k.taps.push_back(i * k.PW + j);
  return k;
}

#if SUPCON_GEMM_AVX2
/// Image x (C, H, W) into the padded stage (zero outside the map on entry).
inline void stage_image(const float* x, const Plan& k, float* stage) {
  const index_t HW = k.H * k.W;
  for (index_t g = 0; g < k.C; g += vec::kLanes)
    vec::planes_to_pixels(x + g * HW, HW, HW, k.at_in.data(), stage + g, k.C);
}

/// The rows of A of one image's P output pixels, from its stage.
inline void gather_windows(const float* stage, const Plan& k, float* A) {
  for (index_t q = 0; q < k.P; ++q)
    for (std::size_t tap = 0; tap < k.taps.size(); ++tap)
      vec::copy_vectors(stage + (k.rows[q] + k.taps[tap]) * k.C, A + q * k.KC + index_t(tap) * k.C, k.C);
}

/// A of block blk (images n0 ..) into A (Lr, KC), rows past the block's zero; returns the block's rows.
inline index_t fill_a(const float* x, const Plan& k, index_t blk, float* stage, float* A) {
  const index_t n0 = blk * k.B, nb = std::min(k.B, k.N - n0);
  for (index_t b = 0; b < nb; ++b) {
    stage_image(x + (n0 + b) * k.C * k.H * k.W, k, stage);
    gather_windows(stage, k, A + b * k.P * k.KC);
  }
  std::fill(A + nb * k.P * k.KC, A + k.Lr * k.KC, 0.f);
  return nb * k.P;
}

/// Forward: y (N, OC, OH, OW) = conv(x) + bias (or null), W from
/// arrange_weights(..., false). Per thread: the stage, A (Lr, KC), Y (Lr, OC).
template <class WS>
void forward(const float* x, const Plan& k, const float* W, const float* bias, float* y, WS& ws) {
  const int threads = max_threads();
  const index_t a_len = k.Lr * k.KC, y_len = k.Lr * k.OC;
  ws.col.resize({threads, a_len});
  ws.out.resize({threads, y_len});
  ws.winograd.work.resize({threads, k.stage_len});
  ws.winograd.work.zero();  // the padding, which no image overwrites
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t blk = 0; blk < k.blocks; ++blk) {
    const int t = thread_index();
    float *A = ws.col.data() + t * a_len, *Y = ws.out.data() + t * y_len;
    float* stage = ws.winograd.work.data() + t * k.stage_len;
    const index_t n0 = blk * k.B, L = fill_a(x, k, blk, stage, A);
    vec::products(A, W, Y, k.Lr, k.KC, k.OC);  // Y (Lr, OC) = A (Lr, KC) W (KC, OC)
    for (index_t b = 0; b * k.P < L; ++b)
      for (index_t g = 0; g < k.OC; g += vec::kLanes) {
        float* yb = y + ((n0 + b) * k.OC + g) * k.P;
        vec::pixels_to_planes(Y + b * k.P * k.OC + g, k.ident.data(), k.P, yb, k.P, k.OC);
        if (bias)
          for (index_t l = 0; l < vec::kLanes; ++l)
            for (index_t q = 0; q < k.P; ++q) yb[l * k.P + q] += bias[g + l];
      }
  }
}

/// Backward: dx (N, C, H, W) assigned; the weight gradient's partial sums
/// dWr (runs, KC, OC), one per run of blocks, assigned; Wt from
/// arrange_weights(..., true). Returns the number of runs. Per thread: the
/// stage (x's, then dx's), A (Lr, KC), D = dY (Lr, OC), dA (Lr, KC).
template <class WS>
index_t backward(const float* dy, const float* x, const Plan& k, const float* Wt, float* dx, WS& ws) {
  const int threads = max_threads();
  const index_t a_len = k.Lr * k.KC, d_len = k.Lr * k.OC, HW = k.H * k.W;
  ws.col.resize({threads, a_len});
  ws.out.resize({threads, d_len});
  ws.winograd.m.resize({threads, a_len});
  ws.winograd.work.resize({threads, k.stage_len});
  const index_t runs = sum_runs(k.blocks, k.KC * k.OC, k.N * (k.C * HW + k.OC * k.P));
  ws.dweight.resize({runs, k.KC, k.OC});
  ws.winograd.work.zero();
  for_each_run(k.blocks, runs, [&](index_t r, index_t first, index_t end) {
    const int t = thread_index();
    float *A = ws.col.data() + t * a_len, *D = ws.out.data() + t * d_len, *dA = ws.winograd.m.data() + t * a_len;
    float *stage = ws.winograd.work.data() + t * k.stage_len, *dW = ws.dweight.data() + r * k.KC * k.OC;
    for (index_t blk = first; blk < end; ++blk) {
      const index_t n0 = blk * k.B, L = fill_a(x, k, blk, stage, A), nb = L / k.P;
      for (index_t b = 0; b < nb; ++b)
        for (index_t g = 0; g < k.OC; g += vec::kLanes)
          vec::planes_to_pixels(dy + ((n0 + b) * k.OC + g) * k.P, k.P, k.P, k.ident.data(), D + b * k.P * k.OC + g,
                                k.OC);
      std::fill(D + L * k.OC, D + k.Lr * k.OC, 0.f);
      // forward: Y = A W  =>  dW += A^T dY (the run's first block assigns) and dA = dY W^T
      vec::weight_products(A, D, dW, L, k.KC, k.OC, blk > first);
      vec::products(D, Wt, dA, k.Lr, k.OC, k.KC);
      // forward: A's rows copied from the windows  =>  each row of dA added back over its window
      for (index_t b = 0; b < nb; ++b) {
        std::fill(stage, stage + k.stage_len, 0.f);
        for (index_t q = 0; q < k.P; ++q)
          for (std::size_t tap = 0; tap < k.taps.size(); ++tap)
            vec::add_vectors(dA + (b * k.P + q) * k.KC + index_t(tap) * k.C,
                             stage + (k.rows[q] + k.taps[tap]) * k.C, k.C);
        for (index_t g = 0; g < k.C; g += vec::kLanes)
          vec::pixels_to_planes(stage + g, k.at_in.data(), HW, dx + ((n0 + b) * k.C + g) * HW, HW, k.C);
      }
      std::fill(stage, stage + k.stage_len, 0.f);  // the next block's x: its padding
    }
  });
  return runs;
}
#endif

/// dweight (OC, C, K, K) += the sum, in run order, of the partial sums dWr
/// (runs, KC, OC) that backward left: dweight[o, c, tap] += dW[tap C + c][o].
template <class T>
void add_weight_grad(const Plan& k, index_t runs, const T* dWr, T* dweight) {
  const index_t taps = k.K * k.K;
  for (index_t r = 0; r < runs; ++r) {
    const T* dw = dWr + r * k.KC * k.OC;
    for (index_t o = 0; o < k.OC; ++o)
      for (index_t c = 0; c < k.C; ++c)
        for (index_t tap = 0; tap < taps; ++tap) dweight[(o * k.C + c) * taps + tap] += dw[(tap * k.C + c) * k.OC + o];
  }
}

}  // namespace supcon::ops::detail::conv_vec
