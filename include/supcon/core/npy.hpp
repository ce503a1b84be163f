#pragma once
/// \file npy.hpp
/// Reading and writing NumPy `.npy` files (format versions 1.0, 2.0 and 3.0).
///
/// Supported: little-endian float32 (`<f4`), float64 (`<f8`), int32 (`<i4`) and
/// int64 (`<i8`), C order, any rank. Anything else is refused with an IoError
/// that names the file and the problem: wrong magic, unsupported dtype, Fortran
/// order, a header that cannot be parsed, truncated data, or a data block whose
/// size differs from what the header's shape says.

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "supcon/core/atomic_file.hpp"
#include "supcon/core/error.hpp"
#include "supcon/core/tensor.hpp"

namespace supcon {

/// The element types a `.npy` file may hold here.
enum class NpyDtype { f4, f8, i4, i8 };

/// A `.npy` file as read: dtype, shape and the raw little-endian data.
struct NpyArray {
  NpyDtype dtype = NpyDtype::f4;
  Shape shape;
  std::string data;  ///< numel(shape) * itemsize bytes
};

namespace detail {

inline std::size_t npy_itemsize(NpyDtype d) {
  return (d == NpyDtype::f4 || d == NpyDtype::i4) ? 4 : 8;
}
inline const char* npy_descr(NpyDtype d) {
  switch (d) {
    case NpyDtype::f4: return "<f4";
    case NpyDtype::f8: return "<f8";
    case NpyDtype::i4: return "<i4";
    default: return "<i8";
  }
}
template <class T>
constexpr NpyDtype npy_dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> ||
                    std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::int64_t>,
                "npy: supported element types are float, double, int32_t, int64_t");
  if constexpr (std::is_same_v<T, float>) return NpyDtype::f4;
  if constexpr (std::is_same_v<T, double>) return NpyDtype::f8;
  if constexpr (std::is_same_v<T, std::int32_t>) return NpyDtype::i4;
  return NpyDtype::i8;
}

/// Value of `'key': <value>` in the header dict, up to the next top-level comma or brace.
inline std::string npy_field(const std::string& header, const std::string& key,
                             const std::string& path) {
  const std::string pat = "'" + key + "'";
  const auto at = header.find(pat);
  if (at == std::string::npos) throw IoError(path + ": npy header has no '" + key + "' field");
  auto p = header.find(':', at + pat.size());
  if (p == std::string::npos) throw IoError(path + ": npy header is malformed near '" + key + "'");
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  std::size_t end = p;
  int depth = 0;
  while (end < header.size()) {
    const char c = header[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
    if (depth < 0) break;
    ++end;
  }
  if (depth != 0 || end >= header.size())
    throw IoError(path + ": npy header is malformed near '" + key + "'");
  return header.substr(p, end - p);
}

inline Shape npy_parse_shape(std::string s, const std::string& path) {
  // s looks like "(3, 4)", "(5,)" or "()".
  auto bad = [&]() { return IoError(path + ": npy header has a malformed shape " + s); };
  if (s.size() < 2 || s.front() != '(' || s.back() != ')') throw bad();
  Shape shape;
  std::size_t i = 1;
  while (i + 1 < s.size()) {
    while (i + 1 < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
    if (i + 1 >= s.size()) break;
    if (s[i] < '0' || s[i] > '9') throw bad();
    index_t v = 0;
    while (i + 1 < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (v > (index_t(1) << 50)) throw bad();
      v = v * 10 + (s[i] - '0');
      ++i;
    }
    shape.push_back(v);
    while (i + 1 < s.size() && s[i] == ' ') ++i;
    if (i + 1 < s.size() && s[i] != ',') throw bad();
  }
  return shape;
}

inline std::uint32_t read_le(const std::string& b, std::size_t at, int bytes) {
  std::uint32_t v = 0;
  for (int k = bytes - 1; k >= 0; --k)
    v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<std::size_t>(k)]);
  return v;
}

}  // namespace detail

