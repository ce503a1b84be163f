// The host side of GPU training, on the CPU: the new kernels' arithmetic
// (supcon/cuda/train_math.cuh: max pooling, L2 normalisation, LARS) run over
// the kernels' grids and compared with ops/ and optim/, their shape checks
// (train_shapes.cuh), and the trainer's step seam (StepBackend) the GPU step
// plugs into, exercised by a backend that runs the step on a second CPU copy
// of the model. No GPU needed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <vector>

#include <supcon/core/rng.hpp>
#include <supcon/cuda/layer_math.cuh>
#include <supcon/cuda/train_math.cuh>
#include <supcon/cuda/train_shapes.cuh>
#include <supcon/ops/normalize.hpp>
#include <supcon/ops/pool.hpp>
#include <supcon/optim/lars.hpp>
#include <supcon/train/trainer.hpp>

#include "cuda_layers_common.hpp"
#include "cuda_train_common.hpp"

using namespace supcon;
using cuda_layers_test::random_tensor;
using cuda_train_test::halves;
using cuda_train_test::small_augment;
using cuda_train_test::tiny;

namespace {

double max_abs_diff(const Tensor<double>& a, const Tensor<double>& b) {
  REQUIRE(a.shape() == b.shape());
  double d = 0;
  for (index_t k = 0; k < a.size(); ++k) d = std::max(d, std::abs(a[k] - b[k]));
  return d;
}

// The host emulation of maxpool_forward_kernel / maxpool_backward_kernel.
void emulate_maxpool(const Tensor<double>& x, const Tensor<double>& dy, const cuda::PoolGeom& g, Tensor<double>& y,
                     Tensor<double>& dx) {
  const index_t P = g.OH * g.OW;
  y.resize({x.dim(0), x.dim(1), g.OH, g.OW});
  std::vector<std::int64_t> argmax(static_cast<std::size_t>(y.size()));
  for (index_t k = 0; k < y.size(); ++k) {  // one thread per output
    const index_t nc = k / P, oh = (k / g.OW) % g.OH, ow = k % g.OW;
    const double* plane = x.data() + nc * g.H * g.W;
    argmax[static_cast<std::size_t>(k)] = cuda::maxpool_argmax(plane, g, oh, ow);
    y[k] = plane[argmax[static_cast<std::size_t>(k)]];
  }
  dx.resize(x.shape());
  for (index_t k = 0; k < x.size(); ++k) {  // one thread per input pixel
    const index_t nc = k / (g.H * g.W), h = (k / g.W) % g.H, w = k % g.W;
    dx[k] = cuda::maxpool_grad_entry(dy.data() + nc * P, argmax.data() + nc * P, g, h, w);
  }
}

// The one-block reduction of lars_norms_kernel: thread t pushes entries t,
// t + threads, ...; then the tree.
cuda::Sums2 emulate_lars_norms(const Tensor<double>& w, const Tensor<double>& g, double wd) {
  std::vector<cuda::Sums2> part(cuda::kReduceThreads, cuda::sums_empty());
  for (int t = 0; t < cuda::kReduceThreads; ++t)
    for (index_t k = t; k < w.size(); k += cuda::kReduceThreads) cuda::lars_norms_push(part[t], w[k], g[k], wd);
  for (int half = cuda::kReduceThreads / 2; half > 0; half /= 2)
    for (int t = 0; t < half; ++t) cuda::sums_merge(part[t], part[t + half]);
  return part[0];
}

}  // namespace

