#pragma once
/// \file batchnorm.hpp
/// Batch normalisation (Ioffe and Szegedy, 2015) with PyTorch's semantics,
/// for (N, C) and (N, C, H, W) inputs alike: both are viewed as (N, C, S)
/// with S = H*W (S = 1 for (N, C)), and channel c is normalised over its
/// M = N*S values.
///
/// Training: mean and biased variance of the batch,
///   xhat = (x - mean) / sqrt(var + eps),   y = weight * xhat + bias,
/// and the running statistics move by `momentum` towards the batch mean and
/// the UNBIASED variance var * M / (M - 1).
/// Evaluation: the same affine map with the running statistics in place of
/// the batch ones. Backward of training mode has three terms (through xhat,
/// the mean and the variance): docs/backprop.md, "Batch normalisation".

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "supcon/core/tensor.hpp"
#include "supcon/ops/activation.hpp"

namespace supcon::ops {

namespace detail {
/// N, C, S of a (N, C) or (N, C, H, W) tensor.
struct NCS {
  index_t N, C, S;
};
template <class T>
NCS batchnorm_dims(const Tensor<T>& x, const Tensor<T>& weight, const char* what) {
  require<ShapeError>(x.rank() == 2 || x.rank() == 4, what, ": x must be (N, C) or (N, C, H, W), got ",
                      shape_str(x.shape()));
  const index_t N = x.dim(0), C = x.dim(1);
  require<ShapeError>(weight.shape() == Shape{C}, what, ": weight has shape ",
                      shape_str(weight.shape()), ", expected (", C, ",)");
  return {N, C, x.rank() == 4 ? x.dim(2) * x.dim(3) : 1};
}

/// A channel's two sums of the backward, sum g and sum g (x - mu), in double.
/// The channel's N slices of S values are g + n gs and x + n xs.
/// With a mask (slices as g's), g is dy where it is set and 0 elsewhere:
/// float only, on CPUs where avx512::enabled().
template <class T>
std::pair<double, double> batchnorm_grad_sums(const T* g, index_t gs, const T* x, index_t xs, T mu, index_t N,
                                              index_t S, const std::uint8_t* mask = nullptr) {
  double sum_dy = 0, sum_dy_xc = 0;
  if constexpr (std::is_same_v<T, float>)
    if (mask) {
      for (index_t n = 0; n < N; ++n) {
        const T *gn = g + n * gs, *xn = x + n * xs;
        const std::uint8_t* mn = mask + n * gs;
        float s1 = 0, s2 = 0;
        for (index_t i = avx512::grad_sums_mask(gn, mn, xn, mu, S, s1, s2); i < S; ++i) {
          const float gi = mn[i] != 0 ? gn[i] : 0.f;
          s1 += gi, s2 += gi * (xn[i] - mu);
        }
        sum_dy += static_cast<double>(s1), sum_dy_xc += static_cast<double>(s2);
      }
      return {sum_dy, sum_dy_xc};
    }
  for (index_t n = 0; n < N; ++n) {
    const ConstVectorMap<T> xv(x + n * xs, S), gv(g + n * gs, S);
    sum_dy += static_cast<double>(gv.sum());
    sum_dy_xc += static_cast<double>((gv.array() * (xv.array() - mu)).sum());
  }
  return {sum_dy, sum_dy_xc};
}

/// The coefficients of a channel's dx = a g + k (x - mu) + b.
template <class T>
struct DxCoefficients {
  T a, k, b;
};
/// A channel's DxCoefficients from its sums over all M values (sum_dy_xhat =
/// invstd * sum g (x - mu)) and its weight w. forward: xhat = (x - mean)
/// invstd, mean and var depend on every x of the channel:
///   dx = invstd (w g - mean(w g) - xhat mean(w g xhat)) = a g + k (x - mean) + b
template <class T>
DxCoefficients<T> batchnorm_dx_coefficients(double invstd, double w, double sum_dy, double sum_dy_xhat, double M) {
  const double mean_g = w * sum_dy / M, mean_g_xhat = w * sum_dy_xhat / M;
  return {static_cast<T>(invstd * w), static_cast<T>(-invstd * invstd * mean_g_xhat),
          static_cast<T>(-invstd * mean_g)};
}

/// Entries [0, n) of dx = a g + k (x - mu) + b with g = dy, or with a mask,
/// g = dy where it is set and 0 elsewhere (in float, 16 entries at a time
/// through ops/masked_avx512.hpp).
template <class T>
void batchnorm_dx_slice(const T* __restrict dy, const std::uint8_t* __restrict mask, const T* __restrict x,
                        T* __restrict dx, index_t n, T a, T k, T mu, T b) {
  if (!mask) {
    VectorMap<T>(dx, n).array() =
        a * ConstVectorMap<T>(dy, n).array() + k * (ConstVectorMap<T>(x, n).array() - mu) + b;
    return;
  }
  index_t i = 0;
  if constexpr (std::is_same_v<T, float>) i = avx512::batchnorm_dx_mask(dy, mask, x, dx, n, a, k, mu, b);
  for (; i < n; ++i) {
    const T g = mask[i] != 0 ? dy[i] : T(0);
    dx[i] = a * g + k * (x[i] - mu) + b;
  }
}

/// A channel's dx (slices dx + n xs) from its sums, as batchnorm_dx_coefficients;
/// slices as in batchnorm_grad_sums.
template <class T>
void batchnorm_channel_dx(const T* g, index_t gs, const T* x, index_t xs, T mu, double invstd, double w,
                          double sum_dy, double sum_dy_xhat, double M, index_t N, index_t S, T* dx) {
  const auto cf = batchnorm_dx_coefficients<T>(invstd, w, sum_dy, sum_dy_xhat, M);
  for (index_t n = 0; n < N; ++n)
    batchnorm_dx_slice(g + n * gs, nullptr, x + n * xs, dx + n * xs, S, cf.a, cf.k, mu, cf.b);
}

/// relu's gradient of a channel, g = dy where the mask is set and 0 elsewhere,
/// into out (N slices of S, contiguous); dy's and the mask's slices are ds apart.
template <class T>
void relu_grad_channel(const T* dy, const std::uint8_t* mask, index_t ds, index_t N, index_t S, T* out) {
  for (index_t n = 0; n < N; ++n) relu_mask_grad_range(dy + n * ds, mask + n * ds, out + n * S, 0, S);
}

/// f(q, c) for the slices q < N C (channel c = q mod C) in runs of
/// consecutive slices, up to four runs per thread of the enclosing parallel
/// region, each run to whichever thread is free: the passes that write a
/// slice each then stream through memory, where a pass per channel would
/// write a slice here and a slice there, partial cache lines at each end.
/// Called in the same parallel region as the channels' sums, after them, to
/// wake the threads once per op.
template <class F>
void for_each_slice_run(index_t N, index_t C, const F& f) {
  const index_t slices = N * C, runs = std::min<index_t>(slices, 4 * omp_threads_here());
#pragma omp for schedule(dynamic, 1)
  for (index_t r = 0; r < runs; ++r)
    for (index_t q = slices * r / runs; q < slices * (r + 1) / runs; ++q) f(q, q % C);
}

/// Entries [0, n) of y = scale x + shift, or with a mask, of relu(scale x +
/// shift) and mask = (scale x + shift > 0) (a NaN stays NaN); with skip too,
/// of relu(scale x + shift + skip) (batch norm, a residual join and the ReLU
/// after it). The pointers are __restrict: a byte store may alias anything,
/// and the loop would stay scalar.
template <class T>
void batchnorm_apply(const T* __restrict x, T* __restrict y, std::uint8_t* __restrict mask, index_t n, T scale,
                     T shift, const T* __restrict skip = nullptr) {
  if (!mask) {
    VectorMap<T>(y, n).array() = scale * ConstVectorMap<T>(x, n).array() + shift;
    return;
  }
  index_t i = 0;
  if constexpr (std::is_same_v<T, float>) i = avx512::affine_relu_mask(x, skip, y, mask, n, scale, shift);
  for (; i < n; ++i) {
    const T v = skip ? (scale * x[i] + shift) + skip[i] : scale * x[i] + shift;
    y[i] = v <= T(0) ? T(0) : v;
    mask[i] = v > T(0);
  }
}

/// Training-mode forward of bn, or of relu(bn) with a mask of x's size, or
/// with skip (x's shape, and a mask) of relu(bn + skip).
template <class T>
void batchnorm_forward_train_impl(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, T eps,
                                  Tensor<T>& y, std::uint8_t* mask, Tensor<T>& mean, Tensor<T>& var,
                                  const T* skip = nullptr) {
  const auto d = batchnorm_dims(x, weight, "batchnorm");
  const index_t N = d.N, C = d.C, S = d.S;
  require<ValueError>(N * S > 1, "batchnorm: training needs more than one value per channel, got input ",
                      shape_str(x.shape()));
  y.resize_for_overwrite(x.shape());
  mean.resize({C});
  var.resize({C});
  const double M = static_cast<double>(N * S);
  std::vector<T> scale(static_cast<std::size_t>(C)), shift(static_cast<std::size_t>(C));
#pragma omp parallel
  {
#pragma omp for schedule(dynamic, 1)
    for (index_t c = 0; c < C; ++c) {
      // One pass over the channel for the sums of d = x - x0 and d^2, with x0 its
      // first value: shifting by a value of the channel keeps E[d^2] - E[d]^2
      // free of cancellation. Each (n, c) slice is summed vectorised, the slices
      // in double.
      const T x0 = x[c * S];
      double sum = 0, sq = 0;
      for (index_t n = 0; n < N; ++n) {
        const ConstVectorMap<T> xs(x.data() + (n * C + c) * S, S);
        sum += static_cast<double>((xs.array() - x0).sum());
        sq += static_cast<double>((xs.array() - x0).square().sum());
      }
      const double dmean = sum / M;
      const double mu = x0 + dmean, v = std::max(0.0, sq / M - dmean * dmean);
      mean[c] = static_cast<T>(mu);
      var[c] = static_cast<T>(v);
      // y = weight * (x - mean) * invstd + bias = scale * x + shift
      const double invstd = 1.0 / std::sqrt(v + eps);
      scale[c] = static_cast<T>(weight[c] * invstd);
      shift[c] = static_cast<T>(bias[c] - mu * weight[c] * invstd);
    }
    // (the loop's barrier: every channel's scale and shift are set)
    for_each_slice_run(N, C, [&](index_t q, index_t c) {
      batchnorm_apply(x.data() + q * S, y.data() + q * S, mask ? mask + q * S : nullptr, S, scale[c], shift[c],
                      skip ? skip + q * S : nullptr);
    });
  }
}
}  // namespace detail

/// Training-mode forward. x is (N, C) or (N, C, H, W); weight, bias are (C,).
/// y (x's shape), mean (C,) and var (C,) (the biased batch variance) are
/// resized and assigned. Requires more than one value per channel (M > 1).
template <class T>
void batchnorm_forward_train(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                             T eps, Tensor<T>& y, Tensor<T>& mean, Tensor<T>& var) {
  detail::batchnorm_forward_train_impl(x, weight, bias, eps, y, nullptr, mean, var);
}

/// relu(bn(x)) in training mode, in the passes of batchnorm_forward_train
/// alone: y = max(bn(x), 0) and mask = (bn(x) > 0), resized to x's size, the
/// mask that relu_backward_mask and batchnorm_relu_backward_train take; a NaN
/// stays NaN. Saves the ReLU's pass over bn(x).
template <class T>
void batchnorm_relu_forward_train(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, T eps,
                                  Tensor<T>& y, std::vector<std::uint8_t>& mask, Tensor<T>& mean, Tensor<T>& var) {
  mask.resize(static_cast<std::size_t>(x.size()));
  detail::batchnorm_forward_train_impl(x, weight, bias, eps, y, mask.data(), mean, var);
}

/// relu(bn(x) + skip) in training mode, the end of a residual block (its
/// last batch norm, the join and the ReLU after it) in the passes of
/// batchnorm_forward_train alone: y = max(bn(x) + skip, 0) and mask =
/// (bn(x) + skip > 0), resized to x's size; skip has x's shape (ShapeError
/// otherwise). mean and var are bn's, as batchnorm_forward_train returns
/// them. Saves writing bn(x) out and reading it back for the join.
template <class T>
void batchnorm_add_relu_forward_train(const Tensor<T>& x, const Tensor<T>& skip, const Tensor<T>& weight,
                                      const Tensor<T>& bias, T eps, Tensor<T>& y, std::vector<std::uint8_t>& mask,
                                      Tensor<T>& mean, Tensor<T>& var) {
  require<ShapeError>(x.shape() == skip.shape(), "residual join: shapes ", shape_str(x.shape()), " and ",
                      shape_str(skip.shape()), " differ");
  mask.resize(static_cast<std::size_t>(x.size()));
  detail::batchnorm_forward_train_impl(x, weight, bias, eps, y, mask.data(), mean, var, skip.data());
}

/// Moves the running statistics towards the batch ones (all (C,)), assigned:
///   running_mean = (1 - momentum) running_mean + momentum mean
///   running_var  = (1 - momentum) running_var  + momentum var * M / (M - 1)
/// where var is the biased batch variance over M > 1 values per channel.
template <class T>
void batchnorm_update_running(Tensor<T>& running_mean, Tensor<T>& running_var,
                              const Tensor<T>& mean, const Tensor<T>& var, index_t M, T momentum) {
  require<ValueError>(M > 1, "batchnorm_update_running: need more than one value per channel");
  const T unbias = static_cast<T>(M) / static_cast<T>(M - 1);
  for (index_t c = 0; c < mean.size(); ++c) {
    running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (1 - momentum) * running_var[c] + momentum * var[c] * unbias;
  }
}

/// Evaluation-mode forward with the running statistics (all (C,)).
/// y is resized to x's shape and assigned.
template <class T>
void batchnorm_forward_eval(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                            const Tensor<T>& running_mean, const Tensor<T>& running_var, T eps,
                            Tensor<T>& y) {
  const auto d = detail::batchnorm_dims(x, weight, "batchnorm");
  const index_t N = d.N, C = d.C, S = d.S;
  y.resize_for_overwrite(x.shape());
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t c = 0; c < C; ++c) {
    const T invstd = T(1) / std::sqrt(running_var[c] + eps);
    const T scale = weight[c] * invstd, shift = bias[c] - running_mean[c] * scale;
    for (index_t n = 0; n < N; ++n) {
      const T* xs = x.data() + (n * C + c) * S;
      T* ys = y.data() + (n * C + c) * S;
      for (index_t s = 0; s < S; ++s) ys[s] = scale * xs[s] + shift;
    }
  }
}

