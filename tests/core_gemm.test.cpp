// The float product of the convolutions (the AVX2 kernel, and the wide
// AVX-512 one where the CPU has it) against a product summed in double, over
// shapes that cross every blocking edge and every operand layout.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "supcon/core/rng.hpp"
#include "supcon/core/gemm.hpp"

using supcon::index_t;

namespace {

struct Operand {
  std::vector<float> data;
  index_t rs = 0, cs = 0;  // element (i, j) at data[i * rs + j * cs]
};

// A rows x cols operand stored row-major (transposed = false) or column-major.
Operand random_operand(index_t rows, index_t cols, bool transposed, supcon::Rng& rng) {
  Operand o;
  o.data.resize(static_cast<std::size_t>(rows * cols));
  for (float& v : o.data) v = static_cast<float>(rng.normal());
  o.rs = transposed ? 1 : cols;
  o.cs = transposed ? rows : 1;
  return o;
}

// max |C - C_exact| / max over entries of sum_k |A(i,k) B(k,j)|: the error in
// units of the size of the terms, which float accumulation keeps near 1e-7 x sqrt(K).
double product_error(index_t M, index_t N, index_t K, bool ta, bool tb, bool accumulate, supcon::Rng& rng) {
  const Operand a = random_operand(M, K, ta, rng), b = random_operand(K, N, tb, rng);
  const index_t ldc = N + 3;  // C is a block of a wider matrix
  std::vector<float> c(static_cast<std::size_t>(M * ldc));
  for (float& v : c) v = static_cast<float>(rng.normal());
  const std::vector<float> c0 = c;
  supcon::detail::gemm::sgemm(M, N, K, a.data.data(), a.rs, a.cs, b.data.data(), b.rs, b.cs, c.data(), ldc,
                              accumulate);
  double worst = 0, scale = 1e-30;
  for (index_t i = 0; i < M; ++i)
    for (index_t j = 0; j < ldc; ++j) {
      const std::size_t at = static_cast<std::size_t>(i * ldc + j);
      if (j >= N) {  // outside C: untouched
        if (c[at] != c0[at]) return 1e30;
        continue;
      }
      double exact = accumulate ? c0[at] : 0.0, size = accumulate ? std::abs(c0[at]) : 0.0;
      for (index_t k = 0; k < K; ++k) {
        const double t = static_cast<double>(a.data[static_cast<std::size_t>(i * a.rs + k * a.cs)]) *
                         b.data[static_cast<std::size_t>(k * b.rs + j * b.cs)];
        exact += t;
        size += std::abs(t);
      }
      worst = std::max(worst, std::abs(c[at] - exact));
      scale = std::max(scale, size);
    }
  return worst / scale;
}

// The kernels this CPU can run: false for the AVX2 one, true for the wide
// AVX-512 one. with_kernel sets the choice for f and restores it.
std::vector<bool> kernels() {
  if (supcon::detail::gemm::cpu_has_avx512f()) return {false, true};
  WARN("this CPU has no AVX-512F: only the AVX2 kernel is checked");
  return {false};
}
template <class F>
void with_kernel(bool wide, const F& f) {
  bool& setting = supcon::detail::gemm::wide_kernel();
  const bool saved = setting;
  setting = wide;
  f();
  setting = saved;
}

}  // namespace

