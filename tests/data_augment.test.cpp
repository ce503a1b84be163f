// Random augmentations: crop geometry, reproducibility, view pairs, configuration errors.
#include <catch2/catch.hpp>

#include <cmath>

#include <supcon/core/rng.hpp>
#include <supcon/data/augment.hpp>

using namespace supcon;
using namespace supcon::data;

namespace {

Tensor<float> random_image(index_t c, index_t h, index_t w, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<float> t({c, h, w});
  for (auto& v : t) v = static_cast<float>(rng.uniform());
  return t;
}

bool same(const Tensor<float>& a, const Tensor<float>& b) {
  return a.shape() == b.shape() && a.vec() == b.vec();
}

}  // namespace

TEST_CASE("Random resized crops stay inside the image for any image shape") {
  Rng rng(1);
  for (auto [H, W] : {std::pair<index_t, index_t>{32, 32}, {28, 28}, {5, 40}, {40, 5}, {1, 1}, {7, 3}})
    for (int t = 0; t < 500; ++t) {
      const CropBox b = sample_resized_crop(H, W, 0.2, 1.0, 3.0 / 4, 4.0 / 3, rng);
      REQUIRE(b.height >= 1);
      REQUIRE(b.width >= 1);
      REQUIRE(b.top >= 0);
      REQUIRE(b.left >= 0);
      REQUIRE(b.top + b.height <= H);
      REQUIRE(b.left + b.width <= W);
    }
}

TEST_CASE("On a square image the crop covers 20% to 100% of the area with ratio in [3/4, 4/3]") {
  Rng rng(2);
  const double area = 100.0 * 100.0;
  for (int t = 0; t < 1000; ++t) {
    const CropBox b = sample_resized_crop(100, 100, 0.2, 1.0, 3.0 / 4, 4.0 / 3, rng);
    const double frac = double(b.height) * double(b.width) / area;
    const double ratio = double(b.width) / double(b.height);
    // rounding the sides to whole pixels moves both a little
    CHECK(frac > 0.19);
    CHECK(frac <= 1.0);
    CHECK(ratio > 0.75 * 0.97);
    CHECK(ratio < 4.0 / 3 * 1.03);
  }
}

TEST_CASE("When no attempt fits, the crop is the centred box with the clamped ratio") {
  // a 4 x 100 strip: every candidate needs at least 8 rows, so all 10 attempts fail
  Rng rng(3);
  const CropBox b = sample_resized_crop(4, 100, 0.2, 1.0, 3.0 / 4, 4.0 / 3, rng);
  CHECK(b.height == 4);
  CHECK(b.width == 5);  // round(4 * 4/3)
  CHECK(b.top == 0);
  CHECK(b.left == 47);  // (100 - 5) / 2
}

TEST_CASE("Augmented views have the configured output size and channels") {
  Rng rng(4);
  const AugmentConfig fm = AugmentConfig::fashion_mnist();
  CHECK(augment(random_image(1, 28, 28, 1), fm, rng).shape() == Shape{1, 28, 28});
  AugmentConfig c = AugmentConfig::cifar10();
  c.out_height = c.out_width = 24;
  c.blur_p = 1.0;
  CHECK(augment(random_image(3, 32, 32, 2), c, rng).shape() == Shape{3, 24, 24});
  c.randaugment_ops = 2;
  CHECK(augment(random_image(3, 40, 50, 3), c, rng).shape() == Shape{3, 24, 24});
}

TEST_CASE("The same seed gives the same views; two views of one image differ") {
  const Tensor<float> img = random_image(3, 32, 32, 5);
  const Transform<float> t = make_augment<float>(AugmentConfig::cifar10());
  Rng a(42, 7), b(42, 7);
  const auto va = two_views(t, img, a);
  const auto vb = two_views(t, img, b);
  CHECK(same(va[0], vb[0]));
  CHECK(same(va[1], vb[1]));
  CHECK_FALSE(same(va[0], va[1]));
  Rng c(43, 7);
  CHECK_FALSE(same(t(img, c), va[0]));
}