namespace detail {
/// Training-mode backward of bn, or of relu(bn) given the forward's mask.
template <class T>
void batchnorm_backward_train_impl(const Tensor<T>& dy, const std::uint8_t* mask, const Tensor<T>& x,
                                   const Tensor<T>& weight, const Tensor<T>& mean, const Tensor<T>& var, T eps,
                                   Tensor<T>& dx, Tensor<T>& dweight, Tensor<T>& dbias) {
  const auto d = batchnorm_dims(x, weight, "batchnorm_backward");
  const index_t N = d.N, C = d.C, S = d.S;
  require<ShapeError>(dy.shape() == x.shape(), "batchnorm_backward: dy has shape ", shape_str(dy.shape()),
                      ", expected ", shape_str(x.shape()));
  dx.resize_for_overwrite(x.shape());
  const double M = static_cast<double>(N * S);
  // per channel: dx = a g + k (x - mu) + b, the sums first
  std::vector<DxCoefficients<T>> coef(static_cast<std::size_t>(C));
#pragma omp parallel
  {
    // with a mask, the AVX-512 sums apply it as they read; otherwise each
    // channel's relu gradient is written here first, and its sums then read
    // it from the cache
    const bool mask_in_sums = mask && std::is_same_v<T, float> && avx512::enabled();
    std::vector<T, supcon::detail::default_init_allocator<T>> relu_grad(
        mask && !mask_in_sums ? static_cast<std::size_t>(N * S) : 0);
#pragma omp for schedule(dynamic, 1)
    for (index_t c = 0; c < C; ++c) {
      const T mu = mean[c];
      const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
      const T* g = dy.data() + c * S;
      index_t gs = C * S;
      if (mask && !mask_in_sums) {  // forward: y = relu(b), b = bn(x)
        relu_grad_channel(g, mask + c * S, C * S, N, S, relu_grad.data());
        g = relu_grad.data(), gs = S;
      }
      // forward: b = weight * xhat + bias  =>  dbias = sum g, dweight = sum g * xhat
      // (xhat = (x - mean) invstd, so the second sum is invstd * sum g (x - mean))
      const auto [sum_dy, sum_dy_xc] =
          batchnorm_grad_sums(g, gs, x.data() + c * S, C * S, mu, N, S, mask_in_sums ? mask + c * S : nullptr);
      const double sum_dy_xhat = invstd * sum_dy_xc;
      dbias[c] += static_cast<T>(sum_dy);
      dweight[c] += static_cast<T>(sum_dy_xhat);
      coef[static_cast<std::size_t>(c)] =
          batchnorm_dx_coefficients<T>(invstd, static_cast<double>(weight[c]), sum_dy, sum_dy_xhat, M);
    }
    // (the loop's barrier: every channel's coefficients are set)
    for_each_slice_run(N, C, [&](index_t q, index_t c) {
      const DxCoefficients<T>& cf = coef[static_cast<std::size_t>(c)];
      batchnorm_dx_slice(dy.data() + q * S, mask ? mask + q * S : nullptr, x.data() + q * S, dx.data() + q * S, S,
                         cf.a, cf.k, mean[c], cf.b);
    });
  }
}
}  // namespace detail

