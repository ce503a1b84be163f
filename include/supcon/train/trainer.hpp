#pragma once
/// \file trainer.hpp
/// Trainer<T>: stage one of SupCon, and the cross-entropy baseline.
///
/// One step of a contrastive method (supcon, supcon-in, simclr):
///     x = two augmented views of B samples, view-major     (2B, C, H, W)
///     f = normalize(head(encoder(x)))                      (2B, feat_dim)
///     L = SupCon(f, labels) or SimCLR(f)                   tau = base tau = temperature
///     backward, optimizer step at lr(t), t = epoch + batch / batches
/// One step of ce: one augmented view, logits = fc(encoder(x)), L = CE(logits, y).
///
/// Position: (epoch, batch) of the next step; the loader's batches depend on
/// (seed, epoch, batch) alone and the schedule on t alone, so restoring the
/// model, the optimizer and the position from a checkpoint continues exactly
/// as an uninterrupted run would (same thread count: OpenMP reductions keep
/// their order for a fixed number of threads).
///
/// Data-parallel (DistOptions, docs/distributed.md): K ranks share each step
/// of cfg.batch_size samples; rank r loads positions [r B / K, (r+1) B / K)
/// of the batch one process would load, with the same views. The contrastive
/// loss is that of the global batch (dist::supcon_loss_global), batch norm
/// optionally uses the global statistics, and the parameter gradients are
/// summed over the ranks, so every rank takes the step one process would.
///
/// Step backends (StepBackend): the steps may run elsewhere (the GPU) while
/// the loop, the schedule, checkpoints and resuming stay here; the host model
/// and optimizer are brought up to date at the end of each run_epoch() and
/// in checkpoint(), and a restored checkpoint is loaded into the backend.

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "supcon/data/augment.hpp"
#include "supcon/data/loader.hpp"
#include "supcon/dist/global_loss.hpp"
#include "supcon/losses/cross_entropy.hpp"
#include "supcon/losses/simclr.hpp"
#include "supcon/losses/supcon_fused.hpp"
#include "supcon/models/classifier.hpp"
#include "supcon/models/supcon_model.hpp"
#include "supcon/optim/lars.hpp"
#include "supcon/optim/schedule.hpp"
#include "supcon/optim/sgd.hpp"
#include "supcon/train/checkpoint.hpp"
#include "supcon/train/config.hpp"

