// The arithmetic of the CUDA layer kernels (supcon/cuda/layer_math.cuh) and
// their host-side shape checks (layer_shapes.cuh), run on the CPU: loops over
// each kernel's grid call the same __host__ __device__ functions the kernels
// call, and the results are compared with ops/ in double. No GPU needed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include <supcon/core/rng.hpp>
#include <supcon/cuda/layer_math.cuh>
#include <supcon/cuda/layer_shapes.cuh>
#include <supcon/ops/activation.hpp>
#include <supcon/ops/batchnorm.hpp>
#include <supcon/ops/conv2d.hpp>
#include <supcon/ops/pool.hpp>
#include <supcon/optim/sgd.hpp>

#include "cuda_layers_common.hpp"

using namespace supcon;
using cuda::ConvGeom;
using cuda_layers_test::ConvCase;
using cuda_layers_test::random_tensor;

namespace {

// Largest |a - b| relative to the largest |b|.
double rel_diff(const double* a, const double* b, index_t n) {
  double diff = 0, scale = 1e-300;
  for (index_t k = 0; k < n; ++k) {
    diff = std::max(diff, std::abs(a[k] - b[k]));
    scale = std::max(scale, std::abs(b[k]));
  }
  return diff / scale;
}
double rel_diff(const Tensor<double>& a, const Tensor<double>& b) {
  REQUIRE(a.shape() == b.shape());
  return rel_diff(a.data(), b.data(), a.size());
}

ConvGeom geometry(const ConvCase& c) {
  const Shape w{c.OC, c.C, c.K, c.K};
  return cuda::conv2d_geometry({c.N, c.C, c.H, c.W}, w, nullptr, c.stride, c.pad, "test");
}

// C (M, N) = op(A) op(B) row-major, computed the way gemm() of cublas.cuh
// asks cuBLAS to: a column-major product with the arguments of colmajor_gemm_args.
void host_gemm(bool ta, bool tb, index_t M, index_t N, index_t K, const double* A, index_t lda, const double* B,
               index_t ldb, double beta, double* C, index_t ldc) {
  const cuda::ColMajorGemm g = cuda::colmajor_gemm_args(ta, tb, M, N, K, lda, ldb, ldc);
  const double* X = B;  // first operand
  const double* Y = A;  // second operand
  // column-major: op(X)(i, p) is X[i + p*ld] untransposed, X[p + i*ld] transposed
  for (index_t j = 0; j < g.n; ++j)
    for (index_t i = 0; i < g.m; ++i) {
      double acc = 0;
      for (index_t p = 0; p < g.k; ++p) {
        const double x = g.trans_first ? X[p + i * g.ld_first] : X[i + p * g.ld_first];
        const double y = g.trans_second ? Y[j + p * g.ld_second] : Y[p + j * g.ld_second];
        acc += x * y;
      }
      C[i + j * g.ldc] = acc + beta * C[i + j * g.ldc];
    }
}

// The forward of cuda::conv2d_forward on the host, block by block (B images).
Tensor<double> emulate_conv_forward(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>& bias,
                                    const ConvGeom& g, index_t B) {
  Tensor<double> y({g.N, g.OC, g.OH, g.OW});
  const index_t CKK = g.ckk(), P = g.p();
  for (index_t n0 = 0; n0 < g.N; n0 += B) {
    const index_t nb = std::min(B, g.N - n0), L = nb * P;
    std::vector<double> col(static_cast<std::size_t>(CKK * L)), out(static_cast<std::size_t>(g.OC * L));
    for (index_t idx = 0; idx < CKK * L; ++idx)
      col[static_cast<std::size_t>(idx)] = cuda::im2col_entry(x.data(), g, n0, nb, idx);
    host_gemm(false, false, g.OC, L, CKK, w.data(), CKK, col.data(), L, 0.0, out.data(), L);
    for (index_t idx = 0; idx < g.OC * L; ++idx)
      y[n0 * g.OC * P + idx] =
          out[static_cast<std::size_t>(cuda::block_index_of_nchw(idx, g.OC, P, nb))] + bias[(idx / P) % g.OC];
  }
  return y;
}

// The backward of cuda::conv2d_backward on the host: dx assigned, dw accumulated.
void emulate_conv_backward(const Tensor<double>& dy, const Tensor<double>& x, const Tensor<double>& w,
                           const ConvGeom& g, index_t B, Tensor<double>& dx, Tensor<double>& dw) {
  dx = Tensor<double>(x.shape());
  const index_t CKK = g.ckk(), P = g.p();
  for (index_t n0 = 0; n0 < g.N; n0 += B) {
    const index_t nb = std::min(B, g.N - n0), L = nb * P;
    std::vector<double> col(static_cast<std::size_t>(CKK * L)), out(static_cast<std::size_t>(g.OC * L));
    for (index_t idx = 0; idx < g.OC * L; ++idx)
      out[static_cast<std::size_t>(cuda::block_index_of_nchw(idx, g.OC, P, nb))] = dy[n0 * g.OC * P + idx];
    for (index_t idx = 0; idx < CKK * L; ++idx)
      col[static_cast<std::size_t>(idx)] = cuda::im2col_entry(x.data(), g, n0, nb, idx);
    host_gemm(false, true, g.OC, CKK, L, out.data(), L, col.data(), L, 1.0, dw.data(), CKK);
    host_gemm(true, false, CKK, L, g.OC, w.data(), CKK, out.data(), L, 0.0, col.data(), L);
    for (index_t b = 0; b < nb; ++b)
      for (index_t c = 0; c < g.C; ++c)
        for (index_t h = 0; h < g.H; ++h)
          for (index_t ww = 0; ww < g.W; ++ww)
            dx(n0 + b, c, h, ww) = cuda::col2im_entry(col.data(), g, nb, b, c, h, ww);
  }
}

// channel_sums_kernel and merge_parts_kernel on the host: the channel's
// channel_sum_parts parts in order, each by `threads` lanes (lane t sums
// m = t, t + threads, ... of its part) and the tree. `push(s, k)` adds the
// value at flat index k.
template <class Push>
cuda::Sums2 emulate_channel_sum(index_t c, index_t N, index_t C, index_t S, int threads, Push push) {
  const index_t M = N * S, parts = cuda::channel_sum_parts(C, M, threads), len = (M + parts - 1) / parts;
  cuda::Sums2 sum = cuda::sums_empty();
  for (index_t g = 0; g < parts; ++g) {
    std::vector<cuda::Sums2> part(static_cast<std::size_t>(threads), cuda::sums_empty());
    for (int t = 0; t < threads; ++t)
      for (index_t m = g * len + t; m < std::min(M, (g + 1) * len); m += threads)
        push(part[static_cast<std::size_t>(t)], cuda::channel_index(m, c, C, S));
    for (int half = threads / 2; half > 0; half /= 2)
      for (int t = 0; t < half; ++t)
        cuda::sums_merge(part[static_cast<std::size_t>(t)], part[static_cast<std::size_t>(t + half)]);
    if (g == 0)
      sum = part[0];
    else
      cuda::sums_merge(sum, part[0]);
  }
  return sum;
}

}  // namespace

