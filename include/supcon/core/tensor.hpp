#pragma once
/// \file tensor.hpp
/// Tensor<T>: a dense, row-major (C order), contiguous array with a shape.
///
/// Images are NCHW, as in PyTorch, so dumps from PyTorch line up element by
/// element. Products go through Eigen maps (`matrix()`), never through an
/// Eigen expression held in `auto`.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "supcon/config.hpp"
#include "supcon/core/error.hpp"

namespace supcon {

namespace detail {
/// Eigen's aligned allocator whose argument-free construct() default-
/// initialises: std::vector::resize(n) then leaves new floats unwritten,
/// for Tensor::resize_for_overwrite. Every other way in still writes a value.
template <class T>
struct default_init_allocator : Eigen::aligned_allocator<T> {
  template <class U>
  struct rebind {
    using other = default_init_allocator<U>;
  };
  default_init_allocator() = default;
  template <class U>
  default_init_allocator(const default_init_allocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
}  // namespace detail

/// Index and size type, the same as Eigen's.
using index_t = Eigen::Index;
/// A tensor shape: sizes from the outermost to the innermost dimension.
using Shape = std::vector<index_t>;

/// Row-major dynamic matrix of T.
template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// Map of a contiguous row-major block as a matrix.
template <class T>
using MatrixMap = Eigen::Map<RowMatrix<T>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const RowMatrix<T>>;
/// Map of a contiguous block as a column vector.
template <class T>
using VectorMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <class T>
using ConstVectorMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;

/// Number of elements of a shape (1 for rank 0).
inline index_t numel_of(const Shape& s) {
  index_t n = 1;
  for (index_t d : s) n *= d;
  return n;
}

/// "(2, 3, 4)" — used in error messages. The shape checks build their
/// messages before they know whether they fail, hundreds of times a training
/// step, so this avoids a string stream (whose set-up alone costs about a
/// microsecond).
inline std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  if (s.size() == 1) out += ',';
  out += ')';
  return out;
}

/// Dense row-major tensor owning its storage.
///
/// Invariants: `size() == numel_of(shape())`, every dimension >= 0.
/// `resize` keeps the allocation when the new size fits, so work buffers can be
/// reused across steps without touching fresh pages.
template <class T>
class Tensor {
 public:
  using value_type = T;

  Tensor() = default;
  /// Uninitialised-free: elements are value-initialised (zero).
  explicit Tensor(Shape shape) : shape_(std::move(shape)) {
    check_dims();
    data_.assign(static_cast<std::size_t>(numel_of(shape_)), T(0));
  }
  Tensor(std::initializer_list<index_t> shape) : Tensor(Shape(shape)) {}
  Tensor(Shape shape, T fill) : shape_(std::move(shape)) {
    check_dims();
    data_.assign(static_cast<std::size_t>(numel_of(shape_)), fill);
  }
  /// Takes shape and values; `values.size()` must equal the shape's element count.
  Tensor(Shape shape, std::vector<T> values) : shape_(std::move(shape)) {
    check_dims();
    require<ShapeError>(static_cast<index_t>(values.size()) == numel_of(shape_), "Tensor: ",
                        values.size(), " values do not fill shape ", shape_str(shape_));
    data_.assign(values.begin(), values.end());
  }

  static Tensor zeros(Shape shape) { return Tensor(std::move(shape)); }
  static Tensor full(Shape shape, T v) { return Tensor(std::move(shape), v); }

  const Shape& shape() const { return shape_; }
  index_t rank() const { return static_cast<index_t>(shape_.size()); }
  /// Size of dimension d; negative d counts from the end.
  index_t dim(index_t d) const {
    const index_t r = rank();
    if (d < 0) d += r;
    if (d < 0 || d >= r)  // the message only on failure: dim() is called in every op
      throw ShapeError(
          detail::concat("Tensor::dim: dimension ", d, " out of range for shape ", shape_str(shape_)));
    return shape_[static_cast<std::size_t>(d)];
  }
  index_t size() const { return static_cast<index_t>(data_.size()); }
  bool empty() const { return data_.empty(); }

  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  T* begin() { return data_.data(); }
  T* end() { return data_.data() + data_.size(); }
  const T* begin() const { return data_.data(); }
  const T* end() const { return data_.data() + data_.size(); }

  /// Flat element access.
  T& operator[](index_t i) { return data_[static_cast<std::size_t>(i)]; }
  const T& operator[](index_t i) const { return data_[static_cast<std::size_t>(i)]; }

  /// Multi-index access (no bounds check in release builds beyond Eigen's asserts).
  template <class... I>
  T& operator()(I... idx) {
    return data_[static_cast<std::size_t>(offset(idx...))];
  }
  template <class... I>
  const T& operator()(I... idx) const {
    return data_[static_cast<std::size_t>(offset(idx...))];
  }