namespace supcon {

/// What the trainer says after each step.
struct StepReport {
  std::int64_t epoch = 0, batch = 0, batches = 0;  ///< the step just done: (epoch, batch) of batches
  double loss = 0;                                 ///< this step's loss
  double lr = 0;                                   ///< the rate it used
  double images_per_s = 0;                         ///< samples (not views) per second, this epoch so far
};

/// Summary of one finished epoch.
struct EpochReport {
  std::int64_t epoch = 0;  ///< 0-based
  double loss = 0;         ///< mean step loss over the epoch
  double lr = 0;           ///< rate of the epoch's last step
  double seconds = 0;      ///< wall time of the epoch's steps
  double images_per_s = 0;
};

/// How a Trainer shares its steps with other processes.
struct DistOptions {
  /// The K ranks training together (null: this process alone). Every rank
  /// builds its Trainer with the same configuration and data set.
  dist::Communicator* comm = nullptr;
  /// Batch norm normalises with the statistics of the global batch, as one
  /// process would; false: each rank its own part (cheaper, not equivalent).
  bool sync_batchnorm = true;
};

/// The loss options of a contrastive run: tau = base tau = cfg.temperature,
/// L_in for supcon-in, the defaults otherwise.
inline SupConOptions trainer_loss_options(const TrainConfig& cfg) {
  SupConOptions o;
  o.temperature = o.base_temperature = cfg.temperature;
  if (cfg.method == Method::supcon_in) o.summation = Summation::inside;
  return o;
}

/// Another place to run a Trainer's steps (the GPU: supcon/cuda/train_step.cuh).
/// The trainer keeps its loop, schedule, position, checkpoints and logs; the
/// backend keeps its own copy of the model and optimizer state, built from
/// the trainer's host ones. The host model and optimizer hold the backend's
/// state after every run_epoch() return and in every checkpoint().
template <class T>
class StepBackend {
 public:
  virtual ~StepBackend() = default;
  /// One optimisation step on `b` at rate `lr`, as Trainer's own step:
  /// zero the gradients, forward, the run's loss, backward, optimizer step.
  /// Returns the loss; a non-finite loss is returned before any update.
  virtual double step(const data::Batch<T>& b, double lr) = 0;
  /// Copies the backend's weights, running statistics and optimizer state
  /// into the host model and optimizer.
  virtual void store(Module<T>& model, Optimizer<T>& opt) = 0;
  /// Copies the host model's and optimizer's state into the backend.
  virtual void load(Module<T>& model, Optimizer<T>& opt) = 0;
};

/// The view pipeline of a run: `augment` with the run's crop scale, if set.
inline data::AugmentConfig training_views(data::AugmentConfig augment, const TrainConfig& cfg) {
  if (cfg.crop_scale_min > 0) augment.crop_scale_min = cfg.crop_scale_min;
  return augment;
}

template <class T>
class Trainer {
 public:
  /// `train` must outlive the trainer. `augment` is the view pipeline
  /// (cfg.crop_scale_min, when set, replaces its crop_scale_min).
  /// Throws ValueError for an invalid configuration or a data set whose
  /// images do not fit the encoder (channels) or whose classes exceed
  /// cfg.num_classes, and with K ranks when cfg.batch_size is not a multiple of K.
  Trainer(const TrainConfig& cfg, const data::Dataset& train, const data::AugmentConfig& augment,
          DistOptions dist = {})
      : cfg_((validate(cfg), cfg)),
        loader_(train, data::make_augment<T>(training_views(augment, cfg)),
                {cfg.batch_size, is_contrastive(cfg.method) ? 2 : 1, true, true, cfg.seed}),
        dist_(dist) {
    if (!dist_.comm) dist_.comm = &dist::local_communicator();
    const index_t K = dist_.comm->size();
    require(cfg.batch_size % K == 0, "--batch-size ", cfg.batch_size, " must be a multiple of the ", K,
            " ranks (each holds batch-size / ranks samples)");
    require(train.channels() == cfg.encoder.in_channels, "the data set has ", train.channels(),
            " channels but the encoder expects ", cfg.encoder.in_channels);
    require(train.num_classes() <= cfg.num_classes, "the data set has ", train.num_classes(),
            " classes, more than the configured ", cfg.num_classes);
    require(train.size() >= cfg.batch_size, "--batch-size ", cfg.batch_size,
            " is larger than the training set (", train.size(), " images)");
    Rng init(cfg.seed);
    if (is_contrastive(cfg.method)) {
      supcon_ = std::make_unique<SupConModel<T>>(cfg.encoder, cfg.head, cfg.feat_dim, init);
      model_ = supcon_.get();
    } else {
      ce_ = std::make_unique<CEModel<T>>(cfg.encoder, cfg.num_classes, init);
      model_ = ce_.get();
    }
    rng_ = init;
    if (cfg.optimizer == "lars")
      opt_ = std::make_unique<Lars<T>>(model_->parameter_list(),
                                       LarsOptions{cfg.lr, cfg.momentum, cfg.weight_decay, 0.001});
    else
      opt_ = std::make_unique<Sgd<T>>(model_->parameter_list(),
                                      SgdOptions{cfg.lr, cfg.momentum, 0, cfg.weight_decay, false, false});
    sched_.lr = cfg.lr;
    sched_.total = static_cast<double>(cfg.epochs);
    sched_.warmup = cfg.warmup_epochs();
    if (cfg.schedule == "step") {
      sched_.decay = LrDecay::step;
      sched_.milestones = {0.6 * cfg.epochs, 0.8 * cfg.epochs};
    }
    loss_opt_ = trainer_loss_options(cfg);
  }

  /// Runs the steps on `backend` from now on (null: back on the host, from
  /// the host state). One process only (ValueError with K ranks).
  void set_step_backend(std::unique_ptr<StepBackend<T>> backend) {
    require(!parallel() || !backend, "a step backend runs in one process, not with ", dist_.comm->size(), " ranks");
    sync_host();
    backend_ = std::move(backend);
  }
  StepBackend<T>* step_backend() { return backend_.get(); }

  const TrainConfig& config() const { return cfg_; }
  /// The ranks training together (a one-process communicator when alone).
  dist::Communicator& communicator() { return *dist_.comm; }
  Module<T>& model() { return *model_; }
  ResNet<T>& encoder() { return supcon_ ? supcon_->encoder() : ce_->encoder(); }
  /// The cross-entropy model (null for contrastive methods).
  CEModel<T>* ce_model() { return ce_.get(); }
  Optimizer<T>& optimizer() { return *opt_; }
  std::int64_t epoch() const { return epoch_; }
  std::int64_t batch() const { return batch_; }
  index_t batches_per_epoch() const { return loader_.num_batches(); }
  bool done() const { return epoch_ >= cfg_.epochs; }
  /// Learning rate of step (epoch, batch).
  double lr_of(std::int64_t epoch, std::int64_t batch) const {
    return lr_at(sched_, epoch_position(epoch, batch, batches_per_epoch()));
  }

