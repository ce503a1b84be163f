// `supcon forward`: loads a network's weights from a directory of .npy files
// named by PyTorch state_dict keys, runs it in evaluation mode on an
// (N, C, H, W) batch and writes the output as float32 .npy.
#include <algorithm>
#include <iostream>
#include <string>
#include <supcon/core/npy.hpp>
#include <supcon/train/weights_npy.hpp>

#include "commands.hpp"
#include "model_options.hpp"

namespace supcon::cli {

namespace {

struct ForwardOptions {
  ModelOptions model;
  std::string weights, input, output;
  bool features = false;
  index_t batch = 64;
};

// Images [begin, end) of x as a new batch.
Tensor<float> slice_batch(const Tensor<float>& x, index_t begin, index_t end) {
  Shape s = x.shape();
  s[0] = end - begin;
  const index_t per = x.size() / x.dim(0);
  Tensor<float> out(s);
  std::copy(x.data() + begin * per, x.data() + end * per, out.data());
  return out;
}

int run_forward(const ForwardOptions& o) {
  const Tensor<float> x = load_npy<float>(o.input);
  require<ShapeError>(x.rank() == 4, o.input, ": input must be (N, C, H, W), got shape ",
                      shape_str(x.shape()));
  require<ShapeError>(x.dim(1) == o.model.in_channels, o.input, ": input has ", x.dim(1),
                      " channels but --in-channels is ", o.model.in_channels);
  require<ShapeError>(x.dim(0) >= 1, o.input, ": input holds no images");
  check_finite(x, o.input);
  return with_model<float>(o.model, [&](auto& model) {
    load_weights_npy(model, o.weights);
    model.set_training(false);
    // Evaluation mode treats every image on its own, so chunks give the same result.
    Tensor<float> y;
    for (index_t b = 0; b < x.dim(0); b += o.batch) {
      const Tensor<float> xb = slice_batch(x, b, std::min(x.dim(0), b + o.batch));
      const Tensor<float> yb = o.features ? model.encoder().forward(xb) : model.forward(xb);
      if (b == 0) y.resize({x.dim(0), yb.dim(1)});
      std::copy(yb.begin(), yb.end(), y.data() + b * yb.dim(1));
    }
    save_npy(o.output, y);
    std::cout << "wrote " << o.output << " " << shape_str(y.shape()) << "\n";
    return 0;
  });
}

}  // namespace

void add_forward_command(CLI::App& app, Runner& run) {
  auto* cmd = app.add_subcommand(
      "forward", "Run a network with .npy weights (PyTorch state_dict keys) on an .npy batch");
  auto o = std::make_shared<ForwardOptions>();
  add_model_options(cmd, o->model);
  cmd->add_option("--weights", o->weights, "Directory of <key>.npy files")->required();
  cmd->add_option("--input", o->input, "Input batch (N, C, H, W), .npy")->required();
  cmd->add_option("--output", o->output, "Output file, float32 .npy")->required();
  cmd->add_flag("--features", o->features,
                "Write the encoder features (N, d) instead of the network's output");
  cmd->add_option("--batch-size", o->batch, "Images per forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([&run, o]() {
    run = [o]() { return run_forward(*o); };
  });
}

}  // namespace supcon::cli
