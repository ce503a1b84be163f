// The GPU side of `supcon train --device cuda` (declared in train_cuda.hpp):
// the Trainer's step runs on supcon::cuda::TrainStep, everything else of the
// run stays on the host.
#include "train_cuda.hpp"

#include <supcon/cuda/train_step.cuh>

namespace supcon::cli {

void require_device(const std::string& device) {
  require(device == "cpu" || device == "cuda", "--device must be cpu or cuda, got '", device, "'");
  if (device == "cuda") cuda::require_device("--device cuda");
}

void use_cuda(Trainer<float>& tr) { cuda::use_gpu(tr); }

}  // namespace supcon::cli
