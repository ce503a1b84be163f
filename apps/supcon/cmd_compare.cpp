// `supcon compare`: every SupCon variant on one batch, side by side — value,
// gradient norm and time of the reference and fused implementations, each row
// with a sentence on what differs. A notebook-style walk-through of the options.
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <supcon/analysis/random_batch.hpp>
#include <supcon/losses/supcon_fused.hpp>
#include <supcon/losses/supcon_reference.hpp>

#include "cli_util.hpp"
#include "commands.hpp"

namespace supcon::cli {
namespace {

struct Variant {
  std::string name;
  SupConOptions opt;
  bool simclr = false;  // pairing by sample identity instead of the labels
  std::string note;
};

// Largest |a - b| relative to the largest |b| (the arrays' common scale).
double scaled_difference(const Tensor<double>& a, const Tensor<double>& b) {
  double diff = 0, scale = 1e-300;
  for (index_t k = 0; k < a.size(); ++k) {
    diff = std::max(diff, std::abs(a[k] - b[k]));
    scale = std::max(scale, std::abs(b[k]));
  }
  return diff / scale;
}

std::vector<Variant> variants(const SupConOptions& base, index_t views) {
  std::vector<Variant> v;
  auto add = [&](std::string name, std::function<void(SupConOptions&)> change, std::string note,
                 bool simclr = false) {
    SupConOptions o = base;
    change(o);
    v.push_back({std::move(name), o, simclr, std::move(note)});
  };
  add("L_out", [](SupConOptions&) {}, "Eq. 2: the mean over positives sits outside the log (the paper's choice)");
  add("L_in", [](SupConOptions& o) { o.summation = Summation::inside; },
      "Eq. 3: the mean sits inside the log; by Jensen never above L_out");
  add("SimCLR", [](SupConOptions&) {}, "labels ignored: only the other views of the same sample are positives",
      true);
  add("contrast one", [](SupConOptions& o) { o.contrast_mode = ContrastMode::one; },
      "only view-0 rows are anchors; every view stays in the contrast set");
  add("denom one-positive", [](SupConOptions& o) { o.denominator = Denominator::one_positive; },
      "each positive competes with the negatives only, not with the other positives");
  add("denom only-negatives", [](SupConOptions& o) { o.denominator = Denominator::only_negatives; },
      "positives leave the denominator altogether; the loss can drop below 0");
  add("positives cap " + std::to_string(views), [views](SupConOptions& o) { o.positives_cap = views; },
      "at most one other sample (all its views) per anchor; the rest leave every sum");
  add("exclude", [](SupConOptions& o) { o.no_positives = NoPositives::exclude; },
      "anchors without positives leave the mean instead of counting as 0");
  return v;
}

int run_compare(const BatchArgs& a) {
  a.validate();
  Tensor<double> rows;
  std::vector<std::int64_t> labels;
  std::string what;
  index_t batch = 0, views = 0, dim = 0;
  if (!a.features.empty()) {
    const Features<double> f = load_features<double>(a.features);
    rows = f.rows;
    batch = f.batch, views = f.views, dim = f.dim;
    if (!a.labels.empty()) {
      labels = load_labels(a.labels, f.batch);
    } else {
      for (index_t b = 0; b < batch; ++b) labels.push_back(b);  // SimCLR pairing
    }
    what = a.features;
  } else {
    Rng rng(a.seed);
    RandomBatch<double> rb = random_batch<double>(rng, a.batch, a.views, a.dim, a.classes);
    rows = std::move(rb.features);
    labels = std::move(rb.labels);
    batch = a.batch, views = a.views, dim = a.dim;
    what = "a random batch (seed " + std::to_string(a.seed) + ", unit-norm features)";
  }
  SupConOptions base;
  base.temperature = a.temperature;
  base.base_temperature = a.temperature;
  std::printf("supcon compare on %s: B = %lld samples x V = %lld views x D = %lld dims, %lld classes, "
              "temperature %g (= base temperature)\n\n",
              what.c_str(), static_cast<long long>(batch), static_cast<long long>(views),
              static_cast<long long>(dim), static_cast<long long>(count_classes(labels)), a.temperature);
  std::printf("%-22s %12s %11s %10s %10s  %s\n", "variant", "loss", "|grad|", "ref ms", "fused ms",
              "what differs");
  const Pairing by_label = Pairing::from_labels(labels), by_sample = Pairing::identity(batch);
  supcon_loss_fused(rows, by_label, base);  // warm-up: threads started, pages touched, before timing
  double worst = 0;
  for (const Variant& v : variants(base, views)) {
    const Pairing& p = v.simclr ? by_sample : by_label;
    LossResult<double> ref, fused;
    const double ref_ms = best_ms([&] { ref = supcon_loss_reference(rows, p, v.opt); });
    const double fused_ms = best_ms([&] { fused = supcon_loss_fused(rows, p, v.opt); });
    worst = std::max({worst, std::abs(fused.value - ref.value) / std::max(std::abs(ref.value), 1e-300),
                      scaled_difference(fused.grad, ref.grad)});
    std::string note = v.note;
    if (v.opt.no_positives == NoPositives::exclude && ref.anchors_with_positives == ref.anchors)
      note += " (same as L_out here: every anchor has a positive)";
    std::printf("%-22s %12.6f %11.4e %10.3f %10.3f  %s\n", v.name.c_str(), ref.value, norm_of(ref.grad), ref_ms,
                fused_ms, note.c_str());
  }
  const bool same = worst <= 1e-9;
  std::printf("\ncheck: fused equals reference on every variant (largest relative difference %.2e): %s\n", worst,
              same ? "PASS" : "FAIL");
  return same ? 0 : 1;
}

}  // namespace

void add_compare_command(CLI::App& app, Runner& run) {
  auto args = std::make_shared<BatchArgs>();
  args->dim = 64;
  auto* cmd = app.add_subcommand("compare", "Every SupCon variant on one batch, side by side, with explanations");
  cmd->footer("Without --features a random batch is generated from --batch, --views, --dim, --classes, --seed.\n"
              "Computed in double; the loss is scaled by temperature / base temperature = 1.");
  add_batch_options(cmd, *args, "Use this batch instead: .npy (bsz, views, dim) or (bsz, dim)");
  cmd->callback([&run, args]() { run = [args]() { return run_compare(*args); }; });
}

}  // namespace supcon::cli
