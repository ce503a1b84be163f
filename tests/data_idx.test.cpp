// IDX files (MNIST, Fashion-MNIST): round trips, every validation error, the real data.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <string>
#include <vector>

#include <supcon/core/atomic_file.hpp>
#include <supcon/data/idx.hpp>

#include "data_common.hpp"

using namespace supcon;
using namespace supcon::data;
using supcon_test::TempDir;

namespace {

// The bytes of an IDX file: magic, big-endian sizes, then the values.
std::string idx_bytes(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                      const std::vector<std::uint8_t>& values) {
  std::string s;
  auto put = [&](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xFF));
  };
  put(magic);
  for (auto d : dims) put(d);
  s.append(values.begin(), values.end());
  return s;
}

void write_plain(const std::string& path, const std::string& bytes) { write_file_atomic(path, bytes); }

void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

// Three 2x3 images with pixel (n, y, x) = 10 n + 3 y + x, labels 7, 0, 9.
std::vector<std::uint8_t> pixels3() {
  std::vector<std::uint8_t> v;
  for (int n = 0; n < 3; ++n)
    for (int k = 0; k < 6; ++k) v.push_back(static_cast<std::uint8_t>(10 * n + k));
  return v;
}
const std::vector<std::uint8_t> labels3 = {7, 0, 9};

// Expects load_idx to throw IoError whose message contains every piece of `parts`.
void expect_error(const std::string& images, const std::string& labels,
                  const std::vector<std::string>& parts) {
  try {
    load_idx(images, labels);
    FAIL("no error thrown");
  } catch (const IoError& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) CHECK_THAT(msg, Catch::Contains(p));
  }
}

}  // namespace

TEST_CASE("A plain IDX pair round-trips: sizes, pixels and labels") {
  TempDir dir("idx_plain");
  write_plain(dir / "img", idx_bytes(2051, {3, 2, 3}, pixels3()));
  write_plain(dir / "lab", idx_bytes(2049, {3}, labels3));
  const InMemoryDataset ds = load_idx(dir / "img", dir / "lab");
  REQUIRE(ds.size() == 3);
  CHECK(ds.channels() == 1);
  CHECK(ds.height() == 2);
  CHECK(ds.width() == 3);
  CHECK(ds.num_classes() == 10);
  const Sample<float> s = ds.get<float>(2);
  CHECK(s.label == 9);
  CHECK(s.image.shape() == Shape{1, 2, 3});
  // pixel (y=1, x=2) of image 2 was written as 10*2 + 3*1 + 2 = 25
  CHECK(s.image(0, 1, 2) == Approx(25.0f / 255.0f));
  CHECK(ds.pixels() == pixels3());
}

TEST_CASE("A gzip-compressed IDX pair reads the same as the plain one") {
  TempDir dir("idx_gzip");
  write_gzip(dir / "img.gz", idx_bytes(2051, {3, 2, 3}, pixels3()));
  write_gzip(dir / "lab.gz", idx_bytes(2049, {3}, labels3));
  const InMemoryDataset ds = load_idx(dir / "img.gz", dir / "lab.gz");
  CHECK(ds.pixels() == pixels3());
  CHECK(ds.labels() == std::vector<std::int64_t>{7, 0, 9});
}

TEST_CASE("A wrong magic number is named with the file and the expected value") {
  TempDir dir("idx_magic");
  write_plain(dir / "img", idx_bytes(2049, {3}, labels3));  // a label file where images belong
  write_plain(dir / "lab", idx_bytes(2049, {3}, labels3));
  expect_error(dir / "img", dir / "lab", {dir / "img", "magic number 2049", "expected 2051"});
  write_plain(dir / "img", idx_bytes(2051, {3, 2, 3}, pixels3()));
  write_plain(dir / "lab", idx_bytes(2051, {3, 2, 3}, pixels3()));
  expect_error(dir / "img", dir / "lab", {dir / "lab", "expected 2049"});
}

TEST_CASE("Truncated headers and truncated data are reported with the counts") {
  TempDir dir("idx_trunc");
  write_plain(dir / "lab", idx_bytes(2049, {3}, labels3));
  write_plain(dir / "img", std::string("\0\0", 2));
  expect_error(dir / "img", dir / "lab", {dir / "img", "truncated IDX header"});
  write_plain(dir / "img", idx_bytes(2051, {3, 2}, {}));  // the third size is missing
  expect_error(dir / "img", dir / "lab", {"3 dimensions need 16 bytes"});
  auto px = pixels3();
  px.pop_back();
  write_plain(dir / "img", idx_bytes(2051, {3, 2, 3}, px));
  expect_error(dir / "img", dir / "lab", {dir / "img", "truncated", "announces 18", "holds 17"});
}

