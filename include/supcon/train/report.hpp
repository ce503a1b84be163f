#pragma once
/// \file report.hpp
/// report.html: one self-contained page (no scripts, no external files) with
/// a results table, notes and the SVG figures of a run, inlined so the page
/// can be mailed or archived alone. Written atomically.

#include <string>
#include <utility>
#include <vector>

#include "supcon/core/atomic_file.hpp"
#include "supcon/core/error.hpp"
#include "supcon/core/svg.hpp"

namespace supcon {

/// The content of a report.
struct Report {
  std::string title;
  std::vector<std::string> paragraphs;  ///< plain text, escaped on output
  std::vector<std::string> header;      ///< table column names
  std::vector<std::vector<std::string>> rows;  ///< each as many cells as header
  /// (caption, SVG document) pairs; the XML prolog of each is dropped.
  std::vector<std::pair<std::string, std::string>> figures;
};

/// The page as a string. Throws ShapeError when a row's length differs from the header's.
inline std::string render_report(const Report& r) {
  const auto esc = [](const std::string& s) { return SvgPlot::escape(s); };
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                  esc(r.title) +
                  "</title>\n<style>\nbody{font-family:sans-serif;max-width:1500px;margin:2em auto;"
                  "padding:0 1em}\ntable{border-collapse:collapse}\ntd,th{border:1px solid #999;"
                  "padding:4px 10px;text-align:right}\nth{background:#eee}\ntd:first-child{text-align:left}\n"
                  "figure{display:inline-block;margin:0.5em;vertical-align:top}\n</style>\n</head>\n<body>\n"
                  "<h1>" + esc(r.title) + "</h1>\n";
  for (const std::string& p : r.paragraphs) h += "<p>" + esc(p) + "</p>\n";
  if (!r.header.empty()) {
    h += "<table>\n<tr>";
    for (const std::string& c : r.header) h += "<th>" + esc(c) + "</th>";
    h += "</tr>\n";
    for (const auto& row : r.rows) {
      require<ShapeError>(row.size() == r.header.size(), "report: a row has ", row.size(),
                          " cells, the header ", r.header.size());
      h += "<tr>";
      for (const std::string& c : row) h += "<td>" + esc(c) + "</td>";
      h += "</tr>\n";
    }
    h += "</table>\n";
  }
  for (const auto& [caption, svg] : r.figures) {
    const std::size_t at = svg.find("<svg");
    require(at != std::string::npos, "report: figure '", caption, "' is not an SVG document");
    h += "<figure>\n" + svg.substr(at) + "<figcaption>" + esc(caption) + "</figcaption>\n</figure>\n";
  }
  return h + "</body>\n</html>\n";
}

/// Writes render_report(r) to `path` atomically; IoError names the file.
inline void write_report(const std::string& path, const Report& r) {
  write_file_atomic(path, render_report(r));
}

}  // namespace supcon
