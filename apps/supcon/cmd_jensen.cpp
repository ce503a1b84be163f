// `supcon jensen`: the Jensen bound L_in <= L_out measured on many random
// batches (and optionally on a given one), with an SVG scatter of the
// per-anchor losses against the line L_in = L_out. docs/analysis.md explains.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <supcon/analysis/jensen.hpp>
#include <supcon/core/svg.hpp>

#include "cli_util.hpp"
#include "commands.hpp"

namespace supcon::cli {
namespace {

struct JensenArgs : BatchArgs {
  std::string svg;
  std::int64_t batches = 20;
};

int run_jensen(const JensenArgs& a) {
  a.validate();
  require_at_least(a.batches, 1, "--batches");
  SupConOptions opt;
  opt.temperature = a.temperature;
  opt.base_temperature = a.temperature;
  JensenStudy study;
  study.batches = a.batches;
  study.batch = a.batch;
  study.views = a.views;
  study.dim = a.dim;
  study.classes = a.classes;
  study.seed = a.seed;
  const JensenSummary s = jensen_study<double>(study, opt);

  std::printf("Jensen bound L_in <= L_out on %lld random batches (B = %lld, V = %lld, D = %lld, %lld classes, "
              "seed %llu, temperature %g)\n\n",
              static_cast<long long>(a.batches), static_cast<long long>(a.batch), static_cast<long long>(a.views),
              static_cast<long long>(a.dim), static_cast<long long>(a.classes),
              static_cast<unsigned long long>(a.seed), a.temperature);
  std::printf("| batch | L_out | L_in | L_out - L_in | min anchor gap |\n|---|---|---|---|---|\n");
  const std::size_t shown = std::min<std::size_t>(s.batch_l_out.size(), 20);
  for (std::size_t k = 0; k < shown; ++k)
    std::printf("| %zu | %.6f | %.6f | %.6f | %.3e |\n", k, s.batch_l_out[k], s.batch_l_in[k],
                s.batch_l_out[k] - s.batch_l_in[k], s.batch_min_gap[k]);
  if (shown < s.batch_l_out.size()) std::printf("| ... %zu more |\n", s.batch_l_out.size() - shown);
  std::printf("\nanchors with positives: %lld; per-anchor gap L_out - L_in: min %.3e, mean %.4f, max %.4f; "
              "equality (gap < %g) on %.1f%% of anchors\n",
              static_cast<long long>(s.anchors), s.min_gap, s.mean_gap, s.max_gap, study.tol,
              100 * s.fraction_equal);
  double min_gap = s.min_gap;

  std::vector<double> given_out, given_in;
  if (!a.features.empty()) {
    const Features<double> f = load_features<double>(a.features);
    std::vector<std::int64_t> labels;
    if (!a.labels.empty()) labels = load_labels(a.labels, f.batch);
    const Pairing pairing = a.labels.empty() ? Pairing::identity(f.batch) : Pairing::from_labels(labels);
    const JensenBatch<double> j = jensen_batch(f.rows, pairing, opt);
    for (std::size_t i = 0; i < j.gap.size(); ++i)
      if (j.positives[i] > 0) given_out.push_back(j.l_out[i]), given_in.push_back(j.l_in[i]);
    min_gap = std::min(min_gap, j.min_gap());
    std::printf("given batch %s: L_out %.6f, L_in %.6f, min anchor gap %.3e over %lld anchors with positives\n",
                a.features.c_str(), j.loss_out, j.loss_in, j.min_gap(),
                static_cast<long long>(j.anchors_with_positives));
  }

  if (!a.svg.empty()) {
    std::vector<double> all = s.anchor_l_out;
    all.insert(all.end(), s.anchor_l_in.begin(), s.anchor_l_in.end());
    all.insert(all.end(), given_out.begin(), given_out.end());
    const auto [lo, hi] = std::minmax_element(all.begin(), all.end());
    SvgPlot plot("Per-anchor SupCon losses: L_in <= L_out", "L_out(i)", "L_in(i)");
    plot.scatter("anchors of random batches", s.anchor_l_out, s.anchor_l_in);
    if (!given_out.empty()) plot.scatter("anchors of " + a.features, given_out, given_in);
    plot.line("L_in = L_out", {*lo, *hi}, {*lo, *hi}, "#444444");
    plot.save(a.svg);
    std::printf("scatter of %zu anchors written to %s\n", s.anchor_l_out.size() + given_out.size(),
                a.svg.c_str());
  }
  // Rounding may put an equality case a few ulps below zero; anything larger would be a bug.
  const bool holds = min_gap >= -1e-12;
  std::printf("Jensen bound holds on every anchor (min gap %.3e >= 0): %s\n", min_gap, holds ? "PASS" : "FAIL");
  return holds ? 0 : 1;
}

}  // namespace

void add_jensen_command(CLI::App& app, Runner& run) {
  auto args = std::make_shared<JensenArgs>();
  auto* cmd = app.add_subcommand("jensen", "Measure the Jensen bound L_in <= L_out on random (and given) batches");
  cmd->footer("Random batches: unit-norm Gaussian features, uniform labels; batch k uses Rng(seed, k).\n"
              "Computed in double with base temperature = temperature.");
  cmd->add_option("--batches", args->batches, "Number of random batches")->capture_default_str();
  add_batch_options(cmd, *args, "Also measure this batch: .npy (bsz, views, dim) or (bsz, dim)");
  cmd->add_option("--svg", args->svg, "Write a scatter of per-anchor L_in against L_out here");
  cmd->callback([&run, args]() { run = [args]() { return run_jensen(*args); }; });
}

}  // namespace supcon::cli