TEST_CASE("The column-major cuBLAS arguments compute the row-major product for every transpose") {
  const index_t M = 3, N = 4, K = 5;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      // A stored (M, K) or (K, M); B stored (K, N) or (N, K)
      const Tensor<double> A = random_tensor(ta ? Shape{K, M} : Shape{M, K}, 1);
      const Tensor<double> B = random_tensor(tb ? Shape{N, K} : Shape{K, N}, 2);
      const RowMatrix<double> opA = ta ? RowMatrix<double>(A.matrix().transpose()) : RowMatrix<double>(A.matrix());
      const RowMatrix<double> opB = tb ? RowMatrix<double>(B.matrix().transpose()) : RowMatrix<double>(B.matrix());
      const RowMatrix<double> want = opA * opB;
      Tensor<double> C({M, N});
      host_gemm(ta, tb, M, N, K, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.0, C.data(), N);
      INFO("trans_a " << ta << " trans_b " << tb);
      CHECK(rel_diff(C.data(), want.data(), M * N) < 1e-14);
    }
}

TEST_CASE("im2col_entry reads the entries ops::im2col writes, for a block of images side by side") {
  for (const ConvCase& cc : cuda_layers_test::conv_cases()) {
    const ConvGeom g = geometry(cc);
    const Tensor<double> x = random_tensor({cc.N, cc.C, cc.H, cc.W}, 3);
    const index_t P = g.p(), CKK = g.ckk(), n0 = cc.N > 1 ? 1 : 0, B = cc.N - n0;
    std::vector<double> want(static_cast<std::size_t>(CKK * B * P));
    for (index_t b = 0; b < B; ++b)
      ops::detail::im2col_ld(x.data() + (n0 + b) * cc.C * cc.H * cc.W, cc.C, cc.H, cc.W, cc.K, cc.stride, cc.pad, g.OH,
                             g.OW, want.data() + b * P, B * P);
    for (index_t idx = 0; idx < CKK * B * P; ++idx)
      REQUIRE(cuda::im2col_entry(x.data(), g, n0, B, idx) == want[static_cast<std::size_t>(idx)]);
    // the GPU kernel's way: row and column split apart, in 32 bits
    for (index_t r = 0; r < CKK; ++r)
      for (index_t q = 0; q < B * P; ++q)
        REQUIRE(cuda::im2col_entry_at(x.data(), g, n0, cuda::column_row(unsigned(r), unsigned(cc.K)),
                                      cuda::column_pos(unsigned(q), unsigned(P), unsigned(g.OW))) ==
                want[static_cast<std::size_t>(r * B * P + q)]);
  }
}

