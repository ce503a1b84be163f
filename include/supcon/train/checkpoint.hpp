#pragma once
/// \file checkpoint.hpp
/// Checkpoints: the model's state, the optimizer's state, the position in
/// training, the random generator and the configuration, in one binary file.
///
/// File format, version 1. Every integer is little-endian; a string is a u32
/// byte count followed by its bytes (UTF-8, no terminator).
///
///   magic "SUPCONCK" (8 bytes) | u32 version = 1 | u64 file size in bytes
///   i64 epoch | i64 step | 4 x u64 Rng state
///   u32 n, then n x (string key, string value)      configuration, sorted by key
///   string optimizer name ("" = none) | i64 optimizer step count
///   u32 n, then n x tensor                           model state (state_dict names)
///   u32 n, then n x tensor                           optimizer state ("momentum.0", ...)
///   u64 FNV-1a 64 checksum of every byte before it
///
///   tensor = string name | u8 dtype (1 = float32, 2 = float64) | u32 rank |
///            rank x u64 sizes | the elements, row-major, IEEE 754 little-endian
///
/// save_checkpoint writes through write_file_atomic (temporary file, fsync,
/// rename), so an interrupted save leaves the previous checkpoint intact.
/// load_checkpoint refuses, with an IoError naming the file: a wrong magic, an
/// unknown version, a truncated or over-long file, a checksum mismatch, and any
/// malformed content. restore_module / restore_optimizer copy the tensors in
/// only when every name and shape fits; otherwise they throw a ShapeError that
/// lists each problem by name (shape mismatches, missing keys, unexpected keys).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "supcon/core/atomic_file.hpp"
#include "supcon/core/error.hpp"
#include "supcon/core/module.hpp"
#include "supcon/core/rng.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/optim/optimizer.hpp"

namespace supcon {

/// Element type of a stored tensor.
enum class StoredDtype : std::uint8_t { f32 = 1, f64 = 2 };

/// One stored tensor: name, element type, shape and little-endian element bytes.
struct CheckpointTensor {
  std::string name;
  StoredDtype dtype = StoredDtype::f32;
  Shape shape;
  std::string data;  ///< numel(shape) * (4 or 8) bytes
};

/// Everything a checkpoint file holds, in memory.
struct Checkpoint {
  std::int64_t epoch = 0;
  std::int64_t step = 0;
  Rng::State rng{};
  std::map<std::string, std::string> config;      ///< e.g. {"command", "supcon train ..."}
  std::vector<CheckpointTensor> model;            ///< Module::state
  std::string optimizer;                          ///< Optimizer::name(), "" = none stored
  std::int64_t optimizer_steps = 0;               ///< Optimizer::steps()
  std::vector<CheckpointTensor> optimizer_state;  ///< Optimizer::state_tensors()
  /// Where it was loaded from (not stored); names the file in restore errors.
  std::string source;
};

constexpr std::uint32_t kCheckpointVersion = 1;

namespace detail {

constexpr char kCheckpointMagic[9] = "SUPCONCK";
constexpr std::size_t kCheckpointHeader = 8 + 4 + 8;  // magic, version, file size

inline std::uint64_t fnv1a64(const char* p, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int k = 0; k < bytes; ++k) out += static_cast<char>((v >> (8 * k)) & 0xff);
}
inline std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(p[k]);
  return v;
}

/// Appends checkpoint fields to a byte string.
struct CkWriter {
  std::string out;
  void u8(std::uint8_t v) { put_le(out, v, 1); }
  void u32(std::uint32_t v) { put_le(out, v, 4); }
  void u64(std::uint64_t v) { put_le(out, v, 8); }
  void i64(std::int64_t v) { put_le(out, static_cast<std::uint64_t>(v), 8); }
  void str(const std::string& s) {
    require<IoError>(s.size() <= 0xffffffffu, "checkpoint: a string is too long to store");
    u32(static_cast<std::uint32_t>(s.size()));
    out += s;
  }
  void tensors(const std::vector<CheckpointTensor>& ts) {
    u32(static_cast<std::uint32_t>(ts.size()));
    for (const CheckpointTensor& t : ts) {
      str(t.name);
      u8(static_cast<std::uint8_t>(t.dtype));
      u32(static_cast<std::uint32_t>(t.shape.size()));
      for (index_t d : t.shape) u64(static_cast<std::uint64_t>(d));
      out += t.data;
    }
  }
};

