// 05 — Training a tiny network end to end.
//
// The pieces of the library, put together the way every training loop does:
// a data set, a network of layers, a loss, an optimizer, and the loop
//
//   logits = net.forward(x)            the forward pass caches what backward needs
//   L, dL  = cross_entropy(logits, y)  a loss is a pure function: value and gradient
//   net.backward(dL)                   adds dL/dθ into every Parameter::grad
//   opt.step(); opt.zero_grad()        θ <- θ - lr (momentum-averaged grad), then clear
//
// The task: two interleaved spirals in the plane, one per class. No straight
// line separates them, so the network has to learn a curved boundary.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <supcon/core/rng.hpp>
#include <supcon/layers/activation.hpp>
#include <supcon/layers/linear.hpp>
#include <supcon/layers/sequential.hpp>
#include <supcon/losses/cross_entropy.hpp>
#include <supcon/optim/schedule.hpp>
#include <supcon/optim/sgd.hpp>

using namespace supcon;

// A labelled set of 2-D points: x is (N, 2), y[n] in {0, 1}.
struct Points {
  Tensor<float> x;
  std::vector<std::int64_t> y;
};

// Step 1: the data. Point k of spiral c sits at radius r in (0, 1] and angle
// 3 pi r + c pi, so the two arms wind around each other one and a half times;
// Gaussian noise of 0.03 blurs them a little. Rng(seed) makes the set
// reproducible: the same seed always gives the same points.
Points spirals(index_t per_class, std::uint64_t seed) {
  Rng rng(seed);
  Points p{Tensor<float>({2 * per_class, 2}), {}};
  for (index_t c = 0; c < 2; ++c)
    for (index_t k = 0; k < per_class; ++k) {
      const double r = rng.uniform(0.05, 1.0);
      const double angle = 3 * M_PI * r + c * M_PI;
      const index_t n = c * per_class + k;
      p.x(n, 0) = static_cast<float>(r * std::cos(angle) + rng.normal(0, 0.03));
      p.x(n, 1) = static_cast<float>(r * std::sin(angle) + rng.normal(0, 0.03));
      p.y.push_back(c);
    }
  return p;
}

// The rows `idx` of a data set, as one mini-batch.
Points rows(const Points& p, const std::vector<std::int64_t>& idx) {
  Points b{Tensor<float>({static_cast<index_t>(idx.size()), 2}), {}};
  for (std::size_t i = 0; i < idx.size(); ++i) {
    b.x(static_cast<index_t>(i), 0) = p.x(idx[i], 0);
    b.x(static_cast<index_t>(i), 1) = p.x(idx[i], 1);
    b.y.push_back(p.y[static_cast<std::size_t>(idx[i])]);
  }
  return b;
}

// Fraction of rows whose largest logit is the true class.
double accuracy(Module<float>& net, const Points& p) {
  const Tensor<float> logits = net.forward(p.x);
  index_t correct = 0;
  for (index_t n = 0; n < logits.dim(0); ++n)
    correct += (logits(n, 1) > logits(n, 0) ? 1 : 0) == p.y[static_cast<std::size_t>(n)];
  return static_cast<double>(correct) / static_cast<double>(logits.dim(0));
}

int main() {
  // Training and test sets from different seeds: the test points are new to the network.
  const Points train = spirals(200, 1), test = spirals(200, 2);

  // Step 2: the network, 2 -> 64 -> 64 -> 2 with ReLUs in between. Linear
  // draws its initial weights from the Rng (PyTorch's default initialisation);
  // the output is two logits, one per class, and no softmax: the loss applies it.
  Rng init(3);
  Sequential<float> net;
  net.add(Linear<float>(2, 64, true, init));
  net.add(ReLU<float>());
  net.add(Linear<float>(64, 64, true, init));
  net.add(ReLU<float>());
  net.add(Linear<float>(64, 2, true, init));

  // Step 3: the optimizer receives the parameters once; it keeps one momentum
  // buffer per parameter, in the same order. The learning rate follows a
  // cosine from 0.1 down to 0 over the run: large steps early, small ones at
  // the end, so the last epochs settle instead of bouncing around the minimum.
  SgdOptions o;
  o.momentum = 0.9;
  Sgd<float> opt(net.parameter_list(), o);
  const int epochs = 150;
  LrSchedule cosine;
  cosine.lr = 0.1;
  cosine.decay = LrDecay::cosine;
  cosine.total = epochs;

  // Step 4: the loop. Each epoch visits the 400 training points once, in a new
  // random order, as 20 mini-batches of 20.
  Rng order(4);
  const std::size_t batch = 20;
  std::printf("epoch   learning rate   mean training loss\n");
  for (int epoch = 0; epoch < epochs; ++epoch) {
    opt.set_lr(lr_at(cosine, epoch));
    const std::vector<std::int64_t> perm = order.permutation(train.x.dim(0));
    double loss_sum = 0;
    int batches = 0;
    for (std::size_t start = 0; start < perm.size(); start += batch) {
      const Points b = rows(train, std::vector<std::int64_t>(perm.begin() + static_cast<std::ptrdiff_t>(start),
                                                             perm.begin() + static_cast<std::ptrdiff_t>(start + batch)));
      opt.zero_grad();                                           // grads accumulate: clear them first
      const LossResult<float> l = cross_entropy(net.forward(b.x), b.y);  // mean loss, dL/dlogits
      net.backward(l.grad);                                      // dL/dθ into every grad
      opt.step();                                                // one SGD step
      loss_sum += l.value;
      ++batches;
    }
    if (epoch % 25 == 0 || epoch == epochs - 1) std::printf("%5d   %13.4f   %.4f\n", epoch, opt.lr(), loss_sum / batches);
  }

  // Step 5: how well it learned. The network has no batch norm or dropout, so
  // training and evaluation modes would give the same outputs.
  const double train_acc = accuracy(net, train), test_acc = accuracy(net, test);
  std::printf("training accuracy %.1f%%, test accuracy %.1f%%\n", 100 * train_acc, 100 * test_acc);
  const bool ok = test_acc >= 0.95;
  std::printf("the network separates the spirals (test accuracy >= 95%%): %s\n", ok ? "yes" : "NO");
  return ok ? 0 : 1;
}
