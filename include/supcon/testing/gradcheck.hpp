#pragma once
/// \file gradcheck.hpp
/// Central-difference gradient checks, shipped so users can check their own
/// functions and layers the way the library checks its own.
///
/// For a scalar function f of a tensor x, the numerical gradient is
///   g_k = (f(x + eps e_k) - f(x - eps e_k)) / (2 eps),
/// whose error is O(eps^2) (plus rounding of order ulp(f) / eps). In double
/// with eps = 1e-6 the two agree with an analytic gradient to about 1e-8
/// relative for smooth functions.

#include <algorithm>
#include <cmath>
#include <functional>

#include "supcon/core/tensor.hpp"

namespace supcon::testing {

/// Numerical gradient of the scalar function `f` at `x` by central differences.
/// `x` is perturbed in place and restored element by element.
template <class T>
Tensor<T> numeric_gradient(const std::function<T(const Tensor<T>&)>& f, Tensor<T>& x,
                           T eps = T(1e-6)) {
  Tensor<T> g(x.shape());
  for (index_t k = 0; k < x.size(); ++k) {
    const T saved = x[k];
    x[k] = saved + eps;
    const T fp = f(x);
    x[k] = saved - eps;
    const T fm = f(x);
    x[k] = saved;
    g[k] = (fp - fm) / (2 * eps);
  }
  return g;
}

/// Largest element-wise |a - b| / max(|a|, |b|, floor): a relative error that
/// does not blow up where both gradients are (nearly) zero.
template <class T>
double max_relative_error(const Tensor<T>& a, const Tensor<T>& b, double floor = 1e-6) {
  require<ShapeError>(a.shape() == b.shape(), "max_relative_error: shapes ", shape_str(a.shape()),
                      " and ", shape_str(b.shape()), " differ");
  double worst = 0;
  for (index_t k = 0; k < a.size(); ++k) {
    const double x = static_cast<double>(a[k]), y = static_cast<double>(b[k]);
    const double scale = std::max({std::abs(x), std::abs(y), floor});
    worst = std::max(worst, std::abs(x - y) / scale);
  }
  return worst;
}

/// Relative error between an analytic gradient and the central-difference one.
template <class T>
double gradient_error(const std::function<T(const Tensor<T>&)>& f, Tensor<T>& x,
                      const Tensor<T>& analytic, T eps = T(1e-6)) {
  return max_relative_error(analytic, numeric_gradient(f, x, eps));
}

}  // namespace supcon::testing
