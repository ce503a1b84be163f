#pragma once
// What `supcon train`, `linear`, `eval`, `embed` and `demo` share: the
// training options, the output directory, rebuilding a model from its
// checkpoint, and evaluating an encoder (linear probe or CE head, and kNN).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>

#include <CLI/CLI.hpp>
#include <supcon/config.hpp>
#include <supcon/train/data_source.hpp>
#include <supcon/train/embedding.hpp>
#include <supcon/train/interrupt.hpp>
#include <supcon/train/metrics.hpp>
#include <supcon/train/report.hpp>
#include <supcon/train/train_run.hpp>

namespace supcon::cli {

/// Options of the data and the machine, shared by every training command.
struct DataArgs {
  std::string data = "fashion-mnist";
  std::string data_dir;
  std::int64_t train_subset = 0;
  int threads = 0;
};

inline void add_data_options(CLI::App* cmd, DataArgs& a) {
  cmd->add_option("--data", a.data, "fashion-mnist, mnist, cifar10, cifar100 or folder:PATH")
      ->capture_default_str();
  cmd->add_option("--data-dir", a.data_dir,
                  "Folder of the data files (default for fashion-mnist: /usr/share/datasets/fashion-mnist)");
  cmd->add_option("--train-subset", a.train_subset, "Use only the first N training images (0 = all)")
      ->capture_default_str();
  cmd->add_option("--threads", a.threads, "OpenMP threads (0 = OMP_NUM_THREADS or all cores)")
      ->capture_default_str();
}

inline void apply_threads(int threads) {
  require(threads >= 0, "--threads must be >= 0, got ", threads);
#if SUPCON_HAS_OPENMP
  if (threads > 0) omp_set_num_threads(threads);
#endif
}

/// Creates `dir` (and parents) and checks that a file can be written there.
inline void prepare_out_dir(const std::string& dir) {
  require(!dir.empty(), "--out must name a directory");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  require<IoError>(!ec, "--out ", dir, ": cannot create the directory: ", ec.message());
  require<IoError>(::access(dir.c_str(), W_OK) == 0, "--out ", dir, ": the directory is not writable");
}

/// The data of a run, as stored in (and read back from) its checkpoint.
inline std::map<std::string, std::string> data_strings(const DataArgs& a) {
  return {{"data.name", a.data}, {"data.dir", a.data_dir},
          {"data.train_subset", std::to_string(a.train_subset)}};
}
inline DataArgs data_args_from(const Checkpoint& ck) {
  auto get = [&](const char* key) {
    const auto it = ck.config.find(key);
    require<IoError>(it != ck.config.end(), ck.source, ": checkpoint lacks ", key);
    return it->second;
  };
  DataArgs a;
  a.data = get("data.name");
  a.data_dir = get("data.dir");
  a.train_subset = std::stoll(get("data.train_subset"));
  return a;
}

/// The ten Fashion-MNIST classes, for tables and legends.
inline std::vector<std::string> class_names(const std::string& data) {
  if (data == "fashion-mnist")
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  return {};
}

/// A model rebuilt from a checkpoint, with its encoder.
struct LoadedModel {
  TrainConfig cfg;
  DataArgs data;
  std::unique_ptr<SupConModel<float>> supcon;
  std::unique_ptr<CEModel<float>> ce;
  ResNet<float>& encoder() { return supcon ? supcon->encoder() : ce->encoder(); }
};

inline LoadedModel load_model(const std::string& path) {
  const Checkpoint ck = load_checkpoint(path);
  LoadedModel m;
  m.cfg = train_config_from(ck.config, path);
  m.data = data_args_from(ck);
  Rng rng(0);
  if (is_contrastive(m.cfg.method)) {
    m.supcon = std::make_unique<SupConModel<float>>(m.cfg.encoder, m.cfg.head, m.cfg.feat_dim, rng);
    restore_module(ck, *m.supcon);
  } else {
    m.ce = std::make_unique<CEModel<float>>(m.cfg.encoder, m.cfg.num_classes, rng);
    restore_module(ck, *m.ce);
  }
  m.encoder().set_training(false);
  return m;
}

/// Accuracy as a percentage with two decimals.
inline std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", 100 * v);
  return b;
}