  /// Runs the rest of the current epoch. Before each step it reads `stop`
  /// (may be null); when set, it returns false at once, leaving the position
  /// at the next step. Returns true when the epoch finished, and fills `out`.
  /// With K ranks every rank calls it, all with a flag or all without (the
  /// ranks agree on stopping through one all-reduce per step).
  bool run_epoch(const std::atomic<bool>* stop, const std::function<void(const StepReport&)>& on_step,
                 EpochReport& out) {
    require(!done(), "training already finished its ", cfg_.epochs, " epochs");
    loader_.set_epoch(epoch_);
    model_->set_training(true);
    const index_t nb = batches_per_epoch();
    while (batch_ < nb) {
      if (stop && stop_requested(*stop)) {
        sync_host();
        return false;
      }
      const auto t0 = std::chrono::steady_clock::now();
      StepReport r;
      r.epoch = epoch_;
      r.batch = batch_;
      r.batches = nb;
      r.lr = lr_of(epoch_, batch_);
      const data::Batch<T> b = loader_.batch(batch_, dist_.comm->rank(), dist_.comm->size());
      r.loss = backend_ ? backend_->step(b, r.lr) : step(b, r.lr);
      require_finite_loss(r.loss);
      const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
      loss_sum_ += r.loss;
      steps_in_epoch_ += 1;
      samples_ += static_cast<double>(cfg_.batch_size);
      seconds_ += dt.count();
      r.images_per_s = samples_ / std::max(seconds_, 1e-9);
      ++batch_;
      ++global_step_;
      if (on_step) on_step(r);
      last_lr_ = r.lr;
    }
    sync_host();
    out.epoch = epoch_;
    out.loss = loss_sum_ / std::max(1.0, steps_in_epoch_);
    out.lr = last_lr_;
    out.seconds = seconds_;
    out.images_per_s = samples_ / std::max(seconds_, 1e-9);
    ++epoch_;
    batch_ = 0;
    loss_sum_ = steps_in_epoch_ = samples_ = seconds_ = 0;
    return true;
  }

  /// A checkpoint of the current position, with `extra` config entries.
  Checkpoint checkpoint(std::map<std::string, std::string> extra = {}) {
    sync_host();
    std::map<std::string, std::string> cfg = to_strings(cfg_);
    cfg.insert(extra.begin(), extra.end());
    cfg["pos.batch"] = std::to_string(batch_);
    cfg["pos.loss_sum"] = detail::num_str(loss_sum_);
    cfg["pos.steps"] = detail::num_str(steps_in_epoch_);
    cfg["pos.samples"] = detail::num_str(samples_);
    cfg["pos.seconds"] = detail::num_str(seconds_);
    cfg["pos.last_lr"] = detail::num_str(last_lr_);
    return make_checkpoint(*model_, opt_.get(), epoch_, global_step_, rng_, std::move(cfg));
  }

  /// Continues from `ck`, which must come from a run with this configuration.
  /// Throws ValueError naming the first differing option, ShapeError / IoError
  /// for a checkpoint that does not fit.
  void restore(const Checkpoint& ck) {
    const std::string src = ck.source.empty() ? "checkpoint" : ck.source;
    for (const auto& [key, value] : to_strings(cfg_)) {
      const auto it = ck.config.find(key);
      require(it != ck.config.end() && it->second == value, src, ": was written with ", key, " = ",
              it == ck.config.end() ? std::string("(none)") : it->second, ", this run has ", value);
    }
    auto num = [&](const char* key) {
      const auto it = ck.config.find(key);
      require<IoError>(it != ck.config.end(), src, ": checkpoint lacks ", key);
      return std::stod(it->second);
    };
    const auto b = static_cast<std::int64_t>(num("pos.batch"));
    require<IoError>(ck.epoch >= 0 && ck.epoch <= cfg_.epochs && b >= 0 && b < batches_per_epoch(), src,
                     ": position (epoch ", ck.epoch, ", batch ", b, ") is outside this run");
    restore_module(ck, *model_);
    restore_optimizer(ck, *opt_);
    if (backend_) backend_->load(*model_, *opt_);
    rng_.set_state(ck.rng);
    epoch_ = ck.epoch;
    batch_ = b;
    global_step_ = ck.step;
    loss_sum_ = num("pos.loss_sum");
    steps_in_epoch_ = num("pos.steps");
    samples_ = num("pos.samples");
    seconds_ = num("pos.seconds");
    last_lr_ = num("pos.last_lr");
  }

