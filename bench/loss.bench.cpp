// The SupCon loss, forward + backward, in float32 with D = 128 and two views,
// next to the matrix product that bounds it: the loss needs three products of
// N x N x D (the similarities, and two for the gradient), so its floor is
// 3 * 2 N^2 D flops at the GEMM rate measured here.
//
// Sizes: N = 512 ... 4,096 rows by default, so the program finishes quickly;
// SUPCON_BENCH_MAX_N raises the largest N (bench/compare.py sets it).
// Labels: 100 classes, label of sample b = b mod 100.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <supcon/core/rng.hpp>
#include <supcon/losses/supcon_fused.hpp>
#include <supcon/losses/supcon_reference.hpp>

namespace {

using supcon::index_t;

// (n, d) standard normal rows scaled to unit length, as a projection head outputs.
supcon::Tensor<float> unit_rows(index_t n, index_t d, std::uint64_t seed) {
  supcon::Rng rng(seed);
  supcon::Tensor<float> f({n, d});
  for (index_t i = 0; i < n; ++i) {
    double norm = 0;
    for (index_t j = 0; j < d; ++j) {
      f(i, j) = static_cast<float>(rng.normal());
      norm += static_cast<double>(f(i, j)) * f(i, j);
    }
    for (index_t j = 0; j < d; ++j) f(i, j) = static_cast<float>(f(i, j) / std::sqrt(norm));
  }
  return f;
}

supcon::Pairing labels_of(index_t batch) {
  std::vector<std::int64_t> labels(static_cast<std::size_t>(batch));
  for (index_t b = 0; b < batch; ++b) labels[static_cast<std::size_t>(b)] = b % 100;
  return supcon::Pairing::from_labels(labels);
}

index_t max_rows(index_t fallback) {
  const char* env = std::getenv("SUPCON_BENCH_MAX_N");
  return env ? std::atoll(env) : fallback;
}

// Every option the fused loss has, one named variant each.
struct Variant {
  const char* name;
  supcon::SupConOptions opt;
};

std::vector<Variant> variants() {
  using namespace supcon;
  std::vector<Variant> v(6);
  v[0].name = "L_out";
  v[1].name = "L_in";
  v[1].opt.summation = Summation::inside;
  v[2].name = "one_positive";
  v[2].opt.denominator = Denominator::one_positive;
  v[3].name = "only_negatives";
  v[3].opt.denominator = Denominator::only_negatives;
  v[4].name = "anchors_one";
  v[4].opt.contrast_mode = ContrastMode::one;
  v[5].name = "L_in_one_positive";
  v[5].opt.summation = Summation::inside;
  v[5].opt.denominator = Denominator::one_positive;
  return v;
}

void set_counters(benchmark::State& state, double n, double d) {
  // the three products of the loss, per second
  state.counters["GFLOPs"] = benchmark::Counter(6.0 * n * n * d * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["N"] = n;
}

void BM_Gemm(benchmark::State& state) {
  // C = A B, all (n, n): Eigen's kernel on the threads OpenMP gives it
  const index_t n = state.range(0);
  const supcon::RowMatrix<float> a = supcon::RowMatrix<float>::Random(n, n);
  const supcon::RowMatrix<float> b = supcon::RowMatrix<float>::Random(n, n);
  supcon::RowMatrix<float> c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOPs"] = benchmark::Counter(2.0 * n * n * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Fused(benchmark::State& state, supcon::SupConOptions opt) {
  const index_t n = state.range(0), d = 128;
  const supcon::Tensor<float> f = unit_rows(n, d, 7);
  const supcon::Pairing p = labels_of(n / 2);
  opt.temperature = opt.base_temperature = 0.1;
  for (auto _ : state) {
    supcon::LossResult<float> r = supcon::supcon_loss_fused(f, p, opt);
    benchmark::DoNotOptimize(r.grad.data());
  }
  set_counters(state, static_cast<double>(n), static_cast<double>(d));
}

void BM_Reference(benchmark::State& state) {
  const index_t n = state.range(0), d = 128;
  const supcon::Tensor<float> f = unit_rows(n, d, 7);
  const supcon::Pairing p = labels_of(n / 2);
  for (auto _ : state) {
    supcon::LossResult<float> r = supcon::supcon_loss_reference(f, p, {});
    benchmark::DoNotOptimize(r.grad.data());
  }
  set_counters(state, static_cast<double>(n), static_cast<double>(d));
}

// Registered at start-up so that SUPCON_BENCH_MAX_N can extend the range.
const bool registered = [] {
  const index_t top = max_rows(4096);
  benchmark::RegisterBenchmark("Gemm", BM_Gemm)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
  for (const Variant& v : variants()) {
    benchmark::internal::Benchmark* b =
        benchmark::RegisterBenchmark((std::string("SupConFused/") + v.name).c_str(), BM_Fused, v.opt);
    for (index_t n = 512; n <= top; n *= 2) b->Arg(n);
    b->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  // one run at a large N, for the memory measurement (e.g. under /usr/bin/time -v)
  if (const char* scale = std::getenv("SUPCON_BENCH_SCALE_N"))
    benchmark::RegisterBenchmark("SupConFused/L_out/scale", BM_Fused, supcon::SupConOptions{})
        ->Arg(std::atoll(scale))->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
  benchmark::internal::Benchmark* r = benchmark::RegisterBenchmark("SupConReference/L_out", BM_Reference);
  for (index_t n = 512; n <= std::min<index_t>(top, 4096); n *= 2) r->Arg(n);
  r->Unit(benchmark::kMillisecond)->UseRealTime();
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
