#pragma once
/// \file gradcheck_suite.hpp
/// The library's own gradient checks as one list: every layer, both residual
/// blocks, a small ResNet with its projection head, and the losses, each
/// compared with central differences in double on small seeded inputs.
/// `supcon gradcheck` runs it, and so does a test, so the command and the
/// test suite check exactly the same things.
///
///     for (const GradCheck& c : gradcheck_suite()) {
///       const GradCheckResult r = run_gradcheck(c);
///       std::cout << r.name << ' ' << r.max_rel_error << (r.passed ? " ok\n" : " FAIL\n");
///     }
///
/// Modules are measured by check_module (dx and every parameter's gradient of
/// f = <m.forward(x), dy>, relative error per tensor with floor 1e-3 of the
/// tensor's largest entry); the network, too large for that, at a few seeded
/// entries of every tensor (detail::probe_module); losses by the same error
/// between their returned grad and central differences of their value. Tolerances: 1e-7 for single
/// layers and losses, 1e-6 for batch norm in training mode and for composites (blocks, the network), where batch
/// norm over a few values per channel makes f strongly curved and the central
/// difference itself is less accurate.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "supcon/layers/activation.hpp"
#include "supcon/layers/batchnorm.hpp"
#include "supcon/layers/conv2d.hpp"
#include "supcon/layers/flatten.hpp"
#include "supcon/layers/linear.hpp"
#include "supcon/layers/normalize.hpp"
#include "supcon/layers/pool.hpp"
#include "supcon/losses/cross_entropy.hpp"
#include "supcon/losses/simclr.hpp"
#include "supcon/losses/supcon_fused.hpp"
#include "supcon/losses/supcon_reference.hpp"
#include "supcon/models/basic_block.hpp"
#include "supcon/models/bottleneck.hpp"
#include "supcon/models/supcon_model.hpp"
#include "supcon/testing/check_module.hpp"

