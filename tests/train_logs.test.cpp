// The outputs of a run: the metrics log as CSV and JSON, its curves, the
// HTML report and the progress bar.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <supcon/train/metrics_log.hpp>
#include <supcon/train/progress.hpp>
#include <supcon/train/report.hpp>

using namespace supcon;

namespace {
MetricsLog two_rows() {
  MetricsLog log({"epoch", "loss", "acc"});
  log.add({{"epoch", 1}, {"loss", 2.5}, {"acc", 0.25}});
  log.add({{"epoch", 2}, {"loss", 1.25}});  // acc missing
  return log;
}
}  // namespace

TEST_CASE("the CSV has a header and one line per row, missing values empty") {
  CHECK(two_rows().csv() == "epoch,loss,acc\n1,2.5,0.25\n2,1.25,\n");
}

TEST_CASE("the JSON lists the columns and one object per row, missing values null") {
  const std::string j = two_rows().json();
  CHECK(j.find("\"columns\": [\"epoch\", \"loss\", \"acc\"]") != std::string::npos);
  CHECK(j.find("{\"epoch\": 1, \"loss\": 2.5, \"acc\": 0.25}") != std::string::npos);
  CHECK(j.find("{\"epoch\": 2, \"loss\": 1.25, \"acc\": null}") != std::string::npos);
}

TEST_CASE("a log read back from its CSV equals the original") {
  const MetricsLog a = two_rows();
  MetricsLog b({"epoch", "loss", "acc"});
  b.load_csv(a.csv(), "test");
  CHECK(b.csv() == a.csv());
  CHECK(std::isnan(b.rows()[1][2]));
}

TEST_CASE("a log refuses unknown columns and a CSV of other columns or bad cells") {
  MetricsLog log({"epoch", "loss"});
  CHECK_THROWS_WITH(log.add({{"los", 1}}), Catch::Contains("unknown column 'los'"));
  CHECK_THROWS_AS(log.load_csv("epoch,acc\n1,2\n", "ck"), IoError);
  CHECK_THROWS_WITH(log.load_csv("epoch,loss\n1,x\n", "ck"), Catch::Contains("'x' is not a number"));
  CHECK_THROWS_WITH(log.load_csv("epoch,loss\n1\n", "ck"), Catch::Contains("has 1 cells"));
}

TEST_CASE("save writes the CSV and JSON files") {
  const std::string stem = "train_logs_test_metrics";
  two_rows().save(stem);
  CHECK(read_file(stem + ".csv") == two_rows().csv());
  CHECK(read_file(stem + ".json") == two_rows().json());
  std::remove((stem + ".csv").c_str());
  std::remove((stem + ".json").c_str());
}

TEST_CASE("a curve skips the rows where the value is missing") {
  const std::string svg = two_rows().plot("accuracy", {"acc"}, "acc").render();
  const std::size_t at = svg.find("<polyline");
  REQUIRE(at != std::string::npos);
  const std::string points = svg.substr(at, svg.find("/>", at) - at);
  CHECK(std::count(points.begin(), points.end(), ',') == 1);  // one point
}

TEST_CASE("the report is one HTML page with the table, escaped text and inlined figures") {
  Report r;
  r.title = "A & B";
  r.paragraphs = {"x < y"};
  r.header = {"method", "top-1"};
  r.rows = {{"supcon", "91.00"}, {"ce", "90.50"}};
  r.figures = {{"loss", "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>\n"}};
  const std::string h = render_report(r);
  CHECK(h.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(h.find("<title>A &amp; B</title>") != std::string::npos);
  CHECK(h.find("<p>x &lt; y</p>") != std::string::npos);
  CHECK(h.find("<tr><td>supcon</td><td>91.00</td></tr>") != std::string::npos);
  CHECK(h.find("<?xml") == std::string::npos);  // the prolog of an inlined SVG is dropped
  CHECK(h.find("<svg xmlns") != std::string::npos);
  CHECK(h.find("</html>") != std::string::npos);
}

TEST_CASE("the report refuses a row of the wrong length and a figure that is not SVG") {
  Report r;
  r.header = {"a", "b"};
  r.rows = {{"1"}};
  CHECK_THROWS_AS(render_report(r), ShapeError);
  Report f;
  f.figures = {{"x", "<png/>"}};
  CHECK_THROWS_WITH(render_report(f), Catch::Contains("not an SVG"));
}

TEST_CASE("durations read as seconds, minutes or hours") {
  CHECK(format_duration(42.4) == "42s");
  CHECK(format_duration(185) == "3m05s");
  CHECK(format_duration(3720) == "1h02m");
  CHECK(format_duration(-1) == "?");
}

TEST_CASE("the progress bar shows the fraction done, the ETA and the extra fields") {
  std::ostringstream out;
  ProgressBar bar(out, 10, "epoch 1/2", false);
  // 4 of 10 items after 8 s: 2 s per item, 6 items left -> 12 s.
  CHECK(bar.render(4, 8.0, {{"loss", "1.5"}}) == "epoch 1/2 [########------------]  40%  4/10  ETA 12s  loss 1.5");
  bar.update(5);
  CHECK(out.str().empty());  // not live: only the final line is printed
  bar.update(10, {{"loss", "0.5"}});
  CHECK(out.str().find("100%  10/10  took") != std::string::npos);
}
