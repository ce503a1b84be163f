#pragma once
/// \file train_run.hpp
/// A training run that lives in an output directory: the epoch loop of a
/// Trainer with everything a long job needs around it.
///
/// After every epoch, and when stopped by the flag (Ctrl-C), it writes, each
/// file atomically so an interruption never loses what was written before:
///   checkpoint.ckpt     model, optimizer, position, configuration, the log
///   metrics.csv/.json   one row per epoch: loss, lr, seconds, images/s, and
///                       the kNN accuracy of a small monitor set when given
///   loss.svg, lr.svg, knn.svg   the training curves
/// A run resumed from its checkpoint ends with the weights of an
/// uninterrupted run (see trainer.hpp) and the same log.
///
/// With K ranks (the trainer's communicator) only rank 0 writes files; every
/// rank runs the same loop, and a checkpoint resumes only with the same K.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <ostream>
#include <string>

#include "supcon/train/knn.hpp"
#include "supcon/train/linear_probe.hpp"
#include "supcon/train/metrics_log.hpp"
#include "supcon/train/progress.hpp"
#include "supcon/train/trainer.hpp"

namespace supcon {

/// Options of train_run.
struct RunOptions {
  std::string out_dir;                      ///< must exist and be writable
  const Checkpoint* resume_from = nullptr;  ///< continue from this checkpoint
  const std::atomic<bool>* stop = nullptr;  ///< checked before every step
  std::ostream* progress = nullptr;         ///< progress bar and epoch lines; null = quiet
  bool live = false;                        ///< redraw the bar in place (a terminal)
  /// kNN monitor after each epoch: bank = `monitor_bank`, queries =
  /// `monitor_queries` (both small subsets, un-augmented); null = none.
  const data::Dataset* monitor_bank = nullptr;
  const data::Dataset* monitor_queries = nullptr;
  data::AugmentConfig augment;                  ///< its deterministic part feeds the monitor
  std::map<std::string, std::string> config;  ///< extra entries stored in the checkpoint
};

/// What a run ended with.
struct RunResult {
  bool finished = false;      ///< every epoch done
  bool interrupted = false;   ///< stopped by the flag (a checkpoint was saved)
  std::int64_t epochs_done = 0;
  std::int64_t batch = 0;     ///< next batch of the current epoch when interrupted
  double last_loss = 0;       ///< mean loss of the last finished epoch
  double images_per_s = 0;    ///< over the epochs run in this call
  double wall_seconds = 0;    ///< of this call
  std::string checkpoint;     ///< path of the checkpoint written last
};

/// The columns of a run's metrics log.
inline std::vector<std::string> run_log_columns() {
  return {"epoch", "loss", "lr", "seconds", "images_per_s", "knn_monitor"};
}

/// Writes metrics.{csv,json} and the curves of `log` into `dir`.
inline void save_run_logs(const MetricsLog& log, const std::string& dir) {
  log.save(dir + "/metrics");
  if (log.size() == 0) return;
  log.plot("training loss", {"loss"}, "loss").save(dir + "/loss.svg");
  log.plot("learning rate (end of epoch)", {"lr"}, "lr").save(dir + "/lr.svg");
  if (log.has_values("knn_monitor"))
    log.plot("kNN accuracy on the monitor set", {"knn_monitor"}, "accuracy").save(dir + "/knn.svg");
}

/// kNN accuracy (k = 200, tau = 0.1) of the encoder on `queries` against `bank`.
template <class T>
double knn_accuracy(ResNet<T>& encoder, const data::Dataset& bank, const data::Dataset& queries,
                    const data::AugmentConfig& augment, index_t classes) {
  const FeatureSet<T> b = extract_features(encoder, bank, augment);
  const FeatureSet<T> q = extract_features(encoder, queries, augment);
  const std::vector<std::int64_t> pred = knn_predict(b.features, b.labels, q.features, classes);
  index_t hit = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) hit += pred[i] == q.labels[i];
  return static_cast<double>(hit) / static_cast<double>(pred.size());
}

/// Runs `tr` to the end of its epochs or until opt.stop is set.
template <class T>
RunResult train_run(Trainer<T>& tr, const RunOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  MetricsLog log(run_log_columns());
  RunResult res;
  res.checkpoint = opt.out_dir + "/checkpoint.ckpt";
  const bool root = tr.communicator().is_root();
  const std::string ranks = std::to_string(tr.communicator().size());
  if (opt.resume_from) {
    const auto k = opt.resume_from->config.find("dist.ranks");
    const std::string was = k == opt.resume_from->config.end() ? "1" : k->second;
    require(was == ranks, opt.resume_from->source, ": was written by a run of ", was,
            " rank(s), this run has ", ranks, "; resume with the same number of ranks (mpirun -np ", was, ")");
    tr.restore(*opt.resume_from);
    const auto it = opt.resume_from->config.find("log.csv");
    require<IoError>(it != opt.resume_from->config.end(), opt.resume_from->source,
                     ": checkpoint has no metrics log");
    log.load_csv(it->second, opt.resume_from->source);
    if (log.size() > 0) res.last_loss = log.column("loss").back();
  }
  auto save = [&] {
    if (!root) return;
    std::map<std::string, std::string> extra = opt.config;
    extra["log.csv"] = log.csv();
    extra["dist.ranks"] = ranks;
    save_checkpoint(res.checkpoint, tr.checkpoint(extra));
    save_run_logs(log, opt.out_dir);
  };
  double samples = 0, seconds = 0;
  const index_t nb = tr.batches_per_epoch();
  const TrainConfig& cfg = tr.config();
  while (!tr.done()) {
    const std::int64_t e = tr.epoch();
    std::ostream* progress = root ? opt.progress : nullptr;  // one bar per job, rank 0's
    ProgressBar bar(progress ? *progress : std::cerr, nb,
                    "epoch " + std::to_string(e + 1) + "/" + std::to_string(cfg.epochs), opt.live);
    auto on_step = [&](const StepReport& r) {
      if (!progress) return;
      char loss[32], lr[32], ips[32];
      std::snprintf(loss, sizeof loss, "%.4f", r.loss);
      std::snprintf(lr, sizeof lr, "%.4g", r.lr);
      std::snprintf(ips, sizeof ips, "%.0f", r.images_per_s);
      bar.update(r.batch + 1, {{"loss", loss}, {"lr", lr}, {"img/s", ips}});
    };
    EpochReport rep;
    if (!tr.run_epoch(opt.stop, on_step, rep)) {
      save();
      res.interrupted = true;
      break;
    }
    samples += static_cast<double>(nb * cfg.batch_size);
    seconds += rep.seconds;
    std::map<std::string, double> row = {{"epoch", static_cast<double>(e + 1)},
                                         {"loss", rep.loss},
                                         {"lr", rep.lr},
                                         {"seconds", rep.seconds},
                                         {"images_per_s", rep.images_per_s}};
    if (root && opt.monitor_bank && opt.monitor_queries) {
      row["knn_monitor"] = knn_accuracy(tr.encoder(), *opt.monitor_bank, *opt.monitor_queries,
                                        opt.augment, cfg.num_classes);
      tr.model().set_training(true);
    }
    log.add(row);
    res.last_loss = rep.loss;
    save();
  }
  res.finished = tr.done();
  res.epochs_done = tr.epoch();
  res.batch = tr.batch();
  res.images_per_s = seconds > 0 ? samples / seconds : 0;
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace supcon
