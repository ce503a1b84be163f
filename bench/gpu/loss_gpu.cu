// Times the fused CUDA SupCon loss and the blocked one (supcon_blocked.cuh;
// forward + backward, float32, device memory in and out) at growing N, with
// the device memory each holds and the cuBLAS
// floor: the time of the three N x N x D products the loss cannot avoid
// (S = F F^T forward, G F and G^T F backward), measured here as three times
// one SGEMM S = F F^T computed in row blocks (so no N x N buffer is needed).
//
//   bench_gpu_loss [--n 4096,16384,...] [--d 128] [--classes 100] [--repeats 5]
//                  [--budget-s 120] [--csv out.csv] [--phases 1]
//
// --phases 1 also times the four steps of one block of the blocked loss
// (S_b, the row sweep, G_b F, G_b^T F_b) on its own, to show where its time
// beyond the floor goes.
//
// Sizes whose predicted time (quadratic in N from the previous size) exceeds
// the budget are reported as skipped rather than run.
#include <cublas_v2.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <supcon/core/rng.hpp>
#include <supcon/cuda/supcon_blocked.cuh>
#include <supcon/cuda/supcon_fused.cuh>

using namespace supcon;

namespace {

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw cuda::CudaError(std::string(what) + ": cuBLAS status " + std::to_string(s));
}

// Median of `repeats` timings of f(), in milliseconds, after one warm-up call.
template <class F>
double time_ms(F f, int repeats) {
  cudaEvent_t start, stop;
  cuda::check(cudaEventCreate(&start), "cudaEventCreate");
  cuda::check(cudaEventCreate(&stop), "cudaEventCreate");
  f();
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    cuda::check(cudaEventRecord(start), "cudaEventRecord");
    f();
    cuda::check(cudaEventRecord(stop), "cudaEventRecord");
    cuda::check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    t.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<long long> parse_list(const std::string& s) {
  std::vector<long long> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stoll(item));
  return out;
}

// The blocked loss's steps for its first block of R rows (its default block of
// 2^28 entries), each timed alone: the block's share of the floor's three
// products (three equal products at cuBLAS's best shape, 2 R N D flops each),
// and what each step takes in fact.
void print_phases(long long n, long long dim, const float* F, const std::int32_t* cls, int repeats) {
  const long long r = std::max(1LL, std::min(n, (1LL << 28) / n)), blocks = (n + r - 1) / r;
  cuda::CublasHandle blas;
  cuda::DeviceBuffer<float> S(static_cast<size_t>(r * n)), dF(static_cast<size_t>(n * dim)), unscaled(n);
  cuda::DeviceBuffer<cuda::RowStats<float>> stats(n);
  cuda::DeviceBuffer<int> n_pos(n);
  const float inv_tau = 10;
  const double s_ms = time_ms([&] { cuda::gemm<float>(blas, false, true, r, n, dim, inv_tau, F, dim, F, dim, 0.f, S.data(), n); },
                              repeats);
  const double rows_ms = time_ms(
      [&] {
        cuda::blocked::rows_kernel<float><<<static_cast<unsigned>(r), cuda::blocked::kRowThreads>>>(
            S.data(), n, 0, n / 2, cls, Denominator::all, true, stats.data(), unscaled.data(), n_pos.data());
        cuda::check_launch("rows_kernel");
      },
      repeats);
  const double gf_ms = time_ms(
      [&] { cuda::gemm<float>(blas, false, false, r, dim, n, inv_tau, S.data(), n, F, dim, 1.f, dF.data(), dim); },
      repeats);
  const double gtf_ms = time_ms(
      [&] { cuda::gemm<float>(blas, true, false, n, dim, r, inv_tau, S.data(), n, F, dim, 1.f, dF.data(), dim); },
      repeats);
  std::printf("  phases, N = %lld, one block of R = %lld rows (of %lld blocks), ms: S_b = F_b F^T %.3f | row sweep %.3f"
              " | G_b F %.3f | G_b^T F_b %.3f | whole loss predicted from them %.1f\n",
              n, r, blocks, s_ms, rows_ms, gf_ms, gtf_ms, (s_ms + rows_ms + gf_ms + gtf_ms) * double(blocks));
}