TEST_CASE("The max-pooling kernels' arithmetic equals ops/pool.hpp bit for bit, ties and NaN included") {
  struct Case {
    index_t N, C, H, W, K, s, p;
  };
  for (const Case& c : {Case{2, 3, 9, 7, 3, 2, 1}, Case{1, 2, 8, 8, 3, 2, 1}, Case{2, 1, 6, 5, 2, 2, 0},
                        Case{1, 2, 7, 7, 3, 1, 1}, Case{1, 1, 5, 6, 5, 3, 2}}) {
    CAPTURE(c.H, c.W, c.K, c.s, c.p);
    Tensor<double> x = random_tensor<double>({c.N, c.C, c.H, c.W}, 3);
    for (double& v : x) v = std::max(v, 0.0);  // ReLU'd input: many windows tie at 0
    if (c.H == 8) x[5] = std::nan("");         // a NaN wins its windows
    Tensor<double> y, dx, gy, gdx;
    std::vector<index_t> argmax;
    ops::maxpool2d_forward(x, c.K, c.s, c.p, y, argmax);
    const Tensor<double> dy = random_tensor<double>(y.shape(), 4);
    ops::maxpool2d_backward(dy, argmax, x.shape(), dx);
    emulate_maxpool(x, dy, cuda::maxpool_geometry(x.shape(), c.K, c.s, c.p, "test"), gy, gdx);
    for (index_t k = 0; k < y.size(); ++k) CHECK(((std::isnan(y[k]) && std::isnan(gy[k])) || y[k] == gy[k]));
    CHECK(max_abs_diff(gdx, dx) == 0);  // same additions in the same order
  }
}

TEST_CASE("The L2-normalisation rows equal ops/normalize.hpp, forward and backward, rows below eps included") {
  Tensor<double> x = random_tensor<double>({5, 7}, 5);
  for (index_t d = 0; d < 7; ++d) x(3, d) = 1e-14;  // ||x|| < eps: divided by eps
  const double eps = 1e-12;
  Tensor<double> y, norms, dx;
  ops::l2_normalize_forward(x, eps, y, norms);
  const Tensor<double> dy = random_tensor<double>({5, 7}, 6);
  ops::l2_normalize_backward(dy, y, norms, eps, dx);
  Tensor<double> gy({5, 7}), gdx({5, 7});
  for (index_t n = 0; n < 5; ++n) {  // one thread per row
    const double norm = cuda::l2_normalize_row(x.data() + n * 7, 7, eps, gy.data() + n * 7);
    CHECK(norm == Approx(norms[n]).epsilon(1e-14));
    cuda::l2_normalize_grad_row(dy.data() + n * 7, gy.data() + n * 7, norm, eps, 7, gdx.data() + n * 7);
  }
  CHECK(max_abs_diff(gy, y) < 1e-14);
  // relative: the short row's gradient is dy / eps, of order 1e12
  for (index_t k = 0; k < dx.size(); ++k) CHECK(gdx[k] == Approx(dx[k]).epsilon(1e-12).margin(1e-14));
}

TEST_CASE("The LARS kernels' arithmetic follows optim/lars.hpp over several steps, decayed or not") {
  LarsOptions o;
  o.lr = 0.3;
  o.momentum = 0.9;
  o.weight_decay = 1e-3;
  o.trust_coefficient = 0.01;
  Parameter<double> w({300}), b({4}, false), z({3});  // 300 > one block's 256 threads; z stays 0
  w.value = random_tensor<double>({300}, 1);
  b.value = random_tensor<double>({4}, 2);
  Lars<double> lars({&w, &b, &z}, o);
  std::vector<Tensor<double>> value{w.value, b.value, z.value}, vel{Tensor<double>({300}), Tensor<double>({4}),
                                                                      Tensor<double>({3})};
  const std::vector<Parameter<double>*> ps{&w, &b, &z};
  for (int step = 0; step < 4; ++step) {
    for (std::size_t i = 0; i < ps.size(); ++i) ps[i]->grad = random_tensor<double>(ps[i]->value.shape(), 10 + step);
    const double lr = 0.3 * (step + 1) / 4;
    lars.set_lr(lr);
    for (std::size_t i = 0; i < ps.size(); ++i) {
      // lars_norms_kernel on the emulated value, then lars_step_kernel entry by entry
      const cuda::Sums2 s = emulate_lars_norms(value[i], ps[i]->grad, o.weight_decay);
      const bool decay = ps[i]->decay;
      CHECK(cuda::lars_trust_ratio(s, decay, o.trust_coefficient) == Approx(lars.trust_ratio(i)).epsilon(1e-13));
      const double scaled = lr * cuda::lars_trust_ratio(s, decay, o.trust_coefficient);
      for (index_t k = 0; k < value[i].size(); ++k)
        cuda::lars_update(value[i][k], ps[i]->grad[k], vel[i][k], o.momentum, decay ? o.weight_decay : 0.0, scaled);
    }
    lars.step();
    for (std::size_t i = 0; i < ps.size(); ++i) CHECK(max_abs_diff(value[i], ps[i]->value) < 1e-14);
  }
}

