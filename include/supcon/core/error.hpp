#pragma once
/// \file error.hpp
/// Error types. Every error carries a one-line message that names what was
/// wrong (a file, an option, a shape), so a program can print `what()` and exit.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace supcon {

/// Base of all errors thrown by the library.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

/// Tensor shapes that do not fit together.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// An argument or option outside its valid range, or a non-finite value.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A file that cannot be read or written, or whose content is malformed.
class IoError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <class... A>
std::string concat(A&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<A>(parts));
  return os.str();
}
}  // namespace detail

/// Throws E with the streamed concatenation of `parts` when `ok` is false.
template <class E = ValueError, class... A>
void require(bool ok, A&&... parts) {
  if (!ok) throw E(detail::concat(std::forward<A>(parts)...));
}

}  // namespace supcon