TEST_CASE("A channel's values are cut into parts only when the channels are too few to fill the GPU") {
  // ResNet-18's first stage at batch 256 x 2 views: 64 channels of 524,288 values
  CHECK(cuda::channel_sum_parts(64, 524288, 256) == 5);
  CHECK(cuda::channel_sum_parts(512, 8192, 256) == 1);   // enough channels
  CHECK(cuda::channel_sum_parts(1, 3000, 256) == 1);     // too few values for two parts
  CHECK(cuda::channel_sum_parts(1, 1 << 24, 256) == 264);
}

TEST_CASE("A channel's flat index is the same with its division in 32 or 64 bits") {
  for (const Shape& nc_s : {Shape{3, 5, 7}, Shape{2, 1, 16}, Shape{4, 3, 1}})
    for (index_t c = 0; c < nc_s[1]; ++c)
      for (index_t m = 0; m < nc_s[0] * nc_s[2]; ++m)
        REQUIRE(cuda::channel_index<std::uint32_t>(m, c, nc_s[1], nc_s[2]) ==
                ((m / nc_s[2]) * nc_s[1] + c) * nc_s[2] + m % nc_s[2]);
}

TEST_CASE("col2im_entry gathers into each pixel what ops::col2im scatters") {
  for (const ConvCase& cc : cuda_layers_test::conv_cases()) {
    const ConvGeom g = geometry(cc);
    const index_t P = g.p(), CKK = g.ckk(), B = cc.N;
    const Tensor<double> dcol = random_tensor({CKK, B * P}, 4);
    Tensor<double> want({cc.N, cc.C, cc.H, cc.W}), got(want.shape());
    for (index_t b = 0; b < B; ++b)
      ops::detail::col2im_ld(dcol.data() + b * P, B * P, cc.C, cc.H, cc.W, cc.K, cc.stride, cc.pad, g.OH, g.OW,
                             want.data() + b * cc.C * cc.H * cc.W);
    for (index_t b = 0; b < B; ++b)
      for (index_t c = 0; c < cc.C; ++c)
        for (index_t h = 0; h < cc.H; ++h)
          for (index_t w = 0; w < cc.W; ++w) got(b, c, h, w) = cuda::col2im_entry(dcol.data(), g, B, b, c, h, w);
    CHECK(rel_diff(got, want) < 1e-12);
  }
}

TEST_CASE("The GPU convolution's blocks, GEMMs and rearrangements reproduce the reference convolution") {
  for (const ConvCase& cc : cuda_layers_test::conv_cases())
    for (index_t B : {index_t(1), index_t(2), cc.N}) {
      const ConvGeom g = geometry(cc);
      const Tensor<double> x = random_tensor({cc.N, cc.C, cc.H, cc.W}, 5);
      const Tensor<double> w = random_tensor({cc.OC, cc.C, cc.K, cc.K}, 6), bias = random_tensor({cc.OC}, 7);
      Tensor<double> y;
      ops::conv2d_forward_naive(x, w, &bias, cc.stride, cc.pad, y);
      INFO("K " << cc.K << " stride " << cc.stride << " padding " << cc.pad << " images per block " << B);
      CHECK(rel_diff(emulate_conv_forward(x, w, bias, g, B), y) < 1e-12);

      // backward: dw starts non-zero to show it is accumulated
      const Tensor<double> dy = random_tensor(y.shape(), 8);
      Tensor<double> dx_ref, dw_ref(w.shape(), 0.5), dx, dw(w.shape(), 0.5);
      ops::conv2d_backward_naive<double>(dy, x, w, cc.stride, cc.pad, dx_ref, dw_ref, nullptr);
      emulate_conv_backward(dy, x, w, g, B, dx, dw);
      CHECK(rel_diff(dx, dx_ref) < 1e-12);
      CHECK(rel_diff(dw, dw_ref) < 1e-12);
    }
}

