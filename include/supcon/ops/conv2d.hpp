#pragma once
/// \file conv2d.hpp
/// 2-D convolution (cross-correlation, as in PyTorch) with a square kernel,
/// stride and symmetric zero padding; forward and backward, two ways:
///
/// - `conv2d_forward` / `conv2d_backward`: the fast path. Each image is
///   unfolded by im2col into a (C*K*K, OH*OW) matrix and the convolution is
///   a GEMM with the (OC, C*K*K) weight (3x3 stride-2 windows are unfolded
///   through parity planes, ops/im2col_stride2.hpp); images with small
///   feature maps are grouped into one wider GEMM; OpenMP over groups of
///   images. In float the products go through the kernels of core/gemm.hpp
///   when the CPU has AVX2 (whatever the compiler flags), otherwise through
///   Eigen. 3x3 stride-1 convolutions with at least 8 channels in and out go
///   through Winograd's F(4x4, 3x3) instead (ops/winograd.hpp, 4 times fewer
///   flops), and float 3x3 stride-2 ones from 16 to 128 channels (in
///   multiples of 16, on CPUs with AVX-512) with sixteen channels per vector
///   (ops/conv2d_vec.hpp).
/// - `conv2d_forward_naive` / `conv2d_backward_naive`: the definition written
///   as loops, kept as the readable reference the tests compare against.
///
/// Shapes: x is (N, C, H, W), weight is (OC, C, K, K), bias is (OC,) or null,
/// y is (N, OC, OH, OW) with OH = (H + 2p - K) / s + 1 (likewise OW).
/// Derivation of the backward: docs/backprop.md, "Convolution as a product".

#include <algorithm>
#include <utility>
#include <vector>

#include "supcon/core/gemm.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/ops/conv2d_vec.hpp"
#include "supcon/ops/im2col.hpp"
#include "supcon/ops/winograd.hpp"

