#pragma once
/// \file conv2d.cuh
/// 2-D convolution on device tensors, ops/conv2d.hpp's math: a square kernel,
/// stride, symmetric zero padding, cross-correlation as in PyTorch.
///
/// Images go in blocks of B (as many as fit a column buffer of
/// Conv2dWorkspace::column_budget elements). For each block:
///   col (CKK, B*P)  = im2col(x[n0 .. n0+B))          a thread per column, ~8 rows each
///   out (OC, B*P)   = weight (OC, CKK) * col          one cuBLAS GEMM
///   y[n0 + b, oc, p] = out[oc, b*P + p] + bias[oc]    one thread per element
/// with CKK = C*K*K and P = OH*OW, so every GEMM has B*P columns even when the
/// feature maps are 4x4. The backward runs the same blocks in reverse (GEMMs
/// for dweight and dcol, col2im as a gather: no atomics, deterministic).
/// Derivation: docs/backprop.md, "Convolution as a product".

#include <algorithm>
#include <cstdint>

#include "supcon/cuda/cublas.cuh"
#include "supcon/cuda/device.cuh"
#include "supcon/cuda/elementwise.cuh"
#include "supcon/cuda/layer_math.cuh"
#include "supcon/cuda/layer_shapes.cuh"
#include "supcon/cuda/reduce.cuh"
#include "supcon/cuda/tensor.cuh"

namespace supcon::cuda {

/// Elements of the column buffer a block of images may fill (64 Mi: 256 MB in float).
constexpr std::int64_t kConvColumnBudget = std::int64_t(1) << 26;

/// Work buffers of the convolution, kept by the caller between calls.
template <class T>
struct Conv2dWorkspace {
  std::int64_t column_budget = kConvColumnBudget;  ///< most elements of `col`; sets the images per block
  DeviceBuffer<T> col;                             ///< (CKK, B*P): the columns, then dcol in the backward
  DeviceBuffer<T> out;                             ///< (OC, B*P): the block's outputs or output gradients
  DeviceBuffer<Sums2> sums;                        ///< (OC,) channel sums for dbias
};

/// Images per block: the most whose column buffer fits the budget, at least one.
inline std::int64_t conv2d_block_images(const ConvGeom& g, std::int64_t budget) {
  const std::int64_t per_image = std::max<std::int64_t>(1, g.ckk() * g.p());
  return std::max<std::int64_t>(1, std::min(g.N, budget / per_image));
}

/// col (CKK, L = B*P) of images [n0, n0 + B), assigned (im2col_entry_at):
/// column q = blockIdx.x * blockDim.x + threadIdx.x, rows r = blockIdx.y,
/// blockIdx.y + gridDim.y, ... Requires L < 2^31.
template <class T>
__global__ void im2col_kernel(const T* x, ConvGeom g, std::int64_t n0, std::int64_t L, T* col) {
  const unsigned q = blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= L) return;
  const ColumnPos pos = column_pos(q, static_cast<unsigned>(g.p()), static_cast<unsigned>(g.OW));
  for (std::int64_t r = blockIdx.y; r < g.ckk(); r += gridDim.y)
    col[r * L + q] = im2col_entry_at(x, g, n0, column_row(static_cast<unsigned>(r), static_cast<unsigned>(g.K)), pos);
}

/// Launches im2col_kernel for the block of nb images at n0 into col.
template <class T>
void im2col(const T* x, const ConvGeom& g, std::int64_t n0, std::int64_t nb, T* col) {
  const std::int64_t L = nb * g.p();
  require<ValueError>(L < (std::int64_t(1) << 31) && g.ckk() < (std::int64_t(1) << 31),
                      "cuda::conv2d: a block of ", L, " output positions or ", g.ckk(),
                      " column rows exceeds 2^31");
  // each thread fills about 8 rows of its column: its split of q serves them all
  const auto row_blocks = static_cast<unsigned>(std::min<std::int64_t>((g.ckk() + 7) / 8, 65535));
  const dim3 grid(blocks_for(L, kElementThreads), row_blocks);
  im2col_kernel<T><<<grid, kElementThreads>>>(x, g, n0, L, col);
  check_launch("im2col_kernel");
}

/// dx of images [n0, n0 + B), assigned from dcol (CKK, B*P) (col2im_entry),
/// one thread per pixel; I is the type of the index arithmetic (32 bits when
/// the block's pixels fit).
template <class T, class I>
__global__ void col2im_kernel(const T* dcol, ConvGeom g, std::int64_t n0, std::int64_t B, T* dx) {
  const I idx = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x;
  const I C = static_cast<I>(g.C), H = static_cast<I>(g.H), W = static_cast<I>(g.W);
  if (idx >= static_cast<I>(B) * C * H * W) return;
  const I w = idx % W, h = (idx / W) % H, c = (idx / (W * H)) % C, b = idx / (W * H * C);
  dx[n0 * g.C * g.H * g.W + idx] = col2im_entry(dcol, g, B, b, c, h, w);
}

/// y slab of images [n0, n0 + B) (B*OC*P elements) = out (OC, B*P) rearranged, + bias[oc] when given.
template <class T>
__global__ void block_to_nchw_kernel(const T* out, const T* bias, std::int64_t OC, std::int64_t P, std::int64_t B,
                                     T* y_slab) {
  const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * OC * P) return;
  const T v = out[block_index_of_nchw(idx, OC, P, B)];
  y_slab[idx] = bias ? v + bias[(idx / P) % OC] : v;
}