namespace supcon::testing {

/// One check of the suite.
struct GradCheck {
  std::string name;        ///< unique, e.g. "conv2d_3x3_s2_p1"
  std::string group;       ///< "layers", "blocks", "network" or "losses"
  std::string what;        ///< one-line description of what is checked
  double tolerance = 0;    ///< the largest worst-case relative error that passes
  std::function<double()> run;  ///< runs the check; returns the worst relative error
};

/// What one check measured.
struct GradCheckResult {
  std::string name;
  double max_rel_error = 0;  ///< over the input and every parameter (or the loss input)
  double tolerance = 0;
  bool passed = false;       ///< max_rel_error <= tolerance (false for NaN)
};

namespace detail {

/// Entries drawn from N(0, 1), seeded.
inline Tensor<double> gaussian(const Shape& shape, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<double> t(shape);
  for (double& v : t) v = rng.normal();
  return t;
}

/// Worst error of check_module on module `m` at a seeded input of `shape`.
inline double module_error(Module<double>& m, const Shape& shape, std::uint64_t seed) {
  return check_module(m, gaussian(shape, seed)).worst();
}

/// Like check_module, but at `probes` seeded entries of the input and of each
/// parameter instead of all of them: for networks with thousands of
/// parameters, where two forwards per entry would take too long. The error of
/// an entry is |a - n| / max(|a|, |n|, 1e-3 M), M the tensor's largest
/// analytic |entry|, as check_module's floor. The step is 3e-6, not 1e-5: the
/// stem's weights reach the output through seventeen convolutions and batch
/// norms, f is strongly curved along them, and the truncation error (~h^2)
/// dominates at 1e-5, while rounding (~ulp(f) / h) is still far below 1e-7.
inline double probe_module(Module<double>& m, Tensor<double> x, int probes, std::uint64_t seed) {
  ModuleSnapshot<double> snap(m);  // grads and batch-norm running statistics, restored on return
  Rng rng(seed);
  const Tensor<double> dy = gaussian(m.forward(x).shape(), seed + 1);
  const std::vector<Parameter<double>*>& params = snap.params();
  m.zero_grad();
  const Tensor<double> dx = m.backward(dy);
  auto f = [&]() { return dot(m.forward(x), dy); };
  double worst = 0;
  auto probe = [&](Tensor<double>& value, const Tensor<double>& analytic) {
    if (value.size() == 0) return;
    const double M = analytic.vec().cwiseAbs().maxCoeff();
    for (int k = 0; k < probes; ++k) {
      const index_t i = static_cast<index_t>(rng.below(static_cast<std::uint64_t>(value.size())));
      const double keep = value[i], h = 3e-6;
      value[i] = keep + h;
      const double fp = f();
      value[i] = keep - h;
      const double fm = f();
      value[i] = keep;
      const double numeric = (fp - fm) / (2 * h), a = analytic[i];
      worst = std::max(worst, std::abs(a - numeric) / std::max({std::abs(a), std::abs(numeric), 1e-3 * M, 1e-300}));
    }
  };
  probe(x, dx);
  for (Parameter<double>* p : params) probe(p->value, p->grad);
  snap.restore();
  return worst;
}

/// Moves the running statistics of every batch norm below `m` away from
/// (0, 1), so that evaluation mode is not the identity map.
inline void randomize_batchnorm(Module<double>& m, std::uint64_t seed) {
  std::vector<NamedTensor<double>> state;
  m.state("", state);
  Rng rng(seed);
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const NamedTensor<double>& s : state) {
    if (ends_with(s.name, "running_mean"))
      for (double& v : *s.tensor) v = 0.3 * rng.normal();
    if (ends_with(s.name, "running_var"))
      for (double& v : *s.tensor) v = rng.uniform(0.5, 1.5);
  }
}

/// Worst error between a loss's grad and central differences of its value at x.
inline double loss_error(const std::function<LossResult<double>(const Tensor<double>&)>& loss,
                         Tensor<double> x) {
  const Tensor<double> analytic = loss(x).grad;
  std::function<double(const Tensor<double>&)> value = [&](const Tensor<double>& v) { return loss(v).value; };
  return scaled_error(analytic, numeric_gradient(value, x, 1e-5), 1e-3);
}

/// N = views * 4 seeded rows of dimension 3, scaled to unit length as the
/// SupCon model's output is (the gradient is still taken at these points,
/// with respect to unconstrained features).
inline Tensor<double> unit_features(index_t views, std::uint64_t seed) {
  Tensor<double> f = gaussian({views * 4, 3}, seed);
  for (index_t r = 0; r < f.dim(0); ++r) f.matrix().row(r).normalize();
  return f;
}

inline GradCheck conv_check(const std::string& name, index_t c, index_t oc, index_t k, index_t s, index_t p,
                            bool bias, const Shape& x) {
  const std::string what = "Conv2d(" + std::to_string(c) + ", " + std::to_string(oc) + ", k=" + std::to_string(k) +
                           ", s=" + std::to_string(s) + ", p=" + std::to_string(p) + (bias ? ", bias" : "") +
                           ") on " + shape_str(x);
  return {name, "layers", what, 1e-7, [=] {
            Rng rng(4);
            Conv2d<double> conv(c, oc, k, s, p, bias, rng);
            return module_error(conv, x, 5);
          }};
}

template <int Rank>
GradCheck batchnorm_check(const std::string& name, bool training, const Shape& x) {
  const std::string what = std::string(Rank == 2 ? "BatchNorm1d" : "BatchNorm2d") + "(" + std::to_string(x[1]) +
                           ") in " + (training ? "training" : "evaluation") + " mode on " + shape_str(x);
  // In training mode every output depends on the whole batch through the mean
  // and variance, so f is more curved and the central difference's O(h^2)
  // truncation error reaches about 1e-7: the tolerance is that of composites.
  const double tolerance = training ? 1e-6 : 1e-7;
  return {name, "layers", what, tolerance, [=] {
            BatchNorm<double, Rank> bn(x[1]);
            Rng rng(6);
            for (double& v : bn.weight.value) v = rng.uniform(0.5, 1.5);
            for (double& v : bn.bias.value) v = rng.normal();
            randomize_batchnorm(bn, 7);
            bn.set_training(training);
            return module_error(bn, x, 8);
          }};
}

/// A residual block of `c` input channels, `planes` and `stride`, in training
/// mode; its name() says whether the shortcut is a projection.
template <class Block>
GradCheck block_check(const std::string& name, index_t c, index_t planes, index_t stride, const Shape& x) {
  Rng rng(9);
  const std::string what = Block(c, planes, stride, rng).name() + " on " + shape_str(x) + ", training mode";
  return {name, "blocks", what, 1e-6, [=] {
            Rng rng(9);
            Block block(c, planes, stride, rng);
            randomize_batchnorm(block, 10);
            return module_error(block, x, 11);
          }};
}

/// The SupCon options of the contrastive-loss checks: temperature 0.1.
inline SupConOptions contrastive(Summation s) {
  SupConOptions o;
  o.temperature = 0.1;
  o.base_temperature = 0.1;
  o.summation = s;
  return o;
}

/// Gradient check of a SupCon loss with options `o` on `views` views of four
/// samples labelled {0, 1, 0, 2}: samples 1 and 3 have no other sample of
/// their class, so their only positives are their own other views (none
/// with one view). `fused` picks supcon_loss_fused with tiles of 3 rows.
inline GradCheck supcon_check(const std::string& name, const std::string& what, const SupConOptions& o,
                              index_t views, std::uint64_t seed, bool fused) {
  return {name, "losses", what + " of 4 samples", 1e-7, [=] {
            const Pairing pairing = Pairing::from_labels({0, 1, 0, 2});
            return loss_error(
                [&](const Tensor<double>& f) {
                  return fused ? supcon_loss_fused(f, pairing, o, 3) : supcon_loss_reference(f, pairing, o);
                },
                unit_features(views, seed));
          }};
}

}  // namespace detail