namespace supcon::ops {

/// Work buffers of the fast path, kept by the caller (e.g. the Conv2d layer)
/// so that repeated calls reuse their memory (fresh pages cost far more than
/// the arithmetic on them): per thread, one im2col block, one (OC, B*OH*OW)
/// block of outputs or output gradients, and one partial weight gradient.
template <class T>
struct Conv2dWorkspace {
  Tensor<T> col;      ///< (threads, C*K*K, B*OH*OW)
  Tensor<T> out;      ///< (threads, OC, B*OH*OW)
  Tensor<T> dweight;  ///< (runs, OC, C*K*K), one partial sum per run of blocks
  WinogradWorkspace<T> winograd;  ///< buffers of the Winograd path
};

namespace detail {
/// Checks shapes and returns {OH, OW}.
template <class T>
std::pair<index_t, index_t> conv2d_check(const Tensor<T>& x, const Tensor<T>& weight,
                                         const Tensor<T>* bias, index_t stride, index_t padding) {
  require<ShapeError>(x.rank() == 4, "conv2d: x must be (N, C, H, W), got ", shape_str(x.shape()));
  require<ShapeError>(weight.rank() == 4 && weight.dim(2) == weight.dim(3) &&
                          weight.dim(1) == x.dim(1),
                      "conv2d: weight ", shape_str(weight.shape()),
                      " must be (OC, C, K, K) with C = ", x.dim(1));
  require<ShapeError>(!bias || bias->shape() == Shape{weight.dim(0)}, "conv2d: bias must be (",
                      weight.dim(0), ",)");
  const index_t K = weight.dim(2);
  return {window_output_size(x.dim(2), K, stride, padding, "conv2d"),
          window_output_size(x.dim(3), K, stride, padding, "conv2d")};
}

/// forward: y[n, oc, :] += bias[oc]  =>  dbias[oc] += sum over n and positions of dy (N, OC, OH, OW).
template <class T>
void add_bias_grad(const Tensor<T>& dy, Tensor<T>* dbias) {
  if (!dbias) return;
  const index_t N = dy.dim(0), OC = dy.dim(1), P = dy.dim(2) * dy.dim(3);
  for (index_t n = 0; n < N; ++n) dbias->vec() += ConstMatrixMap<T>(dy.data() + n * OC * P, OC, P).rowwise().sum();
}

/// Images per GEMM: small feature maps (late layers: 4x4, 8x8) are grouped so
/// that each product has about 512 columns, which Eigen's blocked kernel runs
/// near its peak; a single image per product would leave it mostly packing.
/// Never fewer blocks than threads when the batch allows it.
inline index_t conv2d_images_per_block(index_t N, index_t P, int threads) {
  const index_t want = std::max<index_t>(1, (512 + P - 1) / P);
  const index_t per_thread = std::max<index_t>(1, (N + threads - 1) / threads);
  return std::min(want, per_thread);
}
}  // namespace detail

/// Fast forward. x is (N, C, H, W), weight is (OC, C, K, K), bias (OC,) or null.
/// y is resized to (N, OC, OH, OW) and assigned:
///   y[n] (OC, OH*OW) = weight (OC, C*K*K) * im2col(x[n]) + bias
/// Blocks of B images are unfolded side by side into one (C*K*K, B*OH*OW)
/// matrix and multiplied at once; OpenMP over blocks, each GEMM on one thread,
/// each block to whichever thread is free.
/// A 1x1 convolution with stride 1 and no padding multiplies x[n] directly.
template <class T>
void conv2d_forward(const Tensor<T>& x, const Tensor<T>& weight, const TensorArg<T>* bias,
                    index_t stride, index_t padding, Tensor<T>& y, Conv2dWorkspace<T>& ws) {
  const auto ohw = detail::conv2d_check(x, weight, bias, stride, padding);
  const index_t OH = ohw.first, OW = ohw.second;
  const index_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const index_t OC = weight.dim(0), K = weight.dim(2), CKK = C * K * K, P = OH * OW;
  if (conv2d_use_winograd(C, OC, K, stride, padding))
    return conv2d_winograd_forward(x, weight, bias, padding, y, ws.winograd);
#if SUPCON_GEMM_AVX2
  if constexpr (std::is_same_v<T, float>) {
    if (detail::conv_vec::usable<T>(C, OC, K, stride)) {
      namespace cv = detail::conv_vec;
      const cv::Plan k = cv::plan(N, C, H, W, OC, K, stride, padding, detail::winograd::vec::product_rows(OC));
      y.resize_for_overwrite({N, OC, OH, OW});
      ws.winograd.u.resize({CKK, OC});
      cv::arrange_weights(weight.data(), OC, C, K, false, ws.winograd.u.data());
      return cv::forward(x.data(), k, ws.winograd.u.data(), bias ? bias->data() : nullptr, y.data(), ws);
    }
  }
#endif
  const int threads = max_threads();
  const index_t B = detail::conv2d_images_per_block(N, P, threads), blocks = (N + B - 1) / B;
  const bool direct = K == 1 && stride == 1 && padding == 0 && B == 1;  // x[n] is its own im2col
  y.resize_for_overwrite({N, OC, OH, OW});
  if (!direct) ws.col.resize({threads, CKK, B * P});
  if (B > 1) ws.out.resize({threads, OC, B * P});
  const ConstMatrixMap<T> w(weight.data(), OC, CKK);
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t blk = 0; blk < blocks; ++blk) {
    const int t = thread_index();
    const index_t n0 = blk * B, nb = std::min(B, N - n0), L = nb * P;
    const T* col = x.data() + n0 * C * H * W;
    if (!direct) {
      T* buf = ws.col.data() + t * CKK * B * P;
      for (index_t b = 0; b < nb; ++b)
        detail::im2col_ld(x.data() + (n0 + b) * C * H * W, C, H, W, K, stride, padding, OH, OW,
                          buf + b * P, L);
      col = buf;
    }
    // one image: the product lands in y[n] itself; several: in the block, then scattered
    T* out = B == 1 ? y.data() + n0 * OC * P : ws.out.data() + t * OC * B * P;
    MatrixMap<T> yb(out, OC, L);
    if (!gemm_fast<T>(OC, L, CKK, weight.data(), CKK, 1, col, L, 1, out, L, false))
      yb.noalias() = w * ConstMatrixMap<T>(col, CKK, L);
    for (index_t b = 0; b < nb; ++b) {
      MatrixMap<T> yn(y.data() + (n0 + b) * OC * P, OC, P);
      if (B > 1) yn = yb.middleCols(b * P, P);
      if (bias) yn.colwise() += bias->vec();
    }
  }
}