TEST_CASE("multi_view draws V views in sequence from one generator") {
  const Tensor<float> img = random_image(1, 28, 28, 6);
  const Transform<float> t = make_augment<float>(AugmentConfig::fashion_mnist());
  Rng a(9), b(9);
  const auto views = multi_view(t, img, 4, a);
  REQUIRE(views.size() == 4);
  for (const auto& v : views) CHECK(same(v, t(img, b)));
  CHECK_THROWS_AS(multi_view(t, img, 0, a), ValueError);
}

TEST_CASE("With every random option off, augment only resizes and normalises") {
  const Tensor<float> img = random_image(3, 32, 32, 7);
  AugmentConfig c = AugmentConfig::cifar10().deterministic();
  Rng rng(10);
  Tensor<float> expected = img;
  normalize_inplace(expected, c.mean, c.stddev);
  CHECK(same(augment(img, c, rng), expected));
  c.mean.clear();
  c.stddev.clear();
  c.out_height = c.out_width = 16;
  CHECK(same(augment(img, c, rng), resize_bilinear(img, 16, 16)));
}

TEST_CASE("A flip probability of 1 mirrors the image, 0 never does") {
  const Tensor<float> img = random_image(3, 8, 8, 8);
  AugmentConfig c = AugmentConfig().deterministic();
  c.out_height = c.out_width = 8;
  Rng rng(11);
  c.flip_p = 1;
  CHECK(same(augment(img, c, rng), hflip(img)));
  c.flip_p = 0;
  CHECK(same(augment(img, c, rng), img));
}

TEST_CASE("Colour jitter with zero strengths is the identity; on grayscale it stays grayscale") {
  const Tensor<float> img = random_image(3, 8, 8, 9);
  Rng rng(12);
  CHECK(same(color_jitter(img, 0, 0, 0, 0, rng), img));
  const Tensor<float> g = random_image(1, 8, 8, 10);
  CHECK(color_jitter(g, 0.4, 0.4, 0.4, 0.1, rng).shape() == Shape{1, 8, 8});
}

TEST_CASE("Random grayscale with probability 1 gives equal channels") {
  AugmentConfig c = AugmentConfig().deterministic();
  c.out_height = c.out_width = 8;
  c.grayscale_p = 1;
  Rng rng(13);
  const Tensor<float> y = augment(random_image(3, 8, 8, 11), c, rng);
  for (index_t k = 0; k < 64; ++k) CHECK(y[k] == y[64 + k]);
}

TEST_CASE("Out-of-range augmentation options are rejected by name") {
  auto bad = [](auto edit, const char* name) {
    AugmentConfig c;
    edit(c);
    CHECK_THROWS_WITH(validate(c), Catch::Contains(name));
  };
  bad([](AugmentConfig& c) { c.flip_p = 1.5; }, "flip_p");
  bad([](AugmentConfig& c) { c.jitter_p = -0.1; }, "jitter_p");
  bad([](AugmentConfig& c) { c.crop_scale_min = 0; }, "crop scale");
  bad([](AugmentConfig& c) { c.crop_ratio_max = 0.5; }, "crop ratio");
  bad([](AugmentConfig& c) { c.hue = 0.7; }, "hue");
  bad([](AugmentConfig& c) { c.out_width = 0; }, "output size");
  bad([](AugmentConfig& c) { c.blur_kernel = 4; }, "blur_kernel");
  bad([](AugmentConfig& c) { c.randaugment_magnitude = 31; }, "randaugment_magnitude");
  bad([](AugmentConfig& c) { c.mean = {0.5}; }, "mean has 1 values");
  // the presets themselves are valid
  CHECK_NOTHROW(validate(AugmentConfig::cifar10()));
  CHECK_NOTHROW(validate(AugmentConfig::cifar100()));
  CHECK_NOTHROW(validate(AugmentConfig::fashion_mnist()));
}

TEST_CASE("Normalising with the wrong number of channels is a clear error") {
  Rng rng(14);
  // CIFAR statistics (3 channels) on a grayscale image
  CHECK_THROWS_WITH(augment(random_image(1, 32, 32, 12), AugmentConfig::cifar10(), rng),
                    Catch::Contains("need 1 mean and std values, got 3"));
}