/// Every check, in the order layers, blocks, network, losses. Building the
/// list is cheap; each check builds its module and input when run.
inline std::vector<GradCheck> gradcheck_suite() {
  using detail::module_error;
  std::vector<GradCheck> s;

  // ---- layers ----
  s.push_back({"linear", "layers", "Linear(5, 3) with bias on (4, 5)", 1e-7, [] {
                 Rng rng(1);
                 Linear<double> m(5, 3, true, rng);
                 return module_error(m, {4, 5}, 2);
               }});
  s.push_back({"linear_no_bias", "layers", "Linear(4, 2) without bias on (3, 4)", 1e-7, [] {
                 Rng rng(3);
                 Linear<double> m(4, 2, false, rng);
                 return module_error(m, {3, 4}, 2);
               }});
  s.push_back(detail::conv_check("conv2d_3x3_s1_p1", 2, 3, 3, 1, 1, true, {2, 2, 5, 4}));
  s.push_back(detail::conv_check("conv2d_3x3_s2_p1", 2, 3, 3, 2, 1, false, {2, 2, 7, 6}));
  s.push_back(detail::conv_check("conv2d_3x3_s2_p0", 1, 2, 3, 2, 0, true, {1, 1, 6, 7}));
  s.push_back(detail::conv_check("conv2d_1x1_s2_p0", 3, 2, 1, 2, 0, false, {2, 3, 5, 5}));
  s.push_back(detail::batchnorm_check<2>("batchnorm1d_train", true, {5, 3}));
  s.push_back(detail::batchnorm_check<2>("batchnorm1d_eval", false, {5, 3}));
  s.push_back(detail::batchnorm_check<4>("batchnorm2d_train", true, {3, 3, 2, 3}));
  s.push_back(detail::batchnorm_check<4>("batchnorm2d_eval", false, {2, 2, 3, 2}));
  s.push_back({"relu", "layers", "ReLU on (3, 7)", 1e-7, [] {
                 ReLU<double> m;
                 return module_error(m, {3, 7}, 12);
               }});
  s.push_back({"maxpool2d", "layers", "MaxPool2d(k=2, s=2) on (2, 2, 4, 5)", 1e-7, [] {
                 MaxPool2d<double> m(2);
                 return module_error(m, {2, 2, 4, 5}, 13);
               }});
  s.push_back({"maxpool2d_overlap", "layers", "MaxPool2d(k=3, s=2, p=1), overlapping windows, on (1, 2, 5, 6)",
               1e-7, [] {
                 MaxPool2d<double> m(3, 2, 1);
                 return module_error(m, {1, 2, 5, 6}, 14);
               }});
  s.push_back({"avgpool2d", "layers", "AvgPool2d(k=2, s=2) on (2, 2, 4, 4)", 1e-7, [] {
                 AvgPool2d<double> m(2);
                 return module_error(m, {2, 2, 4, 4}, 15);
               }});
  s.push_back({"avgpool2d_padded", "layers", "AvgPool2d(k=3, s=2, p=1), padding counted, on (1, 2, 5, 5)", 1e-7,
               [] {
                 AvgPool2d<double> m(3, 2, 1);
                 return module_error(m, {1, 2, 5, 5}, 16);
               }});
  s.push_back({"global_avgpool", "layers", "GlobalAvgPool on (2, 3, 3, 4)", 1e-7, [] {
                 GlobalAvgPool<double> m;
                 return module_error(m, {2, 3, 3, 4}, 17);
               }});
  s.push_back({"flatten", "layers", "Flatten on (2, 3, 2, 2)", 1e-7, [] {
                 Flatten<double> m;
                 return module_error(m, {2, 3, 2, 2}, 18);
               }});
  s.push_back({"l2normalize", "layers", "L2Normalize on (4, 5)", 1e-7, [] {
                 L2Normalize<double> m;
                 return module_error(m, {4, 5}, 19);
               }});

  // ---- residual blocks ----
  s.push_back(detail::block_check<BasicBlock<double>>("basic_block_identity", 3, 3, 1, {2, 3, 4, 4}));
  s.push_back(detail::block_check<BasicBlock<double>>("basic_block_projection", 2, 3, 2, {2, 2, 5, 4}));
  s.push_back(detail::block_check<Bottleneck<double>>("bottleneck_identity", 8, 2, 1, {2, 8, 3, 3}));
  s.push_back(detail::block_check<Bottleneck<double>>("bottleneck_projection", 3, 2, 2, {2, 3, 5, 4}));

  // ---- a whole network ----
  s.push_back({"resnet18_head", "network",
               "ResNet-18 of width 2 + mlp head + L2Normalize (SupConModel, feat_dim 3) on (4, 1, 8, 8), "
               "training mode, 3 probes per tensor",
               1e-6, [] {
                 Rng rng(20);
                 SupConModel<double> model({"resnet18", 1, 2, Stem::cifar}, HeadKind::mlp, 3, rng);
                 detail::randomize_batchnorm(model, 21);
                 return detail::probe_module(model, detail::gaussian({4, 1, 8, 8}, 22), 3, 23);
               }});

  // ---- losses ----
  using detail::supcon_check;
  const SupConOptions out = detail::contrastive(Summation::outside), in = detail::contrastive(Summation::inside);
  SupConOptions one_cap = out;
  one_cap.contrast_mode = ContrastMode::one;
  one_cap.denominator = Denominator::only_negatives;
  one_cap.positives_cap = 2;
  one_cap.base_temperature = 0.07;
  SupConOptions in_exclude = in;
  in_exclude.denominator = Denominator::one_positive;
  in_exclude.no_positives = NoPositives::exclude;
  s.push_back(supcon_check("supcon_out", "SupCon L_out (reference), 2 views, temperature 0.1", out, 2, 23, false));
  s.push_back(supcon_check("supcon_in", "SupCon L_in (reference), 2 views, temperature 0.1", in, 2, 24, false));
  s.push_back(supcon_check("supcon_out_one_negatives_cap",
                           "SupCon L_out (reference), contrast one, only-negatives denominator, positives cap 2, "
                           "base temperature 0.07, 2 views",
                           one_cap, 2, 25, false));
  s.push_back(supcon_check("supcon_in_one_positive_exclude",
                           "SupCon L_in (reference), one-positive denominator, anchors without positives excluded, "
                           "1 view",
                           in_exclude, 1, 26, false));
  s.push_back(supcon_check("supcon_out_fused", "SupCon L_out (fused, tiles of 3 rows), 3 views", out, 3, 27, true));
  s.push_back({"simclr", "losses", "SimCLR (NT-Xent), 2 views of 4 samples, temperature 0.1", 1e-7, [out] {
                 return detail::loss_error([&](const Tensor<double>& f) { return simclr_loss(f, 2, out); },
                                           detail::unit_features(2, 28));
               }});
  s.push_back({"cross_entropy", "losses", "cross-entropy of (5, 4) logits", 1e-7, [] {
                 const std::vector<std::int64_t> y = {0, 3, 1, 1, 2};
                 return detail::loss_error([&](const Tensor<double>& z) { return cross_entropy(z, y); },
                                           detail::gaussian({5, 4}, 29));
               }});
  s.push_back({"cross_entropy_smoothing", "losses", "cross-entropy with label smoothing 0.1, (5, 4) logits", 1e-7,
               [] {
                 const std::vector<std::int64_t> y = {2, 0, 3, 1, 0};
                 return detail::loss_error([&](const Tensor<double>& z) { return cross_entropy(z, y, 0.1); },
                                           detail::gaussian({5, 4}, 30));
               }});
  return s;
}