/// Human-readable metrics: overall, per class, confusion matrix.
inline void print_metrics(std::ostream& out, const std::string& what, const ClassificationMetrics& m,
                          const std::vector<std::string>& names, bool with_top5) {
  out << what << ": top-1 " << pct(m.top1) << "%";
  if (with_top5) out << ", top-5 " << pct(m.top5) << "%";
  out << " on " << m.samples << " test images\n  per class:";
  for (index_t c = 0; c < m.classes; ++c)
    out << "  " << (static_cast<std::size_t>(c) < names.size() ? names[static_cast<std::size_t>(c)] : std::to_string(c))
        << " " << pct(m.per_class[static_cast<std::size_t>(c)]);
  out << "\n  confusion matrix (rows: true class, columns: predicted):\n";
  for (index_t t = 0; t < m.classes; ++t) {
    out << "   ";
    for (index_t p = 0; p < m.classes; ++p) {
      char b[16];
      std::snprintf(b, sizeof b, " %5lld", static_cast<long long>(m.confusion[static_cast<std::size_t>(t * m.classes + p)]));
      out << b;
    }
    out << "\n";
  }
}

/// Metrics as a JSON object.
inline std::string metrics_json(const ClassificationMetrics& m) {
  std::string s = "{\"samples\": " + std::to_string(m.samples) + ", \"top1\": " + std::to_string(m.top1) +
                  ", \"top5\": " + std::to_string(m.top5) + ", \"per_class\": [";
  for (std::size_t c = 0; c < m.per_class.size(); ++c) s += (c ? ", " : "") + std::to_string(m.per_class[c]);
  s += "], \"confusion\": [";
  for (index_t t = 0; t < m.classes; ++t) {
    s += t ? ", [" : "[";
    for (index_t p = 0; p < m.classes; ++p)
      s += (p ? ", " : "") + std::to_string(m.confusion[static_cast<std::size_t>(t * m.classes + p)]);
    s += "]";
  }
  return s + "]}";
}

/// A trained probe as a checkpoint (classifier state plus the standardisation).
inline Checkpoint probe_checkpoint(LinearProbe<float>& p) {
  Rng none(1);
  Checkpoint ck = make_checkpoint<float>(p.classifier, nullptr, 0, 0, none, {{"kind", "linear-probe"}});
  const index_t d = static_cast<index_t>(p.mean.size());
  if (d > 0) {
    ck.model.push_back(to_checkpoint_tensor("probe.mean", Tensor<float>({d}, p.mean)));
    ck.model.push_back(to_checkpoint_tensor("probe.inv_std", Tensor<float>({d}, p.inv_std)));
  }
  return ck;
}

inline LinearProbe<float> load_probe(const std::string& path, index_t dim, index_t classes) {
  Checkpoint ck = load_checkpoint(path);
  const auto kind = ck.config.find("kind");
  require<IoError>(kind != ck.config.end() && kind->second == "linear-probe", path,
                   ": not a linear-probe checkpoint (write one with `supcon linear --out DIR`)");
  Rng rng(0);
  LinearProbe<float> p{LinearClassifier<float>(dim, classes, rng), {}, {}, {}};
  std::vector<CheckpointTensor> stats;
  for (auto it = ck.model.begin(); it != ck.model.end();)
    if (it->name.rfind("probe.", 0) == 0) stats.push_back(*it), it = ck.model.erase(it);
    else ++it;
  restore_module(ck, p.classifier);
  for (const CheckpointTensor& t : stats) {
    require<ShapeError>(t.shape == Shape{dim}, path, ": ", t.name, " has shape ", shape_str(t.shape),
                        ", expected (", dim, ",)");
    const Tensor<float> v = from_checkpoint_tensor<float>(t);
    (t.name == "probe.mean" ? p.mean : p.inv_std).assign(v.begin(), v.end());
  }
  require<IoError>(p.mean.size() == p.inv_std.size(), path, ": incomplete standardisation");
  return p;
}

}  // namespace supcon::cli
