// Deterministic image operations: against PyTorch values, and their defining properties.
#include <catch2/catch.hpp>

#include <string>

#include <supcon/core/npy.hpp>
#include <supcon/core/rng.hpp>
#include <supcon/data/image_ops.hpp>
#include <supcon/data/randaugment.hpp>

using namespace supcon;
using namespace supcon::data;

namespace {

Tensor<double> fixture(const std::string& name) {
  return load_npy<double>(std::string(SUPCON_TEST_DATA_DIR) + "/datasets/" + name + ".npy");
}

// Largest absolute difference; the shapes must match.
double max_diff(const Tensor<double>& a, const Tensor<double>& b) {
  REQUIRE(a.shape() == b.shape());
  return (a.vec() - b.vec()).cwiseAbs().maxCoeff();
}

Tensor<double> random_image(index_t c, index_t h, index_t w, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<double> t({c, h, w});
  for (auto& v : t) v = rng.uniform();
  return t;
}

}  // namespace

TEST_CASE("Bilinear resizing matches PyTorch's interpolate with align_corners=False") {
  const Tensor<double> x = fixture("input");
  CHECK(max_diff(resize_bilinear(x, 4, 5), fixture("resize_4x5")) < 1e-12);
  CHECK(max_diff(resize_bilinear(x, 11, 13), fixture("resize_11x13")) < 1e-12);
  // resizing a region equals cropping it first (rows 1..5, columns 2..8)
  CHECK(max_diff(resize_region(x, 1, 2, 5, 7, 4, 3), fixture("crop_resize")) < 1e-12);
}

TEST_CASE("Colour operations match the PyTorch blends and the HSV hue rotation") {
  const Tensor<double> x = fixture("input");
  CHECK(max_diff(adjust_brightness(x, 1.3), fixture("brightness")) < 1e-12);
  CHECK(max_diff(adjust_contrast(x, 0.6), fixture("contrast")) < 1e-12);
  CHECK(max_diff(adjust_saturation(x, 1.7), fixture("saturation")) < 1e-12);
  CHECK(max_diff(adjust_hue(x, 0.2), fixture("hue")) < 1e-12);
  CHECK(max_diff(luma(x), fixture("gray")) < 1e-12);
}

TEST_CASE("Gaussian blur and normalisation match PyTorch") {
  const Tensor<double> x = fixture("input");
  CHECK(max_diff(gaussian_blur(x, 0.8, 5), fixture("blur")) < 1e-12);
  Tensor<double> n = x;
  normalize_inplace(n, {0.4914, 0.4822, 0.4465}, {0.2023, 0.1994, 0.2010});
  CHECK(max_diff(n, fixture("normalize")) < 1e-12);
}

TEST_CASE("Normalisation is inverted by denormalize") {
  const Tensor<double> x = random_image(3, 5, 4, 1);
  Tensor<double> n = x;
  const std::vector<double> mean = {0.1, 0.5, 0.9}, sd = {0.2, 0.3, 0.4};
  normalize_inplace(n, mean, sd);
  CHECK(max_diff(denormalize(n, mean, sd), x) < 1e-15);
  CHECK_THROWS_AS(normalize_inplace(n, {0.1}, {0.2}), ValueError);
  CHECK_THROWS_AS(normalize_inplace(n, mean, {0.2, 0.0, 0.1}), ValueError);
}

TEST_CASE("A horizontal flip is an exact mirror and its own inverse") {
  const Tensor<double> x = random_image(3, 4, 5, 2);
  const Tensor<double> f = hflip(x);
  for (index_t c = 0; c < 3; ++c)
    for (index_t y = 0; y < 4; ++y)
      for (index_t k = 0; k < 5; ++k) CHECK(f(c, y, k) == x(c, y, 4 - k));
  CHECK(hflip(f).vec() == x.vec());
}

TEST_CASE("Factors of 1 and a hue shift of 0 leave the image unchanged") {
  const Tensor<double> x = random_image(3, 6, 6, 3);
  CHECK(adjust_brightness(x, 1.0).vec() == x.vec());
  CHECK(max_diff(adjust_contrast(x, 1.0), x) < 1e-15);
  CHECK(max_diff(adjust_saturation(x, 1.0), x) < 1e-15);
  CHECK(max_diff(adjust_hue(x, 0.0), x) < 1e-12);
  CHECK(max_diff(adjust_sharpness(x, 1.0), x) < 1e-15);
}

TEST_CASE("A hue shift of one third turns pure red into pure green") {
  Tensor<double> red({3, 1, 1});
  red[0] = 1;
  const Tensor<double> g = adjust_hue(red, 1.0 / 3);
  CHECK(g[0] == Approx(0).margin(1e-12));
  CHECK(g[1] == Approx(1));
  CHECK(g[2] == Approx(0).margin(1e-12));
}

TEST_CASE("Saturation and hue do nothing to grayscale images; grayscale has equal channels") {
  const Tensor<double> x = random_image(1, 5, 5, 4);
  CHECK(adjust_saturation(x, 0.2).vec() == x.vec());
  CHECK(adjust_hue(x, 0.3).vec() == x.vec());
  const Tensor<double> g = to_grayscale(random_image(3, 5, 5, 5));
  for (index_t k = 0; k < 25; ++k) {
    CHECK(g[k] == g[25 + k]);
    CHECK(g[k] == g[50 + k]);
  }
}

