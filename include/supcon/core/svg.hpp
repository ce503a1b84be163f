#pragma once
/// \file svg.hpp
/// SvgPlot: a small, dependency-free SVG writer for 2-D plots — scatter
/// series, line series, axes with ticks, axis labels, a title and a legend.
/// Enough for loss curves, embeddings and the Jensen scatter; nothing more.
///
/// Requires finite data (a NaN or infinity is a ValueError naming the series)
/// and matching x/y lengths (ShapeError). Text is XML-escaped. save() writes
/// atomically (write_file_atomic).

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "supcon/core/atomic_file.hpp"
#include "supcon/core/error.hpp"

namespace supcon {

class SvgPlot {
 public:
  /// A plot of `width` x `height` pixels (each at least 200).
  explicit SvgPlot(std::string title, std::string x_label = "", std::string y_label = "",
                   int width = 640, int height = 480)
      : title_(std::move(title)), x_label_(std::move(x_label)), y_label_(std::move(y_label)),
        width_(width), height_(height) {
    require(width >= 200 && height >= 200, "SvgPlot: size must be at least 200x200, got ", width, "x",
            height);
  }

  /// Adds points drawn as circles. An empty `color` picks the next of a palette.
  SvgPlot& scatter(std::string label, std::vector<double> x, std::vector<double> y,
                   std::string color = "") {
    return add(Kind::scatter, std::move(label), std::move(x), std::move(y), std::move(color));
  }
  /// Adds a polyline through the points in order.
  SvgPlot& line(std::string label, std::vector<double> x, std::vector<double> y,
                std::string color = "") {
    return add(Kind::line, std::move(label), std::move(x), std::move(y), std::move(color));
  }

  /// The whole document. Requires at least one point in some series.
  std::string render() const {
    double x0 = inf(), x1 = -inf(), y0 = inf(), y1 = -inf();
    for (const Series& s : series_)
      for (std::size_t k = 0; k < s.x.size(); ++k) {
        x0 = std::min(x0, s.x[k]), x1 = std::max(x1, s.x[k]);
        y0 = std::min(y0, s.y[k]), y1 = std::max(y1, s.y[k]);
      }
    require(x0 <= x1, "SvgPlot '", title_, "': nothing to plot");
    const auto xr = padded(x0, x1), yr = padded(y0, y1);
    // Plot area inside margins for the title, ticks and labels.
    const double left = 70, right = width_ - 20.0, top = 40, bottom = height_ - 55.0;
    auto px = [&](double v) { return left + (v - xr.first) / (xr.second - xr.first) * (right - left); };
    auto py = [&](double v) { return bottom - (v - yr.first) / (yr.second - yr.first) * (bottom - top); };

    std::ostringstream o;
    o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width_ << "\" height=\"" << height_
      << "\" viewBox=\"0 0 " << width_ << ' ' << height_ << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text class=\"title\" x=\"" << width_ / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">"
      << escape(title_) << "</text>\n";
    // Axes: a frame, then ticks with grid lines and numbers on both axes.
    o << "<g class=\"axes\" stroke=\"black\" fill=\"none\">\n"
      << "<rect x=\"" << num(left) << "\" y=\"" << num(top) << "\" width=\"" << num(right - left)
      << "\" height=\"" << num(bottom - top) << "\"/>\n</g>\n<g class=\"ticks\">\n";
    for (double t : ticks(xr.first, xr.second))
      o << "<line x1=\"" << num(px(t)) << "\" y1=\"" << num(top) << "\" x2=\"" << num(px(t)) << "\" y2=\""
        << num(bottom + 4) << "\" stroke=\"#ddd\"/>\n<text x=\"" << num(px(t)) << "\" y=\""
        << num(bottom + 17) << "\" text-anchor=\"middle\">" << label_of(t) << "</text>\n";
    for (double t : ticks(yr.first, yr.second))
      o << "<line x1=\"" << num(left - 4) << "\" y1=\"" << num(py(t)) << "\" x2=\"" << num(right)
        << "\" y2=\"" << num(py(t)) << "\" stroke=\"#ddd\"/>\n<text x=\"" << num(left - 7) << "\" y=\""
        << num(py(t) + 4) << "\" text-anchor=\"end\">" << label_of(t) << "</text>\n";
    o << "</g>\n"
      << "<text class=\"xlabel\" x=\"" << num((left + right) / 2) << "\" y=\"" << height_ - 15
      << "\" text-anchor=\"middle\">" << escape(x_label_) << "</text>\n"
      << "<text class=\"ylabel\" x=\"18\" y=\"" << num((top + bottom) / 2)
      << "\" text-anchor=\"middle\" transform=\"rotate(-90 18 " << num((top + bottom) / 2) << ")\">"
      << escape(y_label_) << "</text>\n";
    // Data, in the order the series were added (later ones on top).
    for (const Series& s : series_) {
      o << "<g class=\"" << (s.kind == Kind::scatter ? "scatter" : "line") << "\">\n";
      if (s.kind == Kind::scatter) {
        for (std::size_t k = 0; k < s.x.size(); ++k)
          o << "<circle cx=\"" << num(px(s.x[k])) << "\" cy=\"" << num(py(s.y[k]))
            << "\" r=\"2.5\" fill=\"" << s.color << "\" fill-opacity=\"0.7\"/>\n";
      } else {
        o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"1.5\" points=\"";
        for (std::size_t k = 0; k < s.x.size(); ++k)
          o << (k ? " " : "") << num(px(s.x[k])) << ',' << num(py(s.y[k]));
        o << "\"/>\n";
      }
      o << "</g>\n";
    }
    // Legend in the top-left corner of the plot area.
    o << "<g class=\"legend\">\n";
    double ly = top + 16;
    for (const Series& s : series_) {
      if (s.label.empty()) continue;
      if (s.kind == Kind::scatter)
        o << "<circle cx=\"" << num(left + 16) << "\" cy=\"" << num(ly - 4) << "\" r=\"4\" fill=\"" << s.color
          << "\"/>\n";
      else
        o << "<line x1=\"" << num(left + 8) << "\" y1=\"" << num(ly - 4) << "\" x2=\"" << num(left + 24)
          << "\" y2=\"" << num(ly - 4) << "\" stroke=\"" << s.color << "\" stroke-width=\"2\"/>\n";
      o << "<text x=\"" << num(left + 30) << "\" y=\"" << num(ly) << "\">" << escape(s.label) << "</text>\n";
      ly += 18;
    }
    o << "</g>\n</svg>\n";
    return o.str();
  }

