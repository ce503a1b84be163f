#pragma once
// Helpers shared by the loss-facing subcommands: option names <-> enums,
// loading .npy inputs with errors that name the file and the option, and the
// conversion between the PyTorch layout (bsz, views, dim) and the library's
// view-major rows (V * B, D).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <supcon/core/npy.hpp>
#include <supcon/core/tensor.hpp>
#include <supcon/losses/supcon_options.hpp>

namespace supcon::cli {

// ---- option names ----

inline const std::vector<std::string>& contrast_names() {
  static const std::vector<std::string> n = {"all", "one"};
  return n;
}
inline const std::vector<std::string>& denominator_names() {
  static const std::vector<std::string> n = {"all", "one-positive", "only-negatives"};
  return n;
}
inline const std::vector<std::string>& no_positives_names() {
  static const std::vector<std::string> n = {"count-zero", "exclude"};
  return n;
}

inline ContrastMode parse_contrast(const std::string& s) {
  require(s == "all" || s == "one", "--contrast-mode must be all or one, got '", s, "'");
  return s == "all" ? ContrastMode::all : ContrastMode::one;
}
inline Denominator parse_denominator(const std::string& s) {
  if (s == "all") return Denominator::all;
  if (s == "one-positive") return Denominator::one_positive;
  require(s == "only-negatives", "--denominator must be all, one-positive or only-negatives, got '", s, "'");
  return Denominator::only_negatives;
}
inline NoPositives parse_no_positives(const std::string& s) {
  require(s == "count-zero" || s == "exclude", "--no-positives must be count-zero or exclude, got '", s, "'");
  return s == "count-zero" ? NoPositives::count_zero : NoPositives::exclude;
}
inline const char* name_of(ContrastMode m) { return m == ContrastMode::all ? "all" : "one"; }
inline const char* name_of(Denominator d) {
  return d == Denominator::all ? "all" : d == Denominator::one_positive ? "one-positive" : "only-negatives";
}
inline const char* name_of(NoPositives p) { return p == NoPositives::count_zero ? "count-zero" : "exclude"; }

/// Throws ValueError naming `option` unless `v` is positive and finite.
inline void require_positive(double v, const char* option) {
  require(std::isfinite(v) && v > 0, option, " must be positive and finite, got ", v);
}
/// Throws ValueError naming `option` unless `v` >= `least`.
inline void require_at_least(std::int64_t v, std::int64_t least, const char* option) {
  require(v >= least, option, " must be >= ", least, ", got ", v);
}

// ---- the random batch and the features file of `compare` and `jensen` ----

/// Shape of a generated batch, its seed and temperature, plus an optional
/// features file (and labels) to use or measure instead.
struct BatchArgs {
  std::string features, labels;
  std::int64_t batch = 32, views = 2, dim = 32, classes = 8;
  std::uint64_t seed = 0;
  double temperature = 0.07;

