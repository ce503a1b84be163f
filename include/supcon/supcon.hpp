#pragma once
/// \file supcon.hpp
/// Umbrella header: everything host-side of the supcon library.

#include "supcon/config.hpp"
#include "supcon/core/atomic_file.hpp"
#include "supcon/core/error.hpp"
#include "supcon/core/module.hpp"
#include "supcon/core/npy.hpp"
#include "supcon/core/rng.hpp"
#include "supcon/core/tensor.hpp"
#include "supcon/optim/adamw.hpp"
#include "supcon/optim/lars.hpp"
#include "supcon/optim/optimizer.hpp"
#include "supcon/optim/schedule.hpp"
#include "supcon/optim/sgd.hpp"
#include "supcon/train/checkpoint.hpp"
