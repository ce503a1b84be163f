// supcon eval: top-1, top-5, per-class accuracy and the confusion matrix of
// a trained model (CE head, or a linear probe from `supcon linear`), and the
// weighted kNN accuracy of its normalised encoder features.
#include <iostream>

#include "commands.hpp"
#include "train_steps.hpp"

namespace supcon::cli {
namespace {

struct EvalArgs {
  std::string checkpoint, probe, data_dir, json_out;
  int threads = 0;
};

int run_eval(const EvalArgs& a) {
  apply_threads(a.threads);
  LoadedModel m = load_model(a.checkpoint);
  require(!is_contrastive(m.cfg.method) || !a.probe.empty(), a.checkpoint,
          ": a contrastive encoder needs --probe PROBE (written by `supcon linear --out DIR`)");
  if (!a.data_dir.empty()) m.data.data_dir = a.data_dir;
  const DataSource src = load_data_source(m.data.data, m.data.data_dir, m.data.train_subset);
  const EvalOutcome r = evaluate_model(m, src, ProbeOptions{}, a.probe, "", std::cerr);
  const std::vector<std::string> names = class_names(src.name);
  print_metrics(std::cout, m.ce ? "cross-entropy classifier" : "linear probe", r.classifier, names, true);
  // A CE encoder is probed too, so the two kinds of encoder compare under one protocol.
  if (m.ce) print_metrics(std::cout, "linear probe on the frozen encoder", r.probe, names, false);
  print_metrics(std::cout, "kNN (k = 200, weights exp(sim / 0.1))", r.knn, names, false);
  if (!a.json_out.empty())
    write_file_atomic(a.json_out, "{\"classifier\": " + metrics_json(r.classifier) +
                                      (m.ce ? ",\n \"probe\": " + metrics_json(r.probe) : std::string()) +
                                      ",\n \"knn\": " + metrics_json(r.knn) + "}\n");
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& app, Runner& run) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Accuracy (top-1, top-5, kNN, per class, confusion) of a checkpoint");
  cmd->add_option("--checkpoint", a->checkpoint, "checkpoint.ckpt of `supcon train`")->required();
  cmd->add_option("--probe", a->probe, "probe.ckpt of `supcon linear` (contrastive encoders)");
  cmd->add_option("--data-dir", a->data_dir, "Folder of the data files (default: as in training)");
  cmd->add_option("--json", a->json_out, "Also write the metrics to this JSON file");
  cmd->add_option("--threads", a->threads, "OpenMP threads (0 = default)")->capture_default_str();
  cmd->callback([a, &run] { run = [a] { return run_eval(*a); }; });
}

}  // namespace supcon::cli
