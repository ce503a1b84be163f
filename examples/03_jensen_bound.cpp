// 03 — The Jensen bound: L_in <= L_out, and when it is tight.
//
// For an anchor i with positive probabilities q_p = exp(s_ip) / D_ip,
//
//   L_out(i) = -mean_p log q_p        L_in(i) = -log mean_p q_p
//
// and log is concave, so log(mean q) >= mean(log q): L_in(i) <= L_out(i).
// Equality holds exactly when all q_p of the anchor are equal, that is when
// every positive is equally similar to the anchor. We see the bound on a
// random batch, then build a batch where it is tight, then measure it on many
// batches (supcon::jensen_study, also behind `supcon jensen`).
#include <cmath>
#include <cstdio>
#include <supcon/analysis/jensen.hpp>

int main() {
  using namespace supcon;
  bool ok = true;

  // Part 1: a random batch, three views so that every anchor has >= 2 positives.
  Rng rng(2020);
  const RandomBatch<double> rb = random_batch<double>(rng, 8, 3, 16, 3);
  SupConOptions opt;
  opt.temperature = 0.1;
  opt.base_temperature = 0.1;
  const JensenBatch<double> j = jensen_batch(rb.features, Pairing::from_labels(rb.labels), opt);
  std::printf("random batch, first anchors:\nanchor  |P(i)|  L_out(i)  L_in(i)   gap\n");
  for (std::size_t i = 0; i < 6; ++i)
    std::printf("%6zu  %6lld  %8.4f  %8.4f  %.4f\n", i, static_cast<long long>(j.positives[i]), j.l_out[i],
                j.l_in[i], j.gap[i]);
  std::printf("batch: L_out %.4f >= L_in %.4f; smallest anchor gap %.4f\n\n", j.loss_out, j.loss_in, j.min_gap());
  ok = ok && j.min_gap() > 0;  // strict: random positives are never equally similar

  // Part 2: positives equally similar to the anchor. Anchor 0 points along
  // axis 0; its positives 1..3 are different vectors, each at cosine 0.5 to it.
  Tensor<double> f({5, 4});
  f(0, 0) = 1;
  for (index_t p = 1; p <= 3; ++p) f(p, 0) = 0.5, f(p, p) = std::sqrt(0.75);
  f(4, 3) = 1;  // a negative
  const Pairing pairing = Pairing::from_labels({0, 0, 0, 0, 1});
  const JensenBatch<double> tight = jensen_batch(f, pairing, opt);
  const AnchorTerms<double> t = anchor_terms(f, pairing, opt, 0);
  std::printf("equally similar positives: anchor 0 has q_p =");
  for (double lq : t.log_q) std::printf(" %.4f", std::exp(lq));
  std::printf("\n  L_out(0) = %.12f, L_in(0) = %.12f, gap %.1e\n\n", tight.l_out[0], tight.l_in[0], tight.gap[0]);
  ok = ok && std::abs(tight.gap[0]) < 1e-12 && jensen_equality(t.log_q, 1e-12);

  // Part 3: many random batches (two views, so some anchors have a single positive: gap 0).
  JensenStudy study;
  study.batches = 50;
  const JensenSummary s = jensen_study<double>(study, opt);
  std::printf("%lld anchors in %lld random batches: gap min %.2e, mean %.4f, max %.4f; equality on %.1f%%\n",
              static_cast<long long>(s.anchors), static_cast<long long>(s.batches), s.min_gap, s.mean_gap,
              s.max_gap, 100 * s.fraction_equal);
  ok = ok && s.min_gap >= 0;
  std::printf("Jensen bound L_in <= L_out: %s\n", ok ? "holds, tight exactly for equally similar positives"
                                                     : "VIOLATED");
  return ok ? 0 : 1;
}
