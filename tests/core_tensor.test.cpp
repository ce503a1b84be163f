// Tensor<T>: shape, row-major layout, Eigen views, errors; the malloc setting of core/memory.hpp.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <supcon/core/memory.hpp>
#include <supcon/core/tensor.hpp>

#include <algorithm>
#include <vector>

#include "layers_test_util.hpp"

using supcon::index_t;
using supcon::Shape;
using supcon::Tensor;

TEST_CASE("A tensor stores its elements row-major, last index fastest") {
  Tensor<float> t({2, 3, 4});
  for (supcon::index_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(i);
  CHECK(t(0, 0, 1) == 1.0f);
  CHECK(t(0, 1, 0) == 4.0f);
  CHECK(t(1, 0, 0) == 12.0f);
  CHECK(t(1, 2, 3) == 23.0f);
}

TEST_CASE("A new tensor is zero-filled and reports its shape") {
  Tensor<double> t({3, 5});
  CHECK(t.rank() == 2);
  CHECK(t.dim(0) == 3);
  CHECK(t.dim(-1) == 5);
  CHECK(t.size() == 15);
  for (double v : t) CHECK(v == 0.0);
}

TEST_CASE("matrix() views the tensor as (dim 0, rest) without copying") {
  Tensor<float> t({2, 2, 3}, 1.0f);
  auto m = t.matrix();
  CHECK(m.rows() == 2);
  CHECK(m.cols() == 6);
  m(1, 5) = 7.0f;
  CHECK(t(1, 1, 2) == 7.0f);
}

TEST_CASE("A matrix product through the maps equals the hand-computed one") {
  Tensor<double> a({2, 3}, std::vector<double>{1, 2, 3, 4, 5, 6});
  Tensor<double> c({2, 2});
  c.matrix().noalias() = a.matrix() * a.matrix().transpose();
  CHECK(c(0, 0) == 14.0);
  CHECK(c(0, 1) == 32.0);
  CHECK(c(1, 1) == 77.0);
}

TEST_CASE("Shape mistakes throw ShapeError with the shapes in the message") {
  Tensor<float> t({2, 3});
  CHECK_THROWS_AS(t.reshaped({4, 2}), supcon::ShapeError);
  CHECK_THROWS_WITH(t.reshaped({4, 2}), Catch::Contains("(2, 3)") && Catch::Contains("(4, 2)"));
  CHECK_THROWS_AS(t.matrix(5, 1), supcon::ShapeError);
  CHECK_THROWS_AS(Tensor<float>({2, -1}), supcon::ShapeError);
  CHECK_THROWS_AS((Tensor<float>({2, 2}, std::vector<float>{1, 2, 3})), supcon::ShapeError);
  CHECK_THROWS_WITH(supcon::check_shape(t, {3, 2}, "features"), Catch::Contains("features"));
}

TEST_CASE("Shapes print as Python tuples, and dim names the shape when out of range") {
  CHECK(supcon::shape_str({2, 3, 4}) == "(2, 3, 4)");
  CHECK(supcon::shape_str({5}) == "(5,)");
  CHECK(supcon::shape_str({}) == "()");
  CHECK(supcon::shape_str({256, 16, 28, 28}) == "(256, 16, 28, 28)");
  const Tensor<float> t({2, 3});
  CHECK(t.dim(-2) == 2);
  CHECK_THROWS_AS(t.dim(2), supcon::ShapeError);
  CHECK_THROWS_WITH(t.dim(2), Catch::Contains("dimension 2") && Catch::Contains("(2, 3)"));
  CHECK_THROWS_WITH(t.dim(-3), Catch::Contains("dimension -1") && Catch::Contains("(2, 3)"));
}

TEST_CASE("resize keeps the allocation when the new size fits") {
  Tensor<float> t({64, 64});
  const float* before = t.data();
  t.resize({32, 64});
  CHECK(t.data() == before);
  CHECK(t.shape() == Shape{32, 64});
}

TEST_CASE("resize zeroes the elements it adds; both resizes keep the ones already there") {
  Tensor<float> t({2, 3}, 7.f);
  t.resize({4, 3});
  CHECK(t.shape() == Shape{4, 3});
  for (index_t i = 0; i < 6; ++i) CHECK(t[i] == 7.f);
  for (index_t i = 6; i < 12; ++i) CHECK(t[i] == 0.f);
  Tensor<float> u({2, 3}, 5.f);
  u.resize_for_overwrite({3, 4});  // the six added elements are unwritten, so not read here
  CHECK(u.shape() == Shape{3, 4});
  CHECK(u.size() == 12);
  for (index_t i = 0; i < 6; ++i) CHECK(u[i] == 5.f);
  u.resize_for_overwrite({2, 2});
  CHECK(u.size() == 4);
  CHECK(u[3] == 5.f);
}

TEST_CASE("all_finite spots NaN and infinity") {
  Tensor<float> t({4}, 1.0f);
  CHECK(t.all_finite());
  t[2] = std::numeric_limits<float>::quiet_NaN();
  CHECK_FALSE(t.all_finite());
  t[2] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(supcon::check_finite(t, "features"), Catch::Contains("features"));
}

TEST_CASE("cast converts every element") {
  Tensor<double> t({3}, std::vector<double>{1.5, -2.0, 3.25});
  Tensor<float> f = t.cast<float>();
  CHECK(f[0] == 1.5f);
  CHECK(f[2] == 3.25f);
}

TEST_CASE("for_each_run hands out consecutive runs that cover every index once") {
  for (int threads : {1, 2, 3})
    layers_test::with_threads(threads, [] {
      for (std::int64_t n : {std::int64_t(1), std::int64_t(5), std::int64_t(16), std::int64_t(1000)}) {
        const std::int64_t runs = supcon::sum_runs(n, 10, 1 << 20);
        REQUIRE(runs >= 1);
        REQUIRE(runs <= n);
        std::vector<int> hits(static_cast<std::size_t>(n), 0);
        std::vector<std::int64_t> begin(static_cast<std::size_t>(runs), -1), end = begin;
        supcon::for_each_run(n, runs, [&](std::int64_t r, std::int64_t b, std::int64_t e) {
          begin[static_cast<std::size_t>(r)] = b, end[static_cast<std::size_t>(r)] = e;
          for (std::int64_t i = b; i < e; ++i) ++hits[static_cast<std::size_t>(i)];
        });
        CHECK(std::count(hits.begin(), hits.end(), 1) == n);
        CHECK(begin.front() == 0);
        CHECK(end.back() == n);
        for (std::size_t r = 1; r < begin.size(); ++r) CHECK(begin[r] == end[r - 1]);
      }
    });
}

TEST_CASE("sum_runs gives a run to each thread, and up to 16 while their buffers stay an eighth of the data") {
  layers_test::with_threads(2, [] {
    CHECK(supcon::sum_runs(100, 1000, 8 * 1000 * 100) == 16);  // room for 100 buffers: 16
    CHECK(supcon::sum_runs(100, 1000, 8 * 1000 * 5) == 5);     // room for 5
    CHECK(supcon::sum_runs(100, 1000, 1000) == 2);             // room for none: one per thread
    CHECK(supcon::sum_runs(3, 1000, 1 << 30) == 3);            // never more runs than items
    CHECK(supcon::sum_runs(0, 1000, 1 << 30) == 0);
  });
  // the same count for any thread count up to 16 where the eighth allows 16
  layers_test::with_threads(3, [] { CHECK(supcon::sum_runs(100, 1000, 8 * 1000 * 100) == 16); });
}

// glibc's own malloc only: the sanitizers replace it (and refuse mallopt)
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SUPCON_TEST_MALLOC_REPLACED 1
#endif
#endif
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33) && !defined(__SANITIZE_ADDRESS__) && !defined(SUPCON_TEST_MALLOC_REPLACED)
TEST_CASE("parallel_ranges covers every index exactly once, whatever the size and the threads") {
  for (int threads : {1, 2, 3})
    layers_test::with_threads(threads, [] {
      for (std::int64_t n : {std::int64_t(0), std::int64_t(1), std::int64_t(1000), std::int64_t(3 << 15) + 7}) {
        std::vector<int> hits(static_cast<std::size_t>(n), 0);
        supcon::parallel_ranges(n, [&](std::int64_t b, std::int64_t e) {
          for (std::int64_t i = b; i < e; ++i) ++hits[static_cast<std::size_t>(i)];
        });
        CHECK(std::count(hits.begin(), hits.end(), 1) == n);
      }
    });
}

