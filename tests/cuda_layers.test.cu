// The CUDA layers (conv2d, batch norm, ReLU, residual add, global average
// pooling, linear, SGD, the ResNet BasicBlock) against the CPU ops and
// models on random inputs, forward and backward, in double (1e-10) and float
// (1e-4 relative). Without a CUDA device the program prints one line and
// exits with 77 (CTest: skipped).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include <supcon/core/rng.hpp>
#include <supcon/models/basic_block.hpp>
#include <supcon/cuda/basic_block.cuh>
#include <supcon/cuda/batchnorm.cuh>
#include <supcon/cuda/conv2d.cuh>
#include <supcon/cuda/elementwise.cuh>
#include <supcon/cuda/linear.cuh>
#include <supcon/cuda/pool.cuh>
#include <supcon/cuda/sgd.cuh>
#include <supcon/cuda/tensor.cuh>
#include <supcon/ops/activation.hpp>
#include <supcon/ops/batchnorm.hpp>
#include <supcon/ops/conv2d.hpp>
#include <supcon/ops/linear.hpp>
#include <supcon/ops/pool.hpp>
#include <supcon/optim/sgd.hpp>

#include "cuda_layers_common.hpp"

using namespace supcon;
using cuda::DeviceTensor;
using cuda::to_device;
using cuda_layers_test::ConvCase;
using cuda_layers_test::random_tensor;