/// Training-mode backward. dy and x have the forward's input shape; mean and
/// var are those returned by batchnorm_forward_train. dx is resized and
/// ASSIGNED; dweight and dbias (C,) are ACCUMULATED. With g = weight * dy:
///   dx = invstd * (g - mean(g) - xhat * mean(g * xhat))
template <class T>
void batchnorm_backward_train(const Tensor<T>& dy, const Tensor<T>& x, const Tensor<T>& weight,
                              const Tensor<T>& mean, const Tensor<T>& var, T eps, Tensor<T>& dx,
                              Tensor<T>& dweight, Tensor<T>& dbias) {
  detail::batchnorm_backward_train_impl(dy, nullptr, x, weight, mean, var, eps, dx, dweight, dbias);
}

/// Backward of batchnorm_relu_forward_train from its mask: that of
/// batchnorm_backward_train with dy replaced by relu's gradient, dy where the
/// mask is set and 0 elsewhere, without writing that gradient out. Shapes and
/// assignments as batchnorm_backward_train; mask holds x.size() bytes.
template <class T>
void batchnorm_relu_backward_train(const Tensor<T>& dy, const std::uint8_t* mask, const Tensor<T>& x,
                                   const Tensor<T>& weight, const Tensor<T>& mean, const Tensor<T>& var, T eps,
                                   Tensor<T>& dx, Tensor<T>& dweight, Tensor<T>& dbias) {
  detail::batchnorm_backward_train_impl(dy, mask, x, weight, mean, var, eps, dx, dweight, dbias);
}

