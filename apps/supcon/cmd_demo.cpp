// supcon demo: the main job. On Fashion-MNIST, trains one small ResNet with
// cross-entropy and with SupCon (and, with --full, L_in and SimCLR), probes
// the contrastive encoders linearly, evaluates everything with kNN, draws
// the embeddings, prints a paper-style table and writes report.html.
// Each method runs in its own directory and resumes from its checkpoint, so
// an interrupted demo continues where it stopped when run again.
#include <algorithm>
#include <iostream>
#include <sstream>
#include <vector>

#include "commands.hpp"
#include "train_steps.hpp"

namespace supcon::cli {
namespace {

struct DemoArgs {
  DataArgs data;
  std::string out = "supcon-demo";
  bool full = false;
  std::vector<std::string> methods;  // empty: ce and supcon (all four with --full)
  std::int64_t epochs = -1, width = -1, batch_size = -1;
  std::uint64_t seed = 0;
};

struct Row {
  std::string method;
  EvalOutcome eval;
  double train_seconds = 0, images_per_s = 0, wall = 0;
  MetricsLog log{run_log_columns()};
};

// Whether `dir` holds a checkpoint of exactly `cfg` on `data` (so training resumes).
bool has_checkpoint_of(const std::string& dir, const TrainConfig& cfg, const DataArgs& data) {
  const std::string path = dir + "/checkpoint.ckpt";
  if (!data::file_exists(path)) return false;
  const Checkpoint ck = load_checkpoint(path);  // a damaged file is an error, not a silent restart
  std::map<std::string, std::string> want = to_strings(cfg);
  for (const auto& kv : data_strings(data)) want.insert(kv);
  for (const auto& [k, v] : want) {
    const auto it = ck.config.find(k);
    if (it == ck.config.end() || it->second != v) return false;
  }
  return true;
}

std::string fixed(double v, int digits) {
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(digits);
  o << v;
  return o.str();
}

// The methods named by --methods, in order; throws ValueError naming a bad or repeated one.
std::vector<Method> parse_methods(const std::vector<std::string>& names) {
  std::vector<Method> out;
  for (const std::string& n : names) {
    Method m;
    try {
      m = parse_method(n);
    } catch (const ValueError&) {
      throw ValueError("--methods: '" + n + "' is not one of ce, supcon, supcon-in, simclr");
    }
    require(std::find(out.begin(), out.end(), m) == out.end(), "--methods: '", n, "' is named twice");
    out.push_back(m);
  }
  return out;
}

int run_demo(const DemoArgs& a) {
  apply_threads(a.data.threads);
  std::vector<Method> methods = {Method::ce, Method::supcon};
  if (a.full) methods = {Method::ce, Method::supcon, Method::supcon_in, Method::simclr};
  if (!a.methods.empty()) methods = parse_methods(a.methods);
  prepare_out_dir(a.out);
  DataArgs data = a.data;
  // The default budget fits about ten minutes on two cores; --full is the long schedule.
  if (data.train_subset == 0 && !a.full) data.train_subset = 6000;
  TrainConfig base;
  base.encoder.width = a.width > 0 ? a.width : (a.full ? 16 : 8);
  base.epochs = a.epochs > 0 ? a.epochs : (a.full ? 30 : 3);
  base.batch_size = a.batch_size > 0 ? a.batch_size : 128;
  base.seed = a.seed;
  const DataSource src = load_data_source(data.data, data.data_dir, data.train_subset);
  base.encoder.in_channels = src.train->channels();
  base.num_classes = src.train->num_classes();
  const auto t0 = std::chrono::steady_clock::now();
  std::cout << "supcon demo: " << data.data << ", " << src.train->size() << " training images, "
            << src.test->size() << " test images; resnet18 width " << base.encoder.width << ", "
            << base.epochs << " epochs of batch " << base.batch_size << ", seed " << base.seed << std::endl;
  std::vector<Row> rows;
  for (Method method : methods) {
    TrainConfig cfg = base;
    cfg.method = method;
    // The reference peak rates (0.4 CE, 0.5 contrastive) as base rates of the linear scaling rule, x B / 256.
    cfg.lr = (method == Method::ce ? 0.4 : 0.5) * static_cast<double>(cfg.batch_size) / 256.0;
    const std::string dir = a.out + "/" + method_name(method);
    prepare_out_dir(dir);
    const bool resume = has_checkpoint_of(dir, cfg, data);
    std::cout << "== " << method_name(method) << (resume ? " (resuming from " + dir + ")" : "")
              << std::endl;
    const auto m0 = std::chrono::steady_clock::now();
    const TrainOutcome t = train_in_dir(cfg, data, src, dir, resume, 500, std::cerr);
    if (t.run.interrupted)
      return report_interrupt(t, static_cast<std::int64_t>(src.train->size() / cfg.batch_size));
    Row row;
    row.method = method_name(method);
    LoadedModel m = load_model(t.checkpoint);
    const Checkpoint ck = load_checkpoint(t.checkpoint);
    row.log.load_csv(ck.config.at("log.csv"), t.checkpoint);
    for (double s : row.log.column("seconds")) row.train_seconds += s;
    row.images_per_s = static_cast<double>(cfg.epochs * (src.train->size() / cfg.batch_size) * cfg.batch_size) /
                       std::max(row.train_seconds, 1e-9);
    ProbeOptions popt;
    popt.seed = a.seed;
    row.eval = evaluate_model(m, src, popt, "", dir + "/probe.ckpt", std::cerr);
    embed_to_svg(m, src, 2000, dir + "/embedding.svg",
                 std::string(method_name(method)) + ": test-set encoder features (PCA)");
    row.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - m0).count();
    std::cout << row.method << ": top-1 " << pct(row.eval.classifier.top1) << "%, linear probe "
              << pct(row.eval.probe.top1) << "%, kNN "
              << pct(row.eval.knn.top1) << "%, " << fixed(row.images_per_s, 0) << " images/s" << std::endl;
    rows.push_back(std::move(row));
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The table, as in the paper: one row per method.
  Report rep;
  rep.title = "Supervised Contrastive Learning on " + data.data;
  rep.header = {"method", "classifier", "top-1 (%)", "top-5 (%)", "linear probe (%)", "kNN (%)",
                "train images/s", "train time", "wall time"};
  std::cout << "\n| method | classifier | top-1 (%) | top-5 (%) | linear probe (%) | kNN (%) | images/s | train time |\n"
            << "|---|---|---|---|---|---|---|---|\n";
  for (const Row& r : rows) {
    const std::string clf = r.method == "ce" ? "CE head" : "linear probe";
    rep.rows.push_back({r.method, clf, pct(r.eval.classifier.top1), pct(r.eval.classifier.top5),
                        pct(r.eval.probe.top1), pct(r.eval.knn.top1), fixed(r.images_per_s, 0),
                        format_duration(r.train_seconds), format_duration(r.wall)});
    std::cout << "| " << r.method << " | " << clf << " | " << pct(r.eval.classifier.top1) << " | "
              << pct(r.eval.classifier.top5) << " | " << pct(r.eval.probe.top1) << " | "
              << pct(r.eval.knn.top1) << " | " << fixed(r.images_per_s, 0) << " | "
              << format_duration(r.train_seconds) << " |\n";
  }
  std::ostringstream budget;
  budget << "Budget: resnet18 (CIFAR stem, 1 input channel) of width " << base.encoder.width << ", "
         << src.train->size() << " training images, " << base.epochs << " epochs of batch "
         << base.batch_size << ", SGD momentum 0.9, weight decay 1e-4, cosine schedule with 5% warm-up, "
         << "temperature 0.1, seed " << base.seed << ". Top-1 is the CE head for cross-entropy and a linear "
         << "probe (frozen, un-augmented features, encoder in eval mode) for the contrastive methods; the "
         << "probe column applies that protocol to every encoder. kNN uses k = 200 and weights exp(sim / 0.1). "
         << "Test set: " << src.test->size() << " images. Total wall time " << format_duration(total) << ".";
  rep.paragraphs.push_back(budget.str());
  SvgPlot losses("training loss per epoch (each method on its own scale)", "epoch", "loss");
  SvgPlot knn("kNN accuracy of 500 test images after each epoch", "epoch", "accuracy");
  for (const Row& r : rows) {
    losses.line(r.method, r.log.column("epoch"), r.log.column("loss"));
    if (r.log.has_values("knn_monitor")) knn.line(r.method, r.log.column("epoch"), r.log.column("knn_monitor"));
  }
  rep.figures.push_back({"Training loss", losses.render()});
  rep.figures.push_back({"kNN monitor", knn.render()});
  for (const Row& r : rows)
    rep.figures.push_back({r.method + " embedding", read_file(a.out + "/" + r.method + "/embedding.svg")});
  write_report(a.out + "/report.html", rep);
  std::cout << "\n" << rep.paragraphs[0] << "\nwrote " << a.out << "/report.html" << std::endl;
  return 0;
}

}  // namespace

void add_demo_command(CLI::App& app, Runner& run) {
  auto a = std::make_shared<DemoArgs>();
  auto* cmd = app.add_subcommand("demo", "The main job: CE vs SupCon on Fashion-MNIST, table and report.html");
  add_data_options(cmd, a->data);
  cmd->add_option("--out", a->out, "Output directory")->capture_default_str();
  cmd->add_flag("--full", a->full, "Long schedule on the whole training set, with L_in and SimCLR too");
  cmd->add_option("--methods", a->methods,
                  "Comma-separated methods to run, in order (default ce,supcon; with --full all four)")
      ->delimiter(',');
  cmd->add_option("--epochs", a->epochs, "Override the budget's epochs");
  cmd->add_option("--width", a->width, "Override the encoder width");
  cmd->add_option("--batch-size", a->batch_size, "Override the batch size");
  cmd->add_option("--seed", a->seed, "Seed of every run")->capture_default_str();
  cmd->callback([a, &run] { run = [a] { return run_demo(*a); }; });
}

}  // namespace supcon::cli
