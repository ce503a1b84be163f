// Image folders: class sub-folders, PNG and BMP decoding, channel conversion, resizing.
#include <catch2/catch.hpp>
#include <stb/stb_image_write.h>

#include <filesystem>
#include <string>
#include <vector>

#include <supcon/core/atomic_file.hpp>
#include <supcon/data/image_folder.hpp>

#include "data_common.hpp"

namespace fs = std::filesystem;
using namespace supcon;
using namespace supcon::data;
using supcon_test::TempDir;

namespace {

// An h x w RGB image, interleaved, with red = 10 x, green = 10 y, blue = `blue`.
std::vector<unsigned char> rgb(int h, int w, unsigned char blue) {
  std::vector<unsigned char> px;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      px.push_back(static_cast<unsigned char>(10 * x));
      px.push_back(static_cast<unsigned char>(10 * y));
      px.push_back(blue);
    }
  return px;
}

void write_png(const fs::path& p, int h, int w, unsigned char blue) {
  REQUIRE(stbi_write_png(p.string().c_str(), w, h, 3, rgb(h, w, blue).data(), 3 * w) != 0);
}
void write_bmp(const fs::path& p, int h, int w, unsigned char blue) {
  REQUIRE(stbi_write_bmp(p.string().c_str(), w, h, 3, rgb(h, w, blue).data()) != 0);
}

// root/cat/{a.png, b.bmp}, root/ant/c.png, plus a text file that is ignored.
void make_folder(const fs::path& root) {
  fs::create_directories(root / "cat");
  fs::create_directories(root / "ant");
  write_png(root / "cat" / "a.png", 4, 6, 100);
  write_bmp(root / "cat" / "b.bmp", 4, 6, 200);
  write_png(root / "ant" / "c.png", 4, 6, 50);
  write_file_atomic((root / "cat" / "notes.txt").string(), "not an image");
}

}  // namespace

TEST_CASE("Sorted sub-folder names give the class indices, sorted file names the order") {
  TempDir tmp("folder_classes");
  const fs::path root = tmp.path;
  make_folder(root);
  const ImageFolderDataset ds(root.string(), 3, 4, 6);
  REQUIRE(ds.size() == 3);
  CHECK(ds.class_names() == std::vector<std::string>{"ant", "cat"});
  CHECK(ds.num_classes() == 2);
  CHECK(ds.label(0) == 0);  // ant/c.png
  CHECK(ds.label(1) == 1);  // cat/a.png
  CHECK(ds.label(2) == 1);  // cat/b.bmp
  CHECK(fs::path(ds.path(2)).filename() == "b.bmp");
}

TEST_CASE("PNG and BMP pixels arrive exactly, channel-major, at their own size") {
  TempDir tmp("folder_pixels");
  const fs::path root = tmp.path;
  make_folder(root);
  const ImageFolderDataset ds(root.string(), 3, 4, 6);
  const Sample<float> png = ds.get<float>(1), bmp = ds.get<float>(2);
  CHECK(png.image.shape() == Shape{3, 4, 6});
  // red = 10 x, green = 10 y, blue per file
  CHECK(png.image(0, 2, 5) == Approx(50 / 255.0f));
  CHECK(png.image(1, 3, 1) == Approx(30 / 255.0f));
  CHECK(png.image(2, 0, 0) == Approx(100 / 255.0f));
  CHECK(bmp.image(0, 1, 4) == Approx(40 / 255.0f));
  CHECK(bmp.image(2, 3, 3) == Approx(200 / 255.0f));
}

TEST_CASE("Images are converted to grayscale when one channel is asked for") {
  TempDir tmp("folder_gray");
  const fs::path root = tmp.path;
  make_folder(root);
  const ImageFolderDataset ds(root.string(), 1, 4, 6);
  const Sample<double> s = ds.get<double>(0);  // ant/c.png, blue = 50
  CHECK(s.image.shape() == Shape{1, 4, 6});
  // a luma-weighted mix of R = 30, G = 20, B = 50 (stb_image's integer weights)
  const double y = s.image(0, 2, 3) * 255;
  CHECK(y > 20);
  CHECK(y < 50);
  CHECK(std::abs(y - (0.299 * 30 + 0.587 * 20 + 0.114 * 50)) < 2);
}

TEST_CASE("Images of another size are resized bilinearly to the requested one") {
  TempDir tmp("folder_resize");
  const fs::path root = tmp.path;
  fs::create_directories(root / "only");
  write_png(root / "only" / "big.png", 8, 12, 77);
  const ImageFolderDataset ds(root.string(), 3, 4, 6);
  const Sample<double> s = ds.get<double>(0);
  CHECK(s.image.shape() == Shape{3, 4, 6});
  // halving: output x samples input x' = 2 x + 0.5, between 2x and 2x+1, so
  // red = 10 (2 x + 0.5) = 20 x + 5 (rounded to 8 bits); blue stays 77.
  for (int x = 0; x < 6; ++x) CHECK(s.image(0, 1, x) * 255 == Approx(20 * x + 5).margin(0.51));
  CHECK(s.image(2, 3, 5) * 255 == Approx(77));
}

TEST_CASE("An unreadable image is an IoError naming the file") {
  TempDir tmp("folder_broken");
  const fs::path root = tmp.path;
  fs::create_directories(root / "x");
  write_file_atomic((root / "x" / "broken.png").string(), "definitely not a PNG");
  const ImageFolderDataset ds(root.string(), 3, 4, 4);  // listing works, decoding fails
  CHECK_THROWS_AS(ds.get<float>(0), IoError);
  CHECK_THROWS_WITH(ds.get<float>(0), Catch::Contains("broken.png"));
}

TEST_CASE("A missing root, a root without classes or an empty class are IoErrors") {
  TempDir tmp("folder_empty");
  const fs::path root = tmp.path;
  CHECK_THROWS_WITH(ImageFolderDataset((root / "nope").string(), 3, 4, 4), Catch::Contains("not a folder"));
  CHECK_THROWS_WITH(ImageFolderDataset(root.string(), 3, 4, 4), Catch::Contains("no class sub-folders"));
  fs::create_directories(root / "empty_class");
  CHECK_THROWS_WITH(ImageFolderDataset(root.string(), 3, 4, 4),
                    Catch::Contains("empty_class") && Catch::Contains("holds no image"));
  CHECK_THROWS_AS(ImageFolderDataset(root.string(), 2, 4, 4), ValueError);
}

TEST_CASE("head() decodes an image folder once into memory with the same content") {
  TempDir tmp("folder_memory");
  const fs::path root = tmp.path;
  make_folder(root);
  const ImageFolderDataset ds(root.string(), 3, 4, 6);
  const InMemoryDataset mem = head(ds, ds.size());
  REQUIRE(mem.size() == 3);
  for (index_t i = 0; i < 3; ++i) {
    CHECK(mem.label(i) == ds.label(i));
    CHECK(mem.get<float>(i).image.vec() == ds.get<float>(i).image.vec());
  }
}
