// `supcon loss`: the SupCon / SimCLR loss of a features file, with the options
// and input layout of the widely used PyTorch code, and optionally its gradient.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include <supcon/losses/supcon_fused.hpp>
#include <supcon/losses/supcon_reference.hpp>

#include "cli_util.hpp"
#include "commands.hpp"

namespace supcon::cli {
namespace {

struct LossArgs {
  std::string features, labels, mask, grad_out, per_anchor_out;
  std::string variant = "out", contrast = "all", denominator = "all", no_positives = "count-zero";
  std::string precision = "double", implementation = "reference";
  double temperature = 0.07, base_temperature = 0.07;
  std::int64_t positives_cap = -1;
  bool json = false;
};

template <class T>
int run_loss(const LossArgs& a) {
  SupConOptions opt;
  require_positive(a.temperature, "--temperature");
  require_positive(a.base_temperature, "--base-temperature");
  require_at_least(a.positives_cap, -1, "--positives-cap");
  opt.temperature = a.temperature;
  opt.base_temperature = a.base_temperature;
  opt.contrast_mode = parse_contrast(a.contrast);
  opt.denominator = parse_denominator(a.denominator);
  opt.no_positives = parse_no_positives(a.no_positives);
  opt.positives_cap = a.positives_cap;
  opt.summation = a.variant == "in" ? Summation::inside : Summation::outside;
  require(a.variant != "simclr" || (a.labels.empty() && a.mask.empty()),
          "--variant simclr pairs each sample only with its own views: do not pass --labels or --mask");

  const Features<T> f = load_features<T>(a.features);
  require(opt.positives_cap < 0 || opt.positives_cap % f.views == 0, "--positives-cap must be a multiple of the ",
          f.views, " views, got ", opt.positives_cap);
  // No labels and no mask: every sample its own class, as the PyTorch code does.
  Pairing pairing = Pairing::identity(f.batch);
  std::string pairing_name = "none (SimCLR: only the other views of a sample are its positives)";
  if (!a.labels.empty()) {
    const std::vector<std::int64_t> labels = load_labels(a.labels, f.batch);
    pairing = Pairing::from_labels(labels);
    pairing_name = "labels " + a.labels + " (" + std::to_string(count_classes(labels)) + " classes)";
  } else if (!a.mask.empty()) {
    pairing = load_mask(a.mask, f.batch);
    pairing_name = "mask " + a.mask;
  }

  const LossResult<T> r = a.implementation == "fused" ? supcon_loss_fused(f.rows, pairing, opt)
                                                      : supcon_loss_reference(f.rows, pairing, opt);
  require(std::isfinite(static_cast<double>(r.value)), "the loss is not finite (", r.value,
          "); try a higher --temperature or --precision double");
  if (!a.grad_out.empty()) save_npy(a.grad_out, to_file_layout(r.grad, f));
  if (!a.per_anchor_out.empty()) {
    Tensor<T> per({static_cast<index_t>(r.per_anchor.size())});
    std::copy(r.per_anchor.begin(), r.per_anchor.end(), per.begin());
    save_npy(a.per_anchor_out, per);
  }

  const double grad_norm = norm_of(r.grad);
  if (a.json) {
    nlohmann::json j;
    j["loss"] = static_cast<double>(r.value);
    j["variant"] = a.variant;
    j["implementation"] = a.implementation;
    j["precision"] = a.precision;
    j["samples"] = f.batch;
    j["views"] = f.views;
    j["dim"] = f.dim;
    j["anchors"] = r.anchors;
    j["anchors_with_positives"] = r.anchors_with_positives;
    j["temperature"] = opt.temperature;
    j["base_temperature"] = opt.base_temperature;
    j["contrast_mode"] = name_of(opt.contrast_mode);
    j["denominator"] = name_of(opt.denominator);
    j["positives_cap"] = opt.positives_cap;
    j["no_positives"] = name_of(opt.no_positives);
    j["pairing"] = !a.labels.empty() ? "labels" : !a.mask.empty() ? "mask" : "simclr";
    j["grad_norm"] = grad_norm;
    std::cout << j.dump() << "\n";
    return 0;
  }
  const char* title = a.variant == "out" ? "SupCon L_out" : a.variant == "in" ? "SupCon L_in" : "SimCLR";
  std::cout << std::setprecision(17) << title << " = " << r.value << "\n"
            << std::setprecision(6) << "  features:  " << a.features << ", " << f.batch << " samples x "
            << f.views << " views x " << f.dim << " dims\n"
            << "  pairing:   " << pairing_name << "\n"
            << "  options:   temperature " << opt.temperature << ", base temperature " << opt.base_temperature
            << ", contrast " << name_of(opt.contrast_mode) << ", denominator " << name_of(opt.denominator)
            << ", positives cap " << opt.positives_cap << ", no positives " << name_of(opt.no_positives) << "\n"
            << "  computed:  " << a.implementation << " implementation in " << a.precision << "\n"
            << "  anchors:   " << r.anchors << " (" << r.anchors_with_positives << " with positives)\n"
            << "  gradient:  norm " << grad_norm;
  if (!a.grad_out.empty()) std::cout << ", written to " << a.grad_out;
  std::cout << "\n";
  return 0;
}

}  // namespace

void add_loss_command(CLI::App& app, Runner& run) {
  auto args = std::make_shared<LossArgs>();
  auto* cmd = app.add_subcommand(
      "loss", "Compute the SupCon (L_out, L_in) or SimCLR loss of a features file, and its gradient");
  cmd->footer(
      "Features are (bsz, views, dim) as in the widely used PyTorch code; (bsz, dim) means one view.\n"
      "Without --labels and --mask every sample is its own class (SimCLR), as in that code.\n"
      "--variant simclr refuses --labels and --mask rather than silently ignoring them.");
  cmd->add_option("--features", args->features, "Features .npy, (bsz, views, dim) or (bsz, dim)")->required();
  auto* labels = cmd->add_option("--labels", args->labels, "Integer labels .npy, (bsz,)");
  auto* mask = cmd->add_option("--mask", args->mask, "0/1 pairing mask .npy, (bsz, bsz)");
  labels->excludes(mask);
  cmd->add_option("--variant", args->variant, "out (Eq. 2), in (Eq. 3) or simclr")
      ->check(CLI::IsMember({"out", "in", "simclr"}))->capture_default_str();
  cmd->add_option("--temperature", args->temperature, "Softmax temperature")->capture_default_str();
  cmd->add_option("--base-temperature", args->base_temperature,
                  "The loss is scaled by temperature / base temperature")->capture_default_str();
  cmd->add_option("--contrast-mode", args->contrast, "Anchors: all views, or view 0 only")
      ->check(CLI::IsMember(contrast_names()))->capture_default_str();
  cmd->add_option("--denominator", args->denominator, "Rows in each softmax denominator")
      ->check(CLI::IsMember(denominator_names()))->capture_default_str();
  cmd->add_option("--positives-cap", args->positives_cap,
                  "At most K positives besides the anchor's own views (-1: no cap; a multiple of views)")
      ->capture_default_str();
  cmd->add_option("--no-positives", args->no_positives, "Anchors without positives: count as 0, or exclude")
      ->check(CLI::IsMember(no_positives_names()))->capture_default_str();
  cmd->add_option("--precision", args->precision, "Arithmetic: float or double")
      ->check(CLI::IsMember({"float", "double"}))->capture_default_str();
  cmd->add_option("--implementation", args->implementation, "reference (paper formula) or fused (tiled)")
      ->check(CLI::IsMember({"reference", "fused"}))->capture_default_str();
  cmd->add_option("--grad-out", args->grad_out, "Write dloss/dfeatures here (.npy, the features' shape)");
  cmd->add_option("--per-anchor-out", args->per_anchor_out, "Write each anchor's scaled loss here (.npy)");
  cmd->add_flag("--json", args->json, "Print one JSON object instead of the summary");
  cmd->callback([&run, args]() {
    run = [args]() { return args->precision == "float" ? run_loss<float>(*args) : run_loss<double>(*args); };
  });
}

}  // namespace supcon::cli