/// Reads checkpoint fields with bounds checks; every failure names the file.
struct CkReader {
  const std::string& b;
  std::size_t pos, end;
  const std::string& path;
  void need(std::size_t n, const char* what) {
    require<IoError>(n <= end - pos, path, ": malformed checkpoint: ", what, " at byte ", pos,
                     " runs past the end of the data");
  }
  std::uint64_t le(int bytes, const char* what) {
    need(static_cast<std::size_t>(bytes), what);
    const std::uint64_t v = get_le(b.data() + pos, bytes);
    pos += static_cast<std::size_t>(bytes);
    return v;
  }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(le(4, what)); }
  std::int64_t i64(const char* what) { return static_cast<std::int64_t>(le(8, what)); }
  std::string str(const char* what) {
    const std::size_t n = u32(what);
    need(n, what);
    pos += n;
    return b.substr(pos - n, n);
  }
  std::vector<CheckpointTensor> tensors(const char* section) {
    const std::uint32_t count = u32(section);
    // Each tensor takes at least 9 bytes (name length, dtype, rank).
    require<IoError>(count <= (end - pos) / 9, path, ": malformed checkpoint: the ", section,
                     " claims ", count, " tensors, more than the file can hold");
    std::vector<CheckpointTensor> ts(count);
    std::set<std::string> seen;
    for (CheckpointTensor& t : ts) {
      t.name = str("tensor name");
      require<IoError>(seen.insert(t.name).second, path, ": malformed checkpoint: tensor ", t.name,
                       " appears twice in the ", section);
      const auto dtype = static_cast<std::uint8_t>(le(1, "tensor dtype"));
      require<IoError>(dtype == 1 || dtype == 2, path, ": malformed checkpoint: tensor ", t.name,
                       " has unknown dtype code ", int(dtype));
      t.dtype = static_cast<StoredDtype>(dtype);
      const std::uint32_t rank = u32("tensor rank");
      require<IoError>(rank <= 16, path, ": malformed checkpoint: tensor ", t.name, " has rank ",
                       rank);
      std::uint64_t bytes = dtype == 1 ? 4 : 8;
      for (std::uint32_t k = 0; k < rank; ++k) {
        const std::uint64_t d = static_cast<std::uint64_t>(le(8, "tensor size"));
        // Sizes must keep the byte count below the file size (no overflow).
        require<IoError>(d == 0 || bytes <= b.size() / d, path, ": malformed checkpoint: tensor ",
                         t.name, " has sizes larger than the file");
        bytes *= d;
        t.shape.push_back(static_cast<index_t>(d));
      }
      need(static_cast<std::size_t>(bytes), "tensor data");
      t.data = b.substr(pos, static_cast<std::size_t>(bytes));
      pos += static_cast<std::size_t>(bytes);
    }
    return ts;
  }
};

template <class T>
constexpr StoredDtype stored_dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "checkpoints store float or double tensors");
  return std::is_same_v<T, float> ? StoredDtype::f32 : StoredDtype::f64;
}

/// Decodes the elements of `t` into `dst` (t.shape's element count), converting type.
template <class T>
void decode_into(const CheckpointTensor& t, T* dst) {
  const std::size_t n = t.data.size() / (t.dtype == StoredDtype::f32 ? 4 : 8);
  for (std::size_t i = 0; i < n; ++i) {
    if (t.dtype == StoredDtype::f32) {
      const auto bits = static_cast<std::uint32_t>(get_le(t.data.data() + 4 * i, 4));
      float v;
      std::memcpy(&v, &bits, 4);
      dst[i] = static_cast<T>(v);
    } else {
      const std::uint64_t bits = get_le(t.data.data() + 8 * i, 8);
      double v;
      std::memcpy(&v, &bits, 8);
      dst[i] = static_cast<T>(v);
    }
  }
}

}  // namespace detail

/// A tensor as stored: float stays float32, double stays float64 (bit-exact).
template <class T>
CheckpointTensor to_checkpoint_tensor(const std::string& name, const Tensor<T>& t) {
  CheckpointTensor c{name, detail::stored_dtype_of<T>(), t.shape(), {}};
  c.data.reserve(static_cast<std::size_t>(t.size()) * sizeof(T));
  for (T v : t) {
    std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t> bits;
    std::memcpy(&bits, &v, sizeof(T));
    detail::put_le(c.data, bits, sizeof(T));
  }
  return c;
}

