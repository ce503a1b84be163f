#pragma once
/// \file reduce.cuh
/// Per-channel sums on the GPU with a fixed order (no atomics, so every run
/// gives the same bits): a channel of a (N, C, S) tensor is cut into
/// channel_sum_parts parts of consecutive values, one block of
/// kReduceThreads threads each. Thread t adds its part's values m = t,
/// t + threads, ... in order; the block adds its partial sums by a tree in
/// shared memory; a second kernel adds the parts in order. (One block per
/// channel left most of the GPU idle: 64 channels, 132 multiprocessors.)
/// The per-value arithmetic (moments_push, grad_sums_push) is in
/// layer_math.cuh; tests/cuda_layer_math.test.cpp runs the same order on the CPU.

#include <cstdint>

#include "supcon/cuda/device.cuh"
#include "supcon/cuda/layer_math.cuh"

namespace supcon::cuda {

/// What a channel reduction adds up.
enum class SumMode {
  plain,    ///< a = sum u (biases: sum dy)
  moments,  ///< a = sum (u - u0), b = sum (u - u0)^2, u0 the channel's first value
  grad,     ///< a = sum u, b = sum u (v - centre[c]) (batch-norm backward: u = dy, v = x)
};

/// u (and v) are (N, C, S); out (C, parts) receives each part's Sums2
/// (assigned). Launch with (C, parts) blocks of kReduceThreads threads.
template <class T, class I>
__global__ void channel_sums_kernel(SumMode mode, const T* u, const T* v, const T* centre, std::int64_t N,
                                    std::int64_t C, std::int64_t S, Sums2* out) {
  __shared__ Sums2 part[kReduceThreads];
  const std::int64_t c = blockIdx.x, M = N * S, parts = gridDim.y, len = (M + parts - 1) / parts;
  const std::int64_t m_begin = blockIdx.y * len, m_end = m_begin + len < M ? m_begin + len : M;
  const int t = threadIdx.x;
  Sums2 s = sums_empty();
  const T u0 = mode == SumMode::moments ? u[c * S] : T(0);
  const T mu = mode == SumMode::grad ? centre[c] : T(0);
  for (std::int64_t m = m_begin + t; m < m_end; m += kReduceThreads) {
    const std::int64_t k = channel_index<I>(m, c, C, S);
    if (mode == SumMode::moments)
      moments_push(s, u[k], u0);
    else if (mode == SumMode::grad)
      grad_sums_push(s, u[k], v[k], mu);
    else
      s.a += static_cast<double>(u[k]);
  }
  part[t] = s;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (t < half) sums_merge(part[t], part[t + half]);
    __syncthreads();
  }
  if (t == 0) out[c * parts + blockIdx.y] = part[0];
}

/// out[c] = parts[c, 0] + parts[c, 1] + ... in that order, one thread per
/// channel. (A template only so that the header may define it.)
template <int Unused = 0>
__global__ void merge_parts_kernel(const Sums2* parts, std::int64_t C, std::int64_t count, Sums2* out) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  Sums2 s = parts[c * count];
  for (std::int64_t g = 1; g < count; ++g) sums_merge(s, parts[c * count + g]);
  out[c] = s;
}

/// Launches channel_sums_kernel (and merge_parts_kernel) on the default
/// stream; out[c] for c < C receives channel c's sums. `out` grows to C
/// entries, and C more per part when a channel takes several.
template <class T>
void channel_sums(SumMode mode, const T* u, const T* v, const T* centre, std::int64_t N, std::int64_t C, std::int64_t S,
                  DeviceBuffer<Sums2>& out) {
  const std::int64_t parts = channel_sum_parts(C, N * S, kReduceThreads);  // at most 264
  out.resize(static_cast<std::size_t>(parts > 1 ? C * (1 + parts) : C));
  if (C == 0) return;
  Sums2* dest = parts > 1 ? out.data() + C : out.data();  // the parts after the C results
  const dim3 grid(static_cast<unsigned>(C), static_cast<unsigned>(parts));
  if (N * S < (std::int64_t(1) << 32))  // the division of channel_index in 32 bits
    channel_sums_kernel<T, std::uint32_t><<<grid, kReduceThreads>>>(mode, u, v, centre, N, C, S, dest);
  else
    channel_sums_kernel<T, std::int64_t><<<grid, kReduceThreads>>>(mode, u, v, centre, N, C, S, dest);
  check_launch("channel_sums_kernel");
  if (parts > 1) {
    merge_parts_kernel<><<<blocks_for(C, 256), 256>>>(dest, C, parts, out.data());
    check_launch("merge_parts_kernel");
  }
}

/// dbias (C,) += T(sums[c].a): the bias gradient from a plain channel sum of dy.
template <class T>
__global__ void add_channel_sums_kernel(const Sums2* sums, std::int64_t C, T* dbias) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c < C) dbias[c] += static_cast<T>(sums[c].a);
}

/// dbias (C,) += sum over n and s of dy (N, C, S), in double, then rounded to T.
/// `scratch` holds the C sums between the two launches.
template <class T>
void bias_grad(const T* dy, std::int64_t N, std::int64_t C, std::int64_t S, T* dbias, DeviceBuffer<Sums2>& scratch) {
  if (C == 0) return;
  channel_sums<T>(SumMode::plain, dy, nullptr, nullptr, N, C, S, scratch);
  add_channel_sums_kernel<T><<<blocks_for(C, 256), 256>>>(scratch.data(), C, dbias);
  check_launch("add_channel_sums_kernel");
}

}  // namespace supcon::cuda
