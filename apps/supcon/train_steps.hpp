#pragma once
// The steps of the main job, as functions that `train`, `linear`, `eval`,
// `embed` and `demo` put together: train in a directory (resuming what is
// there), probe an encoder linearly, evaluate with kNN, draw an embedding.
#include <iostream>
#include <string>

#include "train_cli.hpp"
#include "train_cuda.hpp"

namespace supcon::cli {

/// How a training step went.
struct TrainOutcome {
  RunResult run;
  std::string checkpoint;
};

/// Trains `cfg` on `src` in `out_dir`. With `resume`, continues from
/// out_dir/checkpoint.ckpt (whose configuration must equal cfg; a finished
/// checkpoint returns at once). `monitor` > 0 measures kNN accuracy of
/// `monitor` test images against 2x as many training images after each epoch.
/// `dist` shares the steps with other ranks (rank 0 writes the files).
/// `device` "cuda" runs the steps on the GPU (one process); the checkpoint
/// does not record it, so a run resumes on either device.
inline TrainOutcome train_in_dir(const TrainConfig& cfg, const DataArgs& data, const DataSource& src,
                                 const std::string& out_dir, bool resume, index_t monitor,
                                 std::ostream& log, DistOptions dist = {}, const std::string& device = "cpu") {
  prepare_out_dir(out_dir);
  Trainer<float> tr(cfg, *src.train, src.augment, dist);
  if (device == "cuda") use_cuda(tr);
  Checkpoint ck;
  RunOptions opt;
  opt.out_dir = out_dir;
  if (resume) {
    ck = load_checkpoint(out_dir + "/checkpoint.ckpt");
    opt.resume_from = &ck;
  }
  std::unique_ptr<data::InMemoryDataset> bank, queries;
  if (monitor > 0) {
    bank = std::make_unique<data::InMemoryDataset>(data::head(*src.train, 2 * monitor));
    queries = std::make_unique<data::InMemoryDataset>(data::head(*src.test, monitor));
    opt.monitor_bank = bank.get();
    opt.monitor_queries = queries.get();
  }
  opt.augment = src.augment;
  opt.stop = &interrupt_flag();
  opt.progress = &log;
  opt.live = ::isatty(STDERR_FILENO) && &log == &std::cerr;
  opt.config = data_strings(data);
  install_interrupt_handler();
  TrainOutcome out;
  out.run = train_run(tr, opt);
  out.checkpoint = out.run.checkpoint;
  return out;
}

/// One line for an interrupted run; the caller exits with status 130.
inline int report_interrupt(const TrainOutcome& t, std::int64_t batches) {
  std::cerr << "supcon: interrupted at epoch " << t.run.epochs_done + 1 << ", batch " << t.run.batch
            << " of " << batches << "; checkpoint saved to " << t.checkpoint
            << " (rerun with --resume to continue)\n";
  return 130;
}

/// Result of evaluating one encoder.
struct EvalOutcome {
  ClassificationMetrics classifier;  ///< linear probe (contrastive) or CE head
  ClassificationMetrics probe;       ///< linear probe (for CE too: same protocol for every encoder)
  ClassificationMetrics knn;         ///< weighted kNN, top-1 only
  double seconds = 0;
};

/// Evaluates `m` on `src.test`: its classifier (the CE head of a CE model,
/// else the linear probe), the linear probe (loaded from `probe_path` when
/// given, else trained here on `src.train` with `popt` and written to
/// `probe_out` when not empty), and kNN with the training features as bank.
inline EvalOutcome evaluate_model(LoadedModel& m, const DataSource& src, const ProbeOptions& popt,
                                  const std::string& probe_path, const std::string& probe_out,
                                  std::ostream& log) {
  const auto t0 = std::chrono::steady_clock::now();
  EvalOutcome out;
  log << "extracting features of " << src.train->size() << " training and " << src.test->size()
      << " test images\n";
  const FeatureSet<float> train = extract_features(m.encoder(), *src.train, src.augment);
  const FeatureSet<float> test = extract_features(m.encoder(), *src.test, src.augment);
  const index_t classes = m.cfg.num_classes;
  if (m.ce) {
    m.ce->set_training(false);
    const data::Loader<float> loader(*src.test, data::make_augment<float>(src.augment.deterministic()),
                                     {256, 1, false, false, 0});
    Tensor<float> logits({src.test->size(), classes});
    index_t row = 0;
    for (index_t b = 0; b < loader.num_batches(); ++b) {
      const data::Batch<float> batch = loader.batch(b);
      const Tensor<float> z = m.ce->forward(batch.images);
      std::copy(z.begin(), z.end(), logits.data() + row * classes);
      row += batch.batch_size();
    }
    out.classifier = classification_metrics(logits, test.labels);
  }
  LinearProbe<float> probe = probe_path.empty()
                                 ? train_linear_probe(train, classes, popt)
                                 : load_probe(probe_path, m.encoder().feature_dim(), classes);
  if (!probe_out.empty()) save_checkpoint(probe_out, probe_checkpoint(probe));
  out.probe = classification_metrics(probe.logits(test.features), test.labels);
  if (!m.ce) out.classifier = out.probe;
  out.knn = prediction_metrics(knn_predict(train.features, train.labels, test.features, classes),
                               test.labels, classes);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

/// PCA of the encoder features of the first `samples` test images, drawn to `svg_path`.
inline void embed_to_svg(LoadedModel& m, const DataSource& src, index_t samples,
                         const std::string& svg_path, const std::string& title) {
  const data::InMemoryDataset sub = data::head(*src.test, samples);
  const FeatureSet<float> f = extract_features(m.encoder(), sub, src.augment);
  const Pca p = pca(l2_normalized_rows(f.features), 2);
  embedding_plot(p.projected, f.labels, title, class_names(src.name)).save(svg_path);
}

}  // namespace supcon::cli
