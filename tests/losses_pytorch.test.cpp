// Agreement with an independent PyTorch implementation (tools/make_loss_fixtures.py):
// every case listed in tests/data/losses/cases.txt and ce_cases.txt, value,
// per-anchor losses and autograd gradient, to 1e-9 relative in double.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <supcon/core/npy.hpp>
#include <supcon/losses/cross_entropy.hpp>
#include <supcon/losses/supcon_fused.hpp>
#include <supcon/losses/supcon_reference.hpp>
#include <supcon/testing/gradcheck.hpp>

using namespace supcon;

namespace {

const std::string dir = std::string(SUPCON_TEST_DATA_DIR) + "/losses/";

// Non-comment lines of an index file.
std::vector<std::string> case_lines(const std::string& file) {
  std::ifstream in(dir + file);
  REQUIRE(in.good());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') lines.push_back(line);
  return lines;
}

std::vector<std::int64_t> load_labels(const std::string& path) {
  const Tensor<std::int64_t> t = load_npy<std::int64_t>(path);
  return std::vector<std::int64_t>(t.begin(), t.end());
}

// (B, V, D) as PyTorch stores it -> (V * B, D) view-major rows, and back.
Tensor<double> to_view_major(const Tensor<double>& t) {
  const index_t B = t.dim(0), V = t.dim(1), D = t.dim(2);
  Tensor<double> out({V * B, D});
  for (index_t b = 0; b < B; ++b)
    for (index_t v = 0; v < V; ++v)
      for (index_t d = 0; d < D; ++d) out(v * B + b, d) = t(b, v, d);
  return out;
}

struct Case {
  std::string name;
  SupConOptions opt;
  bool has_labels = false, has_mask = false;
};

Case parse_case(const std::string& line) {
  std::istringstream is(line);
  Case c;
  std::string variant, mode, den, nopos;
  int labels = 0, mask = 0;
  is >> c.name >> variant >> c.opt.temperature >> c.opt.base_temperature >> mode >> den >>
      c.opt.positives_cap >> nopos >> labels >> mask;
  REQUIRE(!is.fail());
  c.opt.summation = variant == "in" ? Summation::inside : Summation::outside;
  c.opt.contrast_mode = mode == "one" ? ContrastMode::one : ContrastMode::all;
  c.opt.denominator = den == "one_positive"     ? Denominator::one_positive
                      : den == "only_negatives" ? Denominator::only_negatives
                                                : Denominator::all;
  c.opt.no_positives = nopos == "exclude" ? NoPositives::exclude : NoPositives::count_zero;
  c.has_labels = labels != 0;
  c.has_mask = mask != 0;
  return c;
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

}  // namespace

TEST_CASE("Both SupCon implementations reproduce the PyTorch losses and gradients") {
  const std::vector<std::string> lines = case_lines("cases.txt");
  REQUIRE(lines.size() >= 10);
  for (const std::string& line : lines) {
    const Case c = parse_case(line);
    INFO("case " << c.name);
    const Tensor<double> raw = load_npy<double>(dir + c.name + "_features.npy");
    const Tensor<double> f = to_view_major(raw);
    const index_t batch = raw.dim(0);
    const Pairing p = c.has_labels ? Pairing::from_labels(load_labels(dir + c.name + "_labels.npy"))
                      : c.has_mask ? Pairing::from_mask(load_npy<double>(dir + c.name + "_mask.npy"))
                                   : Pairing::identity(batch);
    const double loss = load_npy<double>(dir + c.name + "_loss.npy")[0];
    const Tensor<double> grad = to_view_major(load_npy<double>(dir + c.name + "_grad.npy"));
    const Tensor<double> per = load_npy<double>(dir + c.name + "_per_anchor.npy");
    for (int impl = 0; impl < 2; ++impl) {
      INFO((impl == 0 ? "reference" : "fused"));
      const LossResult<double> r =
          impl == 0 ? supcon_loss_reference(f, p, c.opt) : supcon_loss_fused(f, p, c.opt, 3);
      CHECK(rel(r.value, loss) < 1e-9);
      CHECK(testing::max_relative_error(r.grad, grad, 1e-8) < 1e-9);
      REQUIRE(static_cast<index_t>(r.per_anchor.size()) == per.size());
      for (index_t i = 0; i < per.size(); ++i) CHECK(std::abs(r.per_anchor[i] - per[i]) < 1e-9 * (1 + std::abs(per[i])));
    }
  }
}

TEST_CASE("Cross-entropy reproduces PyTorch, with and without label smoothing") {
  for (const std::string& line : case_lines("ce_cases.txt")) {
    std::istringstream is(line);
    std::string name;
    double eps = 0;
    is >> name >> eps;
    INFO("case " << name);
    const LossResult<double> r = cross_entropy(load_npy<double>(dir + name + "_logits.npy"),
                                               load_labels(dir + name + "_labels.npy"), eps);
    CHECK(rel(r.value, load_npy<double>(dir + name + "_loss.npy")[0]) < 1e-9);
    CHECK(testing::max_relative_error(r.grad, load_npy<double>(dir + name + "_grad.npy"), 1e-8) < 1e-9);
  }
}
