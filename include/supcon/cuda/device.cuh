#pragma once
/// \file device.cuh
/// What every CUDA part shares: errors from the runtime, an owning device
/// buffer, and the question "is there a GPU here at all". Compile with nvcc
/// (the build defines SUPCON_WITH_CUDA=1 for CUDA targets).

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "supcon/core/error.hpp"

namespace supcon::cuda {

/// A CUDA runtime call that failed; the message names the call and quotes
/// cudaGetErrorString.
class CudaError : public Error {
 public:
  using Error::Error;
};

/// Throws CudaError "<what>: <cuda error string>" unless e is cudaSuccess.
/// Also clears the runtime's last-error state, so a failure already reported
/// (an allocation that did not fit) is not blamed on the next kernel launch.
inline void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  (void)cudaGetLastError();
  throw CudaError(detail::concat(what, ": ", cudaGetErrorString(e)));
}

/// Checks that the last kernel launch was accepted (bad configuration, missing
/// device code for this GPU's architecture, ...).
inline void check_launch(const char* kernel) {
  check(cudaGetLastError(), (std::string("launch of ") + kernel).c_str());
}

/// Number of usable CUDA devices, and why there are none: `reason` receives
/// "cudaGetDeviceCount: <error>" or "cudaGetDeviceCount returned 0 devices".
inline int device_count(std::string* reason = nullptr) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky error for later calls
    if (reason) *reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
    return 0;
  }
  if (n == 0 && reason) *reason = "cudaGetDeviceCount returned 0 devices";
  return n;
}

/// An owning array of `size()` elements of T in device memory. Moves, never copies.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) { resize(n); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~DeviceBuffer() { cudaFree(p_); }

  /// Makes room for n elements; the content is undefined afterwards unless n <= size().
  void resize(std::size_t n) {
    if (n <= n_) return;
    cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
    check(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)),
          detail::concat("cudaMalloc of ", n * sizeof(T), " bytes").c_str());
    n_ = n;
  }
  /// Makes room for n elements and copies n elements in from host memory.
  void upload(const T* host, std::size_t n) {
    resize(n);
    if (n) check(cudaMemcpy(p_, host, n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to the device");
  }
  /// Copies the first n elements out to host memory.
  void download(T* host, std::size_t n) const {
    if (n) check(cudaMemcpy(host, p_, n * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to the host");
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  std::size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

/// Ceiling of a / b for launch grids.
inline unsigned blocks_for(long long a, long long b) { return static_cast<unsigned>((a + b - 1) / b); }

}  // namespace supcon::cuda