  /// Writes render() to `path` atomically; throws IoError naming the file.
  void save(const std::string& path) const { write_file_atomic(path, render()); }

  /// `s` with &, <, >, " and ' replaced by XML entities.
  static std::string escape(const std::string& s) {
    std::string r;
    for (char c : s) {
      switch (c) {
        case '&': r += "&amp;"; break;
        case '<': r += "&lt;"; break;
        case '>': r += "&gt;"; break;
        case '"': r += "&quot;"; break;
        case '\'': r += "&apos;"; break;
        default: r += c;
      }
    }
    return r;
  }

  /// About five round tick values (1, 2 or 5 times a power of ten apart) in [lo, hi].
  static std::vector<double> ticks(double lo, double hi) {
    const double raw = (hi - lo) / 5;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double r = raw / mag;
    const double step = (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
    std::vector<double> t;
    for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
      t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
    return t;
  }

 private:
  enum class Kind { scatter, line };
  struct Series {
    Kind kind;
    std::string label;
    std::vector<double> x, y;
    std::string color;
  };
  std::string title_, x_label_, y_label_;
  int width_, height_;
  std::vector<Series> series_;

  SvgPlot& add(Kind kind, std::string label, std::vector<double> x, std::vector<double> y,
               std::string color) {
    require<ShapeError>(x.size() == y.size(), "SvgPlot: series '", label, "' has ", x.size(),
                        " x values but ", y.size(), " y values");
    for (std::size_t k = 0; k < x.size(); ++k)
      require(std::isfinite(x[k]) && std::isfinite(y[k]), "SvgPlot: series '", label,
              "' has a non-finite value at point ", k);
    static const char* palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
    if (color.empty()) color = palette[series_.size() % 6];
    series_.push_back({kind, std::move(label), std::move(x), std::move(y), escape(color)});
    return *this;
  }
  static double inf() { return std::numeric_limits<double>::infinity(); }
  // The data range widened by 5% on each side (by 1 when the range is a point).
  static std::pair<double, double> padded(double lo, double hi) {
    const double pad = hi > lo ? 0.05 * (hi - lo) : std::max(1.0, std::abs(lo) * 0.05);
    return {lo - pad, hi + pad};
  }
  static std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", v);
    return b;
  }
  static std::string label_of(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
  }
};

}  // namespace supcon
