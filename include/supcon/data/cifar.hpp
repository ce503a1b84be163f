#pragma once
/// \file cifar.hpp
/// CIFAR-10 and CIFAR-100, "binary version" (Krizhevsky, 2009).
///
/// Each file is a sequence of fixed-size records: the label byte(s), then
/// 3072 pixel bytes, the 1024 red values of the 32x32 image row by row, then
/// the green, then the blue ones — already channel-major (C, H, W).
///   CIFAR-10:  data_batch_1.bin .. data_batch_5.bin, test_batch.bin;
///              record = 1 label byte (0..9) + 3072.
///   CIFAR-100: train.bin, test.bin;
///              record = 1 coarse label byte (0..19) + 1 fine label byte (0..99) + 3072.
/// Download: https://www.cs.toronto.edu/~kriz/cifar.html (docs/data.md).

#include <cstdint>
#include <string>
#include <vector>

#include "supcon/core/atomic_file.hpp"
#include "supcon/core/error.hpp"
#include "supcon/data/dataset.hpp"
#include "supcon/data/idx.hpp"

namespace supcon::data {

/// Which CIFAR-100 label to use.
enum class Cifar100Labels {
  fine,   ///< 100 classes (the usual benchmark)
  coarse  ///< 20 superclasses
};

/// Pixels of one CIFAR image.
inline constexpr index_t cifar_image_bytes = 3 * 32 * 32;

/// Appends the records of the CIFAR binary file `path` to `pixels` and `labels`.
/// A record is `label_bytes` label bytes, then 3072 pixel bytes; the label kept
/// is byte `label_at` of the record and must lie in [0, num_classes). Throws
/// IoError naming the file when it is missing, empty, not a whole number of
/// records, or holds a label out of range.
inline void read_cifar_file(const std::string& path, int label_bytes, int label_at,
                            std::int64_t num_classes, std::vector<std::uint8_t>& pixels,
                            std::vector<std::int64_t>& labels) {
  const std::string bytes = read_file(path);
  const std::size_t record = static_cast<std::size_t>(label_bytes + cifar_image_bytes);
  require<IoError>(!bytes.empty(), path, ": empty file");
  require<IoError>(bytes.size() % record == 0, path, ": size ", bytes.size(),
                   " is not a multiple of the record size ", record, " (", label_bytes,
                   " label byte(s) + 3072 pixels): truncated or not a CIFAR binary file");
  const std::size_t n = bytes.size() / record;
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  pixels.reserve(pixels.size() + n * cifar_image_bytes);
  for (std::size_t r = 0; r < n; ++r, p += record) {
    const std::int64_t y = p[label_at];
    require<IoError>(y < num_classes, path, ": label ", y, " of record ", r, " outside [0, ",
                     num_classes, ")");
    labels.push_back(y);
    pixels.insert(pixels.end(), p + label_bytes, p + record);
  }
}

namespace detail {
// `dir` itself when it holds `first`, else `dir/sub` when that does (the folder
// the archive extracts to); otherwise IoError saying where to get the data.
inline std::string find_cifar_dir(const std::string& dir, const std::string& sub,
                                  const std::string& first, const std::string& dataset,
                                  const std::string& archive) {
  const std::string d = dir.empty() ? "." : dir;
  if (file_exists(d + "/" + first)) return d;
  if (file_exists(d + "/" + sub + "/" + first)) return d + "/" + sub;
  throw IoError(dataset + " not found: no " + d + "/" + first + " (nor in " + d + "/" + sub +
                "); download the binary version " + archive +
                " from https://www.cs.toronto.edu/~kriz/cifar.html, extract it and pass "
                "--data-dir DIR");
}
}  // namespace detail

/// CIFAR-10: the 50,000 training images (data_batch_1..5.bin) or the 10,000
/// test images (test_batch.bin), 3x32x32, 10 classes. `dir` is the extracted
/// `cifar-10-batches-bin` folder or its parent.
inline InMemoryDataset load_cifar10(const std::string& dir, bool train = true) {
  const std::string first = train ? "data_batch_1.bin" : "test_batch.bin";
  const std::string d = detail::find_cifar_dir(dir, "cifar-10-batches-bin", first, "CIFAR-10",
                                               "(cifar-10-binary.tar.gz)");
  std::vector<std::string> files;
  if (train)
    for (int b = 1; b <= 5; ++b) files.push_back(d + "/data_batch_" + std::to_string(b) + ".bin");
  else
    files.push_back(d + "/test_batch.bin");
  std::vector<std::uint8_t> pixels;
  std::vector<std::int64_t> labels;
  for (const auto& f : files) {
    require<IoError>(file_exists(f), "CIFAR-10: missing ", f, " (the folder ", d,
                     " should hold data_batch_1.bin .. data_batch_5.bin and test_batch.bin)");
    read_cifar_file(f, 1, 0, 10, pixels, labels);
  }
  return InMemoryDataset(std::move(pixels), std::move(labels), 3, 32, 32, 10);
}

/// CIFAR-100: the 50,000 training images (train.bin) or the 10,000 test images
/// (test.bin), 3x32x32, with the 100 fine or the 20 coarse labels. `dir` is the
/// extracted `cifar-100-binary` folder or its parent.
inline InMemoryDataset load_cifar100(const std::string& dir, bool train = true,
                                     Cifar100Labels which = Cifar100Labels::fine) {
  const std::string name = train ? "train.bin" : "test.bin";
  const std::string d = detail::find_cifar_dir(dir, "cifar-100-binary", name, "CIFAR-100",
                                               "(cifar-100-binary.tar.gz)");
  const bool fine = which == Cifar100Labels::fine;
  std::vector<std::uint8_t> pixels;
  std::vector<std::int64_t> labels;
  read_cifar_file(d + "/" + name, 2, fine ? 1 : 0, fine ? 100 : 20, pixels, labels);
  return InMemoryDataset(std::move(pixels), std::move(labels), 3, 32, 32, fine ? 100 : 20);
}

}  // namespace supcon::data