/// Fast backward. dy is (N, OC, OH, OW); x and weight as in the forward.
/// dx is resized to x's shape and ASSIGNED; dweight (OC, C, K, K) and
/// dbias (OC,) (when not null) are ACCUMULATED. Same blocks as the forward,
/// in runs (for_each_run), so that dweight does not depend on which thread
/// ran which block.
template <class T>
void conv2d_backward(const Tensor<T>& dy, const Tensor<T>& x, const Tensor<T>& weight,
                     index_t stride, index_t padding, Tensor<T>& dx, Tensor<T>& dweight,
                     TensorArg<T>* dbias, Conv2dWorkspace<T>& ws) {
  const auto ohw = detail::conv2d_check(x, weight, dbias, stride, padding);
  const index_t OH = ohw.first, OW = ohw.second;
  const index_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const index_t OC = weight.dim(0), K = weight.dim(2), CKK = C * K * K, P = OH * OW;
  require<ShapeError>(dy.shape() == Shape{N, OC, OH, OW}, "conv2d_backward: dy has shape ",
                      shape_str(dy.shape()), ", expected ", shape_str({N, OC, OH, OW}));
  require<ShapeError>(dweight.shape() == weight.shape(), "conv2d_backward: dweight has shape ",
                      shape_str(dweight.shape()), ", expected ", shape_str(weight.shape()));
  if (conv2d_use_winograd(C, OC, K, stride, padding))
    return conv2d_winograd_backward(dy, x, weight, padding, dx, dweight, dbias, ws.winograd);
#if SUPCON_GEMM_AVX2
  if constexpr (std::is_same_v<T, float>) {
    if (detail::conv_vec::usable<T>(C, OC, K, stride)) {
      namespace cv = detail::conv_vec;
      const cv::Plan k = cv::plan(N, C, H, W, OC, K, stride, padding, detail::winograd::vec::product_rows(CKK));
      dx.resize_for_overwrite(x.shape());
      ws.winograd.u.resize({OC, CKK});
      cv::arrange_weights(weight.data(), OC, C, K, true, ws.winograd.u.data());
      const index_t runs = cv::backward(dy.data(), x.data(), k, ws.winograd.u.data(), dx.data(), ws);
      cv::add_weight_grad(k, runs, ws.dweight.data(), dweight.data());
      return detail::add_bias_grad(dy, dbias);
    }
  }
#endif
  const int threads = max_threads();
  const index_t B = detail::conv2d_images_per_block(N, P, threads), blocks = (N + B - 1) / B;
  const bool direct = K == 1 && stride == 1 && padding == 0 && B == 1;
  dx.resize_for_overwrite(x.shape());
  if (!direct) ws.col.resize({threads, CKK, B * P});
  if (B > 1) ws.out.resize({threads, OC, B * P});
  // one partial dweight per run of blocks, summed in run order below
  const index_t runs = sum_runs(blocks, OC * CKK, N * (C * H * W + OC * P));
  ws.dweight.resize({runs, OC, CKK});
  ws.dweight.zero();
  const ConstMatrixMap<T> w(weight.data(), OC, CKK);
  // block blk, its weight gradient added into run r's partial sum
  const auto backward_block = [&](index_t r, index_t blk) {
    const int t = thread_index();
    const index_t n0 = blk * B, nb = std::min(B, N - n0), L = nb * P;
    MatrixMap<T> dw_t(ws.dweight.data() + r * OC * CKK, OC, CKK);
    // dy of the block as one (OC, B*P) matrix
    const T* dyb = dy.data() + n0 * OC * P;
    if (B > 1) {
      T* buf = ws.out.data() + t * OC * B * P;
      for (index_t b = 0; b < nb; ++b)
        MatrixMap<T>(buf, OC, L).middleCols(b * P, P) =
            ConstMatrixMap<T>(dy.data() + (n0 + b) * OC * P, OC, P);
      dyb = buf;
    }
    const ConstMatrixMap<T> dy_mat(dyb, OC, L);
    if (direct) {
      // forward: y[n] = W x[n]  =>  dW += dy[n] x[n]^T  and  dx[n] = W^T dy[n]
      const T* xb = x.data() + n0 * C * P;
      T* dxn = dx.data() + n0 * C * P;
      if (!gemm_fast<T>(OC, C, P, dyb, L, 1, xb, 1, P, dw_t.data(), CKK, true))
        dw_t.noalias() += dy_mat * ConstMatrixMap<T>(xb, C, P).transpose();
      if (!gemm_fast<T>(C, P, OC, weight.data(), 1, CKK, dyb, L, 1, dxn, P, false))
        MatrixMap<T>(dxn, C, P).noalias() = w.transpose() * dy_mat;
      return;
    }
    // forward: y_block = W col  =>  dW += dy_block col^T  and  dcol = W^T dy_block
    T* col = ws.col.data() + t * CKK * B * P;
    for (index_t b = 0; b < nb; ++b)
      detail::im2col_ld(x.data() + (n0 + b) * C * H * W, C, H, W, K, stride, padding, OH, OW,
                        col + b * P, L);
    MatrixMap<T> col_mat(col, CKK, L);
    if (!gemm_fast<T>(OC, CKK, L, dyb, L, 1, col, 1, L, dw_t.data(), CKK, true))
      dw_t.noalias() += dy_mat * col_mat.transpose();
    // the column buffer now holds dcol
    if (!gemm_fast<T>(CKK, L, OC, weight.data(), 1, CKK, dyb, L, 1, col, L, false))
      col_mat.noalias() = w.transpose() * dy_mat;
    // forward: col = im2col(x[n])  =>  dx[n] = col2im(dcol); zeroed here, by the thread that fills it
    T* dxb = dx.data() + n0 * C * H * W;
    std::fill(dxb, dxb + nb * C * H * W, T(0));
    for (index_t b = 0; b < nb; ++b)
      detail::col2im_ld_consuming(col + b * P, L, C, H, W, K, stride, padding, OH, OW, dxb + b * C * H * W);
  };
  for_each_run(blocks, runs, [&](index_t r, index_t first, index_t end) {
    for (index_t blk = first; blk < end; ++blk) backward_block(r, blk);
  });
  MatrixMap<T> dw(dweight.data(), OC, CKK);
  for (index_t r = 0; r < runs; ++r) dw += ConstMatrixMap<T>(ws.dweight.data() + r * OC * CKK, OC, CKK);
  detail::add_bias_grad(dy, dbias);
}

