// Test helper for the distributed training tests: compares the model tensors
// (weights and batch-norm statistics) of two checkpoints.
//
//   supcon_ckpt_close A.ckpt B.ckpt RTOL
//
// A tensor passes when max |b - a| <= RTOL * max |a| over its elements (its
// differences judged at its own scale). Prints the worst ratio and its
// tensor; exits 0 on pass, 1 on a difference, 2 on unusable input.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <supcon/train/checkpoint.hpp>

namespace {

std::vector<double> values(const supcon::CheckpointTensor& t) {
  std::vector<double> out(static_cast<std::size_t>(supcon::numel_of(t.shape)));
  for (std::size_t k = 0; k < out.size(); ++k) {
    if (t.dtype == supcon::StoredDtype::f32) {
      float f;
      std::memcpy(&f, t.data.data() + 4 * k, 4);
      out[k] = f;
    } else {
      std::memcpy(&out[k], t.data.data() + 8 * k, 8);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s A.ckpt B.ckpt RTOL\n", argv[0]);
    return 2;
  }
  try {
    const supcon::Checkpoint a = supcon::load_checkpoint(argv[1]), b = supcon::load_checkpoint(argv[2]);
    const double rtol = std::atof(argv[3]);
    supcon::require(a.model.size() == b.model.size() && !a.model.empty(), "the checkpoints hold ",
                    a.model.size(), " and ", b.model.size(), " model tensors");
    double worst = 0;
    std::string where;
    for (std::size_t i = 0; i < a.model.size(); ++i) {
      const supcon::CheckpointTensor &ta = a.model[i], &tb = b.model[i];
      supcon::require(ta.name == tb.name && ta.shape == tb.shape, "tensor ", i, ": ", ta.name, " vs ", tb.name);
      const std::vector<double> va = values(ta), vb = values(tb);
      double scale = 1e-30, diff = 0;
      for (std::size_t k = 0; k < va.size(); ++k) {
        scale = std::max(scale, std::abs(va[k]));
        diff = std::max(diff, std::abs(vb[k] - va[k]));
      }
      if (diff / scale > worst) worst = diff / scale, where = ta.name;
    }
    std::printf("%zu tensors, worst relative difference %.3g (%s), tolerance %.3g\n", a.model.size(), worst,
                where.c_str(), rtol);
    return worst <= rtol ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "supcon_ckpt_close: %s\n", e.what());
    return 2;
  }
}