  /// Changes the shape; keeps capacity. New elements are zero, kept ones keep values.
  void resize(Shape shape) {
    shape_ = std::move(shape);
    check_dims();
    data_.resize(static_cast<std::size_t>(numel_of(shape_)), T(0));
  }
  /// Changes the shape like resize, but leaves new elements of an arithmetic
  /// T unwritten (indeterminate): for outputs the caller assigns in full,
  /// which then skip a pass of zeros over memory they are about to overwrite.
  void resize_for_overwrite(Shape shape) {
    shape_ = std::move(shape);
    check_dims();
    data_.resize(static_cast<std::size_t>(numel_of(shape_)));
  }
  /// Same data under a new shape with the same element count.
  Tensor reshaped(Shape shape) const {
    require<ShapeError>(numel_of(shape) == size(), "Tensor::reshaped: cannot view shape ",
                        shape_str(shape_), " as ", shape_str(shape));
    Tensor t = *this;
    t.shape_ = std::move(shape);
    return t;
  }
  void reshape(Shape shape) {
    require<ShapeError>(numel_of(shape) == size(), "Tensor::reshape: cannot view shape ",
                        shape_str(shape_), " as ", shape_str(shape));
    shape_ = std::move(shape);
  }

  void fill(T v) { std::fill(data_.begin(), data_.end(), v); }
  void zero() { fill(T(0)); }

  /// The tensor as a (dim(0), size/dim(0)) row-major matrix; rank 0 or 1 gives one row.
  MatrixMap<T> matrix() { return MatrixMap<T>(data(), rows2d(), cols2d()); }
  ConstMatrixMap<T> matrix() const { return ConstMatrixMap<T>(data(), rows2d(), cols2d()); }
  /// The tensor as a (rows, cols) matrix; rows * cols must equal size().
  MatrixMap<T> matrix(index_t rows, index_t cols) {
    check_view(rows, cols);
    return MatrixMap<T>(data(), rows, cols);
  }
  ConstMatrixMap<T> matrix(index_t rows, index_t cols) const {
    check_view(rows, cols);
    return ConstMatrixMap<T>(data(), rows, cols);
  }
  /// All elements as a column vector.
  VectorMap<T> vec() { return VectorMap<T>(data(), size()); }
  ConstVectorMap<T> vec() const { return ConstVectorMap<T>(data(), size()); }

  /// Element-wise conversion to another scalar type.
  template <class U>
  Tensor<U> cast() const {
    Tensor<U> out(shape_);
    std::transform(begin(), end(), out.begin(), [](T v) { return static_cast<U>(v); });
    return out;
  }

  /// True when every element is finite (no NaN, no infinity).
  bool all_finite() const {
    if constexpr (std::is_floating_point_v<T>)
      return std::all_of(begin(), end(), [](T v) { return std::isfinite(v); });
    else
      return true;
  }

 private:
  Shape shape_;
  std::vector<T, detail::default_init_allocator<T>> data_;

  void check_dims() const {
    for (index_t d : shape_)
      require<ShapeError>(d >= 0, "Tensor: negative dimension in shape ", shape_str(shape_));
  }
  index_t rows2d() const { return shape_.empty() ? 1 : shape_[0]; }
  index_t cols2d() const {
    if (shape_.empty()) return 1;
    return shape_[0] == 0 ? numel_of(Shape(shape_.begin() + 1, shape_.end())) : size() / shape_[0];
  }
  void check_view(index_t rows, index_t cols) const {
    require<ShapeError>(rows * cols == size(), "Tensor::matrix: ", rows, "x", cols,
                        " does not match shape ", shape_str(shape_));
  }
  template <class... I>
  index_t offset(I... idx) const {
    const index_t ids[] = {static_cast<index_t>(idx)...};
    eigen_assert(sizeof...(I) == shape_.size());
    index_t off = 0;
    for (std::size_t k = 0; k < sizeof...(I); ++k) {
      eigen_assert(ids[k] >= 0 && ids[k] < shape_[k]);
      off = off * shape_[k] + ids[k];
    }
    return off;
  }
};

/// Throws ShapeError naming `what` when `t` does not have shape `expected`.
template <class T>
void check_shape(const Tensor<T>& t, const Shape& expected, const std::string& what) {
  require<ShapeError>(t.shape() == expected, what, ": expected shape ", shape_str(expected),
                      ", got ", shape_str(t.shape()));
}

/// Throws ValueError naming `what` when `t` holds a NaN or an infinity.
template <class T>
void check_finite(const Tensor<T>& t, const std::string& what) {
  require<ValueError>(t.all_finite(), what, ": contains NaN or infinity");
}

/// dst = src (shape and values), the copy split over the OpenMP threads when
/// it is large: a layer's copy of its input into its cache, which the other
/// threads would otherwise wait for.
template <class T>
void copy_parallel(const Tensor<T>& src, Tensor<T>& dst) {
  dst.resize_for_overwrite(src.shape());
  parallel_ranges(src.size(),
                  [&](index_t b, index_t e) { std::copy(src.data() + b, src.data() + e, dst.data() + b); });
}

}  // namespace supcon
