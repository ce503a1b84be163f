// SvgPlot: the plot writer behind `supcon jensen --svg` and the training curves.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>
#include <supcon/core/svg.hpp>

using supcon::SvgPlot;

namespace {

// True when every tag is closed in the right order: a minimal XML check that
// knows about <?...?>, self-closing tags and quoted attribute values.
bool well_formed(const std::string& doc) {
  std::vector<std::string> open;
  std::size_t i = 0;
  while ((i = doc.find('<', i)) != std::string::npos) {
    std::size_t j = i + 1;
    char quote = 0;
    while (j < doc.size() && (quote || doc[j] != '>')) {
      if (quote && doc[j] == quote) quote = 0;
      else if (!quote && (doc[j] == '"' || doc[j] == '\'')) quote = doc[j];
      ++j;
    }
    if (j >= doc.size()) return false;
    const std::string tag = doc.substr(i + 1, j - i - 1);
    i = j + 1;
    if (tag[0] == '?' || tag.back() == '/') continue;
    const std::string name = tag.substr(tag[0] == '/', tag.find_first_of(" \n/", 1) - (tag[0] == '/'));
    if (tag[0] == '/') {
      if (open.empty() || open.back() != name) return false;
      open.pop_back();
    } else {
      open.push_back(name);
    }
  }
  return open.empty();
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("A scatter plus a line renders as well-formed SVG with every element") {
  SvgPlot plot("L_in against L_out", "L_out", "L_in");
  plot.scatter("anchors", {1.0, 2.0, 3.0}, {0.5, 1.5, 2.9}).line("L_in = L_out", {0.0, 4.0}, {0.0, 4.0});
  const std::string doc = plot.render();
  CHECK(doc.rfind("<?xml", 0) == 0);
  CHECK(well_formed(doc));
  CHECK(count(doc, "<svg ") == 1);
  CHECK(count(doc, "<circle ") == 3 + 1);  // three points and one legend marker
  CHECK(count(doc, "<polyline ") == 1);
  CHECK(doc.find(">L_in against L_out</text>") != std::string::npos);
  CHECK(doc.find("class=\"xlabel\"") != std::string::npos);
  CHECK(doc.find("class=\"ylabel\"") != std::string::npos);
  CHECK(doc.find(">L_in = L_out</text>") != std::string::npos);  // the legend entry
}

TEST_CASE("Tick values are round numbers covering the range") {
  const std::vector<double> t = SvgPlot::ticks(0.0, 1.0);
  REQUIRE(t.size() >= 4);
  CHECK(t.front() == Approx(0.0));
  CHECK(t.back() == Approx(1.0));
  CHECK(t[1] - t[0] == Approx(0.2));
  const std::vector<double> big = SvgPlot::ticks(-30.0, 970.0);
  CHECK(big[1] - big[0] == Approx(200.0));
}

TEST_CASE("Labels are XML-escaped so any text gives a valid document") {
  SvgPlot plot("a < b & \"c\"", "x", "y");
  plot.scatter("<tag>", {0.0}, {1.0});
  const std::string doc = plot.render();
  CHECK(well_formed(doc));
  CHECK(doc.find("a &lt; b &amp; &quot;c&quot;") != std::string::npos);
  CHECK(doc.find("&lt;tag&gt;") != std::string::npos);
}

TEST_CASE("A NaN or an infinity in the data is a ValueError naming the series") {
  SvgPlot plot("t");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(plot.scatter("bad", {0.0, nan}, {1.0, 2.0}), supcon::ValueError);
  CHECK_THROWS_WITH(plot.line("worse", {0.0}, {INFINITY}), Catch::Contains("worse"));
}

TEST_CASE("Mismatched x and y lengths, an empty plot and a tiny canvas are refused") {
  SvgPlot plot("t");
  CHECK_THROWS_AS(plot.scatter("s", {0.0, 1.0}, {1.0}), supcon::ShapeError);
  CHECK_THROWS_AS(plot.render(), supcon::ValueError);
  CHECK_THROWS_AS(SvgPlot("t", "", "", 50, 50), supcon::ValueError);
}

TEST_CASE("save writes exactly the rendered document") {
  SvgPlot plot("saved");
  plot.scatter("p", {1.0, 2.0}, {3.0, 3.0});  // a flat range still gets a visible axis
  const std::string path = "core_svg_test_plot.svg";
  plot.save(path);
  CHECK(supcon::read_file(path) == plot.render());
  std::remove(path.c_str());
  CHECK_THROWS_AS(plot.save("/nonexistent-dir/x.svg"), supcon::IoError);
}
