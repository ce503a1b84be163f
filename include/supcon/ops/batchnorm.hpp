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
#include <functional>
#include <utility>
#include <vector>

#include "supcon/core/tensor.hpp"

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

/// Channel c's two sums of the backward: sum dy and sum dy (x - mu), in double.
template <class T>
std::pair<double, double> batchnorm_grad_sums(const Tensor<T>& dy, const Tensor<T>& x, index_t c, T mu,
                                              index_t N, index_t C, index_t S) {
  double sum_dy = 0, sum_dy_xc = 0;
  for (index_t n = 0; n < N; ++n) {
    const ConstVectorMap<T> xs(x.data() + (n * C + c) * S, S), gs(dy.data() + (n * C + c) * S, S);
    sum_dy += static_cast<double>(gs.sum());
    sum_dy_xc += static_cast<double>((gs.array() * (xs.array() - mu)).sum());
  }
  return {sum_dy, sum_dy_xc};
}

/// Channel c of dx from the channel's sums over all M values (sum_dy_xhat =
/// invstd * sum dy (x - mu)). forward: xhat = (x - mean) invstd, mean and var
/// depend on every x of the channel:
///   dx = invstd (w g - mean(w g) - xhat mean(w g xhat)) = a g + k (x - mean) + b
template <class T>
void batchnorm_channel_dx(const Tensor<T>& dy, const Tensor<T>& x, index_t c, T mu, double invstd, double w,
                          double sum_dy, double sum_dy_xhat, double M, index_t N, index_t C, index_t S,
                          Tensor<T>& dx) {
  const double mean_g = w * sum_dy / M, mean_g_xhat = w * sum_dy_xhat / M;
  const T a = static_cast<T>(invstd * w), k = static_cast<T>(-invstd * invstd * mean_g_xhat),
          b = static_cast<T>(-invstd * mean_g);
  for (index_t n = 0; n < N; ++n)
    VectorMap<T>(dx.data() + (n * C + c) * S, S).array() =
        a * ConstVectorMap<T>(dy.data() + (n * C + c) * S, S).array() +
        k * (ConstVectorMap<T>(x.data() + (n * C + c) * S, S).array() - mu) + b;
}
}  // namespace detail

/// Training-mode forward. x is (N, C) or (N, C, H, W); weight, bias are (C,).
/// y (x's shape), mean (C,) and var (C,) (the biased batch variance) are
/// resized and assigned. Requires more than one value per channel (M > 1).
template <class T>
void batchnorm_forward_train(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                             T eps, Tensor<T>& y, Tensor<T>& mean, Tensor<T>& var) {
  const auto d = detail::batchnorm_dims(x, weight, "batchnorm");
  const index_t N = d.N, C = d.C, S = d.S;
  require<ValueError>(N * S > 1, "batchnorm: training needs more than one value per channel, got input ",
                      shape_str(x.shape()));
  y.resize_for_overwrite(x.shape());
  mean.resize({C});
  var.resize({C});
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static)
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
    const T scale = static_cast<T>(weight[c] * invstd);
    const T shift = static_cast<T>(bias[c] - mu * weight[c] * invstd);
    for (index_t n = 0; n < N; ++n)
      VectorMap<T>(y.data() + (n * C + c) * S, S).array() =
          scale * ConstVectorMap<T>(x.data() + (n * C + c) * S, S).array() + shift;
  }
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
#pragma omp parallel for schedule(static)
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

/// Training-mode backward. dy and x have the forward's input shape; mean and
/// var are those returned by batchnorm_forward_train. dx is resized and
/// ASSIGNED; dweight and dbias (C,) are ACCUMULATED. With g = weight * dy:
///   dx = invstd * (g - mean(g) - xhat * mean(g * xhat))
template <class T>
void batchnorm_backward_train(const Tensor<T>& dy, const Tensor<T>& x, const Tensor<T>& weight,
                              const Tensor<T>& mean, const Tensor<T>& var, T eps, Tensor<T>& dx,
                              Tensor<T>& dweight, Tensor<T>& dbias) {
  const auto d = detail::batchnorm_dims(x, weight, "batchnorm_backward");
  const index_t N = d.N, C = d.C, S = d.S;
  require<ShapeError>(dy.shape() == x.shape(), "batchnorm_backward: dy has shape ",
                      shape_str(dy.shape()), ", expected ", shape_str(x.shape()));
  dx.resize_for_overwrite(x.shape());
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static)
  for (index_t c = 0; c < C; ++c) {
    const T mu = mean[c];
    const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    // forward: y = weight * xhat + bias  =>  dbias = sum dy, dweight = sum dy * xhat
    // (xhat = (x - mean) invstd, so the second sum is invstd * sum dy (x - mean))
    const auto [sum_dy, sum_dy_xc] = detail::batchnorm_grad_sums(dy, x, c, mu, N, C, S);
    const double sum_dy_xhat = invstd * sum_dy_xc;
    dbias[c] += static_cast<T>(sum_dy);
    dweight[c] += static_cast<T>(sum_dy_xhat);
    detail::batchnorm_channel_dx(dy, x, c, mu, invstd, static_cast<double>(weight[c]), sum_dy, sum_dy_xhat, M, N,
                                 C, S, dx);
  }
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
#pragma omp parallel for schedule(static)
  for (index_t c = 0; c < C; ++c) stats[static_cast<std::size_t>(c)] = channel_sum(c, 0, false);
  stats[static_cast<std::size_t>(C)] = static_cast<double>(N * S);
  reduce(stats.data(), C + 1);
  const double M = stats[static_cast<std::size_t>(C)];
  require<ValueError>(M > 1, "batchnorm: training needs more than one value per channel over all processes");
#pragma omp parallel for schedule(static)
  for (index_t c = 0; c < C; ++c)
    sq[static_cast<std::size_t>(c)] = channel_sum(c, stats[static_cast<std::size_t>(c)] / M, true);
  reduce(sq.data(), C);
#pragma omp parallel for schedule(static)
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
#pragma omp parallel for schedule(static)
  for (index_t c = 0; c < C; ++c) {
    const auto [s1, s2] = detail::batchnorm_grad_sums(dy, x, c, mean[c], N, C, S);
    const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    // forward: y = weight * xhat + bias (this process's share of dbias, dweight)
    dbias[c] += static_cast<T>(s1);
    dweight[c] += static_cast<T>(invstd * s2);
    sums[static_cast<std::size_t>(c)] = s1;
    sums[static_cast<std::size_t>(C + c)] = s2;
  }
  reduce(sums.data(), 2 * C);
#pragma omp parallel for schedule(static)
  for (index_t c = 0; c < C; ++c) {
    // forward: xhat = (x - mean) invstd with the global mean and variance: the
    // dx of batchnorm_backward_train with the global sums and count
    const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    detail::batchnorm_channel_dx(dy, x, c, mean[c], invstd, static_cast<double>(weight[c]),
                                 sums[static_cast<std::size_t>(c)], invstd * sums[static_cast<std::size_t>(C + c)],
                                 static_cast<double>(M), N, C, S, dx);
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
#pragma omp parallel for schedule(static)
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