/// Synchronised batch norm: replaces data (n,) by its element-wise sum over
/// every process normalising together (an MPI all-reduce, for instance).
using StatReducer = std::function<void(double* data, index_t n)>;

/// Training-mode forward whose statistics are those of the union of the
/// batches of every process summed by `reduce`: two passes, the channel sums
/// and count, then the sums of squared deviations from the global mean.
/// Shapes and assignments as batchnorm_forward_train; returns the global
/// number of values per channel M (pass it to batchnorm_update_running and
/// batchnorm_backward_train_sync). Requires M > 1 (ValueError).
template <class T>
index_t batchnorm_forward_train_sync(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                                     T eps, const StatReducer& reduce, Tensor<T>& y, Tensor<T>& mean,
                                     Tensor<T>& var) {
  const auto d = detail::batchnorm_dims(x, weight, "batchnorm");
  const index_t N = d.N, C = d.C, S = d.S;
  y.resize_for_overwrite(x.shape());
  mean.resize({C});
  var.resize({C});
  // stats = [sum_c x (C), count]; then [sum_c (x - mean_c)^2 (C)]
  std::vector<double> stats(static_cast<std::size_t>(C + 1), 0.0), sq(static_cast<std::size_t>(C), 0.0);
  auto channel_sum = [&](index_t c, double shift, bool square) {
    double acc = 0;
    for (index_t n = 0; n < N; ++n) {
      const ConstVectorMap<T> xs(x.data() + (n * C + c) * S, S);
      acc += square ? (xs.template cast<double>().array() - shift).square().sum()
                    : xs.template cast<double>().sum();
    }
    return acc;
  };
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t c = 0; c < C; ++c) stats[static_cast<std::size_t>(c)] = channel_sum(c, 0, false);
  stats[static_cast<std::size_t>(C)] = static_cast<double>(N * S);
  reduce(stats.data(), C + 1);
  const double M = stats[static_cast<std::size_t>(C)];
  require<ValueError>(M > 1, "batchnorm: training needs more than one value per channel over all processes");
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t c = 0; c < C; ++c)
    sq[static_cast<std::size_t>(c)] = channel_sum(c, stats[static_cast<std::size_t>(c)] / M, true);
  reduce(sq.data(), C);
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t c = 0; c < C; ++c) {
    const double mu = stats[static_cast<std::size_t>(c)] / M, v = sq[static_cast<std::size_t>(c)] / M;
    mean[c] = static_cast<T>(mu);
    var[c] = static_cast<T>(v);
    const double invstd = 1.0 / std::sqrt(v + eps);
    const T scale = static_cast<T>(weight[c] * invstd), shift = static_cast<T>(bias[c] - mu * weight[c] * invstd);
    for (index_t n = 0; n < N; ++n)
      VectorMap<T>(y.data() + (n * C + c) * S, S).array() =
          scale * ConstVectorMap<T>(x.data() + (n * C + c) * S, S).array() + shift;
  }
  return static_cast<index_t>(M);
}