/// A stored tensor as Tensor<T>; float32 <-> float64 convert as static_cast does.
template <class T>
Tensor<T> from_checkpoint_tensor(const CheckpointTensor& c) {
  Tensor<T> t(c.shape);
  detail::decode_into(c, t.data());
  return t;
}

/// The file's bytes, checksum included.
inline std::string checkpoint_bytes(const Checkpoint& ck) {
  detail::CkWriter w;
  w.out.append(detail::kCheckpointMagic, 8);
  w.u32(kCheckpointVersion);
  w.u64(0);  // file size, patched below
  w.i64(ck.epoch);
  w.i64(ck.step);
  for (std::uint64_t s : ck.rng) w.u64(s);
  w.u32(static_cast<std::uint32_t>(ck.config.size()));
  for (const auto& [key, value] : ck.config) {
    w.str(key);
    w.str(value);
  }
  w.str(ck.optimizer);
  w.i64(ck.optimizer_steps);
  w.tensors(ck.model);
  w.tensors(ck.optimizer_state);
  std::string size_bytes;
  detail::put_le(size_bytes, w.out.size() + 8, 8);
  w.out.replace(12, 8, size_bytes);
  w.u64(detail::fnv1a64(w.out.data(), w.out.size()));
  return std::move(w.out);
}

/// Parses checkpoint bytes; `path` names the source in error messages.
inline Checkpoint parse_checkpoint(const std::string& bytes, const std::string& path) {
  const std::size_t n = bytes.size();
  const bool magic_ok =
      std::memcmp(bytes.data(), detail::kCheckpointMagic, std::min<std::size_t>(n, 8)) == 0;
  require<IoError>(magic_ok, path, ": not a supcon checkpoint (wrong magic)");
  require<IoError>(n >= detail::kCheckpointHeader + 8, path, ": truncated checkpoint: ", n,
                   " bytes is shorter than the header");
  const auto version = static_cast<std::uint32_t>(detail::get_le(bytes.data() + 8, 4));
  require<IoError>(version == kCheckpointVersion, path, ": unsupported checkpoint format version ",
                   version, " (this build reads version ", kCheckpointVersion, ")");
  const std::uint64_t recorded = detail::get_le(bytes.data() + 12, 8);
  require<IoError>(n >= recorded, path, ": truncated checkpoint: the header records ", recorded,
                   " bytes, the file has ", n);
  require<IoError>(n == recorded, path, ": the file has ", n, " bytes, but its header records ",
                   recorded, ": file is damaged");
  const std::uint64_t sum = detail::get_le(bytes.data() + n - 8, 8);
  require<IoError>(sum == detail::fnv1a64(bytes.data(), n - 8), path,
                   ": checksum mismatch: file is damaged");

  detail::CkReader r{bytes, detail::kCheckpointHeader, n - 8, path};
  Checkpoint ck;
  ck.source = path;
  ck.epoch = r.i64("epoch");
  ck.step = r.i64("step");
  for (std::uint64_t& s : ck.rng) s = static_cast<std::uint64_t>(r.i64("rng state"));
  const std::uint32_t entries = r.u32("config count");
  for (std::uint32_t i = 0; i < entries; ++i) {
    std::string key = r.str("config key");
    ck.config[key] = r.str("config value");
  }
  ck.optimizer = r.str("optimizer name");
  ck.optimizer_steps = r.i64("optimizer step count");
  ck.model = r.tensors("model state");
  ck.optimizer_state = r.tensors("optimizer state");
  require<IoError>(r.pos == r.end, path, ": malformed checkpoint: ", r.end - r.pos,
                   " unexpected bytes before the checksum");
  return ck;
}

/// Writes `ck` to `path` atomically. Throws IoError naming the file.
inline void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  write_file_atomic(path, checkpoint_bytes(ck));
}

/// Reads and verifies a checkpoint file. Throws IoError naming the file.
inline Checkpoint load_checkpoint(const std::string& path) {
  return parse_checkpoint(read_file(path), path);
}