/// out (OC, B*P) = the dy slab of images [n0, n0 + B) rearranged (inverse of block_to_nchw_kernel).
template <class T>
__global__ void nchw_to_block_kernel(const T* dy_slab, std::int64_t OC, std::int64_t P, std::int64_t B, T* out) {
  const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx < B * OC * P) out[block_index_of_nchw(idx, OC, P, B)] = dy_slab[idx];
}

/// Forward. x is (N, C, H, W), weight (OC, C, K, K), bias (OC,) or null.
/// y is resized to (N, OC, OH, OW) and assigned:
///   y[n] (OC, OH*OW) = weight (OC, C*K*K) * im2col(x[n]) + bias
/// Shapes and options are checked on the host first (ShapeError / ValueError
/// naming cuda::conv2d).
template <class T>
void conv2d_forward(const CublasHandle& h, const DeviceTensor<T>& x, const DeviceTensor<T>& weight,
                    const DeviceTensorArg<T>* bias, index_t stride, index_t padding, DeviceTensor<T>& y,
                    Conv2dWorkspace<T>& ws) {
  const ConvGeom g =
      conv2d_geometry(x.shape(), weight.shape(), bias ? &bias->shape() : nullptr, stride, padding, "cuda::conv2d");
  y.resize(conv2d_output_shape(g));
  if (y.size() == 0) return;
  const std::int64_t CKK = g.ckk(), P = g.p(), B = conv2d_block_images(g, ws.column_budget);
  ws.col.resize(static_cast<std::size_t>(CKK * B * P));
  ws.out.resize(static_cast<std::size_t>(g.OC * B * P));
  for (std::int64_t n0 = 0; n0 < g.N; n0 += B) {
    const std::int64_t nb = std::min(B, g.N - n0), L = nb * P;
    if (CKK > 0) im2col(x.data(), g, n0, nb, ws.col.data());  // C = 0: no columns, the product below is zero
    // out (OC, L) = weight (OC, CKK) * col (CKK, L)
    gemm<T>(h, false, false, g.OC, L, CKK, T(1), weight.data(), CKK, ws.col.data(), L, T(0), ws.out.data(), L);
    block_to_nchw_kernel<T><<<blocks_for(g.OC * L, kElementThreads), kElementThreads>>>(
        ws.out.data(), bias ? bias->data() : nullptr, g.OC, P, nb, y.data() + n0 * g.OC * P);
    check_launch("block_to_nchw_kernel");
  }
}

/// Backward. dy is (N, OC, OH, OW); x and weight as in the forward.
/// dx is resized to x's shape and ASSIGNED; dweight (OC, C, K, K) and dbias
/// (OC,) (when not null) are ACCUMULATED. ShapeError naming
/// cuda::conv2d_backward before any launch when a shape is off.
template <class T>
void conv2d_backward(const CublasHandle& h, const DeviceTensor<T>& dy, const DeviceTensor<T>& x,
                     const DeviceTensor<T>& weight, index_t stride, index_t padding, DeviceTensor<T>& dx,
                     DeviceTensor<T>& dweight, DeviceTensorArg<T>* dbias, Conv2dWorkspace<T>& ws) {
  const ConvGeom g = conv2d_geometry(x.shape(), weight.shape(), dbias ? &dbias->shape() : nullptr, stride, padding,
                                     "cuda::conv2d_backward");
  require_shape(dy.shape(), conv2d_output_shape(g), "cuda::conv2d_backward", "dy");
  require_shape(dweight.shape(), weight.shape(), "cuda::conv2d_backward", "dweight");
  dx.resize(x.shape());
  if (x.size() == 0) return;
  if (g.OC == 0) {  // no outputs: nothing flows back
    dx.zero();
    return;
  }
  const std::int64_t CKK = g.ckk(), P = g.p(), B = conv2d_block_images(g, ws.column_budget);
  ws.col.resize(static_cast<std::size_t>(CKK * B * P));
  ws.out.resize(static_cast<std::size_t>(g.OC * B * P));
  for (std::int64_t n0 = 0; n0 < g.N; n0 += B) {
    const std::int64_t nb = std::min(B, g.N - n0), L = nb * P;
    nchw_to_block_kernel<T><<<blocks_for(g.OC * L, kElementThreads), kElementThreads>>>(dy.data() + n0 * g.OC * P, g.OC,
                                                                                        P, nb, ws.out.data());
    check_launch("nchw_to_block_kernel");
    im2col(x.data(), g, n0, nb, ws.col.data());
    // forward: out = W col  =>  dW += dout col^T  and  dcol = W^T dout
    gemm<T>(h, false, true, g.OC, CKK, L, T(1), ws.out.data(), L, ws.col.data(), L, T(1), dweight.data(), CKK);
    gemm<T>(h, true, false, CKK, L, g.OC, T(1), weight.data(), CKK, ws.out.data(), L, T(0), ws.col.data(), L);
    // forward: col = im2col(x)  =>  dx = col2im(dcol), each pixel gathering its entries
    const std::int64_t pixels = nb * g.C * g.H * g.W;
    if (pixels < (std::int64_t(1) << 31))
      col2im_kernel<T, unsigned><<<blocks_for(pixels, kElementThreads), kElementThreads>>>(ws.col.data(), g, n0, nb,
                                                                                          dx.data());
    else
      col2im_kernel<T, std::int64_t>
          <<<blocks_for(pixels, kElementThreads), kElementThreads>>>(ws.col.data(), g, n0, nb, dx.data());
    check_launch("col2im_kernel");
  }
  // forward: y[n, oc, :] += bias[oc]  =>  dbias[oc] += sum over n and positions of dy
  if (dbias) bias_grad<T>(dy.data(), g.N, g.OC, P, dbias->data(), ws.sums);
}

}  // namespace supcon::cuda
