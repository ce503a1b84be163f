// Helpers shared by the loss tests: random features and the list of every
// option combination the contrastive losses accept.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include <supcon/core/rng.hpp>
#include <supcon/core/tensor.hpp>
#include <supcon/losses/supcon_options.hpp>

namespace losses_test {

using supcon::index_t;

// (n, d) standard normal features, each row scaled to unit norm when `unit`.
template <class T>
supcon::Tensor<T> random_features(index_t n, index_t d, std::uint64_t seed, bool unit = true) {
  supcon::Rng rng(seed);
  supcon::Tensor<T> f({n, d});
  for (index_t i = 0; i < n; ++i) {
    double norm = 0;
    for (index_t j = 0; j < d; ++j) {
      const double v = rng.normal();
      f(i, j) = static_cast<T>(v);
      norm += v * v;
    }
    if (unit)
      for (index_t j = 0; j < d; ++j) f(i, j) = static_cast<T>(f(i, j) / std::sqrt(norm));
  }
  return f;
}

// Five samples; sample 3 is alone in its class.
inline supcon::Pairing five_labels() { return supcon::Pairing::from_labels({0, 1, 0, 2, 1}); }

// An asymmetric (5, 5) mask: sample 2 is not paired with itself, sample 4 with nobody.
inline supcon::Pairing five_mask() {
  supcon::Tensor<double> m({5, 5}, std::vector<double>{1, 1, 0, 0, 1,  //
                                                        0, 1, 0, 1, 0,  //
                                                        1, 0, 0, 0, 0,  //
                                                        0, 0, 1, 1, 1,  //
                                                        0, 0, 0, 0, 0});
  return supcon::Pairing::from_mask(m);
}

struct Combo {
  supcon::SupConOptions opt;
  index_t views = 1;
  bool mask = false;  // five_mask() instead of five_labels()
  std::string name() const {
    const char* dens[] = {"all", "one_positive", "only_negatives"};
    return std::string("views=") + std::to_string(views) + (mask ? " mask" : " labels") +
           (opt.contrast_mode == supcon::ContrastMode::all ? " anchors=all" : " anchors=one") +
           (opt.summation == supcon::Summation::outside ? " L_out" : " L_in") + " den=" +
           dens[static_cast<int>(opt.denominator)] + " cap=" + std::to_string(opt.positives_cap) +
           (opt.no_positives == supcon::NoPositives::count_zero ? " count_zero" : " exclude");
  }
  supcon::Pairing pairing() const { return mask ? five_mask() : five_labels(); }
};

// Contrast mode x summation x denominator x cap on/off x no-positives policy
// x views 1..3 x labels/mask, with temperature != base_temperature.
inline std::vector<Combo> all_combos() {
  using namespace supcon;
  std::vector<Combo> out;
  for (index_t views = 1; views <= 3; ++views)
    for (bool mask : {false, true})
      for (ContrastMode cm : {ContrastMode::all, ContrastMode::one})
        for (Summation su : {Summation::outside, Summation::inside})
          for (Denominator de : {Denominator::all, Denominator::one_positive, Denominator::only_negatives})
            for (bool cap : {false, true})
              for (NoPositives np : {NoPositives::count_zero, NoPositives::exclude}) {
                Combo c;
                c.views = views;
                c.mask = mask;
                c.opt.temperature = 0.3;
                c.opt.base_temperature = 0.2;
                c.opt.contrast_mode = cm;
                c.opt.summation = su;
                c.opt.denominator = de;
                c.opt.positives_cap = cap ? views : -1;  // keep one other sample
                c.opt.no_positives = np;
                out.push_back(c);
              }
  return out;
}

}  // namespace losses_test
