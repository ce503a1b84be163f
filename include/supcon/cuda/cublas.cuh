#pragma once
/// \file cublas.cuh
/// cuBLAS for the layers: an RAII handle whose failures name the call, and a
/// row-major GEMM on top of cuBLAS's column-major one.

#include <cublas_v2.h>

#include <algorithm>
#include <climits>
#include <type_traits>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/cuda/device.cuh"
#include "supcon/cuda/layer_math.cuh"

namespace supcon::cuda {

/// A cuBLAS call that failed; the message names the call and quotes
/// cublasGetStatusString.
class CublasError : public CudaError {
 public:
  using CudaError::CudaError;
};

/// Throws CublasError "<what>: <status string>" unless s is CUBLAS_STATUS_SUCCESS.
inline void check_cublas(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  throw CublasError(detail::concat(what, ": ", cublasGetStatusString(s)));
}

/// Owns a cublasHandle_t bound to the current device and the default stream.
/// The math mode is CUBLAS_DEFAULT_MATH: float products stay in FP32 (TF32
/// tensor cores are opt-in and would round the inputs to 10 bits of
/// mantissa, far outside the 1e-4 the tests allow).
class CublasHandle {
 public:
  CublasHandle() {
    check_cublas(cublasCreate(&h_), "cublasCreate");
    check_cublas(cublasSetMathMode(h_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  }
  ~CublasHandle() {
    if (h_) cublasDestroy(h_);
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

/// Row-major GEMM on device pointers:
///   C (M, N) = alpha op(A) op(B) + beta C,  op(A) (M, K), op(B) (K, N),
/// op(X) = X^T when the flag is set; lda, ldb, ldc are the row strides of the
/// arrays as stored (lda = K for A (M, K) untransposed, M for A stored (K, M)).
/// cuBLAS is column-major: colmajor_gemm_args (layer_math.cuh, tested on the
/// CPU) writes out why B's array goes first and the flags pass unchanged.
template <class T>
void gemm(const CublasHandle& h, bool trans_a, bool trans_b, index_t M, index_t N, index_t K, T alpha, const T* A,
          index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gemm: float or double");
  require<ValueError>(
      M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX,
      "gemm: a dimension of (", M, ", ", N, ", ", K, ") exceeds cuBLAS's 32-bit sizes");
  if (M == 0 || N == 0) return;
  const ColMajorGemm g = colmajor_gemm_args(trans_a, trans_b, M, N, K, lda, ldb, ldc);
  const cublasOperation_t t1 = g.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t t2 = g.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
  // cuBLAS wants every leading dimension >= 1, even for an operand with no entries (K = 0)
  const int ld1 = static_cast<int>(std::max<index_t>(1, g.ld_first));
  const int ld2 = static_cast<int>(std::max<index_t>(1, g.ld_second)), ldo = static_cast<int>(g.ldc);
  if constexpr (std::is_same_v<T, float>)
    check_cublas(cublasSgemm(h.get(), t1, t2, m, n, k, &alpha, B, ld1, A, ld2, &beta, C, ldo), "cublasSgemm");
  else
    check_cublas(cublasDgemm(h.get(), t1, t2, m, n, k, &alpha, B, ld1, A, ld2, &beta, C, ldo), "cublasDgemm");
}

}  // namespace supcon::cuda