struct Row {
  long long n = 0;
  double fused_ms = -1, floor_ms = -1, mem_gb = -1, blocked_ms = -1, blocked_gb = -1;
  std::string note;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<long long> sizes = {4096, 16384, 65536, 262144, 1048576};
  long long dim = 128, classes = 100;
  int repeats = 5;
  double budget_s = 120;
  std::string csv;
  bool phases = false;
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string k = argv[a], v = argv[a + 1];
    if (k == "--n") sizes = parse_list(v);
    else if (k == "--d") dim = std::stoll(v);
    else if (k == "--classes") classes = std::stoll(v);
    else if (k == "--repeats") repeats = std::max(1, std::atoi(v.c_str()));
    else if (k == "--budget-s") budget_s = std::atof(v.c_str());
    else if (k == "--csv") csv = v;
    else if (k == "--phases") phases = v != "0";
    else {
      std::fprintf(stderr, "bench_gpu_loss: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  std::string why;
  if (cuda::device_count(&why) == 0) {
    std::fprintf(stderr, "bench_gpu_loss: no CUDA device (%s)\n", why.c_str());
    return 1;
  }
  cudaDeviceProp prop{};
  cuda::check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::printf("device: %s, D = %lld, 2 views, %lld classes, float32, median of %d\n", prop.name, dim, classes, repeats);
  cublasHandle_t blas;
  check_cublas(cublasCreate(&blas), "cublasCreate");

  std::vector<Row> rows;
  double last_s = 0;
  long long last_n = 0;
  for (long long n : sizes) {
    Row row;
    row.n = n;
    const double predicted = last_n ? last_s * double(n) / last_n * double(n) / last_n * (repeats + 1) : 0;
    if (predicted > budget_s) {
      row.note = "skipped: predicted " + std::to_string(int(predicted)) + " s";
      rows.push_back(row);
      continue;
    }
    try {
      size_t free0 = 0, total = 0;
      cuda::check(cudaMemGetInfo(&free0, &total), "cudaMemGetInfo");
      // unit-norm random features, 2 views of n / 2 samples with random labels
      Rng rng(1);
      std::vector<float> f(static_cast<size_t>(n * dim));
      for (long long i = 0; i < n; ++i) {
        float* fi = f.data() + i * dim;
        double norm = 0;
        for (long long d = 0; d < dim; ++d) {
          fi[d] = static_cast<float>(rng.normal());
          norm += double(fi[d]) * fi[d];
        }
        for (long long d = 0; d < dim; ++d) fi[d] = static_cast<float>(fi[d] / std::sqrt(norm));
      }
      std::vector<std::int32_t> labels(static_cast<size_t>(n / 2));
      for (auto& l : labels) l = static_cast<std::int32_t>(rng.uniform() * classes);
      cuda::DeviceBuffer<float> F, dF(f.size());
      cuda::DeviceBuffer<std::int32_t> cls;
      F.upload(f.data(), f.size());
      cls.upload(labels.data(), labels.size());
      cuda::FusedSupCon<float> loss;
      row.fused_ms = time_ms([&] { loss.run(F.data(), cls.data(), n, dim, n / 2, SupConOptions{}, dF.data()); }, repeats);
      size_t free1 = 0;
      cuda::check(cudaMemGetInfo(&free1, &total), "cudaMemGetInfo");
      row.mem_gb = double(free0 - free1) / 1e9;
      if (!std::isfinite(loss.value())) row.note = "non-finite loss";
      {
        cuda::BlockedSupCon<float> blocked;  // the products through cuBLAS, S in blocks of 2^28 entries
        row.blocked_ms =
            time_ms([&] { blocked.run(F.data(), cls.data(), n, dim, n / 2, SupConOptions{}, dF.data()); }, repeats);
        size_t free2 = 0;
        cuda::check(cudaMemGetInfo(&free2, &total), "cudaMemGetInfo");
        row.blocked_gb = double(free0 - free2) / 1e9;
        if (!std::isfinite(blocked.value())) row.note += " non-finite blocked loss";
      }

      // floor: S = F F^T in blocks of rows, at most 2^28 floats of output at a time
      const long long block = std::max(1LL, std::min(n, (1LL << 28) / n));
      cuda::DeviceBuffer<float> S(static_cast<size_t>(block * n));
      const float one = 1, zero = 0;
      const double gemm_ms = time_ms(
          [&] {
            for (long long r0 = 0; r0 < n; r0 += block) {
              const int rows_here = static_cast<int>(std::min(block, n - r0));
              // cuBLAS is column-major: the row-major block S_b = F_b F^T (rows x n) is
              // the column-major (n x rows) F F_b^T, and row-major F (n x D) is column-major F^T
              check_cublas(cublasSgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), rows_here,
                                       static_cast<int>(dim), &one, F.data(), static_cast<int>(dim),
                                       F.data() + r0 * dim, static_cast<int>(dim), &zero, S.data(),
                                       static_cast<int>(n)),
                           "cublasSgemm");
            }
          },
          std::max(1, repeats / 2));
      row.floor_ms = 3 * gemm_ms;
      if (phases) print_phases(n, dim, F.data(), cls.data(), repeats);
      last_s = (row.fused_ms + row.blocked_ms + gemm_ms) / 1000.0;
      last_n = n;
    } catch (const std::exception& e) {
      row.note = e.what();
      std::replace(row.note.begin(), row.note.end(), ',', ';');  // one CSV field
      (void)cudaGetLastError();
    }
    rows.push_back(row);
    std::printf("N = %8lld  fused fwd+bwd %10.2f ms  floor %10.2f ms  ratio %5.2f  memory %6.3f GB  "
                "blocked %10.2f ms  ratio %5.2f  memory %6.3f GB  %s\n",
                n, row.fused_ms, row.floor_ms, row.floor_ms > 0 ? row.fused_ms / row.floor_ms : 0.0, row.mem_gb,
                row.blocked_ms, row.floor_ms > 0 ? row.blocked_ms / row.floor_ms : 0.0, row.blocked_gb,
                row.note.c_str());
    std::fflush(stdout);
  }
  cublasDestroy(blas);
  if (!csv.empty()) {
    std::ofstream out(csv);
    out << "n,fused_ms,floor_ms,mem_gb,blocked_ms,blocked_gb,note\n";
    for (const Row& r : rows)
      out << r.n << ',' << r.fused_ms << ',' << r.floor_ms << ',' << r.mem_gb << ',' << r.blocked_ms << ','
          << r.blocked_gb << ',' << r.note << '\n';
  }
  return 0;
}
