#pragma once
/// \file idx.hpp
/// The IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.
///
/// An IDX file is a 4-byte magic number, one big-endian uint32 size per
/// dimension, then the values in row-major order. The magic number's third
/// byte is the value type (0x08 = unsigned byte, the only type these data sets
/// use) and its fourth byte the number of dimensions, so 2051 = 0x0803 marks
/// (N, H, W) images and 2049 = 0x0801 marks (N,) labels. Files ending in .gz
/// are read through zlib (when the build has it, SUPCON_HAS_ZLIB). Formats and
/// where to get the files: docs/data.md.

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "supcon/core/atomic_file.hpp"
#include "supcon/core/error.hpp"
#include "supcon/data/dataset.hpp"

#if defined(SUPCON_HAS_ZLIB)
#include <zlib.h>
#endif

namespace supcon::data {

/// Magic number of an IDX file of 8-bit images (N, H, W).
inline constexpr std::uint32_t idx_images_magic = 2051;
/// Magic number of an IDX file of 8-bit labels (N,).
inline constexpr std::uint32_t idx_labels_magic = 2049;

/// Whether a regular file exists at `path`.
inline bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

/// Whole file as bytes; a name ending in ".gz" is decompressed. Throws IoError
/// naming the file when it cannot be opened or is not valid gzip.
inline std::string read_file_maybe_gzip(const std::string& path) {
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  if (!gz) return read_file(path);
#if defined(SUPCON_HAS_ZLIB)
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw IoError(path + ": cannot open for reading: " + std::strerror(errno));
  std::string bytes;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      const std::string why = gzerror(f, &code);
      gzclose(f);
      throw IoError(path + ": not a valid gzip file: " + why);
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<std::size_t>(n));
  }
  gzclose(f);
  return bytes;
#else
  throw IoError(path + ": reading .gz files needs zlib; decompress it with gunzip");
#endif
}

/// One IDX array of unsigned bytes: its sizes and its values.
struct IdxArray {
  std::vector<index_t> dims;         ///< sizes, outermost first
  std::vector<std::uint8_t> values;  ///< product of dims values, row-major
};

/// Parses the IDX bytes of `path` (used in messages). Requires the unsigned-byte
/// type and, when `expected_magic` is not 0, that exact magic number. Throws
/// IoError naming the file for a short header, a wrong magic number or type, a
/// zero size, truncated data or trailing bytes.
inline IdxArray parse_idx(const std::string& bytes, const std::string& path,
                          std::uint32_t expected_magic = 0) {
  auto u32 = [&](std::size_t at) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + at;
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
           std::uint32_t(p[3]);
  };
  require<IoError>(bytes.size() >= 4, path, ": truncated IDX header (", bytes.size(), " bytes)");
  const std::uint32_t magic = u32(0);
  if (expected_magic != 0)
    require<IoError>(magic == expected_magic, path, ": magic number ", magic, ", expected ",
                     expected_magic, expected_magic == idx_images_magic
                                         ? " (IDX images: unsigned bytes, 3 dimensions)"
                                         : " (IDX labels: unsigned bytes, 1 dimension)");
  require<IoError>((magic >> 16) == 0, path, ": magic number ", magic,
                   " does not start with two zero bytes: not an IDX file");
  require<IoError>(((magic >> 8) & 0xFF) == 0x08, path, ": IDX value type 0x", std::hex,
                   (magic >> 8) & 0xFF, std::dec, " is not supported (only 0x08, unsigned byte)");
  const std::size_t ndims = magic & 0xFF;
  require<IoError>(ndims >= 1, path, ": IDX file with 0 dimensions");
  const std::size_t header = 4 + 4 * ndims;
  require<IoError>(bytes.size() >= header, path, ": truncated IDX header: ", ndims,
                   " dimensions need ", header, " bytes, the file has ", bytes.size());
  IdxArray a;
  std::uint64_t count = 1;
  for (std::size_t d = 0; d < ndims; ++d) {
    const std::uint32_t n = u32(4 + 4 * d);
    require<IoError>(n > 0, path, ": dimension ", d, " has size 0");
    a.dims.push_back(static_cast<index_t>(n));
    count *= n;
    require<IoError>(count <= (std::uint64_t(1) << 40), path, ": implausible IDX sizes");
  }
  const std::uint64_t have = bytes.size() - header;
  require<IoError>(have >= count, path, ": truncated: the header announces ", count,
                   " values, the file holds ", have);
  require<IoError>(have == count, path, ": ", have - count, " trailing bytes after ", count,
                   " values");
  a.values.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return a;
}