TEST_CASE("The GPU training ops' shape checks name the op and the argument, without a GPU") {
  CHECK_THROWS_WITH(cuda::maxpool_geometry({2, 3, 8}, 3, 2, 1, "cuda::maxpool"),
                    Catch::Contains("cuda::maxpool: x must be (N, C, H, W)"));
  CHECK_THROWS_AS(cuda::maxpool_geometry({2, 3, 8, 8}, 3, 2, 2, "cuda::maxpool"), ValueError);
  CHECK_THROWS_WITH(cuda::maxpool_geometry({2, 3, 8, 8}, 3, 0, 1, "cuda::maxpool"), Catch::Contains("stride"));
  CHECK_THROWS_AS(cuda::maxpool_geometry({1, 1, 1, 1}, 5, 1, 1, "cuda::maxpool"), ShapeError);
  CHECK_THROWS_WITH(cuda::l2_normalize_check({4}, 1e-12, "cuda::l2_normalize"),
                    Catch::Contains("cuda::l2_normalize: x must be (N, D)"));
  CHECK_THROWS_WITH(cuda::l2_normalize_check({4, 3}, 0.0, "cuda::l2_normalize"), Catch::Contains("eps"));
}

namespace {

std::vector<double> weights(Module<double>& m) {
  std::vector<NamedTensor<double>> s;
  m.state("", s);
  std::vector<double> w;
  for (const auto& nt : s) w.insert(w.end(), nt.tensor->begin(), nt.tensor->end());
  return w;
}

// A step backend that is the trainer's step on a second host copy of the
// model and optimizer, made from another seed and then loaded from the
// trainer's: the GPU step's contract without a GPU.
class MirrorBackend : public StepBackend<double> {
 public:
  MirrorBackend(const TrainConfig& cfg, Module<double>& model, Optimizer<double>& opt) : cfg_(cfg) {
    Rng other(cfg.seed + 1);
    if (is_contrastive(cfg.method))
      model_ = std::make_unique<SupConModel<double>>(cfg.encoder, cfg.head, cfg.feat_dim, other);
    else
      model_ = std::make_unique<CEModel<double>>(cfg.encoder, cfg.num_classes, other);
    opt_ = std::make_unique<Sgd<double>>(model_->parameter_list(),
                                         SgdOptions{cfg.lr, cfg.momentum, 0, cfg.weight_decay, false, false});
    load(model, opt);
  }
  double step(const data::Batch<double>& b, double lr) override {
    ++steps;
    opt_->zero_grad();
    const Tensor<double> out = model_->forward(b.images);
    const LossResult<double> r =
        cfg_.method == Method::ce ? cross_entropy(out, b.labels)
        : cfg_.method == Method::simclr
            ? simclr_loss(out, b.views, trainer_loss_options(cfg_))
            : supcon_loss_fused(out, Pairing::from_labels(b.labels), trainer_loss_options(cfg_));
    if (!std::isfinite(r.value)) return r.value;
    model_->backward(r.grad);
    opt_->set_lr(lr);
    opt_->step();
    return r.value;
  }
  void store(Module<double>& model, Optimizer<double>& opt) override {
    ++stores;
    copy_state(*model_, model);
    copy_opt(*opt_, opt);
  }
  void load(Module<double>& model, Optimizer<double>& opt) override {
    copy_state(model, *model_);
    copy_opt(opt, *opt_);
  }
  int steps = 0, stores = 0;

 private:
  static void copy_state(Module<double>& from, Module<double>& to) {
    std::vector<NamedTensor<double>> a, b;
    from.state("", a);
    to.state("", b);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) *b[i].tensor = *a[i].tensor;
  }
  static void copy_opt(Optimizer<double>& from, Optimizer<double>& to) {
    const auto a = from.state_tensors(), b = to.state_tensors();
    for (std::size_t i = 0; i < a.size(); ++i) *b[i].tensor = *a[i].tensor;
    to.set_steps(from.steps());
  }
  TrainConfig cfg_;
  std::unique_ptr<Module<double>> model_;
  std::unique_ptr<Optimizer<double>> opt_;
};

}  // namespace