/// Reference forward, straight from the definition:
///   y[n,o,oh,ow] = bias[o] + sum_{c,i,j} weight[o,c,i,j] * x[n, c, oh*s-p+i, ow*s-p+j]
/// Same shapes and contract as conv2d_forward.
template <class T>
void conv2d_forward_naive(const Tensor<T>& x, const Tensor<T>& weight, const TensorArg<T>* bias,
                          index_t stride, index_t padding, Tensor<T>& y) {
  const auto ohw = detail::conv2d_check(x, weight, bias, stride, padding);
  const index_t OH = ohw.first, OW = ohw.second;
  const index_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const index_t OC = weight.dim(0), K = weight.dim(2);
  y.resize({N, OC, OH, OW});
  for (index_t n = 0; n < N; ++n)
    for (index_t o = 0; o < OC; ++o)
      for (index_t oh = 0; oh < OH; ++oh)
        for (index_t ow = 0; ow < OW; ++ow) {
          T acc = bias ? (*bias)[o] : T(0);
          for (index_t c = 0; c < C; ++c)
            for (index_t i = 0; i < K; ++i)
              for (index_t j = 0; j < K; ++j) {
                const index_t ih = oh * stride - padding + i, iw = ow * stride - padding + j;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W) acc += weight(o, c, i, j) * x(n, c, ih, iw);
              }
          y(n, o, oh, ow) = acc;
        }
}

/// Reference backward: each product weight[o,c,i,j] * x[n,c,ih,iw] of the
/// forward sends dy[n,o,oh,ow] times the other factor to each factor's gradient.
/// Same contract as conv2d_backward (dx assigned, dweight and dbias accumulated).
template <class T>
void conv2d_backward_naive(const Tensor<T>& dy, const Tensor<T>& x, const Tensor<T>& weight,
                           index_t stride, index_t padding, Tensor<T>& dx, Tensor<T>& dweight,
                           TensorArg<T>* dbias) {
  const auto ohw = detail::conv2d_check(x, weight, dbias, stride, padding);
  const index_t OH = ohw.first, OW = ohw.second;
  const index_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const index_t OC = weight.dim(0), K = weight.dim(2);
  require<ShapeError>(dy.shape() == Shape{N, OC, OH, OW}, "conv2d_backward_naive: dy has shape ",
                      shape_str(dy.shape()), ", expected ", shape_str({N, OC, OH, OW}));
  require<ShapeError>(dweight.shape() == weight.shape(), "conv2d_backward_naive: dweight has shape ",
                      shape_str(dweight.shape()), ", expected ", shape_str(weight.shape()));
  dx.resize(x.shape());
  dx.zero();
  for (index_t n = 0; n < N; ++n)
    for (index_t o = 0; o < OC; ++o)
      for (index_t oh = 0; oh < OH; ++oh)
        for (index_t ow = 0; ow < OW; ++ow) {
          const T g = dy(n, o, oh, ow);
          if (dbias) (*dbias)[o] += g;
          for (index_t c = 0; c < C; ++c)
            for (index_t i = 0; i < K; ++i)
              for (index_t j = 0; j < K; ++j) {
                const index_t ih = oh * stride - padding + i, iw = ow * stride - padding + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                dweight(o, c, i, j) += g * x(n, c, ih, iw);
                dx(n, c, ih, iw) += g * weight(o, c, i, j);
              }
        }
}

}  // namespace supcon::ops