/// Reads and parses the IDX file at `path` (plain or .gz); see parse_idx.
inline IdxArray read_idx(const std::string& path, std::uint32_t expected_magic = 0) {
  return parse_idx(read_file_maybe_gzip(path), path, expected_magic);
}

/// A grayscale data set from an IDX image file (N, H, W) and an IDX label file
/// (N,). Labels must lie in [0, num_classes). Throws IoError naming the file
/// that is wrong: magic numbers, counts that differ, labels out of range.
inline InMemoryDataset load_idx(const std::string& images_path, const std::string& labels_path,
                                std::int64_t num_classes = 10) {
  require(num_classes > 0, "load_idx: num_classes must be positive, got ", num_classes);
  IdxArray img = read_idx(images_path, idx_images_magic);
  const IdxArray lab = read_idx(labels_path, idx_labels_magic);
  require<IoError>(img.dims[0] == lab.dims[0], images_path, " holds ", img.dims[0], " images but ",
                   labels_path, " holds ", lab.dims[0], " labels");
  std::vector<std::int64_t> labels(lab.values.size());
  for (std::size_t k = 0; k < labels.size(); ++k) {
    labels[k] = lab.values[k];
    require<IoError>(labels[k] < num_classes, labels_path, ": label ", labels[k], " of item ", k,
                     " outside [0, ", num_classes, ")");
  }
  return InMemoryDataset(std::move(img.values), std::move(labels), 1, img.dims[1], img.dims[2],
                         num_classes);
}

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
inline constexpr const char* default_fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

namespace detail {
// `dir/name.gz`, else `dir/name` (already decompressed), else an IoError that
// says how to get the data set.
inline std::string find_idx_file(const std::string& dir, const std::string& name,
                                 const std::string& dataset, const std::string& how_to_get) {
  const std::string base = dir.empty() ? name : dir + "/" + name;
  if (file_exists(base + ".gz")) return base + ".gz";
  if (file_exists(base)) return base;
  throw IoError(dataset + " not found: no " + base + ".gz or " + base + "; " + how_to_get);
}

inline InMemoryDataset load_mnist_like(const std::string& dir, bool train,
                                       const std::string& dataset, const std::string& how_to_get) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images = find_idx_file(dir, prefix + "-images-idx3-ubyte", dataset, how_to_get);
  const std::string labels = find_idx_file(dir, prefix + "-labels-idx1-ubyte", dataset, how_to_get);
  return load_idx(images, labels, 10);
}
}  // namespace detail

/// Fashion-MNIST (Xiao et al., 2017): 60,000 training or 10,000 test images,
/// 28x28 grayscale, 10 classes, from `dir` (files `train-images-idx3-ubyte.gz`,
/// `train-labels-idx1-ubyte.gz`, `t10k-...`, compressed or not). Throws IoError
/// naming the Debian package and the `--data-dir` option when files are missing.
inline InMemoryDataset load_fashion_mnist(const std::string& dir = default_fashion_mnist_dir,
                                          bool train = true) {
  return detail::load_mnist_like(
      dir, train, "Fashion-MNIST",
      "install it with `apt-get install dataset-fashion-mnist` or pass --data-dir DIR");
}

/// MNIST (LeCun et al., 1998), the same layout and file names as Fashion-MNIST.
inline InMemoryDataset load_mnist(const std::string& dir, bool train = true) {
  return detail::load_mnist_like(
      dir, train, "MNIST",
      "download the four IDX files (see docs/data.md) and pass --data-dir DIR");
}

}  // namespace supcon::data
