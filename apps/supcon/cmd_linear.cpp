// supcon linear: stage two, a linear classifier on the frozen encoder
// features of a checkpoint (encoder in evaluation mode), then its test
// accuracy and the kNN accuracy of the same features.
#include <iostream>

#include "commands.hpp"
#include "train_steps.hpp"

namespace supcon::cli {
namespace {

struct LinearArgs {
  std::string checkpoint, out, data_dir;
  std::int64_t train_subset = -1;
  ProbeOptions probe;
  int threads = 0;
};

int run_linear(const LinearArgs& a) {
  apply_threads(a.threads);
  require(a.probe.epochs >= 1, "--epochs must be >= 1, got ", a.probe.epochs);
  require(a.probe.batch_size >= 1, "--batch-size must be >= 1, got ", a.probe.batch_size);
  require(std::isfinite(a.probe.lr) && a.probe.lr > 0, "--lr must be positive, got ", a.probe.lr);
  LoadedModel m = load_model(a.checkpoint);
  require(is_contrastive(m.cfg.method), a.checkpoint,
          ": is a cross-entropy model, which has its own classifier; use `supcon eval`");
  if (!a.data_dir.empty()) m.data.data_dir = a.data_dir;
  if (a.train_subset >= 0) m.data.train_subset = a.train_subset;
  const DataSource src = load_data_source(m.data.data, m.data.data_dir, m.data.train_subset);
  std::string probe_out;
  if (!a.out.empty()) {
    prepare_out_dir(a.out);
    probe_out = a.out + "/probe.ckpt";
  }
  const EvalOutcome r = evaluate_model(m, src, a.probe, "", probe_out, std::cerr);
  const std::vector<std::string> names = class_names(src.name);
  print_metrics(std::cout, "linear probe", r.classifier, names, true);
  std::cout << "kNN (k = 200): top-1 " << pct(r.knn.top1) << "%\n";
  if (!a.out.empty()) {
    write_file_atomic(a.out + "/linear.json", "{\"linear\": " + metrics_json(r.classifier) +
                                                  ",\n \"knn\": " + metrics_json(r.knn) + "}\n");
    std::cout << "wrote " << probe_out << " and " << a.out << "/linear.json\n";
  }
  return 0;
}

}  // namespace

void add_linear_command(CLI::App& app, Runner& run) {
  auto a = std::make_shared<LinearArgs>();
  auto* cmd = app.add_subcommand("linear", "Linear probe on the frozen encoder of a checkpoint");
  cmd->add_option("--checkpoint", a->checkpoint, "checkpoint.ckpt of `supcon train`")->required();
  cmd->add_option("--out", a->out, "Directory for probe.ckpt and linear.json");
  cmd->add_option("--data-dir", a->data_dir, "Folder of the data files (default: as in training)");
  cmd->add_option("--train-subset", a->train_subset,
                  "Training images for the probe and the kNN bank (default: as in training; 0 = all)");
  cmd->add_option("--epochs", a->probe.epochs, "Epochs over the cached features")->capture_default_str();
  cmd->add_option("--lr", a->probe.lr, "Peak learning rate (cosine)")->capture_default_str();
  cmd->add_option("--batch-size", a->probe.batch_size, "Batch size")->capture_default_str();
  cmd->add_option("--threads", a->threads, "OpenMP threads (0 = default)")->capture_default_str();
  cmd->callback([a, &run] { run = [a] { return run_linear(*a); }; });
}

}  // namespace supcon::cli
