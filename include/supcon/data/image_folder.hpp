#pragma once
/// \file image_folder.hpp
/// Image folders: `root/<class name>/<image>`, one sub-folder per class.
///
/// Class indices follow the sorted sub-folder names; images within a class
/// are taken in sorted file-name order, so the numbering does not depend on
/// the file system. PNG, JPEG and BMP (and the other formats stb_image reads)
/// are decoded by stb_image (Debian's libstb-dev; the build defines
/// SUPCON_HAS_STB), converted to the requested number of channels (1 =
/// grayscale, 3 = RGB) and resized bilinearly to the requested size.
/// Decoding happens in `read_pixels`, so a large folder costs only its file
/// list in memory; `head(ds, ds.size())` (dataset.hpp) decodes everything once.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/data/dataset.hpp"
#include "supcon/data/image_ops.hpp"

#if defined(SUPCON_HAS_STB)
#include <stb/stb_image.h>
#endif

namespace supcon::data {

/// Decodes the image file at `path` into 8-bit pixels (channels, H, W), converting
/// to `channels` (1 or 3). Throws IoError naming the file when it cannot be
/// read or decoded, or when the build has no stb_image.
inline std::vector<std::uint8_t> decode_image(const std::string& path, int channels, index_t& h,
                                              index_t& w) {
  require(channels == 1 || channels == 3, "decode_image: channels must be 1 or 3, got ", channels);
#if defined(SUPCON_HAS_STB)
  int iw = 0, ih = 0, in = 0;
  unsigned char* px = stbi_load(path.c_str(), &iw, &ih, &in, channels);
  if (!px) {
    const char* why = stbi_failure_reason();
    throw IoError(path + ": cannot decode image: " + (why ? why : "unknown reason"));
  }
  h = ih;
  w = iw;
  // stb_image gives interleaved (H, W, C); we store channel-major (C, H, W).
  std::vector<std::uint8_t> out(static_cast<std::size_t>(channels) * ih * iw);
  const index_t hw = h * w;
  for (index_t k = 0; k < hw; ++k)
    for (int c = 0; c < channels; ++c) out[c * hw + k] = px[k * channels + c];
  stbi_image_free(px);
  return out;
#else
  (void)h, (void)w;
  throw IoError(path + ": this build has no image decoder (install libstb-dev and rebuild)");
#endif
}

/// A data set read from an image folder; see the file comment.
class ImageFolderDataset : public Dataset {
 public:
  /// Lists `root`. Every image is delivered as (channels, height, width).
  /// Throws IoError when `root` is not a folder, has no class sub-folders, or a
  /// class holds no image; ValueError for channels not 1 or 3 or a size <= 0.
  ImageFolderDataset(const std::string& root, int channels, index_t height, index_t width)
      : c_(channels), h_(height), w_(width) {
    namespace fs = std::filesystem;
    require(channels == 1 || channels == 3, "image folder: channels must be 1 or 3, got ", channels);
    require(height > 0 && width > 0, "image folder: image size ", height, "x", width,
            " must be positive");
    std::error_code ec;
    require<IoError>(fs::is_directory(root, ec), root, ": not a folder (expected one sub-folder per class)");
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory()) classes_.push_back(e.path().filename().string());
    std::sort(classes_.begin(), classes_.end());
    require<IoError>(!classes_.empty(), root, ": no class sub-folders");
    for (std::size_t c = 0; c < classes_.size(); ++c) {
      const fs::path dir = fs::path(root) / classes_[c];
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && is_image_name(e.path().extension().string()))
          files.push_back(e.path().string());
      require<IoError>(!files.empty(), dir.string(), ": class folder holds no image file");
      std::sort(files.begin(), files.end());
      for (auto& f : files) {
        paths_.push_back(std::move(f));
        labels_.push_back(static_cast<std::int64_t>(c));
      }
    }
  }

  index_t size() const override { return static_cast<index_t>(paths_.size()); }
  index_t channels() const override { return c_; }
  index_t height() const override { return h_; }
  index_t width() const override { return w_; }
  std::int64_t num_classes() const override { return static_cast<std::int64_t>(classes_.size()); }
  std::int64_t label(index_t i) const override {
    check_index(i);
    return labels_[static_cast<std::size_t>(i)];
  }
  /// Decodes image i and resizes it bilinearly to (C, H, W). Throws IoError
  /// naming the file when it cannot be decoded.
  void read_pixels(index_t i, std::uint8_t* out) const override {
    check_index(i);
    index_t h = 0, w = 0;
    const auto px = decode_image(paths_[static_cast<std::size_t>(i)], static_cast<int>(c_), h, w);
    if (h == h_ && w == w_) {
      std::copy(px.begin(), px.end(), out);
      return;
    }
    Tensor<float> img({c_, h, w});
    for (index_t k = 0; k < img.size(); ++k) img[k] = px[static_cast<std::size_t>(k)];
    const Tensor<float> r = resize_bilinear(img, h_, w_);
    for (index_t k = 0; k < r.size(); ++k)
      out[k] = static_cast<std::uint8_t>(std::clamp(std::lround(r[k]), 0L, 255L));
  }

  /// Class names (the sub-folder names), index = label.
  const std::vector<std::string>& class_names() const { return classes_; }
  /// Path of image i.
  const std::string& path(index_t i) const {
    check_index(i);
    return paths_[static_cast<std::size_t>(i)];
  }

 private:
  index_t c_, h_, w_;
  std::vector<std::string> classes_;
  std::vector<std::string> paths_;
  std::vector<std::int64_t> labels_;

  static bool is_image_name(std::string ext) {
    for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".gif" ||
           ext == ".tga" || ext == ".ppm" || ext == ".pgm";
  }
};

}  // namespace supcon::data
