// Each optimizer, driving a real network (layers, backward, cross-entropy)
// rather than a closed-form problem: a tiny network memorises a fixed batch
// of 12 random points with arbitrary labels, so its training loss must fall
// from about ln 3 to near zero. This exercises the whole chain loss ->
// backward -> Parameter::grad -> step in float, the training precision.
#include <catch2/catch.hpp>
#include <cmath>
#include <supcon/layers/activation.hpp>
#include <supcon/layers/batchnorm.hpp>
#include <supcon/layers/conv2d.hpp>
#include <supcon/layers/flatten.hpp>
#include <supcon/layers/linear.hpp>
#include <supcon/layers/pool.hpp>
#include <supcon/layers/sequential.hpp>
#include <supcon/losses/cross_entropy.hpp>
#include <supcon/optim/adamw.hpp>
#include <supcon/optim/lars.hpp>
#include <supcon/optim/schedule.hpp>
#include <supcon/optim/sgd.hpp>

using namespace supcon;

namespace {

// Labels of the fixed batch: 3 classes, no relation to the inputs.
const std::vector<std::int64_t> kLabels = {0, 1, 2, 0, 1, 2, 2, 1, 0, 1, 2, 0};

Tensor<float> gaussian(const Shape& shape, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<float> t(shape);
  for (float& v : t) v = static_cast<float>(rng.normal());
  return t;
}

// Linear(4, 32) - ReLU - Linear(32, 3).
Sequential<float> tiny_mlp() {
  Rng rng(7);
  Sequential<float> net;
  net.add(Linear<float>(4, 32, true, rng));
  net.add(ReLU<float>());
  net.add(Linear<float>(32, 3, true, rng));
  return net;
}

// Conv2d(1, 4, 3x3, padding 1) - BatchNorm2d - ReLU - MaxPool2d(2) - Flatten - Linear(16, 3) on 4x4 images.
Sequential<float> tiny_convnet() {
  Rng rng(8);
  Sequential<float> net;
  net.add(Conv2d<float>(1, 4, 3, 1, 1, false, rng));
  net.add(BatchNorm2d<float>(4));
  net.add(ReLU<float>());
  net.add(MaxPool2d<float>(2));
  net.add(Flatten<float>());
  net.add(Linear<float>(16, 3, true, rng));
  return net;
}

struct Trace {
  double first = 0, last = 0;  // training loss before the first and after the last step
  int correct = 0;             // rows of the batch classified correctly at the end
};

// `steps` full-batch steps of cross-entropy on (x, kLabels), at the
// optimizer's rate or, when given, at the rate of `schedule` (t in steps).
Trace train(Module<float>& net, Optimizer<float>& opt, const Tensor<float>& x, int steps,
            const LrSchedule* schedule = nullptr) {
  Trace tr;
  for (int t = 0; t < steps; ++t) {
    if (schedule) opt.set_lr(lr_at(*schedule, t));
    opt.zero_grad();
    const LossResult<float> l = cross_entropy(net.forward(x), kLabels);
    if (t == 0) tr.first = l.value;
    net.backward(l.grad);
    opt.step();
  }
  const Tensor<float> logits = net.forward(x);
  tr.last = cross_entropy(logits, kLabels).value;
  for (index_t n = 0; n < logits.dim(0); ++n) {
    index_t best = 0;
    for (index_t c = 1; c < logits.dim(1); ++c)
      if (logits(n, c) > logits(n, best)) best = c;
    tr.correct += best == kLabels[static_cast<std::size_t>(n)] ? 1 : 0;
  }
  return tr;
}

void check_converged(const Trace& tr) {
  INFO("loss " << tr.first << " -> " << tr.last << ", " << tr.correct << " of 12 correct");
  CHECK(tr.first > 0.8);  // near ln 3 = 1.10 at initialisation
  CHECK(tr.last < 0.01);
  CHECK(tr.correct == 12);
}

// 400 steps of SGD with lr 0.1 and momentum 0.9 on (x, kLabels).
Trace train_sgd_momentum(Sequential<float>& net, const Tensor<float>& x) {
  SgdOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  Sgd<float> opt(net.parameter_list(), o);
  return train(net, opt, x, 400);
}

}  // namespace

TEST_CASE("SGD with momentum drives a tiny MLP to near-zero training loss on a fixed batch") {
  Sequential<float> net = tiny_mlp();
  check_converged(train_sgd_momentum(net, gaussian({12, 4}, 1)));
}

TEST_CASE("LARS drives a tiny MLP to near-zero training loss on a fixed batch") {
  // The trust ratio makes each weight matrix's step lr * eta * ||w|| long,
  // whatever the gradient's size: near a separable solution the gradient
  // points along w, and fixed relative steps would grow ||w|| geometrically
  // until the logits overflow. The cosine schedule (as in SupCon's training)
  // bounds the total growth; the biases (decay == false) take plain momentum
  // steps at rate lr.
  Sequential<float> net = tiny_mlp();
  LarsOptions o;
  o.momentum = 0.9;
  o.weight_decay = 1e-4;
  o.trust_coefficient = 0.02;
  Lars<float> opt(net.parameter_list(), o);
  LrSchedule cosine;
  cosine.lr = 0.1;
  cosine.decay = LrDecay::cosine;
  cosine.total = 400;
  check_converged(train(net, opt, gaussian({12, 4}, 1), 400, &cosine));
}

TEST_CASE("AdamW drives a tiny MLP to near-zero training loss on a fixed batch") {
  Sequential<float> net = tiny_mlp();
  AdamWOptions o;
  o.lr = 0.01;
  o.weight_decay = 1e-4;  // decoupled decay this small does not hold the loss up
  AdamW<float> opt(net.parameter_list(), o);
  check_converged(train(net, opt, gaussian({12, 4}, 1), 400));
}

TEST_CASE("SGD with momentum drives a tiny conv net with batch norm to near-zero training loss") {
  // Training mode throughout: batch norm normalises with the batch's statistics.
  Sequential<float> net = tiny_convnet();
  check_converged(train_sgd_momentum(net, gaussian({12, 1, 4, 4}, 2)));
}
