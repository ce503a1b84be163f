// 04 — Why the paper prefers L_out: how each loss pulls on its positives.
//
// Both losses pull an anchor towards its positives; the gradient with respect
// to the similarity s_ip is a weighted sum of the same per-positive terms
// (supcon/analysis/gradient_structure.hpp):
//
//   L_out: weight 1/|P(i)| for every positive       (a fixed normalisation)
//   L_in:  weight q_p / sum_p' q_p'                  (a softmax over the positives)
//
// With one hard positive (far from the anchor, small q_p), L_out still pulls
// it with a third of the force, while L_in hands almost all of the pull to
// the positives that are already close. Hard positives are where learning
// happens, which is the paper's argument (Sec. 3.2.4) for L_out.
#include <cmath>
#include <cstdio>
#include <supcon/analysis/gradient_structure.hpp>

int main() {
  using namespace supcon;
  // Anchor 0 along axis 0. Positives 1 and 2 are easy (cosine 0.9), positive 3
  // is hard (cosine -0.2). Rows 4 and 5 are negatives of other classes.
  const double cosine[6] = {1.0, 0.9, 0.9, -0.2, 0.3, 0.1};
  Tensor<double> f({6, 6});
  for (index_t r = 0; r < 6; ++r) {
    f(r, 0) = cosine[r];
    if (r > 0) f(r, r) = std::sqrt(1 - cosine[r] * cosine[r]);
  }
  SupConOptions opt;
  opt.temperature = 0.1;
  opt.base_temperature = 0.1;
  const GradientStructure<double> g = gradient_structure(f, Pairing::from_labels({0, 0, 0, 0, 1, 2}), opt, 0);

  // dL/ds_ip < 0: a gradient step raises s_ip, pulling p towards the anchor;
  // > 0: p already holds more than its share of the softmax and is eased back.
  std::printf("positive  cosine   q_p        weight L_out  weight L_in  dL_out/ds_ip  dL_in/ds_ip\n");
  for (std::size_t j = 0; j < g.positives.size(); ++j) {
    const std::size_t p = static_cast<std::size_t>(g.positives[j]);
    std::printf("%8zu  %6.2f  %.3e  %12.4f  %11.3e  %12.4f  %11.3e\n", p, cosine[p], g.probability[j],
                g.weight_out[j], g.weight_in[j], g.dl_out[p], g.dl_in[p]);
  }
  const double ratio = g.dl_out[3] / g.dl_in[3];
  std::printf("\nthe hard positive (row 3) is pulled %.3g times harder by L_out than by L_in\n", ratio);
  const bool ok = g.dl_out[3] < 0 && ratio > 1000 && std::abs(g.weight_out[2] - 1.0 / 3) < 1e-15;
  std::printf("L_out keeps the pull on hard positives: %s\n", ok ? "yes" : "NO");
  return ok ? 0 : 1;
}
