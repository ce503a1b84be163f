// Test helper for the CLI tests: compares an expected .npy with an actual .npy
// file, or with a number, element by element.
//
//   supcon_npy_close EXPECTED.npy ACTUAL.npy|NUMBER RTOL
//
// An element passes when |actual - expected| <= RTOL * max(|expected|, s),
// s = 1e-6 * the largest |expected| (so entries that are zero up to rounding
// are judged at the array's scale). Prints the worst ratio; exits 0 on pass.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <supcon/core/npy.hpp>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s EXPECTED.npy ACTUAL.npy|NUMBER RTOL\n", argv[0]);
    return 2;
  }
  try {
    const supcon::Tensor<double> expected = supcon::load_npy<double>(argv[1]);
    const std::string actual_arg = argv[2];
    supcon::Tensor<double> actual;
    if (actual_arg.size() > 4 && actual_arg.compare(actual_arg.size() - 4, 4, ".npy") == 0) {
      actual = supcon::load_npy<double>(actual_arg);
      supcon::require<supcon::ShapeError>(actual.shape() == expected.shape(), actual_arg, ": shape ",
                                          supcon::shape_str(actual.shape()), " differs from the expected ",
                                          supcon::shape_str(expected.shape()));
    } else {
      supcon::require(expected.size() == 1, argv[1], ": a number can only be compared with one element");
      char* end = nullptr;
      const double v = std::strtod(argv[2], &end);
      supcon::require(end && *end == '\0', "not a number: ", actual_arg);
      actual = supcon::Tensor<double>(expected.shape(), v);
    }
    const double rtol = std::strtod(argv[3], nullptr);
    double scale = 0, worst = 0;
    for (double e : expected) scale = std::max(scale, std::abs(e));
    for (supcon::index_t k = 0; k < expected.size(); ++k) {
      const double ok = std::max(std::abs(expected[k]), 1e-6 * scale);
      const double err = std::abs(actual[k] - expected[k]);
      worst = std::max(worst, ok > 0 ? err / ok : err);
      if (!std::isfinite(actual[k])) worst = INFINITY;
    }
    std::printf("%s: worst relative difference %.3e (tolerance %.1e)\n", argv[1], worst, rtol);
    return worst <= rtol ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "supcon_npy_close: %s\n", e.what());
    return 2;
  }
}