int main(int argc, char** argv) {
  std::string why;
  if (cuda::device_count(&why) == 0) {
    std::printf("skipped: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  return Catch::Session().run(argc, argv);
}

namespace {

// Largest |gpu - cpu| relative to the largest |cpu|.
template <class T>
double rel_error(const DeviceTensor<T>& gpu, const Tensor<T>& cpu) {
  REQUIRE(gpu.shape() == cpu.shape());
  const Tensor<T> g = gpu.to_host();
  double diff = 0, scale = 1e-30;
  for (index_t k = 0; k < g.size(); ++k) {
    diff = std::max(diff, std::abs(static_cast<double>(g[k]) - static_cast<double>(cpu[k])));
    scale = std::max(scale, std::abs(static_cast<double>(cpu[k])));
  }
  return diff / scale;
}

template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, double> ? 1e-10 : 1e-4;
}

}  // namespace

TEMPLATE_TEST_CASE("The GPU convolution equals the CPU one, forward and backward, in any blocking", "", double, float) {
  using T = TestType;
  cuda::CublasHandle h;
  std::vector<ConvCase> cases = cuda_layers_test::conv_cases();
  cases.push_back({5, 16, 8, 8, 32, 3, 1, 1});  // layer-sized: 16 -> 32 channels on 8x8 maps
  for (const ConvCase& cc : cases)
    for (bool with_bias : {true, false})
      for (std::int64_t budget : {std::int64_t(1), cuda::kConvColumnBudget}) {  // one image per block, or all
        const Tensor<T> x = random_tensor<T>({cc.N, cc.C, cc.H, cc.W}, 1),
                        w = random_tensor<T>({cc.OC, cc.C, cc.K, cc.K}, 2);
        const Tensor<T> b = random_tensor<T>({cc.OC}, 3);
        Tensor<T> y;
        ops::conv2d_forward_naive<T>(x, w, with_bias ? &b : nullptr, cc.stride, cc.pad, y);
        const Tensor<T> dy = random_tensor<T>(y.shape(), 4);
        Tensor<T> dx, dw(w.shape(), T(0.5)), db(b.shape(), T(-0.25));  // pre-filled: accumulated into
        ops::conv2d_backward_naive<T>(dy, x, w, cc.stride, cc.pad, dx, dw, with_bias ? &db : nullptr);

        cuda::Conv2dWorkspace<T> ws;
        ws.column_budget = budget;
        const DeviceTensor<T> gx = to_device(x), gw = to_device(w), gb = to_device(b), gdy = to_device(dy);
        DeviceTensor<T> gy, gdx, gdw = to_device(Tensor<T>(w.shape(), T(0.5))),
                                 gdb = to_device(Tensor<T>(b.shape(), T(-0.25)));
        cuda::conv2d_forward<T>(h, gx, gw, with_bias ? &gb : nullptr, cc.stride, cc.pad, gy, ws);
        cuda::conv2d_backward<T>(h, gdy, gx, gw, cc.stride, cc.pad, gdx, gdw, with_bias ? &gdb : nullptr, ws);
        INFO("K " << cc.K << " stride " << cc.stride << " padding " << cc.pad << " bias " << with_bias << " budget "
                  << budget);
        CHECK(rel_error(gy, y) < tolerance<T>());
        CHECK(rel_error(gdx, dx) < tolerance<T>());
        CHECK(rel_error(gdw, dw) < tolerance<T>());
        CHECK(rel_error(gdb, db) < tolerance<T>());
      }
}

TEMPLATE_TEST_CASE("GPU batch norm equals the CPU one: batch statistics, running update, evaluation, backward", "",
                   double, float) {
  using T = TestType;
  // M = N*S below and above the 256 threads of a reduction block; (N, C) too
  // the last: channels of 16,384 values, summed in 8 parts of blocks
  for (const Shape& shape :
       {Shape{3, 2, 5, 7}, Shape{8, 3, 10, 9}, Shape{7, 5}, Shape{64, 16, 4, 4}, Shape{16, 3, 32, 32}}) {
    const index_t C = shape[1];
    const Tensor<T> x = random_tensor<T>(shape, 5, 2.0), dy = random_tensor<T>(shape, 6);
    const Tensor<T> w = random_tensor<T>({C}, 7), b = random_tensor<T>({C}, 8);
    const T eps = T(1e-5), momentum = T(0.1);
    Tensor<T> y, mean, var, rm({C}, T(0.3)), rv({C}, T(1.7)), ye, dx, dw({C}, T(0.5)), db({C}, T(-0.5));
    ops::batchnorm_forward_train(x, w, b, eps, y, mean, var);
    ops::batchnorm_update_running(rm, rv, mean, var, x.size() / C, momentum);
    ops::batchnorm_forward_eval(x, w, b, rm, rv, eps, ye);
    ops::batchnorm_backward_train(dy, x, w, mean, var, eps, dx, dw, db);

    cuda::BatchNormWorkspace<T> ws;
    const DeviceTensor<T> gx = to_device(x), gdy = to_device(dy), gw = to_device(w), gb = to_device(b);
    DeviceTensor<T> gy, gmean, gvar, grm = to_device(Tensor<T>({C}, T(0.3))), grv = to_device(Tensor<T>({C}, T(1.7)));
    DeviceTensor<T> gye, gdx, gdw = to_device(Tensor<T>({C}, T(0.5))), gdb = to_device(Tensor<T>({C}, T(-0.5)));
    cuda::batchnorm_forward_train(gx, gw, gb, eps, gy, gmean, gvar, ws);
    cuda::batchnorm_update_running(grm, grv, gmean, gvar, x.size() / C, momentum);
    cuda::batchnorm_forward_eval(gx, gw, gb, grm, grv, eps, gye, ws);
    cuda::batchnorm_backward_train(gdy, gx, gw, gmean, gvar, eps, gdx, gdw, gdb, ws);
    INFO("input " << shape_str(shape));
    CHECK(rel_error(gy, y) < tolerance<T>());
    CHECK(rel_error(gmean, mean) < tolerance<T>());
    CHECK(rel_error(gvar, var) < tolerance<T>());
    CHECK(rel_error(grm, rm) < tolerance<T>());
    CHECK(rel_error(grv, rv) < tolerance<T>());
    CHECK(rel_error(gye, ye) < tolerance<T>());
    CHECK(rel_error(gdx, dx) < tolerance<T>());
    CHECK(rel_error(gdw, dw) < tolerance<T>());
    CHECK(rel_error(gdb, db) < tolerance<T>());
  }
}

TEST_CASE("Two runs of the GPU batch norm and convolution backward give the same bits") {
  // channel sums in a fixed order, col2im as a gather: no atomics anywhere
  const Tensor<float> x = random_tensor<float>({16, 8, 6, 6}, 9), dy = random_tensor<float>({16, 8, 6, 6}, 10);
  const Tensor<float> w = random_tensor<float>({8}, 11), b = random_tensor<float>({8}, 12);
  const Tensor<float> k = random_tensor<float>({8, 8, 3, 3}, 13);
  cuda::CublasHandle h;
  std::vector<Tensor<float>> runs;
  for (int r = 0; r < 2; ++r) {
    cuda::BatchNormWorkspace<float> ws;
    cuda::Conv2dWorkspace<float> cws;
    const DeviceTensor<float> gx = to_device(x), gdy = to_device(dy), gw = to_device(w), gb = to_device(b),
                              gk = to_device(k);
    DeviceTensor<float> gy, gm, gv, gdx, gdw({8}), gdb({8}), gcx, gdk({8, 8, 3, 3});
    cuda::batchnorm_forward_train(gx, gw, gb, 1e-5f, gy, gm, gv, ws);
    cuda::batchnorm_backward_train(gdy, gx, gw, gm, gv, 1e-5f, gdx, gdw, gdb, ws);
    cuda::conv2d_backward<float>(h, gdy, gx, gk, 1, 1, gcx, gdk, nullptr, cws);
    runs.push_back(gy.to_host());
    runs.push_back(gdx.to_host());
    runs.push_back(gdw.to_host());
    runs.push_back(gcx.to_host());
  }
  for (std::size_t i = 0; i < 4; ++i) CHECK(std::equal(runs[i].begin(), runs[i].end(), runs[i + 4].begin()));
}

TEMPLATE_TEST_CASE("GPU ReLU, residual add and global average pooling equal the CPU ops", "", double, float) {
  using T = TestType;
  const Tensor<T> x = random_tensor<T>({4, 6, 5, 3}, 14), dy = random_tensor<T>(x.shape(), 15);
  const Tensor<T> r = random_tensor<T>(x.shape(), 16), dp = random_tensor<T>({4, 6}, 17);
  Tensor<T> y, dx, sum = x, p, dpx;
  ops::relu_forward(x, y);
  ops::relu_backward(dy, y, dx);
  sum.vec() += r.vec();
  ops::global_avgpool_forward(x, p);
  ops::global_avgpool_backward(dp, x.shape(), dpx);

  const DeviceTensor<T> gx = to_device(x), gdy = to_device(dy), gr = to_device(r), gdp = to_device(dp);
  DeviceTensor<T> gy, gdx, gsum = to_device(x), gp, gdpx;
  cuda::relu_forward(gx, gy);
  cuda::relu_backward(gdy, gy, gdx);
  cuda::add_into(gsum, gr);
  cuda::global_avgpool_forward(gx, gp);
  cuda::global_avgpool_backward(gdp, x.shape(), gdpx);
  CHECK(rel_error(gy, y) == 0);
  CHECK(rel_error(gdx, dx) == 0);
  CHECK(rel_error(gsum, sum) == 0);
  CHECK(rel_error(gp, p) < tolerance<T>());
  CHECK(rel_error(gdpx, dpx) < tolerance<T>());
}

TEMPLATE_TEST_CASE("The GPU linear map equals the CPU one, with and without bias", "", double, float) {
  using T = TestType;
  cuda::CublasHandle h;
  for (bool with_bias : {true, false}) {
    const Tensor<T> x = random_tensor<T>({7, 33}, 18), w = random_tensor<T>({10, 33}, 19),
                    b = random_tensor<T>({10}, 20);
    const Tensor<T> dy = random_tensor<T>({7, 10}, 21);
    Tensor<T> y, dx, dw(w.shape(), T(1)), db(b.shape(), T(2));
    ops::linear_forward<T>(x, w, with_bias ? &b : nullptr, y);
    ops::linear_backward<T>(dy, x, w, dx, dw, with_bias ? &db : nullptr);

    const DeviceTensor<T> gx = to_device(x), gw = to_device(w), gb = to_device(b), gdy = to_device(dy);
    DeviceTensor<T> gy, gdx, gdw = to_device(Tensor<T>(w.shape(), T(1))), gdb = to_device(Tensor<T>(b.shape(), T(2)));
    cuda::DeviceBuffer<cuda::Sums2> sums;
    cuda::linear_forward<T>(h, gx, gw, with_bias ? &gb : nullptr, gy);
    cuda::linear_backward<T>(h, gdy, gx, gw, gdx, gdw, with_bias ? &gdb : nullptr, sums);
    INFO("bias " << with_bias);
    CHECK(rel_error(gy, y) < tolerance<T>());
    CHECK(rel_error(gdx, dx) < tolerance<T>());
    CHECK(rel_error(gdw, dw) < tolerance<T>());
    CHECK(rel_error(gdb, db) < tolerance<T>());
  }
}

TEMPLATE_TEST_CASE("GPU SGD takes the steps of optim/sgd.hpp for every option", "", double, float) {
  using T = TestType;
  for (const SgdOptions& so : cuda_layers_test::sgd_cases()) {
    Parameter<T> a({3, 40}), b({5}, false);
    a.value = random_tensor<T>({3, 40}, 22);
    b.value = random_tensor<T>({5}, 23);
    cuda::DeviceParameter<T> ga(a), gb(b);
    Sgd<T> cpu({&a, &b}, so);
    cuda::Sgd<T> gpu({&ga, &gb}, so);
    for (int step = 0; step < 4; ++step) {
      a.grad = random_tensor<T>({3, 40}, 30 + static_cast<std::uint64_t>(step));
      b.grad = random_tensor<T>({5}, 40 + static_cast<std::uint64_t>(step));
      ga.grad.copy_from(a.grad);
      gb.grad.copy_from(b.grad);
      cpu.step();
      gpu.step();
    }
    INFO("momentum " << so.momentum << " nesterov " << so.nesterov << " dampening " << so.dampening);
    CHECK(rel_error(ga.value, a.value) < tolerance<T>());
    CHECK(rel_error(gb.value, b.value) < tolerance<T>());
  }
}

TEMPLATE_TEST_CASE(
    "The GPU BasicBlock equals models/basic_block.hpp: output, input and parameter gradients, "
    "running statistics, evaluation",
    "", double, float) {
  using T = TestType;
  cuda::CublasHandle h;
  struct Case {
    index_t in, planes, stride;
  };
  for (const Case& c : {Case{4, 4, 1}, Case{3, 6, 2}}) {  // identity and projection shortcut
    Rng rng(31);
    BasicBlock<T> cpu(c.in, c.planes, c.stride, rng);
    // batch-norm scales and shifts away from (1, 0), so every term matters
    std::vector<NamedTensor<T>> st;
    cpu.state("", st);
    std::uint64_t seed = 50;
    for (NamedTensor<T>& t : st)
      if (t.name.find("bn") != std::string::npos || t.name.find("shortcut.1.") != std::string::npos)
        *t.tensor = random_tensor<T>(t.tensor->shape(), ++seed, t.name.find("var") != std::string::npos ? 3.0 : 0.0);
    cuda::BasicBlock<T> gpu(cpu, c.stride);

    const Tensor<T> x = random_tensor<T>({4, c.in, 9, 7}, 60);
    const Tensor<T> y = cpu.forward(x);
    const Tensor<T> dy = random_tensor<T>(y.shape(), 61);
    const Tensor<T> dx = cpu.backward(dy);
    const DeviceTensor<T> gx = to_device(x), gdy = to_device(dy);
    DeviceTensor<T> gy, gdx;
    gpu.forward(h, gx, gy);
    gpu.backward(h, gdy, gdx);
    INFO("in " << c.in << " planes " << c.planes << " stride " << c.stride);
    CHECK(rel_error(gy, y) < tolerance<T>());
    CHECK(rel_error(gdx, dx) < tolerance<T>());
    const std::vector<Parameter<T>*> cp = cpu.parameter_list();
    const std::vector<cuda::DeviceParameter<T>*> gp = gpu.parameters();
    REQUIRE(cp.size() == gp.size());
    for (std::size_t i = 0; i < cp.size(); ++i) CHECK(rel_error(gp[i]->grad, cp[i]->grad) < tolerance<T>());
    std::vector<NamedTensor<T>> after;
    cpu.state("", after);
    const auto gs = gpu.state();
    REQUIRE(gs.size() == after.size());
    for (std::size_t i = 0; i < gs.size(); ++i) {
      INFO(after[i].name);
      CHECK(gs[i].first == after[i].name);
      CHECK(rel_error(*gs[i].second, *after[i].tensor) < tolerance<T>());
    }

    cpu.set_training(false);
    gpu.set_training(false);
    const Tensor<T> ye = cpu.forward(x);
    DeviceTensor<T> gye;
    gpu.forward(h, gx, gye);
    CHECK(rel_error(gye, ye) < tolerance<T>());
    CHECK_THROWS_AS(gpu.backward(h, gdy, gdx), ValueError);
  }
}

TEST_CASE("The GPU layers refuse wrong shapes with a ShapeError naming the op before any launch") {
  using Catch::Matchers::Contains;
  cuda::CublasHandle h;
  cuda::Conv2dWorkspace<double> ws;
  const DeviceTensor<double> x({2, 3, 8, 8}), w({4, 2, 3, 3}), dy_bad({2, 4, 8, 7}), w_ok({4, 3, 3, 3});
  DeviceTensor<double> y, dx, dw({4, 3, 3, 3});
  CHECK_THROWS_WITH(cuda::conv2d_forward<double>(h, x, w, nullptr, 1, 1, y, ws), Contains("cuda::conv2d"));
  CHECK_THROWS_AS(cuda::conv2d_backward<double>(h, dy_bad, x, w_ok, 1, 1, dx, dw, nullptr, ws), ShapeError);
  CHECK(y.size() == 0);  // nothing was resized or launched

  cuda::BatchNormWorkspace<double> bws;
  const DeviceTensor<double> g4({4}), g3({3}), one({1, 3});
  DeviceTensor<double> m, v;
  CHECK_THROWS_WITH(cuda::batchnorm_forward_train(x, g4, g4, 1e-5, y, m, v, bws), Contains("cuda::batchnorm"));
  CHECK_THROWS_AS(cuda::batchnorm_forward_train(one, g3, g3, 1e-5, y, m, v, bws), ValueError);
  CHECK_THROWS_AS(cuda::relu_backward(dy_bad, x, dx), ShapeError);
  CHECK_THROWS_AS(cuda::global_avgpool_backward(g3, x.shape(), dx), ShapeError);
  DeviceTensor<double> host_mismatch({2, 2});
  CHECK_THROWS_AS(host_mismatch.copy_from(Tensor<double>({2, 3})), ShapeError);
}
