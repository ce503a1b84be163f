#pragma once
/// \file rng.hpp
/// Rng: a small, seeded, reproducible random number generator.
///
/// The standard library's distributions differ between implementations, so
/// every draw here is written out: the same seed gives the same numbers with
/// any compiler. The engine is xoshiro256** (Blackman and Vigna, 2018), seeded
/// through splitmix64; `Rng(seed, stream)` gives independent streams, e.g. one
/// per sample, so parallel work stays reproducible whatever the thread count.

#include <array>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "supcon/core/error.hpp"

namespace supcon {

class Rng {
 public:
  using State = std::array<std::uint64_t, 4>;

  explicit Rng(std::uint64_t seed = 0, std::uint64_t stream = 0) { reseed(seed, stream); }

  /// Restarts the generator as `Rng(seed, stream)`.
  void reseed(std::uint64_t seed, std::uint64_t stream = 0) {
    std::uint64_t x = seed ^ (0x9E3779B97F4A7C15ULL * (stream + 1));
    for (auto& w : s_) w = splitmix64(x);
  }

  /// The full engine state, for checkpoints.
  const State& state() const { return s_; }
  void set_state(const State& s) {
    require(s[0] | s[1] | s[2] | s[3], "Rng::set_state: the all-zero state is invalid");
    s_ = s;
  }

  /// 64 uniformly random bits.
  std::uint64_t next_u64() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Uniform double in [a, b).
  double uniform(double a, double b) { return a + (b - a) * uniform(); }

  /// Uniform integer in [0, n), unbiased: draws below 2^64 mod n are rejected so
  /// every residue is equally likely.
  std::uint64_t below(std::uint64_t n) {
    require(n > 0, "Rng::below: n must be positive");
    const std::uint64_t threshold = (0 - n) % n;
    std::uint64_t x = next_u64();
    while (x < threshold) x = next_u64();
    return x % n;
  }

  /// Standard normal by the Box–Muller transform (two uniforms per draw, no cached
  /// second value, so the state alone determines the sequence).
  double normal() {
    const double u1 = 1.0 - uniform();  // in (0, 1], keeps log finite
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
  }
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  /// True with probability p.
  bool bernoulli(double p) { return uniform() < p; }

  /// Fisher–Yates shuffle.
  template <class V>
  void shuffle(V& v) {
    for (std::size_t i = v.size(); i > 1; --i) {
      const std::size_t j = static_cast<std::size_t>(below(i));
      using std::swap;
      swap(v[i - 1], v[j]);
    }
  }

  /// 0, 1, ..., n-1 in random order.
  std::vector<std::int64_t> permutation(std::int64_t n) {
    std::vector<std::int64_t> p(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
    shuffle(p);
    return p;
  }

 private:
  State s_{};

  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
};

}  // namespace supcon