TEST_CASE("copy_parallel copies shape and values, over a larger or smaller destination") {
  supcon::Tensor<float> src({3, 40000});
  for (supcon::index_t i = 0; i < src.size(); ++i) src.data()[i] = static_cast<float>(i % 977) - 400.f;
  supcon::Tensor<float> bigger({7, 50000}, 1.f), smaller({2}, 1.f);
  for (supcon::Tensor<float>* dst : {&bigger, &smaller}) {
    supcon::copy_parallel(src, *dst);
    CHECK(dst->shape() == src.shape());
    CHECK(dst->vec() == src.vec());
  }
}

TEST_CASE("keep_freed_memory serves 24 and 64 MiB blocks from the heap, not from fresh mappings") {
  REQUIRE(supcon::keep_freed_memory());
  // by default blocks this size are mmap'ed and unmapped again on free; 64 MiB
  // is past the largest mmap threshold malloc accepts (32 MiB)
  for (const std::size_t mib : {24, 64}) {
    INFO(mib << " MiB");
    const auto mapped_before = mallinfo2().hblks;
    void* p = std::malloc(mib << 20);
    REQUIRE(p != nullptr);
    static_cast<volatile char*>(p)[0] = 1;  // used, so the pair cannot be optimised away
    CHECK(mallinfo2().hblks == mapped_before);
    std::free(p);
  }
}
#endif