 private:
  TrainConfig cfg_;
  data::Loader<T> loader_;
  DistOptions dist_;
  std::unique_ptr<SupConModel<T>> supcon_;
  std::unique_ptr<CEModel<T>> ce_;
  Module<T>* model_ = nullptr;
  std::unique_ptr<Optimizer<T>> opt_;
  LrSchedule sched_;
  SupConOptions loss_opt_;
  Rng rng_;
  std::unique_ptr<StepBackend<T>> backend_;
  std::int64_t epoch_ = 0, batch_ = 0, global_step_ = 0;
  double loss_sum_ = 0, steps_in_epoch_ = 0, samples_ = 0, seconds_ = 0, last_lr_ = 0;

  bool parallel() const { return dist_.comm->size() > 1; }

  // The host model and optimizer take the backend's state.
  void sync_host() {
    if (backend_) backend_->store(*model_, *opt_);
  }

  void require_finite_loss(double loss) const {
    require(std::isfinite(loss), "training diverged: the loss is ", loss, " at epoch ", epoch_ + 1, ", batch ",
            batch_ + 1, " (try a lower --lr)");
  }

  // Whether to stop now; with K ranks, whether any rank was asked to (so all
  // stop at the same step).
  bool stop_requested(const std::atomic<bool>& stop) {
    if (!parallel()) return stop.load();
    return dist_.comm->sum<std::int64_t>(stop.load() ? 1 : 0) > 0;
  }

  // One optimisation step on `b` (this rank's part of the batch) at rate `lr`; returns the loss.
  double step(const data::Batch<T>& b, double lr) {
    opt_->zero_grad();
    dist::Communicator& comm = *dist_.comm;
    // synchronised batch norm: per-channel sums all-reduced in forward and backward
    std::unique_ptr<BatchNormSyncScope> sync;
    if (parallel() && dist_.sync_batchnorm)
      sync = std::make_unique<BatchNormSyncScope>([&comm](double* d, index_t n) { comm.allreduce_sum(d, n); });
    const Tensor<T> out = model_->forward(b.images);
    LossResult<T> r;
    if (cfg_.method == Method::ce) {
      r = cross_entropy(out, b.labels);
      if (parallel()) {  // the mean over K equal parts is the mean of the global batch
        const T inv_k = T(1) / static_cast<T>(comm.size());
        r.value = comm.sum(r.value) * inv_k;
        for (T& g : r.grad) g *= inv_k;
      }
    } else if (parallel()) {
      r = cfg_.method == Method::simclr ? dist::simclr_loss_global(comm, out, b.views, loss_opt_)
                                        : dist::supcon_loss_global(comm, out, b.labels, loss_opt_);
    } else if (cfg_.method == Method::simclr) {
      r = simclr_loss(out, b.views, loss_opt_);
    } else {
      r = supcon_loss_fused(out, Pairing::from_labels(b.labels), loss_opt_);
    }
    require_finite_loss(static_cast<double>(r.value));
    model_->backward(r.grad);
    if (parallel()) sum_gradients();
    opt_->set_lr(lr);
    opt_->step();
    return static_cast<double>(r.value);
  }

  // Each rank's backward gave its part of dL/dtheta (the loss is global):
  // one all-reduce of every gradient, packed into one buffer.
  void sum_gradients() {
    const std::vector<Parameter<T>*> params = model_->parameter_list();
    std::size_t n = 0;
    for (const Parameter<T>* p : params) n += static_cast<std::size_t>(p->grad.size());
    grad_buf_.resize(n);
    T* at = grad_buf_.data();
    for (const Parameter<T>* p : params) at = std::copy(p->grad.begin(), p->grad.end(), at);
    dist_.comm->allreduce_sum(grad_buf_.data(), static_cast<index_t>(n));
    at = grad_buf_.data();
    for (Parameter<T>* p : params) {
      std::copy(at, at + p->grad.size(), p->grad.begin());
      at += p->grad.size();
    }
  }
  std::vector<T> grad_buf_;
};

}  // namespace supcon