TEST_CASE("Trailing bytes after the announced values are an error") {
  TempDir dir("idx_trail");
  auto px = pixels3();
  px.push_back(0);
  write_plain(dir / "img", idx_bytes(2051, {3, 2, 3}, px));
  write_plain(dir / "lab", idx_bytes(2049, {3}, labels3));
  expect_error(dir / "img", dir / "lab", {dir / "img", "1 trailing bytes"});
}

TEST_CASE("Image and label counts that differ name both files") {
  TempDir dir("idx_count");
  write_plain(dir / "img", idx_bytes(2051, {3, 2, 3}, pixels3()));
  write_plain(dir / "lab", idx_bytes(2049, {2}, {1, 2}));
  expect_error(dir / "img", dir / "lab", {dir / "img", "3 images", dir / "lab", "2 labels"});
}

TEST_CASE("A label outside the class range names the file and the item") {
  TempDir dir("idx_range");
  write_plain(dir / "img", idx_bytes(2051, {3, 2, 3}, pixels3()));
  write_plain(dir / "lab", idx_bytes(2049, {3}, {1, 10, 2}));
  expect_error(dir / "img", dir / "lab", {dir / "lab", "label 10 of item 1", "[0, 10)"});
}

TEST_CASE("A zero size, an unsupported value type and a non-IDX file are rejected") {
  TempDir dir("idx_kind");
  write_plain(dir / "lab", idx_bytes(2049, {3}, labels3));
  write_plain(dir / "img", idx_bytes(2051, {0, 2, 3}, {}));
  expect_error(dir / "img", dir / "lab", {"dimension 0 has size 0"});
  // 0x0D03: 3 dimensions of float, not unsigned byte
  CHECK_THROWS_WITH(parse_idx(idx_bytes(0x0D03, {1, 1, 1}, {0, 0, 0, 0}), "f.idx"),
                    Catch::Contains("value type 0xd is not supported"));
  CHECK_THROWS_WITH(parse_idx("PK\3\4 a zip file", "z.idx"), Catch::Contains("not an IDX file"));
}

TEST_CASE("A missing or corrupt file is an IoError naming it") {
  TempDir dir("idx_missing");
  CHECK_THROWS_AS(read_idx(dir / "nothing"), IoError);
  CHECK_THROWS_WITH(read_idx(dir / "nothing"), Catch::Contains(dir / "nothing"));
  write_plain(dir / "bad.gz", "\x1f\x8b this is not deflate data");
  CHECK_THROWS_WITH(read_idx(dir / "bad.gz"), Catch::Contains(dir / "bad.gz"));
}

TEST_CASE("A missing Fashion-MNIST folder says which package to install and which option to pass") {
  TempDir dir("idx_nofmnist");
  try {
    load_fashion_mnist(dir.str(), true);
    FAIL("no error thrown");
  } catch (const IoError& e) {
    CHECK_THAT(e.what(), Catch::Contains("apt-get install dataset-fashion-mnist"));
    CHECK_THAT(e.what(), Catch::Contains("--data-dir"));
    CHECK_THAT(e.what(), Catch::Contains("train-images-idx3-ubyte"));
  }
}

TEST_CASE("Decompressed MNIST-style files are found without the .gz suffix") {
  TempDir dir("idx_mnist");
  write_plain(dir / "t10k-images-idx3-ubyte", idx_bytes(2051, {3, 2, 3}, pixels3()));
  write_plain(dir / "t10k-labels-idx1-ubyte", idx_bytes(2049, {3}, labels3));
  const InMemoryDataset ds = load_mnist(dir.str(), false);
  CHECK(ds.size() == 3);
  CHECK_THROWS_WITH(load_mnist(dir.str(), true), Catch::Contains("MNIST not found"));
}

TEST_CASE("The installed Fashion-MNIST has 60,000 + 10,000 images of 28x28 with labels 0-9") {
  if (!file_exists(std::string(default_fashion_mnist_dir) + "/train-images-idx3-ubyte.gz")) {
    WARN("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); skipped");
    return;
  }
  for (bool train : {true, false}) {
    const InMemoryDataset ds = load_fashion_mnist(default_fashion_mnist_dir, train);
    CHECK(ds.size() == (train ? 60000 : 10000));
    CHECK(ds.image_shape() == Shape{1, 28, 28});
    std::vector<index_t> per_class(10, 0);
    for (auto y : ds.labels()) ++per_class[static_cast<std::size_t>(y)];
    // Fashion-MNIST is balanced: 6,000 (train) or 1,000 (test) images per class.
    for (auto c : per_class) CHECK(c == ds.size() / 10);
  }
}