/// Runs one check and compares its error with its tolerance.
inline GradCheckResult run_gradcheck(const GradCheck& c) {
  GradCheckResult r;
  r.name = c.name;
  r.tolerance = c.tolerance;
  r.max_rel_error = c.run();
  r.passed = r.max_rel_error <= c.tolerance;  // false for NaN
  return r;
}

/// Runs every check of `checks`; result i belongs to checks[i]. The checks
/// run in parallel, one per thread: each is small, so the operations inside
/// it run in one thread (nested regions are inactive) and skip the
/// synchronisation that would cost more than the work. An exception thrown
/// by a check is rethrown here, after the others finished.
inline std::vector<GradCheckResult> run_gradchecks(const std::vector<GradCheck>& checks) {
  std::vector<GradCheckResult> results(checks.size());
  std::vector<std::exception_ptr> errors(checks.size());
  const index_t n = static_cast<index_t>(checks.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (index_t i = 0; i < n; ++i) {
    try {
      results[static_cast<std::size_t>(i)] = run_gradcheck(checks[static_cast<std::size_t>(i)]);
    } catch (...) {
      errors[static_cast<std::size_t>(i)] = std::current_exception();  // exceptions must not leave the region
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  return results;
}

/// The checks that `what` names: "all", a group ("layers", "blocks",
/// "network", "losses") or one check's name. Throws ValueError listing the
/// valid names otherwise.
inline std::vector<GradCheck> select_gradchecks(const std::string& what) {
  const std::vector<GradCheck> all = gradcheck_suite();
  std::vector<GradCheck> out;
  for (const GradCheck& c : all)
    if (what == "all" || c.group == what || c.name == what) out.push_back(c);
  if (out.empty()) {
    std::string names = "all, layers, blocks, network, losses";
    for (const GradCheck& c : all) names += ", " + c.name;
    throw ValueError("--what: unknown check '" + what + "' (valid: " + names + ")");
  }
  return out;
}

}  // namespace supcon::testing
