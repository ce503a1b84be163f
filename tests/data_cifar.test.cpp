// CIFAR-10 / CIFAR-100 binary files, generated here in exactly the published layout.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include <supcon/core/atomic_file.hpp>
#include <supcon/data/cifar.hpp>

#include "data_common.hpp"

namespace fs = std::filesystem;
using namespace supcon;
using namespace supcon::data;
using supcon_test::TempDir;

namespace {

// `n` records: the given label bytes, then pixel k of record r = (r + k) mod 251.
std::string records(int n, const std::vector<std::vector<std::uint8_t>>& label_bytes) {
  std::string s;
  for (int r = 0; r < n; ++r) {
    for (auto b : label_bytes[static_cast<std::size_t>(r)]) s.push_back(static_cast<char>(b));
    for (int k = 0; k < 3072; ++k) s.push_back(static_cast<char>((r + k) % 251));
  }
  return s;
}

// CIFAR-10 batches 1..5 with two records each (labels 2b-2, 2b-1 mod 10) and a test batch.
void write_cifar10(const fs::path& dir) {
  for (int b = 1; b <= 5; ++b)
    write_file_atomic((dir / ("data_batch_" + std::to_string(b) + ".bin")).string(),
                      records(2, {{std::uint8_t((2 * b - 2) % 10)}, {std::uint8_t((2 * b - 1) % 10)}}));
  write_file_atomic((dir / "test_batch.bin").string(), records(3, {{4}, {5}, {6}}));
}

}  // namespace

TEST_CASE("CIFAR-10 reads the five training batches in order, pixels already channel-major") {
  TempDir tmp("cifar_c10");
  const fs::path dir = tmp.path;
  write_cifar10(dir);
  const InMemoryDataset train = load_cifar10(dir.string(), true);
  REQUIRE(train.size() == 10);
  CHECK(train.image_shape() == Shape{3, 32, 32});
  CHECK(train.num_classes() == 10);
  CHECK(train.labels() == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  // image 3 is record 1 of batch 2; its green pixel (y=0, x=5) is byte 1024 + 5
  const Sample<double> s = train.get<double>(3);
  CHECK(s.image(1, 0, 5) == Approx(((1 + 1029) % 251) / 255.0));
  const InMemoryDataset test = load_cifar10(dir.string(), false);
  CHECK(test.labels() == std::vector<std::int64_t>{4, 5, 6});
}

TEST_CASE("CIFAR-10 is found in the cifar-10-batches-bin folder the archive extracts to") {
  TempDir tmp("cifar_c10sub");
  const fs::path dir = tmp.path;
  fs::create_directories(dir / "cifar-10-batches-bin");
  write_cifar10(dir / "cifar-10-batches-bin");
  CHECK(load_cifar10(dir.string(), false).size() == 3);
}

TEST_CASE("CIFAR-100 keeps the fine or the coarse label as asked") {
  TempDir tmp("cifar_c100");
  const fs::path dir = tmp.path;
  write_file_atomic((dir / "train.bin").string(), records(2, {{19, 99}, {3, 42}}));
  const InMemoryDataset fine = load_cifar100(dir.string(), true, Cifar100Labels::fine);
  CHECK(fine.num_classes() == 100);
  CHECK(fine.labels() == std::vector<std::int64_t>{99, 42});
  const InMemoryDataset coarse = load_cifar100(dir.string(), true, Cifar100Labels::coarse);
  CHECK(coarse.num_classes() == 20);
  CHECK(coarse.labels() == std::vector<std::int64_t>{19, 3});
  // the pixels follow the two label bytes
  CHECK(fine.pixels()[0] == 0);
  CHECK(fine.pixels()[3072 + 7] == (1 + 7) % 251);
}

TEST_CASE("A CIFAR file that is not a whole number of records is rejected with its size") {
  TempDir tmp("cifar_partial");
  const fs::path dir = tmp.path;
  std::string bytes = records(2, {{1}, {2}});
  bytes.pop_back();
  write_file_atomic((dir / "test_batch.bin").string(), bytes);
  CHECK_THROWS_WITH(load_cifar10(dir.string(), false),
                    Catch::Contains("test_batch.bin") && Catch::Contains("not a multiple of the record size 3073"));
  write_file_atomic((dir / "test_batch.bin").string(), "");
  CHECK_THROWS_WITH(load_cifar10(dir.string(), false), Catch::Contains("empty file"));
}

TEST_CASE("A CIFAR label out of range names the file and the record") {
  TempDir tmp("cifar_label");
  const fs::path dir = tmp.path;
  write_file_atomic((dir / "test_batch.bin").string(), records(2, {{1}, {10}}));
  CHECK_THROWS_WITH(load_cifar10(dir.string(), false),
                    Catch::Contains("label 10 of record 1") && Catch::Contains("[0, 10)"));
  write_file_atomic((dir / "test.bin").string(), records(1, {{20, 5}}));
  CHECK_THROWS_AS(load_cifar100(dir.string(), false, Cifar100Labels::coarse), IoError);
  CHECK(load_cifar100(dir.string(), false, Cifar100Labels::fine).labels()[0] == 5);
}

TEST_CASE("Missing CIFAR files say where to download the binary version") {
  TempDir tmp("cifar_missing");
  const fs::path dir = tmp.path;
  CHECK_THROWS_WITH(load_cifar10(dir.string(), true),
                    Catch::Contains("https://www.cs.toronto.edu/~kriz/cifar.html") &&
                        Catch::Contains("cifar-10-binary.tar.gz") && Catch::Contains("--data-dir"));
  CHECK_THROWS_WITH(load_cifar100(dir.string(), true), Catch::Contains("cifar-100-binary.tar.gz"));
  // one training batch of five missing is named
  write_cifar10(dir);
  fs::remove(dir / "data_batch_4.bin");
  CHECK_THROWS_WITH(load_cifar10(dir.string(), true), Catch::Contains("data_batch_4.bin"));
}
