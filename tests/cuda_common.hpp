// Shared by the CUDA tests (tests/cuda_math.test.cpp on the CPU,
// tests/cuda_losses.test.cu on the GPU).
#pragma once
#include <vector>

#include <supcon/losses/supcon_options.hpp>

#include "losses_common.hpp"

namespace cuda_test {

// The options the fused CUDA kernels support (labels, no cap, denominators all
// and only_negatives), a subset of the combinations every loss is tested with:
// contrast mode x summation x denominator x no-positive policy, tau != base tau.
// With `one_positive`, that denominator too (the blocked loss takes it).
inline std::vector<supcon::SupConOptions> fused_options(bool one_positive = false) {
  std::vector<supcon::SupConOptions> out;
  for (const losses_test::Combo& c : losses_test::all_combos())
    if (c.views == 1 && !c.mask && c.opt.positives_cap < 0 &&
        (one_positive || c.opt.denominator != supcon::Denominator::one_positive))
      out.push_back(c.opt);
  return out;
}

}  // namespace cuda_test