/// Training-mode backward of batchnorm_forward_train_sync: the two channel
/// sums of dy and dy (x - mean) are summed by `reduce` over the processes, M
/// is the global count the forward returned. dx is ASSIGNED (this process's
/// rows); dweight and dbias are ACCUMULATED with this process's part only
/// (summing the parameter gradients over processes completes them).
template <class T>
void batchnorm_backward_train_sync(const Tensor<T>& dy, const Tensor<T>& x, const Tensor<T>& weight,
                                   const Tensor<T>& mean, const Tensor<T>& var, T eps, index_t M,
                                   const StatReducer& reduce, Tensor<T>& dx, Tensor<T>& dweight,
                                   Tensor<T>& dbias) {
  const auto d = detail::batchnorm_dims(x, weight, "batchnorm_backward");
  const index_t N = d.N, C = d.C, S = d.S;
  require<ShapeError>(dy.shape() == x.shape(), "batchnorm_backward: dy has shape ",
                      shape_str(dy.shape()), ", expected ", shape_str(x.shape()));
  dx.resize_for_overwrite(x.shape());
  // sums = [sum dy (C), sum dy (x - mean) (C)], local then global
  std::vector<double> sums(static_cast<std::size_t>(2 * C), 0.0);
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t c = 0; c < C; ++c) {
    const auto [s1, s2] = detail::batchnorm_grad_sums(dy.data() + c * S, C * S, x.data() + c * S, C * S, mean[c], N, S);
    const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    // forward: y = weight * xhat + bias (this process's share of dbias, dweight)
    dbias[c] += static_cast<T>(s1);
    dweight[c] += static_cast<T>(invstd * s2);
    sums[static_cast<std::size_t>(c)] = s1;
    sums[static_cast<std::size_t>(C + c)] = s2;
  }
  reduce(sums.data(), 2 * C);
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t c = 0; c < C; ++c) {
    // forward: xhat = (x - mean) invstd with the global mean and variance: the
    // dx of batchnorm_backward_train with the global sums and count
    const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    detail::batchnorm_channel_dx(dy.data() + c * S, C * S, x.data() + c * S, C * S, mean[c], invstd,
                                 static_cast<double>(weight[c]), sums[static_cast<std::size_t>(c)],
                                 invstd * sums[static_cast<std::size_t>(C + c)], static_cast<double>(M), N, S,
                                 dx.data() + c * S);
  }
}

