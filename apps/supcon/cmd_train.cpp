// supcon train: stage one (SupCon, L_in, SimCLR) or the cross-entropy
// baseline, in an output directory with a checkpoint every epoch, metrics
// as CSV/JSON, SVG curves; --resume continues exactly; Ctrl-C saves first.
// Under mpirun (built with MPI), the ranks train one model data-parallel
// with the global batch --batch-size (docs/distributed.md). --device cuda
// runs the steps on the GPU (docs/cuda.md, "GPU training").
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "train_steps.hpp"

#if SUPCON_WITH_MPI
#include <supcon/dist/mpi_communicator.hpp>
#endif

namespace supcon::cli {
namespace {

struct TrainArgs {
  DataArgs data;
  std::string method = "supcon", arch = "resnet18", head = "mlp", optimizer = "sgd",
              schedule = "cosine", device = "cpu", out;
  std::int64_t width = 16, epochs = 10, batch_size = 256, feat_dim = 128, monitor = 1000;
  double lr = 0.25, temperature = 0.1, crop_scale = 0, warmup = -1, weight_decay = 1e-4, momentum = 0.9;
  std::uint64_t seed = 0;
  bool resume = false;
  double dist_timeout = 600;
  bool no_sync_bn = false;
};

int run_train(const TrainArgs& a, dist::Communicator& comm) {
  apply_threads(a.data.threads);
  require_device(a.device);
  require(a.device == "cpu" || comm.size() == 1, "--device cuda trains in one process; this job has ", comm.size(),
          " ranks (run it without mpirun)");
  prepare_out_dir(a.out);
  TrainConfig cfg;
  DataArgs data = a.data;
  if (a.resume) {
    // The run continues as it was configured; the options given now are ignored.
    const Checkpoint ck = load_checkpoint(a.out + "/checkpoint.ckpt");
    cfg = train_config_from(ck.config, ck.source);
    data = data_args_from(ck);
    data.threads = a.data.threads;
  } else {
    cfg.method = parse_method(a.method);
    cfg.encoder.arch = a.arch;
    cfg.encoder.width = a.width;
    cfg.head = parse_head(a.head);
    cfg.feat_dim = a.feat_dim;
    cfg.epochs = a.epochs;
    cfg.batch_size = a.batch_size;
    cfg.optimizer = a.optimizer;
    cfg.lr = a.lr;
    cfg.momentum = a.momentum;
    cfg.weight_decay = a.weight_decay;
    cfg.schedule = a.schedule;
    cfg.warmup = a.warmup;
    cfg.temperature = a.temperature;
    require(a.crop_scale == 0 || (a.crop_scale > 0 && a.crop_scale <= 1),
            "--crop-scale must be in (0, 1], got ", a.crop_scale);
    cfg.crop_scale_min = a.crop_scale;
    cfg.seed = a.seed;
    require(a.data.train_subset >= 0, "--train-subset must be >= 0, got ", a.data.train_subset);
    require(a.monitor >= 0, "--monitor must be >= 0, got ", a.monitor);
  }
  const DataSource src = load_data_source(data.data, data.data_dir, data.train_subset);
  cfg.encoder.in_channels = src.train->channels();
  cfg.num_classes = src.train->num_classes();
  validate(cfg);
  // only rank 0 speaks; the others train silently
  std::ostringstream quiet;
  std::ostream& out = comm.is_root() ? std::cout : quiet;
  out << "training " << method_name(cfg.method) << ": " << cfg.encoder.arch << " width "
      << cfg.encoder.width << ", " << src.train->size() << " images of " << data.data << ", "
      << cfg.epochs << " epochs of batch " << cfg.batch_size << ", lr " << cfg.lr
      << (a.device == "cuda" ? ", on the GPU" : "");
  if (comm.size() > 1)
    out << ", " << comm.size() << " ranks of " << cfg.batch_size / comm.size() << " samples"
        << (a.no_sync_bn ? "" : ", synchronised batch norm");
  out << std::endl;
  DistOptions dist;
  dist.comm = &comm;
  dist.sync_batchnorm = !a.no_sync_bn;
  const TrainOutcome t = train_in_dir(cfg, data, src, a.out, a.resume, comm.is_root() ? a.monitor : 0,
                                      comm.is_root() ? std::cerr : quiet, dist, a.device);
  if (t.run.interrupted)
    return comm.is_root() ? report_interrupt(t, static_cast<std::int64_t>(src.train->size() / cfg.batch_size)) : 130;
  if (!comm.is_root()) return 0;
  std::cout << "done: " << t.run.epochs_done << " epochs, final loss " << t.run.last_loss << ", "
            << static_cast<long long>(t.run.images_per_s) << " images/s, "
            << format_duration(t.run.wall_seconds) << "; checkpoint " << t.checkpoint << std::endl;
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, Runner& run) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train an encoder: SupCon (L_out, L_in), SimCLR or cross-entropy");
  add_data_options(cmd, a->data);
  cmd->add_option("--method", a->method, "supcon, supcon-in, simclr or ce")
      ->check(CLI::IsMember({"supcon", "supcon-in", "simclr", "ce"}))->capture_default_str();
  cmd->add_option("--arch", a->arch, "resnet18, resnet34, resnet50 or resnet101")->capture_default_str();
  cmd->add_option("--width", a->width, "Channels of the first stage")->capture_default_str();
  cmd->add_option("--head", a->head, "Projection head: mlp or linear")->capture_default_str();
  cmd->add_option("--feat-dim", a->feat_dim, "Output dimension of the head")->capture_default_str();
  cmd->add_option("--epochs", a->epochs, "Epochs")->capture_default_str();
  cmd->add_option("--batch-size", a->batch_size, "Samples per step (contrastive: 2 views each)")->capture_default_str();
  cmd->add_option("--lr", a->lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--optimizer", a->optimizer, "sgd or lars")->capture_default_str();
  cmd->add_option("--schedule", a->schedule, "cosine or step")->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "Epochs of linear warm-up (default: 5% of --epochs)");
  cmd->add_option("--temperature", a->temperature, "Temperature (= base temperature)")->capture_default_str();
  cmd->add_option("--crop-scale", a->crop_scale,
                  "Smallest area fraction of the random resized crop, in (0, 1] (default: the data set's, 0.2)");
  cmd->add_option("--weight-decay", a->weight_decay, "Weight decay")->capture_default_str();
  cmd->add_option("--momentum", a->momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--seed", a->seed, "Seed of the initialisation, order and augmentation")->capture_default_str();
  cmd->add_option("--monitor", a->monitor, "Test images of the per-epoch kNN monitor (0 = off)")->capture_default_str();
  cmd->add_option("--out", a->out, "Output directory")->required();
  cmd->add_flag("--resume", a->resume, "Continue the run in --out from its checkpoint");
  cmd->add_option("--device", a->device,
                  "cpu or cuda: where the steps run (not stored in the checkpoint: a run resumes on either)")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  cmd->add_option("--dist-timeout", a->dist_timeout,
                  "Under mpirun: seconds a rank waits for the others before ending the job (0 = forever)")
      ->capture_default_str();
  cmd->add_flag("--no-sync-bn", a->no_sync_bn, "Under mpirun: batch norm on each rank's part of the batch only");
  cmd->callback([a, &run] {
    run = [a] {
#if SUPCON_WITH_MPI
      if (dist::launched_by_mpi()) {
        dist::MpiCommunicator comm(a->dist_timeout);
        try {
          return run_train(*a, comm);
        } catch (const std::exception& e) {
          if (comm.size() == 1) throw;
          comm.abort(1, e.what());  // the other ranks may wait in a collective: end them too
        }
      }
#endif
      return run_train(*a, dist::local_communicator());
    };
  });
}

}  // namespace supcon::cli
