#pragma once
// `supcon train --device cuda`: a Trainer's steps on the GPU. The CUDA code
// is in train_cuda.cu, compiled (by nvcc) only when the build has CUDA
// (SUPCON_CLI_CUDA); without it the functions below refuse in one line.
#include <string>

#include <supcon/core/error.hpp>
#include <supcon/train/trainer.hpp>

namespace supcon::cli {

#if SUPCON_CLI_CUDA
/// Throws unless `device` can train here: "cpu" always; "cuda" when the
/// machine has a CUDA device (the message quotes cudaGetDeviceCount's error).
void require_device(const std::string& device);
/// Moves the steps of `tr` to the GPU; its loop, checkpoints and logs stay.
void use_cuda(Trainer<float>& tr);
#else
inline void require_device(const std::string& device) {
  require(device == "cpu", "--device ", device, ": this build has no CUDA; configure with -DSUPCON_CUDA=ON");
}
inline void use_cuda(Trainer<float>&) { require_device("cuda"); }
#endif

}  // namespace supcon::cli