/// Parses `.npy` bytes; `path` only names the source in error messages.
inline NpyArray parse_npy(const std::string& bytes, const std::string& path) {
  static const char magic[] = "\x93NUMPY";
  if (bytes.size() < 10 || std::memcmp(bytes.data(), magic, 6) != 0)
    throw IoError(path + ": not a .npy file (wrong magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = detail::read_le(bytes, 8, 2);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw IoError(path + ": truncated .npy header");
    header_len = detail::read_le(bytes, 8, 4);
    offset = 12;
  } else {
    throw IoError(path + ": unsupported .npy format version " + std::to_string(major));
  }
  if (bytes.size() < offset + header_len) throw IoError(path + ": truncated .npy header");
  const std::string header = bytes.substr(offset, header_len);

  NpyArray a;
  std::string descr = detail::npy_field(header, "descr", path);
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"'))
    descr = descr.substr(1, descr.size() - 2);
  if (descr == "<f4") a.dtype = NpyDtype::f4;
  else if (descr == "<f8") a.dtype = NpyDtype::f8;
  else if (descr == "<i4") a.dtype = NpyDtype::i4;
  else if (descr == "<i8") a.dtype = NpyDtype::i8;
  else
    throw IoError(path + ": unsupported dtype " + descr +
                  " (supported: <f4, <f8, <i4, <i8)");
  const std::string fortran = detail::npy_field(header, "fortran_order", path);
  if (fortran == "True") throw IoError(path + ": Fortran-order arrays are not supported");
  if (fortran != "False") throw IoError(path + ": npy header has a malformed fortran_order");
  a.shape = detail::npy_parse_shape(detail::npy_field(header, "shape", path), path);

  const std::size_t want = static_cast<std::size_t>(numel_of(a.shape)) * detail::npy_itemsize(a.dtype);
  const std::size_t have = bytes.size() - offset - header_len;
  if (have < want)
    throw IoError(path + ": truncated data: header shape " + shape_str(a.shape) + " needs " +
                  std::to_string(want) + " bytes, file has " + std::to_string(have));
  if (have > want)
    throw IoError(path + ": header shape " + shape_str(a.shape) + " needs " +
                  std::to_string(want) + " data bytes but the file has " + std::to_string(have));
  a.data = bytes.substr(offset + header_len);
  return a;
}

/// Reads a `.npy` file without converting its element type.
inline NpyArray read_npy(const std::string& path) { return parse_npy(read_file(path), path); }

/// Converts an NpyArray to Tensor<T>. Integer files convert to floating T;
/// floating files are refused for integer T (labels must be stored as integers).
template <class T>
Tensor<T> npy_to_tensor(const NpyArray& a, const std::string& path) {
  const bool file_is_int = a.dtype == NpyDtype::i4 || a.dtype == NpyDtype::i8;
  if (std::is_integral_v<T> && !file_is_int)
    throw IoError(path + ": expected an integer array, found dtype " +
                  detail::npy_descr(a.dtype));
  Tensor<T> t(a.shape);
  const char* src = a.data.data();
  auto convert = [&](auto tag) {
    using S = decltype(tag);
    for (index_t i = 0; i < t.size(); ++i) {
      S v;
      std::memcpy(&v, src + static_cast<std::size_t>(i) * sizeof(S), sizeof(S));
      t[i] = static_cast<T>(v);
    }
  };
  switch (a.dtype) {
    case NpyDtype::f4: convert(float{}); break;
    case NpyDtype::f8: convert(double{}); break;
    case NpyDtype::i4: convert(std::int32_t{}); break;
    case NpyDtype::i8: convert(std::int64_t{}); break;
  }
  return t;
}

/// Reads a `.npy` file as Tensor<T> (see npy_to_tensor for the conversions).
template <class T>
Tensor<T> load_npy(const std::string& path) {
  return npy_to_tensor<T>(read_npy(path), path);
}

/// `.npy` (version 1.0) bytes of a tensor.
template <class T>
std::string npy_bytes(const Tensor<T>& t) {
  constexpr NpyDtype d = detail::npy_dtype_of<T>();
  std::string shape = "(";
  for (std::size_t i = 0; i < t.shape().size(); ++i)
    shape += std::to_string(t.shape()[i]) + (t.shape().size() == 1 ? "," : (i + 1 < t.shape().size() ? ", " : ""));
  shape += ")";
  std::string header = std::string("{'descr': '") + detail::npy_descr(d) +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so the data starts on a 64-byte boundary; end with '\n'.
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(reinterpret_cast<const char*>(t.data()), static_cast<std::size_t>(t.size()) * sizeof(T));
  return out;
}

/// Writes a tensor as `.npy`, atomically (see write_file_atomic).
template <class T>
void save_npy(const std::string& path, const Tensor<T>& t) {
  write_file_atomic(path, npy_bytes(t));
}

}  // namespace supcon
