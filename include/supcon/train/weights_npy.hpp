#pragma once
/// \file weights_npy.hpp
/// A model's state as a directory of `.npy` files named by PyTorch state_dict
/// keys: `<dir>/encoder.conv1.weight.npy`, `<dir>/encoder.bn1.running_var.npy`,
/// `<dir>/head.0.weight.npy`, ... Layouts are PyTorch's (a convolution weight is
/// (OC, C, KH, KW), a linear weight (out, in)), so a directory written from a
/// PyTorch `state_dict()` with `numpy.save` loads here and the other way round.
///
/// PyTorch's batch norm also stores an integer `num_batches_tracked`, which the
/// computation never reads; files with that suffix are ignored on import and
/// not written on export.

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "supcon/core/error.hpp"
#include "supcon/core/module.hpp"
#include "supcon/core/npy.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon {

namespace detail {
inline bool is_ignored_state_key(const std::string& key) {
  const std::string suffix = "num_batches_tracked";
  return key.size() >= suffix.size() &&
         key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i == 5) return s + ", ... (" + std::to_string(names.size()) + " in all)";
    s += (i ? ", " : "") + names[i];
  }
  return s;
}
}  // namespace detail

/// Writes every tensor of `model.state("")` to `<dir>/<key>.npy` as element
/// type `Stored` (float32 unless asked otherwise), creating `dir` if needed.
/// Each file is written atomically. Throws IoError naming the path on failure.
template <class Stored = float, class T>
void save_weights_npy(Module<T>& model, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  require<IoError>(!ec && std::filesystem::is_directory(dir), dir,
                   ": cannot create the weights directory", ec ? ": " + ec.message() : "");
  std::vector<NamedTensor<T>> state;
  model.state("", state);
  for (const NamedTensor<T>& s : state)
    save_npy(dir + "/" + s.name + ".npy", s.tensor->template cast<Stored>());
}

/// Reads `<dir>/<key>.npy` into every tensor of `model.state("")`.
///
/// Requires the directory's `.npy` files to be exactly the model's keys (files
/// ending in num_batches_tracked aside), each of the tensor's shape and finite.
/// Float32 and float64 files are accepted and converted to T.
/// All files are read and checked before any tensor of the model changes, so a
/// failed import leaves the model as it was. Throws, with one line that names
/// the directory or file:
///   IoError    the directory is missing, keys are missing or unexpected (both
///              listed by name), or a file cannot be parsed;
///   ShapeError a file's shape differs from the model's (both shapes given);
///   ValueError a file holds NaN or infinity.
template <class T>
void load_weights_npy(Module<T>& model, const std::string& dir) {
  namespace fs = std::filesystem;
  require<IoError>(fs::is_directory(dir), dir, ": weights directory does not exist");
  std::map<std::string, std::string> files;  // key -> path
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    const fs::path p = e.path();
    if (!e.is_regular_file() || p.extension() != ".npy") continue;
    const std::string key = p.stem().string();
    if (!detail::is_ignored_state_key(key)) files[key] = p.string();
  }

  std::vector<NamedTensor<T>> state;
  model.state("", state);
  std::vector<std::string> missing, unexpected;
  std::map<std::string, bool> known;
  for (const NamedTensor<T>& s : state) {
    known[s.name] = true;
    if (!files.count(s.name)) missing.push_back(s.name);
  }
  for (const auto& f : files)
    if (!known.count(f.first)) unexpected.push_back(f.first);
  if (!missing.empty() || !unexpected.empty()) {
    std::string msg = dir + ": weights do not match the model:";
    if (!missing.empty()) msg += " missing " + detail::join_names(missing) + ";";
    if (!unexpected.empty()) msg += " unexpected " + detail::join_names(unexpected) + ";";
    msg.pop_back();
    throw IoError(msg);
  }

  std::vector<Tensor<T>> loaded;
  loaded.reserve(state.size());
  for (const NamedTensor<T>& s : state) {
    const std::string& path = files[s.name];
    const NpyArray a = read_npy(path);
    require<IoError>(a.dtype == NpyDtype::f4 || a.dtype == NpyDtype::f8, path,
                     ": weights must be float32 or float64");
    require<ShapeError>(a.shape == s.tensor->shape(), path, ": shape ", shape_str(a.shape),
                        " does not match the model's ", s.name, " of shape ",
                        shape_str(s.tensor->shape()));
    loaded.push_back(npy_to_tensor<T>(a, path));
    check_finite(loaded.back(), path);
  }
  for (std::size_t i = 0; i < state.size(); ++i) *state[i].tensor = std::move(loaded[i]);
}

}  // namespace supcon
