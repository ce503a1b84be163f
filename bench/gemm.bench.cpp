// The float products of the convolutions, one thread: the kernels of
// core/gemm.hpp against Eigen's product on the same operands. Shapes are those
// of a 3x3 convolution of the demo ResNet (width 16, 28x28) and of ResNet-18
// (CIFAR stem), with images grouped to about 512-800 columns:
//   forward  Y (OC, L)   = W (OC, CKK) COL (CKK, L)
//   dweight  dW (OC, CKK) += dY (OC, L) COL^T
//   dcol     dCOL (CKK, L) = W^T dY (OC, L)
#include <benchmark/benchmark.h>

#include <string>

#include "supcon/core/rng.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/core/gemm.hpp"

namespace {

using supcon::index_t;
using Mat = supcon::RowMatrix<float>;

struct Shape3 {
  const char* name;
  index_t oc, ckk, l;
};

// The kernel itself; false never (the caller checked the CPU).
bool sgemm_ok(index_t M, index_t N, index_t K, const float* A, index_t rsa, index_t csa, const float* B,
              index_t rsb, index_t csb, float* C, index_t ldc, bool acc) {
  supcon::detail::gemm::sgemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, acc);
  return true;
}

Mat random(index_t r, index_t c, supcon::Rng& rng) {
  Mat m(r, c);
  for (index_t i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(rng.normal());
  return m;
}

// which: 0 forward, 1 dweight, 2 dcol; eigen: Eigen's product instead of the
// kernel (which runs here whatever the policy of gemm_available says).
void BM_Gemm(benchmark::State& state, Shape3 s, int which, bool eigen) {
  if (!eigen && !supcon::detail::gemm::cpu_has_avx2_fma()) {
    state.SkipWithError("no AVX2 + FMA on this CPU");
    return;
  }
  eigen = eigen || !supcon::detail::gemm::cpu_has_avx2_fma();
  supcon::Rng rng(1);
  const Mat w = random(s.oc, s.ckk, rng), col = random(s.ckk, s.l, rng), dy = random(s.oc, s.l, rng);
  Mat out = Mat::Zero(which == 2 ? s.ckk : s.oc, which == 1 ? s.ckk : s.l);
  for (auto _ : state) {
    if (which == 0) {
      if (eigen || !sgemm_ok(s.oc, s.l, s.ckk, w.data(), s.ckk, 1, col.data(), s.l, 1,
                                                  out.data(), s.l, false))
        out.noalias() = w * col;
    } else if (which == 1) {
      if (eigen || !sgemm_ok(s.oc, s.ckk, s.l, dy.data(), s.l, 1, col.data(), 1, s.l,
                                                  out.data(), s.ckk, true))
        out.noalias() += dy * col.transpose();
    } else {
      if (eigen || !sgemm_ok(s.ckk, s.l, s.oc, w.data(), 1, s.ckk, dy.data(), s.l, 1,
                                                  out.data(), s.l, false))
        out.noalias() = w.transpose() * dy;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(s.oc * s.ckk * s.l),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

const int registered = [] {
  // (the winograd_ shapes are one of the 36 products of a Winograd block of
  // about 147 tiles; their dweight is the weight gradient dU (OC, C) += Z V^T)
  const Shape3 shapes[] = {{"demo_w8_conv8x8@28", 8, 72, 784},       {"demo_conv16x16@28", 16, 144, 784},
                           {"demo_winograd16x16@28", 16, 16, 147},   {"demo_winograd32x32@14", 32, 32, 196},
                           {"demo_conv64x64@7", 64, 576, 539},        {"demo_conv128x128@4", 128, 1152, 512},
                           {"resnet18_conv64x64@32", 64, 576, 1024},  {"resnet18_conv256x256@8", 256, 2304, 512},
                           {"resnet18_conv512x512@4", 512, 4608, 512}};
  const char* what[] = {"forward", "dweight", "dcol"};
  for (const Shape3& s : shapes)
    for (int which = 0; which < 3; ++which)
      for (bool eigen : {false, true})
        benchmark::RegisterBenchmark(
            (std::string("gemm/") + s.name + "/" + what[which] + (eigen ? "/eigen" : "/kernel")).c_str(), BM_Gemm,
            s, which, eigen);
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
