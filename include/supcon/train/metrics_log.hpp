#pragma once
/// \file metrics_log.hpp
/// MetricsLog: one row of numbers per epoch, written as CSV and JSON (both
/// atomically, so a reader or a crash never sees half a file), and drawn as
/// SVG training curves. The CSV text is also the log's serialised form:
/// checkpoints carry it, so a resumed run continues the same log.

#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "supcon/core/atomic_file.hpp"
#include "supcon/core/error.hpp"
#include "supcon/core/svg.hpp"

namespace supcon {

class MetricsLog {
 public:
  /// Columns in order; the first is the x axis of the curves (e.g. "epoch").
  explicit MetricsLog(std::vector<std::string> columns) : columns_(std::move(columns)) {
    require(!columns_.empty(), "MetricsLog: no columns");
    for (const std::string& c : columns_)
      require(!c.empty() && c.find_first_of(",\"\n") == std::string::npos,
              "MetricsLog: column name '", c, "' must be non-empty without commas or quotes");
  }

  const std::vector<std::string>& columns() const { return columns_; }
  const std::vector<std::vector<double>>& rows() const { return rows_; }
  std::size_t size() const { return rows_.size(); }

  /// Appends a row; `values` maps column names to numbers, a missing column
  /// is NaN (written as an empty CSV cell and JSON null). Unknown names throw.
  void add(const std::map<std::string, double>& values) {
    std::vector<double> row(columns_.size(), std::nan(""));
    for (const auto& [name, v] : values) {
      std::size_t k = 0;
      while (k < columns_.size() && columns_[k] != name) ++k;
      require(k < columns_.size(), "MetricsLog: unknown column '", name, "'");
      row[k] = v;
    }
    rows_.push_back(std::move(row));
  }

  /// Column `name` of every row.
  std::vector<double> column(const std::string& name) const {
    std::size_t k = 0;
    while (k < columns_.size() && columns_[k] != name) ++k;
    require(k < columns_.size(), "MetricsLog: unknown column '", name, "'");
    std::vector<double> out;
    for (const auto& r : rows_) out.push_back(r[k]);
    return out;
  }

  /// Header line and one line per row; numbers with 9 significant digits.
  std::string csv() const {
    std::string s;
    for (std::size_t k = 0; k < columns_.size(); ++k) s += (k ? "," : "") + columns_[k];
    s += '\n';
    for (const auto& r : rows_) {
      for (std::size_t k = 0; k < r.size(); ++k) s += (k ? "," : "") + number(r[k]);
      s += '\n';
    }
    return s;
  }

  /// {"columns": [...], "rows": [{"epoch": 1, ...}, ...]}
  std::string json() const {
    std::string s = "{\"columns\": [";
    for (std::size_t k = 0; k < columns_.size(); ++k) s += (k ? ", \"" : "\"") + columns_[k] + "\"";
    s += "],\n \"rows\": [";
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      s += i ? ",\n  {" : "\n  {";
      for (std::size_t k = 0; k < columns_.size(); ++k) {
        const double v = rows_[i][k];
        s += (k ? ", \"" : "\"") + columns_[k] + "\": " + (std::isfinite(v) ? number(v) : "null");
      }
      s += "}";
    }
    return s + "]}\n";
  }

  /// Parses csv() output (a log restored from a checkpoint). `source` names
  /// the origin in errors; the header must equal this log's columns.
  void load_csv(const std::string& text, const std::string& source) {
    std::istringstream in(text);
    std::string line;
    require<IoError>(static_cast<bool>(std::getline(in, line)), source, ": empty metrics log");
    require<IoError>(split(line) == columns_, source, ": metrics log columns '", line,
                     "' differ from this run's");
    std::vector<std::vector<double>> rows;
    while (std::getline(in, line)) {
      const std::vector<std::string> cells = split(line);
      require<IoError>(cells.size() == columns_.size(), source, ": metrics log row '", line,
                       "' has ", cells.size(), " cells, expected ", columns_.size());
      std::vector<double> row;
      for (const std::string& c : cells) {
        try {
          row.push_back(c.empty() ? std::nan("") : std::stod(c));
        } catch (const std::logic_error&) {
          throw IoError(source + ": metrics log cell '" + c + "' is not a number");
        }
      }
      rows.push_back(std::move(row));
    }
    rows_ = std::move(rows);
  }

  /// Writes `<stem>.csv` and `<stem>.json` atomically.
  void save(const std::string& stem) const {
    write_file_atomic(stem + ".csv", csv());
    write_file_atomic(stem + ".json", json());
  }

  /// A line plot of the given columns against the first one (rows where a
  /// value is missing are skipped). Requires at least one finite point.
  SvgPlot plot(const std::string& title, const std::vector<std::string>& ys,
               const std::string& y_label) const {
    SvgPlot p(title, columns_[0], y_label);
    const std::vector<double> x = column(columns_[0]);
    for (const std::string& name : ys) {
      const std::vector<double> y = column(name);
      std::vector<double> px, py;
      for (std::size_t i = 0; i < y.size(); ++i)
        if (std::isfinite(x[i]) && std::isfinite(y[i])) px.push_back(x[i]), py.push_back(y[i]);
      if (!px.empty()) p.line(name, std::move(px), std::move(py));
    }
    return p;
  }

  /// Whether column `name` has at least one finite value.
  bool has_values(const std::string& name) const {
    for (double v : column(name))
      if (std::isfinite(v)) return true;
    return false;
  }

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<double>> rows_;

  static std::string number(double v) {
    if (!std::isfinite(v)) return "";
    char b[40];
    std::snprintf(b, sizeof b, "%.9g", v);
    return b;
  }
  static std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> out(1);
    for (char c : line) {
      if (c == ',') out.emplace_back();
      else if (c != '\r') out.back() += c;
    }
    return out;
  }
};

}  // namespace supcon