TEST_CASE("The GPU batch-norm training pass reproduces ops/batchnorm.hpp, statistics and running update included") {
  // M = N*S below, equal to and above the 256 lanes of a reduction block, and
  // in two parts of blocks (M = 5,184); (N, C) too
  for (const Shape& shape :
       {Shape{3, 2, 5, 7}, Shape{4, 3, 8, 8}, Shape{6, 2, 10, 9}, Shape{7, 5}, Shape{9, 2, 24, 24}}) {
    REQUIRE(cuda::channel_sum_parts(shape[1], shape.size() == 4 ? shape[0] * shape[2] * shape[3] : shape[0],
                                    cuda::kReduceThreads) == (shape[0] == 9 ? 2 : 1));
    const Tensor<double> x = random_tensor(shape, 9, 3.0), weight = random_tensor({shape[1]}, 10);
    const Tensor<double> bias = random_tensor({shape[1]}, 11);
    const double eps = 1e-5, momentum = 0.1;
    const cuda::BnDims d = cuda::batchnorm_dims(shape, {&weight.shape()}, "test");
    Tensor<double> y_ref, mean_ref, var_ref, rm_ref({d.C}, 0.3), rv_ref({d.C}, 1.7);
    ops::batchnorm_forward_train(x, weight, bias, eps, y_ref, mean_ref, var_ref);
    ops::batchnorm_update_running(rm_ref, rv_ref, mean_ref, var_ref, d.M(), momentum);

    Tensor<double> y(shape), mean({d.C}), var({d.C}), rm({d.C}, 0.3), rv({d.C}, 1.7);
    std::vector<cuda::Affine<double>> map(static_cast<std::size_t>(d.C));
    for (index_t c = 0; c < d.C; ++c) {
      const double x0 = x[c * d.S];
      const cuda::Sums2 s = emulate_channel_sum(c, d.N, d.C, d.S, cuda::kReduceThreads,
                                                [&](cuda::Sums2& p, index_t k) { cuda::moments_push(p, x[k], x0); });
      map[static_cast<std::size_t>(c)] =
          cuda::bn_train_channel(s, x0, static_cast<double>(d.M()), weight[c], bias[c], eps, mean[c], var[c]);
      cuda::bn_running_update(rm[c], rv[c], mean[c], var[c], d.M(), momentum);
    }
    for (index_t k = 0; k < x.size(); ++k) {
      const cuda::Affine<double> a = map[static_cast<std::size_t>((k / d.S) % d.C)];
      y[k] = a.scale * x[k] + a.shift;
    }
    INFO("input " << shape_str(shape));
    CHECK(rel_diff(y, y_ref) < 1e-12);
    CHECK(rel_diff(mean, mean_ref) < 1e-12);
    CHECK(rel_diff(var, var_ref) < 1e-12);
    CHECK(rel_diff(rm, rm_ref) < 1e-12);
    CHECK(rel_diff(rv, rv_ref) < 1e-12);
  }
}

