// `supcon model`: the layers of a network with their output shapes,
// parameter counts and FLOPs per image, and the totals.
#include <cstdio>
#include <iostream>
#include <string>
#include <supcon/models/summary.hpp>

#include "commands.hpp"
#include "model_options.hpp"

namespace supcon::cli {

namespace {

// 11173962 -> "11,173,962"
std::string grouped(index_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string shape_without_batch(const Shape& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? " x " : "") + std::to_string(s[i]);
  return out;
}

void print_row(const std::string& key, const std::string& what, const std::string& shape,
               const std::string& params, const std::string& mflops) {
  std::printf("%-18s %-46s %-14s %12s %10s\n", key.c_str(), what.c_str(), shape.c_str(),
              params.c_str(), mflops.c_str());
}

int run_model(const ModelOptions& o, index_t image_size) {
  return with_model<float>(o, [&](auto& model) {
    const std::vector<LayerSummary> rows = model.summary({o.in_channels, image_size, image_size});
    std::cout << describe(o) << ", " << image_size << "x" << image_size << " input\n\n";
    print_row("layer", "type", "output", "params", "MFLOPs");
    char buf[32];
    for (const LayerSummary& r : rows) {
      std::snprintf(buf, sizeof buf, "%.2f", r.flops / 1e6);
      print_row(r.key, r.description, shape_without_batch(r.output), grouped(r.params), buf);
    }
    const auto totals = summary_totals(rows);
    std::snprintf(buf, sizeof buf, "%.2f", totals.second / 1e6);
    print_row("total", "", "", grouped(totals.first), buf);
    std::cout << "\nparameters: " << grouped(totals.first) << "\n";
    std::snprintf(buf, sizeof buf, "%.4g", totals.second / 1e9);
    std::cout << "GFLOPs per image: " << buf
              << " (2 per multiply-accumulate of convolutions and linear layers)\n";
    return 0;
  });
}

}  // namespace

void add_model_command(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand(
      "model", "Print a network's layers, output shapes, parameter counts and FLOPs per image");
  auto opts = std::make_shared<ModelOptions>();
  auto image_size = std::make_shared<index_t>(32);
  add_model_options(cmd, *opts);
  cmd->add_option("--image-size", *image_size, "Height and width of the input image")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([&run, opts, image_size]() {
    run = [opts, image_size]() { return run_model(*opts, *image_size); };
  });
}

}  // namespace supcon::cli
