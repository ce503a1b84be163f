// 02 — The SupCon gradient by hand.
//
// The same tiny batch as example 01. Writing the loss through the similarity
// matrix s_ik = <f_i, f_k> / tau, the derivative of L_out(i) with respect to
// one similarity is a softmax minus a uniform target over the positives:
//
//   dL_out(i)/ds_ik = p_ik - [k in P(i)] / |P(i)|       (k != i; 0 for k == i)
//
// (docs/losses.md derives it). The loss averages over the N anchors, and s is
// bilinear in the features, so the chain rule gives
//
//   G = (1/N) dL/ds,   dL/dF = (G + G^T) F / tau.
//
// We build G with loops, apply the chain rule, and compare with the library's
// gradient and with central differences of the loss.
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>
#include <supcon/losses/supcon_reference.hpp>
#include <supcon/testing/gradcheck.hpp>

int main() {
  using supcon::index_t;
  const index_t B = 3, V = 2, N = V * B;
  const double tau = 0.5;
  const std::vector<std::int64_t> labels = {0, 0, 1};
  const double angle[N] = {0, 30, 180, 10, 50, 200};
  supcon::Tensor<double> f({N, 2});
  for (index_t r = 0; r < N; ++r) {
    f(r, 0) = std::cos(angle[r] * M_PI / 180);
    f(r, 1) = std::sin(angle[r] * M_PI / 180);
  }
  auto same = [&](index_t i, index_t k) {
    return labels[static_cast<std::size_t>(i % B)] == labels[static_cast<std::size_t>(k % B)];
  };

  // Step 1: G = (1/N) dL/ds, row by row.
  supcon::Tensor<double> G({N, N});
  for (index_t i = 0; i < N; ++i) {
    double s[N], denom = 0;
    int positives = 0;
    for (index_t k = 0; k < N; ++k) {
      s[k] = (f(i, 0) * f(k, 0) + f(i, 1) * f(k, 1)) / tau;
      if (k == i) continue;
      denom += std::exp(s[k]);
      positives += same(i, k);
    }
    for (index_t k = 0; k < N; ++k) {
      if (k == i) continue;
      const double p = std::exp(s[k]) / denom;              // pushes every row away...
      const double target = same(i, k) ? 1.0 / positives : 0;  // ...and pulls the positives back
      G(i, k) = (p - target) / N;
    }
  }
  // Step 2: chain rule through s_ik = <f_i, f_k> / tau: df_i gets G_ik f_k, df_k gets G_ik f_i.
  supcon::Tensor<double> df({N, 2});
  for (index_t i = 0; i < N; ++i)
    for (index_t k = 0; k < N; ++k)
      for (index_t d = 0; d < 2; ++d) {
        df(i, d) += G(i, k) * f(k, d) / tau;
        df(k, d) += G(i, k) * f(i, d) / tau;
      }

  supcon::SupConOptions opt;
  opt.temperature = tau;
  opt.base_temperature = tau;
  const supcon::Pairing pairing = supcon::Pairing::from_labels(labels);
  const supcon::Tensor<double> library = supcon::supcon_loss_reference(f, pairing, opt).grad;
  std::function<double(const supcon::Tensor<double>&)> loss = [&](const supcon::Tensor<double>& x) {
    return supcon::supcon_loss_reference(x, pairing, opt).value;
  };
  const supcon::Tensor<double> numeric = supcon::testing::numeric_gradient(loss, f);

  std::printf("row   dL/df by hand           library                 central difference\n");
  for (index_t r = 0; r < N; ++r)
    std::printf("%3lld  (%9.6f, %9.6f)  (%9.6f, %9.6f)  (%9.6f, %9.6f)\n", static_cast<long long>(r), df(r, 0),
                df(r, 1), library(r, 0), library(r, 1), numeric(r, 0), numeric(r, 1));
  const double vs_library = supcon::testing::max_relative_error(df, library);
  const double vs_numeric = supcon::testing::max_relative_error(df, numeric);
  const bool ok = vs_library < 1e-12 && vs_numeric < 1e-7;
  std::printf("\nrelative difference to the library: %.1e, to central differences: %.1e\ngradient matches: %s\n",
              vs_library, vs_numeric, ok ? "yes" : "NO");
  return ok ? 0 : 1;
}
