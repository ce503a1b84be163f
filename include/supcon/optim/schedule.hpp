#pragma once
/// \file schedule.hpp
/// Learning-rate schedules as pure functions of the position t in training.
///
/// t counts steps or epochs (the caller chooses the unit, and may pass a
/// fraction such as epoch + batch / batches_per_epoch). The value depends on
/// t and the options only, never on earlier calls, so a resumed run gets
/// exactly the rates of an uninterrupted one.
///
/// Decay, for base rate lr0:
///   constant:  lr(t) = lr0
///   cosine:    lr(t) = eta_min + (lr0 - eta_min) (1 + cos(pi t / total)) / 2
///              for t <= total, eta_min afterwards (Loshchilov and Hutter,
///              "SGDR", ICLR 2017, without restarts)
///   step:      lr(t) = lr0 gamma^k, k = number of milestones m with t >= m
///              (torch.optim.lr_scheduler.MultiStepLR)
///
/// Linear warm-up over the first `warmup` units (Goyal et al., "Accurate,
/// Large Minibatch SGD", 2017) composes with any decay: for t < warmup,
///   lr(t) = warmup_start + (t / warmup) (decay(warmup) - warmup_start),
/// a straight line that meets the decay curve at t = warmup, as the SupCon
/// reference code does; from t = warmup on, lr(t) = decay(t).
///
/// The linear scaling rule sets lr0 = base_lr * batch_size / 256.

#include <cmath>
#include <cstdint>
#include <vector>

#include "supcon/core/error.hpp"

namespace supcon {

enum class LrDecay { constant, cosine, step };

/// A learning-rate schedule; see the file comment for the formulas.
struct LrSchedule {
  double lr = 0.1;  ///< lr0 > 0, finite
  LrDecay decay = LrDecay::cosine;
  double total = 100;              ///< cosine: length of the decay, > 0
  double eta_min = 0;              ///< cosine: floor, in [0, lr]
  std::vector<double> milestones;  ///< step: strictly increasing, > 0
  double gamma = 0.1;              ///< step: factor per milestone, in (0, 1]
  double warmup = 0;               ///< length of the linear warm-up, >= 0 (0 = none)
  double warmup_start = 0;         ///< rate at t = 0 when warmup > 0, in [0, lr]
};

/// Throws ValueError naming the option when `s` is out of range.
inline void validate(const LrSchedule& s) {
  require(std::isfinite(s.lr) && s.lr > 0, "schedule: lr must be positive and finite, got ", s.lr);
  if (s.decay == LrDecay::cosine) {
    require(std::isfinite(s.total) && s.total > 0,
            "schedule: total must be positive and finite for cosine decay, got ", s.total);
    require(s.eta_min >= 0 && s.eta_min <= s.lr, "schedule: eta_min must be in [0, lr = ", s.lr,
            "], got ", s.eta_min);
  }
  if (s.decay == LrDecay::step) {
    require(s.gamma > 0 && s.gamma <= 1, "schedule: gamma must be in (0, 1], got ", s.gamma);
    for (std::size_t i = 0; i < s.milestones.size(); ++i) {
      require(std::isfinite(s.milestones[i]) && s.milestones[i] > 0,
              "schedule: milestones must be positive and finite, got ", s.milestones[i]);
      require(i == 0 || s.milestones[i] > s.milestones[i - 1],
              "schedule: milestones must be strictly increasing, got ", s.milestones[i - 1],
              " then ", s.milestones[i]);
    }
  }
  require(std::isfinite(s.warmup) && s.warmup >= 0,
          "schedule: warmup must be >= 0 and finite, got ", s.warmup);
  require(s.warmup_start >= 0 && s.warmup_start <= s.lr,
          "schedule: warmup_start must be in [0, lr = ", s.lr, "], got ", s.warmup_start);
}

/// The decay curve alone, without warm-up. Requires validate(s) to pass, t >= 0.
inline double decayed_lr(const LrSchedule& s, double t) {
  switch (s.decay) {
    case LrDecay::cosine: {
      if (t >= s.total) return s.eta_min;
      const double pi = 3.14159265358979323846;
      return s.eta_min + (s.lr - s.eta_min) * (1 + std::cos(pi * t / s.total)) / 2;
    }
    case LrDecay::step: {
      double lr = s.lr;
      for (double m : s.milestones)
        if (t >= m) lr *= s.gamma;
      return lr;
    }
    default:
      return s.lr;
  }
}

/// The learning rate at position t >= 0 (steps or epochs, possibly fractional).
/// Throws ValueError for a negative or non-finite t or invalid options.
inline double lr_at(const LrSchedule& s, double t) {
  validate(s);
  require(std::isfinite(t) && t >= 0, "schedule: position t must be >= 0 and finite, got ", t);
  if (t < s.warmup) {
    const double target = decayed_lr(s, s.warmup);
    return s.warmup_start + (t / s.warmup) * (target - s.warmup_start);
  }
  return decayed_lr(s, t);
}

/// The linear scaling rule: base_lr * batch_size / 256.
inline double scaled_lr(double base_lr, std::int64_t batch_size) {
  require(std::isfinite(base_lr) && base_lr > 0,
          "scaled_lr: base_lr must be positive and finite, got ", base_lr);
  require(batch_size > 0, "scaled_lr: batch_size must be positive, got ", batch_size);
  return base_lr * static_cast<double>(batch_size) / 256.0;
}

/// Fractional epoch of batch `batch` (0-based) in epoch `epoch` (0-based), for
/// schedules in epochs that change every step.
inline double epoch_position(std::int64_t epoch, std::int64_t batch,
                             std::int64_t batches_per_epoch) {
  require(batches_per_epoch > 0, "epoch_position: batches_per_epoch must be positive, got ",
          batches_per_epoch);
  require(epoch >= 0 && batch >= 0 && batch < batches_per_epoch,
          "epoch_position: need epoch >= 0 and 0 <= batch < ", batches_per_epoch, ", got epoch ",
          epoch, ", batch ", batch);
  return static_cast<double>(epoch) +
         static_cast<double>(batch) / static_cast<double>(batches_per_epoch);
}

}  // namespace supcon