namespace detail {

/// Copies `saved` into `target` by name, all or nothing. `owner` is "model" or
/// "optimizer"; problems are listed by name in one ShapeError.
template <class T>
void restore_named(const std::vector<CheckpointTensor>& saved, std::vector<NamedTensor<T>>& target,
                   const char* owner, const std::string& source) {
  std::map<std::string, const CheckpointTensor*> by_name;
  for (const CheckpointTensor& c : saved) by_name[c.name] = &c;
  std::string problems, missing, unexpected;
  std::set<std::string> wanted;
  for (const NamedTensor<T>& nt : target) {
    require(wanted.insert(nt.name).second, owner, " state names ", nt.name, " twice");
    const auto it = by_name.find(nt.name);
    if (it == by_name.end()) {
      missing += (missing.empty() ? "" : ", ") + nt.name;
    } else if (it->second->shape != nt.tensor->shape()) {
      problems += (problems.empty() ? "" : "; ") + nt.name + ": checkpoint has shape " +
                  shape_str(it->second->shape) + ", " + owner + " expects " +
                  shape_str(nt.tensor->shape());
    }
  }
  for (const CheckpointTensor& c : saved)
    if (!wanted.count(c.name)) unexpected += (unexpected.empty() ? "" : ", ") + c.name;
  if (!missing.empty()) problems += (problems.empty() ? "" : "; ") + ("missing keys: " + missing);
  if (!unexpected.empty())
    problems += (problems.empty() ? "" : "; ") + ("unexpected keys: " + unexpected);
  require<ShapeError>(problems.empty(), source.empty() ? "checkpoint" : source, ": the ", owner,
                      " state does not fit: ", problems);
  for (NamedTensor<T>& nt : target) decode_into(*by_name[nt.name], nt.tensor->data());
}

}  // namespace detail

/// Replaces ck.model with the module's state (parameters and buffers).
template <class T>
void store_module(Checkpoint& ck, Module<T>& model) {
  std::vector<NamedTensor<T>> state;
  model.state("", state);
  ck.model.clear();
  for (const NamedTensor<T>& nt : state)
    ck.model.push_back(to_checkpoint_tensor(nt.name, *nt.tensor));
}

/// Replaces the optimizer fields of ck with the optimizer's name, steps and state.
template <class T>
void store_optimizer(Checkpoint& ck, Optimizer<T>& opt) {
  ck.optimizer = opt.name();
  ck.optimizer_steps = opt.steps();
  ck.optimizer_state.clear();
  for (const NamedTensor<T>& nt : opt.state_tensors())
    ck.optimizer_state.push_back(to_checkpoint_tensor(nt.name, *nt.tensor));
}

/// Copies ck.model into the module. Throws ShapeError listing every mismatch;
/// the module is unchanged when it throws.
template <class T>
void restore_module(const Checkpoint& ck, Module<T>& model) {
  std::vector<NamedTensor<T>> state;
  model.state("", state);
  detail::restore_named(ck.model, state, "model", ck.source);
}

/// Copies the optimizer state and step count of ck into `opt`. Throws
/// ValueError when ck holds another optimizer's state (or none), ShapeError on
/// a name or shape mismatch; `opt` is unchanged when it throws.
template <class T>
void restore_optimizer(const Checkpoint& ck, Optimizer<T>& opt) {
  const std::string src = ck.source.empty() ? "checkpoint" : ck.source;
  require(!ck.optimizer.empty(), src, ": holds no optimizer state");
  require(ck.optimizer == opt.name(), src, ": holds the state of optimizer '", ck.optimizer,
          "', cannot restore it into '", opt.name(), "'");
  require(ck.optimizer_steps >= 0, src, ": negative optimizer step count ", ck.optimizer_steps);
  std::vector<NamedTensor<T>> state = opt.state_tensors();
  detail::restore_named(ck.optimizer_state, state, "optimizer", ck.source);
  opt.set_steps(ck.optimizer_steps);
}

/// A checkpoint of the model, the optimizer (may be null), the position and the Rng.
template <class T>
Checkpoint make_checkpoint(Module<T>& model, Optimizer<T>* opt, std::int64_t epoch,
                           std::int64_t step, const Rng& rng,
                           std::map<std::string, std::string> config = {}) {
  Checkpoint ck;
  ck.epoch = epoch;
  ck.step = step;
  ck.rng = rng.state();
  ck.config = std::move(config);
  store_module(ck, model);
  if (opt) store_optimizer(ck, *opt);
  return ck;
}

}  // namespace supcon
