// Rng: reproducible streams, correct ranges and moments.
#include <catch2/catch.hpp>
#include <algorithm>
#include <numeric>
#include <supcon/core/rng.hpp>

using supcon::Rng;

TEST_CASE("The same seed gives the same sequence, another seed another one") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u64();
    CHECK(x == b.next_u64());
    (void)c;
  }
  Rng d(42), e(43);
  int same = 0;
  for (int i = 0; i < 100; ++i) same += d.next_u64() == e.next_u64();
  CHECK(same == 0);
}

TEST_CASE("Streams of one seed differ from each other") {
  Rng a(7, 0), b(7, 1);
  CHECK(a.next_u64() != b.next_u64());
}

TEST_CASE("The state round-trips, so a checkpoint can resume the sequence") {
  Rng a(3);
  for (int i = 0; i < 10; ++i) a.normal();
  const auto s = a.state();
  const double next = a.uniform();
  Rng b(999);
  b.set_state(s);
  CHECK(b.uniform() == next);
  CHECK_THROWS(b.set_state(Rng::State{0, 0, 0, 0}));
}

TEST_CASE("uniform and below stay in range; normal has mean 0 and variance 1") {
  Rng r(1);
  double sum = 0, sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    REQUIRE(r.below(7) < 7u);
    const double z = r.normal();
    sum += z;
    sq += z * z;
  }
  CHECK(std::abs(sum / n) < 0.01);
  CHECK(std::abs(sq / n - 1.0) < 0.02);
}

TEST_CASE("A permutation holds every index once") {
  Rng r(5);
  auto p = r.permutation(1000);
  std::sort(p.begin(), p.end());
  for (int i = 0; i < 1000; ++i) CHECK(p[static_cast<std::size_t>(i)] == i);
}
