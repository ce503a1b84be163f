#pragma once
/// \file communicator.hpp
/// The few collective operations data-parallel training needs, behind one
/// small interface, so that the trainer and the global losses never see MPI:
///
///   rank(), size()           this process and the number of processes K
///   allgather                every rank's buffer, concatenated in rank order
///   allreduce_sum            element-wise sum over the ranks, on every rank
///   reduce_scatter_sum       sum over the ranks, each rank keeping its block
///
/// LocalCommunicator is the single-process case (K = 1, no MPI needed);
/// MpiCommunicator (mpi_communicator.hpp, only with SUPCON_WITH_MPI) runs
/// over MPI_COMM_WORLD. Every rank must make the same calls in the same
/// order with the same counts (the usual rule of collectives).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon::dist {

/// Element types the collectives carry.
enum class Dtype { f32, f64, i64 };

template <class T>
constexpr Dtype dtype_of();
template <>
constexpr Dtype dtype_of<float>() { return Dtype::f32; }
template <>
constexpr Dtype dtype_of<double>() { return Dtype::f64; }
template <>
constexpr Dtype dtype_of<std::int64_t>() { return Dtype::i64; }

/// Bytes of one element of `t`.
inline std::size_t dtype_size(Dtype t) { return t == Dtype::f32 ? 4 : 8; }

/// A group of K processes that take part in collectives together.
class Communicator {
 public:
  virtual ~Communicator() = default;
  /// This process, 0 .. size()-1.
  virtual int rank() const = 0;
  /// K, the number of processes.
  virtual int size() const = 0;

  /// send is (count,); recv (size() * count,) is assigned: block r holds rank r's send.
  template <class T>
  void allgather(const T* send, index_t count, T* recv) {
    allgather_raw(send, count, recv, dtype_of<T>());
  }
  /// data (count,) is replaced by its element-wise sum over the ranks.
  template <class T>
  void allreduce_sum(T* data, index_t count) {
    allreduce_sum_raw(data, count, dtype_of<T>());
  }
  /// send is (size() * count,); recv (count,) is assigned the sum over the
  /// ranks of their block rank() of send.
  template <class T>
  void reduce_scatter_sum(const T* send, index_t count, T* recv) {
    reduce_scatter_sum_raw(send, count, recv, dtype_of<T>());
  }
  /// The sum of one number over the ranks.
  template <class T>
  T sum(T x) {
    allreduce_sum(&x, 1);
    return x;
  }
  /// Whether rank 0 (the one that writes files and logs).
  bool is_root() const { return rank() == 0; }

 protected:
  virtual void allgather_raw(const void* send, index_t count, void* recv, Dtype t) = 0;
  virtual void allreduce_sum_raw(void* data, index_t count, Dtype t) = 0;
  virtual void reduce_scatter_sum_raw(const void* send, index_t count, void* recv, Dtype t) = 0;
};

/// One process alone: rank 0 of 1. Gathers copy, sums are the identity.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }

 protected:
  void allgather_raw(const void* send, index_t count, void* recv, Dtype t) override {
    if (count > 0 && send != recv) std::memcpy(recv, send, static_cast<std::size_t>(count) * dtype_size(t));
  }
  void allreduce_sum_raw(void*, index_t, Dtype) override {}
  void reduce_scatter_sum_raw(const void* send, index_t count, void* recv, Dtype t) override {
    allgather_raw(send, count, recv, t);
  }
};

/// The process-wide single-process communicator.
inline Communicator& local_communicator() {
  static LocalCommunicator c;
  return c;
}

}  // namespace supcon::dist
