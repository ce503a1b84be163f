// 01 — The SupCon loss by hand.
//
// Three samples, two views each, in two dimensions, so every number can be
// followed on paper. We compute L_out (Eq. 2 of Khosla et al., 2020) with
// plain loops, exactly as the formula reads, and then ask the library for the
// same loss. The two must agree to rounding.
//
//   s_ik     = <f_i, f_k> / tau                       similarity of anchor i and row k
//   log p_ik = s_ik - log sum_{a != i} exp(s_ia)      log-softmax over every other row
//   L_out(i) = -(1/|P(i)|) sum_{p in P(i)} log p_ip   P(i): other rows with i's label
//   loss     = (tau / base_tau) * mean_i L_out(i)
#include <cmath>
#include <cstdio>
#include <vector>
#include <supcon/losses/supcon_reference.hpp>

int main() {
  using supcon::index_t;
  const index_t B = 3, V = 2, N = V * B;
  const double tau = 0.5;
  const std::vector<std::int64_t> labels = {0, 0, 1};  // samples 0 and 1 share a class

  // Rows are view-major: rows 0..2 are view 0 of samples 0..2, rows 3..5 view 1.
  // Each feature is a unit vector at an angle (degrees) on the circle.
  const double angle[N] = {0, 30, 180, 10, 50, 200};
  supcon::Tensor<double> f({N, 2});
  for (index_t r = 0; r < N; ++r) {
    f(r, 0) = std::cos(angle[r] * M_PI / 180);
    f(r, 1) = std::sin(angle[r] * M_PI / 180);
  }

  std::printf("anchor  label  |P(i)|  L_out(i)\n");
  double total = 0;
  for (index_t i = 0; i < N; ++i) {
    // Step 1: similarities to every row.
    double s[N];
    for (index_t k = 0; k < N; ++k) s[k] = (f(i, 0) * f(k, 0) + f(i, 1) * f(k, 1)) / tau;
    // Step 2: the softmax denominator over every row except the anchor itself.
    double denom = 0;
    for (index_t k = 0; k < N; ++k)
      if (k != i) denom += std::exp(s[k]);
    // Step 3: average -log p over the positives (same label, not the anchor).
    double sum_log_p = 0;
    int positives = 0;
    for (index_t k = 0; k < N; ++k) {
      if (k == i || labels[static_cast<std::size_t>(k % B)] != labels[static_cast<std::size_t>(i % B)]) continue;
      sum_log_p += s[k] - std::log(denom);
      ++positives;
    }
    const double li = -sum_log_p / positives;
    std::printf("%6lld  %5lld  %6d  %8.5f\n", static_cast<long long>(i),
                static_cast<long long>(labels[static_cast<std::size_t>(i % B)]), positives, li);
    total += li;
  }
  // Step 4: the mean over anchors; tau / base_tau = 1 here.
  const double by_hand = total / N;

  supcon::SupConOptions opt;
  opt.temperature = tau;
  opt.base_temperature = tau;
  const double library = supcon::supcon_loss_reference(f, supcon::Pairing::from_labels(labels), opt).value;

  const bool match = std::abs(by_hand - library) <= 1e-12 * std::abs(library);
  std::printf("\nL_out by hand: %.15f\nL_out library: %.15f\nmatch: %s\n", by_hand, library, match ? "yes" : "NO");
  return match ? 0 : 1;
}
