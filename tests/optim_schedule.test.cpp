// Learning-rate schedules: PyTorch's schedulers, warm-up, key values, refusals.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <supcon/core/npy.hpp>
#include <supcon/optim/schedule.hpp>

using supcon::index_t;
using supcon::lr_at;
using supcon::LrDecay;
using supcon::LrSchedule;

namespace {
std::string fixture(const std::string& name) {
  return std::string(SUPCON_TEST_DATA_DIR) + "/optim/" + name + ".npy";
}
LrSchedule cosine(double lr, double total, double eta_min) {
  LrSchedule s;
  s.lr = lr;
  s.total = total;
  s.eta_min = eta_min;
  return s;
}
}  // namespace

TEST_CASE("Cosine decay equals torch's CosineAnnealingLR at every epoch") {
  const auto want = supcon::load_npy<double>(fixture("sched_cosine"));
  const LrSchedule s = cosine(0.5, 20, 0.002);
  for (index_t e = 0; e < want.size(); ++e) {
    INFO("epoch " << e);
    CHECK(lr_at(s, double(e)) == Approx(want[e]).epsilon(1e-12));
  }
}

TEST_CASE("Step decay equals torch's MultiStepLR at every epoch") {
  const auto want = supcon::load_npy<double>(fixture("sched_multistep"));
  LrSchedule s;
  s.lr = 0.5;
  s.decay = LrDecay::step;
  s.milestones = {5, 12};
  s.gamma = 0.2;
  for (index_t e = 0; e < want.size(); ++e) {
    INFO("epoch " << e);
    CHECK(lr_at(s, double(e)) == Approx(want[e]).epsilon(1e-12));
  }
}

TEST_CASE("Cosine decay starts at lr, halves at the midpoint and stays on its floor") {
  const LrSchedule s = cosine(0.8, 100, 0.01);
  CHECK(lr_at(s, 0) == 0.8);
  CHECK(lr_at(s, 50) == Approx((0.8 + 0.01) / 2).epsilon(1e-15));
  CHECK(lr_at(s, 100) == 0.01);
  CHECK(lr_at(s, 250) == 0.01);
  for (int t = 1; t <= 120; ++t) CHECK(lr_at(s, t) <= lr_at(s, t - 1));
}

TEST_CASE("Linear warm-up rises from its start value and meets the decay curve") {
  LrSchedule s = cosine(0.5, 100, 0.0);
  s.warmup = 10;
  s.warmup_start = 0.01;
  const double at_end = lr_at(cosine(0.5, 100, 0.0), 10);  // the cosine value at t = 10
  CHECK(lr_at(s, 0) == 0.01);
  CHECK(lr_at(s, 5) == Approx((0.01 + at_end) / 2).epsilon(1e-15));
  CHECK(lr_at(s, 10) == at_end);
  CHECK(lr_at(s, 10 - 1e-9) == Approx(at_end).epsilon(1e-9));  // continuous at the junction
  for (int t = 1; t <= 10; ++t) CHECK(lr_at(s, t) > lr_at(s, t - 1));
  CHECK(lr_at(s, 11) < lr_at(s, 10));
}

TEST_CASE("Warm-up composes with step decay and with a constant rate") {
  LrSchedule s;
  s.lr = 1.0;
  s.decay = LrDecay::step;
  s.milestones = {20, 30};
  s.warmup = 4;
  CHECK(lr_at(s, 0) == 0.0);
  CHECK(lr_at(s, 2) == 0.5);
  CHECK(lr_at(s, 4) == 1.0);
  CHECK(lr_at(s, 20) == Approx(0.1).epsilon(1e-15));
  CHECK(lr_at(s, 35) == Approx(0.01).epsilon(1e-15));
  s.decay = LrDecay::constant;
  CHECK(lr_at(s, 1) == 0.25);
  CHECK(lr_at(s, 1e6) == 1.0);
}

TEST_CASE("A schedule in epochs can change at every step through fractional positions") {
  const LrSchedule s = cosine(0.5, 10, 0.0);
  const double t = supcon::epoch_position(3, 25, 100);
  CHECK(t == 3.25);
  CHECK(lr_at(s, t) < lr_at(s, 3.0));
  CHECK(lr_at(s, t) > lr_at(s, 4.0));
  CHECK_THROWS_WITH(supcon::epoch_position(0, 100, 100), Catch::Contains("batch"));
}

TEST_CASE("The linear scaling rule multiplies the base rate by batch / 256") {
  CHECK(supcon::scaled_lr(0.5, 1024) == 2.0);
  CHECK(supcon::scaled_lr(0.1, 128) == 0.05);
  CHECK_THROWS_WITH(supcon::scaled_lr(0.1, 0), Catch::Contains("batch_size"));
}

TEST_CASE("Invalid schedules are refused with the option's name") {
  LrSchedule s;
  s.lr = -0.1;
  CHECK_THROWS_WITH(lr_at(s, 0), Catch::Contains("lr must be positive"));
  s = cosine(0.1, 0, 0);
  CHECK_THROWS_WITH(lr_at(s, 0), Catch::Contains("total"));
  s = cosine(0.1, 10, 0.2);
  CHECK_THROWS_WITH(lr_at(s, 0), Catch::Contains("eta_min"));
  s = LrSchedule{};
  s.decay = LrDecay::step;
  s.milestones = {30, 20};
  CHECK_THROWS_WITH(lr_at(s, 0), Catch::Contains("milestones must be strictly increasing"));
  s.milestones = {10, 10};
  CHECK_THROWS_WITH(lr_at(s, 0), Catch::Contains("milestones"));
  s.milestones = {10};
  s.gamma = 0;
  CHECK_THROWS_WITH(lr_at(s, 0), Catch::Contains("gamma"));
  s = LrSchedule{};
  s.warmup = -1;
  CHECK_THROWS_WITH(lr_at(s, 0), Catch::Contains("warmup"));
  s = LrSchedule{};
  s.warmup_start = 1.0;
  CHECK_THROWS_WITH(lr_at(s, 0), Catch::Contains("warmup_start"));
  CHECK_THROWS_WITH(lr_at(LrSchedule{}, -1), Catch::Contains("position t"));
  CHECK_THROWS_WITH(lr_at(LrSchedule{}, std::nan("")), Catch::Contains("position t"));
}