TEST_CASE("The GPU batch-norm backward reproduces dx and accumulates dweight and dbias as the CPU does") {
  for (const Shape& shape : {Shape{3, 2, 5, 7}, Shape{6, 2, 10, 9}, Shape{7, 5}}) {
    const Tensor<double> x = random_tensor(shape, 12, -1.0), dy = random_tensor(shape, 13);
    const Tensor<double> weight = random_tensor({shape[1]}, 14), bias = random_tensor({shape[1]}, 15);
    const double eps = 1e-5;
    Tensor<double> y, mean, var, dx_ref, dw_ref({shape[1]}, 0.25), db_ref({shape[1]}, -0.5);
    ops::batchnorm_forward_train(x, weight, bias, eps, y, mean, var);
    ops::batchnorm_backward_train(dy, x, weight, mean, var, eps, dx_ref, dw_ref, db_ref);

    const cuda::BnDims d = cuda::batchnorm_dims(shape, {&weight.shape()}, "test");
    Tensor<double> dx(shape), dw({d.C}, 0.25), db({d.C}, -0.5);
    for (index_t c = 0; c < d.C; ++c) {
      const cuda::Sums2 s = emulate_channel_sum(c, d.N, d.C, d.S, cuda::kReduceThreads, [&](cuda::Sums2& p, index_t k) {
        cuda::grad_sums_push(p, dy[k], x[k], mean[c]);
      });
      double dw_c = 0, db_c = 0;
      const cuda::BnGrad<double> gc =
          cuda::bn_backward_channel(s, static_cast<double>(d.M()), weight[c], var[c], eps, dw_c, db_c);
      dw[c] += dw_c;
      db[c] += db_c;
      for (index_t m = 0; m < d.M(); ++m) {
        const index_t k = cuda::channel_index(m, c, d.C, d.S);
        dx[k] = cuda::bn_dx(gc, dy[k], x[k], mean[c]);
      }
    }
    INFO("input " << shape_str(shape));
    CHECK(rel_diff(dx, dx_ref) < 1e-12);
    CHECK(rel_diff(dw, dw_ref) < 1e-12);
    CHECK(rel_diff(db, db_ref) < 1e-12);
  }
}

TEST_CASE("The GPU batch-norm evaluation map equals the CPU one with the running statistics") {
  const Shape shape{2, 3, 4, 5};
  const Tensor<double> x = random_tensor(shape, 16), weight = random_tensor({3}, 17), bias = random_tensor({3}, 18);
  const Tensor<double> rm = random_tensor({3}, 19), rv({3}, std::vector<double>{0.5, 1.5, 2.5});
  Tensor<double> y_ref, y(shape);
  ops::batchnorm_forward_eval(x, weight, bias, rm, rv, 1e-5, y_ref);
  for (index_t k = 0; k < x.size(); ++k) {
    const index_t c = (k / 20) % 3;
    const cuda::Affine<double> a = cuda::bn_eval_channel(weight[c], bias[c], rm[c], rv[c], 1e-5);
    y[k] = a.scale * x[k] + a.shift;
  }
  CHECK(rel_diff(y, y_ref) < 1e-12);
}

TEST_CASE("A plain channel sum of dy is the bias gradient of a convolution") {
  const ConvCase cc{3, 2, 5, 7, 4, 3, 2, 1};
  const Tensor<double> x = random_tensor({cc.N, cc.C, cc.H, cc.W}, 20), w = random_tensor({cc.OC, cc.C, 3, 3}, 21);
  const ConvGeom g = geometry(cc);
  const Tensor<double> dy = random_tensor({cc.N, cc.OC, g.OH, g.OW}, 22);
  Tensor<double> dx, dw(w.shape()), db_ref({cc.OC}, 1.0);
  ops::conv2d_backward_naive(dy, x, w, cc.stride, cc.pad, dx, dw, &db_ref);
  Tensor<double> db({cc.OC}, 1.0);
  for (index_t c = 0; c < cc.OC; ++c)
    db[c] += emulate_channel_sum(c, cc.N, cc.OC, g.p(), cuda::kReduceThreads, [&](cuda::Sums2& p, index_t k) {
               p.a += dy[k];
             }).a;
  CHECK(rel_diff(db, db_ref) < 1e-12);
}

TEST_CASE("ReLU and global average pooling per element equal the CPU ops") {
  const Tensor<double> x = random_tensor({2, 3, 5, 3}, 23), dy = random_tensor(x.shape(), 24);
  Tensor<double> y_ref, dx_ref, y(x.shape()), dx(x.shape());
  ops::relu_forward(x, y_ref);
  ops::relu_backward(dy, y_ref, dx_ref);
  for (index_t k = 0; k < x.size(); ++k) {
    y[k] = cuda::relu_value(x[k]);
    dx[k] = cuda::relu_grad(dy[k], y[k]);
  }
  CHECK(rel_diff(y, y_ref) == 0);
  CHECK(rel_diff(dx, dx_ref) == 0);

  Tensor<double> p_ref, p({2, 3});
  ops::global_avgpool_forward(x, p_ref);
  for (index_t nc = 0; nc < 6; ++nc) p[nc] = cuda::plane_mean(x.data() + nc * 15, index_t(15));
  CHECK(rel_diff(p, p_ref) < 1e-14);
}