TEST_CASE("Blur keeps a constant image constant; a same-size region is an exact crop") {
  const Tensor<double> c = Tensor<double>::full({1, 6, 7}, 0.25);
  CHECK(max_diff(gaussian_blur(c, 1.5, 5), c) < 1e-15);
  const Tensor<double> x = random_image(3, 6, 7, 6);
  const Tensor<double> k = crop(x, 2, 1, 3, 4);
  for (index_t ch = 0; ch < 3; ++ch)
    for (index_t y = 0; y < 3; ++y)
      for (index_t z = 0; z < 4; ++z) CHECK(k(ch, y, z) == x(ch, y + 2, z + 1));
}

TEST_CASE("Image operations reject bad shapes and parameters") {
  const Tensor<double> x = random_image(3, 4, 4, 7);
  CHECK_THROWS_AS(hflip(Tensor<double>({2, 4, 4})), ShapeError);
  CHECK_THROWS_AS(resize_bilinear(Tensor<double>({4, 4}), 2, 2), ShapeError);
  CHECK_THROWS_AS(resize_region(x, 1, 1, 4, 2, 2, 2), ValueError);  // rows 1..4 of 4
  CHECK_THROWS_AS(resize_bilinear(x, 0, 3), ValueError);
  CHECK_THROWS_AS(adjust_brightness(x, -0.1), ValueError);
  CHECK_THROWS_AS(adjust_hue(x, 0.6), ValueError);
  CHECK_THROWS_AS(gaussian_blur(x, 1.0, 4), ValueError);
  CHECK_THROWS_AS(gaussian_blur(x, 1.0, 9), ValueError);  // radius 4 on a 4x4 image
  CHECK_THROWS_AS(posterize(x, 0), ValueError);
}

TEST_CASE("A quarter turn moves pixels exactly; translation shifts and fills with 0") {
  Tensor<double> x({1, 3, 3});
  for (index_t k = 0; k < 9; ++k) x[k] = double(k + 1);
  // counter-clockwise on screen: the top-right corner goes to the top-left
  const Tensor<double> r = rotate(x, 90);
  CHECK(r(0, 0, 0) == x(0, 0, 2));
  CHECK(r(0, 2, 0) == x(0, 0, 0));
  CHECK(r(0, 1, 1) == x(0, 1, 1));
  // the output at column x takes the input at column x + 1: a shift to the left
  const Tensor<double> t = warp_affine(x, 1, 0, 0, 1, 1.0, 0.0);
  CHECK(t(0, 1, 0) == x(0, 1, 1));
  CHECK(t(0, 1, 2) == 0);
}

TEST_CASE("Autocontrast spans [0, 1], equalize spreads the levels, solarize and posterize") {
  Tensor<double> x({1, 2, 2}, std::vector<double>{0.2, 0.4, 0.4, 0.6});
  const Tensor<double> a = autocontrast(x);
  CHECK(a[0] == Approx(0));
  CHECK(a[1] == Approx(0.5));
  CHECK(a[3] == Approx(1));
  // levels 51, 102, 102, 153: the darkest maps to 0, the brightest to 1
  const Tensor<double> e = equalize(x);
  CHECK(e[0] == 0);
  CHECK(e[1] == Approx(2.0 / 3));
  CHECK(e[3] == 1);
  CHECK(solarize(x, 0.5)[3] == Approx(0.4));
  CHECK(solarize(x, 0.5)[1] == 0.4);
  // 8 bits keep an 8-bit value; 1 bit keeps only whether it is >= 128
  CHECK(posterize(x, 8)[1] == Approx(102 / 255.0));
  CHECK(posterize(x, 1)[3] == Approx(128 / 255.0));
  CHECK(posterize(x, 1)[1] == 0);
}

TEST_CASE("Every RandAugment operation keeps the shape and the range [0, 1]") {
  const Tensor<double> x = random_image(3, 8, 8, 8);
  for (int op = 0; op < randaugment_op_count; ++op) {
    const auto o = static_cast<RandAugmentOp>(op);
    for (double m : {0.0, 1.0}) {
      const Tensor<double> y = apply_randaugment_op(x, o, m, -1.0);
      CHECK(y.shape() == x.shape());
      CHECK(y.vec().minCoeff() >= 0);
      CHECK(y.vec().maxCoeff() <= 1);
    }
  }
  // geometric and enhancement operations are the identity at magnitude 0
  for (auto o : {RandAugmentOp::rotate, RandAugmentOp::shear_x, RandAugmentOp::translate_y,
                 RandAugmentOp::brightness, RandAugmentOp::color})
    CHECK(max_diff(apply_randaugment_op(x, o, 0.0, 1.0), x) < 1e-15);
}

TEST_CASE("RandAugment is reproducible from the seed and changes the image at magnitude 9") {
  const Tensor<double> x = random_image(3, 8, 8, 9);
  Rng a(5), b(5);
  const Tensor<double> ya = rand_augment(x, 2, 9, a), yb = rand_augment(x, 2, 9, b);
  CHECK(ya.vec() == yb.vec());
  int changed = 0;
  Rng r(6);
  for (int t = 0; t < 20; ++t) changed += max_diff(rand_augment(x, 2, 9, r), x) > 1e-9;
  CHECK(changed >= 15);  // only identity twice (1/196) or rare no-ops leave it as it was
  CHECK_THROWS_AS(rand_augment(x, 2, 31, r), ValueError);
}
