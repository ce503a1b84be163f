// Data-parallel training over K MPI ranks against one process with the
// K-times batch: the same steps, in double precision so that rounding cannot
// hide a difference.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include <supcon/core/rng.hpp>
#include <supcon/train/trainer.hpp>

#include "dist_world.hpp"

using namespace supcon;

namespace {

// 48 random 1 x 12 x 12 images of 4 classes.
data::InMemoryDataset random_images() {
  Rng rng(21);
  std::vector<std::uint8_t> pixels(48 * 144);
  for (auto& p : pixels) p = static_cast<std::uint8_t>(rng.uniform() * 255);
  std::vector<std::int64_t> labels(48);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>((i * 7) % 4);
  return data::InMemoryDataset(std::move(pixels), std::move(labels), 1, 12, 12, 4);
}

TrainConfig tiny_config(Method m) {
  TrainConfig cfg;
  cfg.method = m;
  cfg.encoder.in_channels = 1;
  cfg.encoder.width = 2;
  cfg.num_classes = 4;
  cfg.feat_dim = 8;
  cfg.epochs = 1;
  cfg.batch_size = 12;  // 4 steps; 6 or 4 samples per rank
  cfg.lr = 0.2;
  cfg.warmup = 0;
  cfg.seed = 5;
  return cfg;
}

data::AugmentConfig tiny_augment() {
  data::AugmentConfig a;
  a.out_height = a.out_width = 12;
  return a;
}

// Largest |a - b| over the largest |a|, over every parameter.
double weight_difference(Trainer<double>& a, Trainer<double>& b) {
  const std::vector<Parameter<double>*> pa = a.model().parameter_list(), pb = b.model().parameter_list();
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < pa.size(); ++i)
    for (index_t k = 0; k < pa[i]->value.size(); ++k) {
      diff = std::max(diff, std::abs(pa[i]->value[k] - pb[i]->value[k]));
      scale = std::max(scale, std::abs(pa[i]->value[k]));
    }
  return diff / scale;
}

}  // namespace

TEST_CASE("K ranks train to the weights of one process with the K-times batch") {
  dist::Communicator& comm = dist_test::world();
  const data::InMemoryDataset ds = random_images();
  for (Method m : {Method::supcon, Method::simclr, Method::ce}) {
    Trainer<double> alone(tiny_config(m), ds, tiny_augment());
    DistOptions d;
    d.comm = &comm;
    Trainer<double> shared(tiny_config(m), ds, tiny_augment(), d);
    EpochReport ra, rs;
    REQUIRE(alone.run_epoch(nullptr, {}, ra));
    REQUIRE(shared.run_epoch(nullptr, {}, rs));
    INFO(method_name(m) << " over " << comm.size() << " ranks");
    CHECK(rs.loss == Approx(ra.loss).epsilon(1e-10));
    CHECK(weight_difference(alone, shared) < 1e-10);
  }
}

TEST_CASE("Without synchronised batch norm the ranks normalise their own parts and drift from one process") {
  dist::Communicator& comm = dist_test::world();
  const data::InMemoryDataset ds = random_images();
  Trainer<double> alone(tiny_config(Method::supcon), ds, tiny_augment());
  DistOptions d;
  d.comm = &comm;
  d.sync_batchnorm = false;
  Trainer<double> shared(tiny_config(Method::supcon), ds, tiny_augment(), d);
  EpochReport ra, rs;
  alone.run_epoch(nullptr, {}, ra);
  shared.run_epoch(nullptr, {}, rs);
  CHECK(weight_difference(alone, shared) > 1e-6);
  // every rank still holds the same weights: the gradients were summed
  const double first = shared.model().parameter_list().front()->value[0];
  std::vector<double> all(static_cast<std::size_t>(comm.size()));
  comm.allgather(&first, 1, all.data());
  for (double x : all) CHECK(x == first);
}

TEST_CASE("A global batch that the ranks cannot share equally is refused") {
  dist::Communicator& comm = dist_test::world();
  const data::InMemoryDataset ds = random_images();
  TrainConfig cfg = tiny_config(Method::supcon);
  cfg.batch_size = 2 * comm.size() + 1;
  DistOptions d;
  d.comm = &comm;
  CHECK_THROWS_WITH(Trainer<double>(cfg, ds, tiny_augment(), d), Catch::Contains("must be a multiple of the"));
}