TEST_CASE("The float product equals the exact product for every operand layout and blocking edge") {
  supcon::Rng rng(5);
  if (!supcon::detail::gemm::cpu_has_avx2_fma()) {
    WARN("this CPU has no AVX2 + FMA: the kernel is never used, nothing to check");
    return;
  }
  // M around the 6-row tile and the 120-row block, N around the 16-column tile
  // (and pairs of them for the wide kernel, read in place or packed; one
  // panel alone, up to twelve rows, for the narrow one) and the
  // 3,072-column block, K across the 256-deep slice; K = 0 assigns zeros.
  const index_t shapes[][3] = {{1, 1, 1},     {3, 5, 7},      {6, 16, 16},   {7, 17, 17},   {5, 15, 3},
                               {16, 784, 144}, {9, 47, 0},     {121, 50, 300}, {64, 96, 513}, {7, 3900, 9},
                               {144, 200, 16}, {13, 3089, 40}, {12, 40, 33},  {6, 48, 5},    {11, 65, 70},
                               {16, 16, 147}, {13, 9, 20},    {30, 16, 50}};
  for (bool wide : kernels())
    with_kernel(wide, [&] {
      for (const auto& s : shapes)
        for (int layout = 0; layout < 4; ++layout)
          for (bool accumulate : {false, true}) {
            const double err = product_error(s[0], s[1], s[2], layout & 1, layout & 2, accumulate, rng);
            INFO("M " << s[0] << " N " << s[1] << " K " << s[2] << " layout " << layout << " accumulate "
                      << accumulate << " wide " << wide);
            CHECK(err < 1e-6);
          }
    });
}

TEST_CASE("The product kernel declines double, leaving the output untouched") {
  CHECK_FALSE(supcon::gemm_available<double>());
  std::vector<double> a(4, 1.0), b(4, 1.0), c(4, 7.0);
  CHECK_FALSE(supcon::gemm_fast<double>(2, 2, 2, a.data(), 2, 1, b.data(), 2, 1, c.data(), 2, false));
  CHECK(c == std::vector<double>(4, 7.0));
}

TEST_CASE("The product of operands written in the kernel's panels equals the exact product") {
  if (!supcon::detail::gemm::cpu_has_avx2_fma()) {
    WARN("this CPU has no AVX2 + FMA: gemm_packed is never used, nothing to check");
    return;
  }
  supcon::Rng rng(6);
  // ragged panels (M, N not multiples of 6, 16), past one 120-row block and one 256-deep slice
  const index_t shapes[][3] = {{1, 1, 1}, {6, 16, 16}, {7, 17, 9}, {13, 50, 300}, {130, 40, 64}, {64, 256, 513}};
  for (bool wide : kernels())
    for (const auto& s : shapes) {
      const index_t M = s[0], N = s[1], K = s[2];
      INFO("M " << M << " N " << N << " K " << K << " wide " << wide);
      const Operand a = random_operand(M, K, false, rng), b = random_operand(K, N, false, rng);
      std::vector<float> ap(static_cast<std::size_t>(supcon::gemm_packed_a_len(M, K)), 0.f);
      std::vector<float> bp(static_cast<std::size_t>(supcon::gemm_packed_b_len(K, N)), 0.f);
      for (index_t i = 0; i < M; ++i)
        for (index_t k = 0; k < K; ++k)
          ap[static_cast<std::size_t>(supcon::gemm_packed_a_index(i, k, K))] =
              a.data[static_cast<std::size_t>(i * K + k)];
      for (index_t k = 0; k < K; ++k)
        for (index_t j = 0; j < N; ++j)
          bp[static_cast<std::size_t>(supcon::gemm_packed_b_index(k, j, K))] =
              b.data[static_cast<std::size_t>(k * N + j)];
      const index_t ldc = N + 3;  // the columns past N must stay untouched
      std::vector<float> c(static_cast<std::size_t>(M * ldc), 9.f);
      with_kernel(wide, [&] { supcon::gemm_packed(M, N, K, ap.data(), bp.data(), c.data(), ldc, false); });
      double worst = 0, scale = 1e-30;
      for (index_t i = 0; i < M; ++i)
        for (index_t j = 0; j < ldc; ++j) {
          const float got = c[static_cast<std::size_t>(i * ldc + j)];
          if (j >= N) {
            CHECK(got == 9.f);
            continue;
          }
          double exact = 0, size = 0;
          for (index_t k = 0; k < K; ++k) {
            const double t = static_cast<double>(a.data[static_cast<std::size_t>(i * K + k)]) *
                             b.data[static_cast<std::size_t>(k * N + j)];
            exact += t, size += std::abs(t);
          }
          worst = std::max(worst, std::abs(got - exact));
          scale = std::max(scale, size);
        }
      CHECK(worst / scale < 1e-6);
    }
}