TEST_CASE("The per-entry SGD update follows optim/sgd.hpp over several steps for every option") {
  for (const SgdOptions& so : cuda_layers_test::sgd_cases()) {
    Parameter<double> a({3, 4}), b({5}, false);
    a.value = random_tensor({3, 4}, 25);
    b.value = random_tensor({5}, 26);
    Sgd<double> sgd({&a, &b}, so);
    Tensor<double> wa = a.value, wb = b.value, ba(a.value.shape()), bb(b.value.shape());
    for (int step = 0; step < 4; ++step) {
      a.grad = random_tensor({3, 4}, 30 + static_cast<std::uint64_t>(step));
      b.grad = random_tensor({5}, 40 + static_cast<std::uint64_t>(step));
      sgd.step();
      for (auto [w, g, buf, decay] :
           {std::make_tuple(&wa, &a.grad, &ba, true), std::make_tuple(&wb, &b.grad, &bb, false)}) {
        const cuda::SgdStep<double> s{
            so.lr,       so.momentum, 1 - so.dampening, (decay || !so.exclude_no_decay) ? so.weight_decay : 0.0,
            so.nesterov, step == 0};
        for (index_t k = 0; k < w->size(); ++k)
          cuda::sgd_update((*w)[k], (*g)[k], so.momentum > 0 ? &(*buf)[k] : nullptr, s);
      }
    }
    INFO("momentum " << so.momentum << " nesterov " << so.nesterov << " dampening " << so.dampening);
    CHECK(rel_diff(wa, a.value) < 1e-14);
    CHECK(rel_diff(wb, b.value) < 1e-14);
  }
}

TEST_CASE("The CUDA layers' shape checks name the op and the argument, without a GPU") {
  using Catch::Matchers::Contains;
  const Shape x{2, 3, 8, 8};
  CHECK_THROWS_WITH(cuda::conv2d_geometry(x, {4, 2, 3, 3}, nullptr, 1, 1, "cuda::conv2d"),
                    Contains("cuda::conv2d") && Contains("weight"));
  CHECK_THROWS_AS(cuda::conv2d_geometry(x, {4, 2, 3, 3}, nullptr, 1, 1, "cuda::conv2d"), ShapeError);
  const Shape wrong_bias{5};
  CHECK_THROWS_WITH(cuda::conv2d_geometry(x, {4, 3, 3, 3}, &wrong_bias, 1, 1, "cuda::conv2d"), Contains("bias"));
  CHECK_THROWS_AS(cuda::conv2d_geometry(x, {4, 3, 3, 3}, nullptr, 0, 1, "cuda::conv2d"), ValueError);
  CHECK_THROWS_AS(cuda::conv2d_geometry({2, 3, 2, 2}, {4, 3, 5, 5}, nullptr, 1, 0, "cuda::conv2d"), ShapeError);
  const ConvGeom g = cuda::conv2d_geometry(x, {4, 3, 3, 3}, nullptr, 2, 1, "cuda::conv2d");
  CHECK(cuda::conv2d_output_shape(g) == Shape{2, 4, 4, 4});

  CHECK_THROWS_WITH(cuda::require_shape({2, 4, 4, 3}, {2, 4, 4, 4}, "cuda::conv2d_backward", "dy"),
                    "cuda::conv2d_backward: dy has shape (2, 4, 4, 3), expected (2, 4, 4, 4)");
  const Shape c3{3}, c4{4};
  CHECK_NOTHROW(cuda::batchnorm_dims(x, {&c3}, "cuda::batchnorm"));
  CHECK_THROWS_WITH(cuda::batchnorm_dims(x, {&c3, &c4}, "cuda::batchnorm"), Contains("cuda::batchnorm"));
  CHECK_THROWS_AS(cuda::batchnorm_dims({2, 3, 4}, {&c3}, "cuda::batchnorm"), ShapeError);
  CHECK_THROWS_WITH(cuda::linear_check({5, 6}, {4, 7}, nullptr, "cuda::linear"), Contains("cuda::linear"));
  CHECK_THROWS_AS(cuda::linear_check({5, 6}, {4, 6}, &c3, "cuda::linear"), ShapeError);
  CHECK_THROWS_AS(cuda::global_avgpool_check({2, 3, 0, 4}, "cuda::global_avgpool"), ShapeError);
}