  /// Throws ValueError naming the first option out of range.
  void validate() const {
    require_positive(temperature, "--temperature");
    require(batch >= 1, "--batch must be >= 1, got ", batch);
    require(views >= 1, "--views must be >= 1, got ", views);
    require(dim >= 1, "--dim must be >= 1, got ", dim);
    require(classes >= 1, "--classes must be >= 1, got ", classes);
  }
};

/// Registers --batch, --views, --dim, --classes, --seed, --temperature,
/// --features and --labels (which needs --features) on `cmd`.
inline void add_batch_options(CLI::App* cmd, BatchArgs& a, const std::string& features_help) {
  cmd->add_option("--batch", a.batch, "Generated batch: samples B")->capture_default_str();
  cmd->add_option("--views", a.views, "Generated batch: views V per sample")->capture_default_str();
  cmd->add_option("--dim", a.dim, "Generated batch: feature dimension D")->capture_default_str();
  cmd->add_option("--classes", a.classes, "Generated batch: labels uniform in [0, classes)")->capture_default_str();
  cmd->add_option("--seed", a.seed, "Generated batch: random seed")->capture_default_str();
  cmd->add_option("--temperature", a.temperature, "Softmax temperature (= base temperature)")->capture_default_str();
  auto* features = cmd->add_option("--features", a.features, features_help);
  cmd->add_option("--labels", a.labels, "Integer labels .npy (bsz,) for --features; without it, SimCLR pairing")
      ->needs(features);
}

// ---- inputs ----

/// read_npy with the option's name in front of any error.
inline NpyArray read_as(const std::string& path, const char* option) {
  try {
    return read_npy(path);
  } catch (const IoError& e) {
    throw IoError(std::string(option) + " " + e.what());
  }
}

/// Features as the PyTorch code takes them, converted to view-major rows.
template <class T>
struct Features {
  Tensor<T> rows;  ///< (V * B, D), row v * B + b = features[b, v]
  Shape shape;     ///< the file's shape, for writing the gradient back
  index_t batch = 0, views = 0, dim = 0;
};

/// Reads `path` (option `option`): (bsz, views, dim...) or (bsz, dim) floats,
/// finite, non-empty. Trailing dimensions beyond the third are flattened, as
/// the PyTorch code does with view(bsz, views, -1).
template <class T>
Features<T> load_features(const std::string& path, const char* option = "--features") {
  const NpyArray a = read_as(path, option);
  require<IoError>(a.dtype == NpyDtype::f4 || a.dtype == NpyDtype::f8, option, " ", path,
                   ": features must be float32 or float64");
  require<ShapeError>(a.shape.size() >= 2, option, " ", path,
                      ": expected shape (bsz, views, dim) or (bsz, dim), got ", shape_str(a.shape));
  const Tensor<T> t = npy_to_tensor<T>(a, path);
  check_finite(t, std::string(option) + " " + path);
  Features<T> f;
  f.shape = a.shape;
  f.batch = a.shape[0];
  f.views = a.shape.size() == 2 ? 1 : a.shape[1];
  f.dim = f.batch * f.views > 0 ? t.size() / (f.batch * f.views) : 0;
  require<ShapeError>(f.batch >= 1 && f.views >= 1 && f.dim >= 1, option, " ", path,
                      ": empty features of shape ", shape_str(a.shape));
  f.rows = Tensor<T>({f.views * f.batch, f.dim});
  for (index_t b = 0; b < f.batch; ++b)
    for (index_t v = 0; v < f.views; ++v)
      for (index_t d = 0; d < f.dim; ++d)
        f.rows(v * f.batch + b, d) = t[(b * f.views + v) * f.dim + d];
  return f;
}

/// The inverse of the layout change in load_features: (V * B, D) rows back
/// to the file's (bsz, views, dim...) shape.
template <class T>
Tensor<T> to_file_layout(const Tensor<T>& rows, const Features<T>& f) {
  Tensor<T> out(f.shape);
  for (index_t b = 0; b < f.batch; ++b)
    for (index_t v = 0; v < f.views; ++v)
      for (index_t d = 0; d < f.dim; ++d)
        out[(b * f.views + v) * f.dim + d] = rows(v * f.batch + b, d);
  return out;
}

/// Integer labels (bsz,) from `path`; their count must be `batch`.
inline std::vector<std::int64_t> load_labels(const std::string& path, index_t batch,
                                             const char* option = "--labels") {
  const NpyArray a = read_as(path, option);
  require<IoError>(a.dtype == NpyDtype::i4 || a.dtype == NpyDtype::i8, option, " ", path,
                   ": labels must be int32 or int64");
  const Tensor<std::int64_t> t = npy_to_tensor<std::int64_t>(a, path);
  require<ShapeError>(t.rank() == 1, option, " ", path, ": expected shape (bsz,), got ", shape_str(t.shape()));
  require<ShapeError>(t.size() == batch, option, " ", path, ": has ", t.size(),
                      " labels but the features have ", batch, " samples");
  return std::vector<std::int64_t>(t.begin(), t.end());
}

/// A (bsz, bsz) 0/1 mask from `path`, as a Pairing.
inline Pairing load_mask(const std::string& path, index_t batch, const char* option = "--mask") {
  const Tensor<double> t = npy_to_tensor<double>(read_as(path, option), path);
  require<ShapeError>(t.shape() == Shape{batch, batch}, option, " ", path, ": expected shape ",
                      shape_str({batch, batch}), " for ", batch, " samples, got ", shape_str(t.shape()));
  try {
    return Pairing::from_mask(t);
  } catch (const Error& e) {
    throw ValueError(std::string(option) + " " + path + ": " + e.what());
  }
}

/// Number of distinct labels.
inline index_t count_classes(std::vector<std::int64_t> labels) {
  std::sort(labels.begin(), labels.end());
  return static_cast<index_t>(std::unique(labels.begin(), labels.end()) - labels.begin());
}

/// Frobenius norm of a tensor, in double.
template <class T>
double norm_of(const Tensor<T>& t) {
  double s = 0;
  for (T v : t) s += static_cast<double>(v) * static_cast<double>(v);
  return std::sqrt(s);
}

/// Best wall time of `reps` calls of `f`, in milliseconds.
template <class F>
double best_ms(F&& f, int reps = 3) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const std::chrono::duration<double, std::milli> dt = std::chrono::steady_clock::now() - t0;
    best = std::min(best, dt.count());
  }
  return best;
}

}  // namespace supcon::cli