/// Evaluation-mode backward: the forward is the affine map
/// y = weight * (x - running_mean) / sqrt(running_var + eps) + bias.
/// dx is resized and ASSIGNED; dweight and dbias (C,) are ACCUMULATED.
template <class T>
void batchnorm_backward_eval(const Tensor<T>& dy, const Tensor<T>& x, const Tensor<T>& weight,
                             const Tensor<T>& running_mean, const Tensor<T>& running_var, T eps,
                             Tensor<T>& dx, Tensor<T>& dweight, Tensor<T>& dbias) {
  const auto d = detail::batchnorm_dims(x, weight, "batchnorm_backward");
  const index_t N = d.N, C = d.C, S = d.S;
  require<ShapeError>(dy.shape() == x.shape(), "batchnorm_backward: dy has shape ",
                      shape_str(dy.shape()), ", expected ", shape_str(x.shape()));
  dx.resize_for_overwrite(x.shape());
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t c = 0; c < C; ++c) {
    const T invstd = T(1) / std::sqrt(running_var[c] + eps), scale = weight[c] * invstd;
    T sum_dy = 0, sum_dy_xhat = 0;
    for (index_t n = 0; n < N; ++n) {
      const T* xs = x.data() + (n * C + c) * S;
      const T* gs = dy.data() + (n * C + c) * S;
      T* dxs = dx.data() + (n * C + c) * S;
      for (index_t s = 0; s < S; ++s) {
        sum_dy += gs[s];
        sum_dy_xhat += gs[s] * (xs[s] - running_mean[c]) * invstd;
        dxs[s] = scale * gs[s];
      }
    }
    dbias[c] += sum_dy;
    dweight[c] += sum_dy_xhat;
  }
}

}  // namespace supcon::ops