TEST_CASE("A step backend takes every step, and the host model holds its weights after each epoch") {
  const data::InMemoryDataset ds = halves();
  for (Method m : {Method::supcon, Method::simclr, Method::ce}) {
    CAPTURE(method_name(m));
    Trainer<double> host(tiny(m), ds, small_augment()), mirrored(tiny(m), ds, small_augment());
    auto backend = std::make_unique<MirrorBackend>(mirrored.config(), mirrored.model(), mirrored.optimizer());
    MirrorBackend* b = backend.get();
    mirrored.set_step_backend(std::move(backend));
    EpochReport r1, r2;
    REQUIRE(host.run_epoch(nullptr, {}, r1));
    REQUIRE(mirrored.run_epoch(nullptr, {}, r2));
    CHECK(b->steps == 2);  // 32 images, batch 16
    CHECK(b->stores >= 1);
    CHECK(r2.loss == r1.loss);
    CHECK(weights(mirrored.model()) == weights(host.model()));  // the same step, so the same bits
    CHECK(mirrored.optimizer().steps() == 2);
  }
}

TEST_CASE("A checkpoint of a backend run resumes on the host, and a host checkpoint on a backend") {
  const data::InMemoryDataset ds = halves();
  Trainer<double> straight(tiny(Method::supcon), ds, small_augment());
  EpochReport r;
  while (!straight.done()) REQUIRE(straight.run_epoch(nullptr, {}, r));

  Trainer<double> on_backend(tiny(Method::supcon), ds, small_augment());
  on_backend.set_step_backend(
      std::make_unique<MirrorBackend>(on_backend.config(), on_backend.model(), on_backend.optimizer()));
  REQUIRE(on_backend.run_epoch(nullptr, {}, r));
  Trainer<double> host_second(tiny(Method::supcon), ds, small_augment());
  host_second.restore(on_backend.checkpoint());
  REQUIRE(host_second.run_epoch(nullptr, {}, r));
  CHECK(weights(host_second.model()) == weights(straight.model()));

  Trainer<double> host_first(tiny(Method::supcon), ds, small_augment());
  REQUIRE(host_first.run_epoch(nullptr, {}, r));
  Trainer<double> backend_second(tiny(Method::supcon), ds, small_augment());
  backend_second.set_step_backend(
      std::make_unique<MirrorBackend>(backend_second.config(), backend_second.model(), backend_second.optimizer()));
  backend_second.restore(host_first.checkpoint());  // loaded into the backend
  REQUIRE(backend_second.run_epoch(nullptr, {}, r));
  CHECK(weights(backend_second.model()) == weights(straight.model()));
}

TEST_CASE("A stop request leaves the host model with the backend's weights of the steps taken") {
  const data::InMemoryDataset ds = halves();
  Trainer<double> host(tiny(Method::ce), ds, small_augment()), mirrored(tiny(Method::ce), ds, small_augment());
  mirrored.set_step_backend(std::make_unique<MirrorBackend>(mirrored.config(), mirrored.model(), mirrored.optimizer()));
  std::atomic<bool> stop{false};
  EpochReport r;
  CHECK_FALSE(host.run_epoch(&stop, [&](const StepReport&) { stop = true; }, r));
  stop = false;
  CHECK_FALSE(mirrored.run_epoch(&stop, [&](const StepReport&) { stop = true; }, r));
  CHECK(mirrored.batch() == 1);
  CHECK(weights(mirrored.model()) == weights(host.model()));
}

TEST_CASE("A diverging backend step is reported as the host step's divergence") {
  const data::InMemoryDataset ds = halves();
  TrainConfig cfg = tiny(Method::supcon);
  Trainer<double> tr(cfg, ds, small_augment());
  struct Nan : StepBackend<double> {
    double step(const data::Batch<double>&, double) override { return std::nan(""); }
    void store(Module<double>&, Optimizer<double>&) override {}
    void load(Module<double>&, Optimizer<double>&) override {}
  };
  tr.set_step_backend(std::make_unique<Nan>());
  EpochReport r;
  CHECK_THROWS_WITH(tr.run_epoch(nullptr, {}, r), Catch::Contains("training diverged: the loss is nan at epoch 1, batch 1"));
}
