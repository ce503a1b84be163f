// The batch loader: view-major layout, per-epoch shuffling, determinism across thread counts.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include <supcon/config.hpp>
#include <supcon/data/loader.hpp>

using namespace supcon;
using namespace supcon::data;

namespace {

// n grayscale 6x6 images; every pixel of image i is i (mod 256), label i mod 3.
InMemoryDataset numbered(index_t n) {
  std::vector<std::uint8_t> px;
  std::vector<std::int64_t> labels;
  for (index_t i = 0; i < n; ++i) {
    px.insert(px.end(), 36, static_cast<std::uint8_t>(i % 256));
    labels.push_back(i % 3);
  }
  return InMemoryDataset(px, labels, 1, 6, 6, 3);
}

AugmentConfig small_augment() {
  AugmentConfig c = AugmentConfig::fashion_mnist();
  c.out_height = c.out_width = 4;
  return c;
}

LoaderOptions options(index_t batch_size, std::uint64_t seed) {
  LoaderOptions opt;
  opt.batch_size = batch_size;
  opt.seed = seed;
  return opt;
}

// All batches of epoch `e` with `threads` OpenMP threads.
std::vector<Batch<float>> run_epoch(const InMemoryDataset& ds, LoaderOptions opt, std::int64_t e,
                                    int threads) {
#if SUPCON_HAS_OPENMP
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
  Loader<float> loader(ds, make_augment<float>(small_augment()), opt);
  loader.set_epoch(e);
  std::vector<Batch<float>> out;
  for (index_t b = 0; b < loader.num_batches(); ++b) out.push_back(loader.batch(b));
#if SUPCON_HAS_OPENMP
  omp_set_num_threads(before);
#endif
  return out;
}

}  // namespace

TEST_CASE("A batch is (V*B, C, H, W), view-major: row v*B + s is view v of sample s") {
  const InMemoryDataset ds = numbered(10);
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.views = 3;
  opt.shuffle = false;
  Loader<float> loader(ds, Transform<float>(), opt);  // no transform: views equal the image
  const Batch<float> b = loader.batch(1);
  REQUIRE(b.images.shape() == Shape{12, 1, 6, 6});
  CHECK(b.indices == std::vector<index_t>{4, 5, 6, 7});
  CHECK(b.labels == std::vector<std::int64_t>{1, 2, 0, 1});
  for (index_t v = 0; v < 3; ++v)
    for (index_t s = 0; s < 4; ++s) CHECK(b.images(v * 4 + s, 0, 2, 3) == Approx((4 + s) / 255.0f));
}

TEST_CASE("drop_last decides whether the short final batch is served") {
  const InMemoryDataset ds = numbered(10);
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.shuffle = false;
  CHECK(Loader<float>(ds, Transform<float>(), opt).num_batches() == 2);
  opt.drop_last = false;
  Loader<float> loader(ds, Transform<float>(), opt);
  REQUIRE(loader.num_batches() == 3);
  const Batch<float> last = loader.batch(2);
  CHECK(last.batch_size() == 2);
  CHECK(last.images.dim(0) == 2 * 2);  // two views of two samples
  CHECK_THROWS_AS(loader.batch(3), ValueError);
}

TEST_CASE("Each epoch is a permutation, a different one per epoch, the same for the same seed") {
  const InMemoryDataset ds = numbered(50);
  LoaderOptions opt;
  opt.seed = 5;
  Loader<float> a(ds, Transform<float>(), opt), b(ds, Transform<float>(), opt);
  a.set_epoch(0);
  const auto e0 = a.order();
  a.set_epoch(1);
  const auto e1 = a.order();
  CHECK(e0 != e1);
  std::vector<index_t> sorted = e1;
  std::sort(sorted.begin(), sorted.end());
  for (index_t i = 0; i < 50; ++i) CHECK(sorted[static_cast<std::size_t>(i)] == i);
  // resuming: a fresh loader set to epoch 1 serves exactly that order
  b.set_epoch(1);
  CHECK(b.order() == e1);
  a.set_epoch(0);
  CHECK(a.order() == e0);
}

TEST_CASE("Batches are identical with 1 and 2 threads") {
  const InMemoryDataset ds = numbered(37);
  const LoaderOptions opt = options(8, 11);
  const auto one = run_epoch(ds, opt, 3, 1);
  const auto two = run_epoch(ds, opt, 3, 2);
  REQUIRE(one.size() == two.size());
  for (std::size_t k = 0; k < one.size(); ++k) {
    CHECK(one[k].indices == two[k].indices);
    CHECK(one[k].images.vec() == two[k].images.vec());
  }
}

TEST_CASE("A sample's views depend on its index and the epoch, not on its batch position") {
  const InMemoryDataset ds = numbered(16);
  const LoaderOptions opt = options(4, 3);
  const auto e2 = run_epoch(ds, opt, 2, 1);
  LoaderOptions ordered = opt;
  ordered.shuffle = false;
  const auto e2_unshuffled = run_epoch(ds, ordered, 2, 1);
  // find sample i in both epochs' batches and compare its view 0
  auto view0 = [](const std::vector<Batch<float>>& batches, index_t i) {
    for (const auto& b : batches)
      for (index_t s = 0; s < b.batch_size(); ++s)
        if (b.indices[static_cast<std::size_t>(s)] == i) {
          const index_t per = b.images.size() / b.images.dim(0);
          return std::vector<float>(b.images.data() + s * per, b.images.data() + (s + 1) * per);
        }
    FAIL("sample not found");
    return std::vector<float>();
  };
  for (index_t i : {0, 5, 15}) CHECK(view0(e2, i) == view0(e2_unshuffled, i));
  // the next epoch draws new views of the same sample
  const auto e3 = run_epoch(ds, ordered, 3, 1);
  CHECK(view0(e3, 5) != view0(e2_unshuffled, 5));
}

TEST_CASE("The two views of every sample in a batch differ") {
  LoaderOptions opt;
  opt.batch_size = 8;
  // a gradient image, so crops and flips change the pixels
  std::vector<std::uint8_t> px;
  for (index_t i = 0; i < 8; ++i)
    for (index_t k = 0; k < 36; ++k) px.push_back(static_cast<std::uint8_t>(7 * k + i));
  const InMemoryDataset ramp(px, std::vector<std::int64_t>(8, 0), 1, 6, 6, 1);
  const Batch<float> b = run_epoch(ramp, opt, 0, 2)[0];
  const index_t per = 16;
  for (index_t s = 0; s < 8; ++s) {
    const float* v0 = b.images.data() + s * per;
    const float* v1 = b.images.data() + (8 + s) * per;
    CHECK_FALSE(std::equal(v0, v0 + per, v1));
  }
}

TEST_CASE("An error in one sample reaches the caller; bad options are rejected") {
  const InMemoryDataset ds = numbered(4);
  LoaderOptions opt;
  opt.batch_size = 4;
  // the CIFAR normalisation needs 3 channels; these images have 1
  Loader<float> loader(ds, make_augment<float>(AugmentConfig::cifar10()), opt);
  CHECK_THROWS_WITH(loader.batch(0), Catch::Contains("need 1 mean and std values"));
  opt.views = 0;
  CHECK_THROWS_WITH(Loader<float>(ds, Transform<float>(), opt), Catch::Contains("views"));
  opt.views = 2;
  opt.batch_size = 0;
  CHECK_THROWS_WITH(Loader<float>(ds, Transform<float>(), opt), Catch::Contains("batch_size"));
  opt.batch_size = 2;
  Loader<float> ok(ds, Transform<float>(), opt);
  CHECK_THROWS_AS(ok.set_epoch(-1), ValueError);
}
