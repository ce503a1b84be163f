// Checkpoints: bit-exact round trips, exact resumption, and a clear refusal of
// every damaged file and of every model or optimizer that does not fit.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>
#include <supcon/optim/adamw.hpp>
#include <supcon/optim/sgd.hpp>
#include <supcon/train/checkpoint.hpp>

using supcon::Checkpoint;
using supcon::index_t;
using supcon::IoError;
using supcon::NamedTensor;
using supcon::Parameter;
using supcon::ShapeError;
using supcon::Tensor;

namespace {

// y = x W^T + b, with a buffer "running_mean" (mean of the inputs seen in
// training) like batch norm's. x is (N, in), W is (out, in), b is (out,).
template <class T>
class Affine : public supcon::Module<T> {
 public:
  Parameter<T> weight, bias;
  Tensor<T> running_mean;
  bool with_buffer;

  Affine(index_t in, index_t out, bool buffer = true)
      : weight({out, in}), bias({out}, false), running_mean({in}), with_buffer(buffer) {
    for (index_t k = 0; k < weight.value.size(); ++k) weight.value[k] = T(0.1) * T(k % 7) - T(0.3);
    for (index_t k = 0; k < bias.value.size(); ++k) bias.value[k] = T(0.05) * T(k);
  }
  Tensor<T> forward(const Tensor<T>& x) override {
    x_ = x;
    Tensor<T> y({x.dim(0), weight.value.dim(0)});
    y.matrix() = x.matrix() * weight.value.matrix().transpose();
    y.matrix().rowwise() += bias.value.vec().transpose();
    if (this->training())
      running_mean.vec() =
          T(0.9) * running_mean.vec() + T(0.1) * x.matrix().colwise().mean().transpose();
    return y;
  }
  Tensor<T> backward(const Tensor<T>& dy) override {
    // forward: y = x W^T + b
    weight.grad.matrix() += dy.matrix().transpose() * x_.matrix();
    bias.grad.vec() += dy.matrix().colwise().sum().transpose();
    Tensor<T> dx(x_.shape());
    dx.matrix() = dy.matrix() * weight.value.matrix();
    return dx;
  }
  void parameters(std::vector<Parameter<T>*>& out) override {
    out.push_back(&weight);
    out.push_back(&bias);
  }
  void state(const std::string& prefix, std::vector<NamedTensor<T>>& out) override {
    out.push_back({prefix + "weight", &weight.value});
    out.push_back({prefix + "bias", &bias.value});
    if (with_buffer) out.push_back({prefix + "running_mean", &running_mean});
  }
  std::string name() const override { return "Affine"; }

 private:
  Tensor<T> x_;
};

std::string tmp_path(const std::string& name) { return "/tmp/supcon_ckpt_test_" + name; }

// One training step on a fixed batch: loss = sum(y), so dy = 1.
template <class T>
void train_step(Affine<T>& m, supcon::Optimizer<T>& opt, int s) {
  Tensor<T> x({2, m.weight.value.dim(1)});
  for (index_t k = 0; k < x.size(); ++k) x[k] = static_cast<T>(std::sin(double(k + 3 * s)));
  opt.zero_grad();
  const Tensor<T> y = m.forward(x);
  m.backward(Tensor<T>(y.shape(), T(1)));
  opt.step();
}

template <class T>
Checkpoint sample_checkpoint(Affine<T>& m, supcon::Optimizer<T>& opt) {
  supcon::Rng rng(42);
  for (int k = 0; k < 5; ++k) rng.next_u64();
  return supcon::make_checkpoint<T>(
      m, &opt, 3, 1234, rng,
      {{"command", "supcon train --lr 0.5"}, {"note", std::string("a\nb\0c", 5)}, {"empty", ""}});
}

// The file format's checksum, written out independently: FNV-1a 64.
std::uint64_t fnv1a(const std::string& b, std::size_t n) {
  std::uint64_t h = 14695981039346656037ULL;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(b[i])) * 1099511628211ULL;
  return h;
}
// Rewrites the recorded size (bytes 12..19) and the trailing checksum after an edit.
std::string reseal(std::string b) {
  for (int k = 0; k < 8; ++k) b[12 + k] = static_cast<char>((b.size() >> (8 * k)) & 0xff);
  const std::uint64_t h = fnv1a(b, b.size() - 8);
  for (int k = 0; k < 8; ++k) b[b.size() - 8 + k] = static_cast<char>((h >> (8 * k)) & 0xff);
  return b;
}

}  // namespace

TEST_CASE("A checkpoint round-trips bit-exactly: tensors, position, Rng state and config") {
  Affine<float> m(3, 2);
  supcon::SgdOptions o;
  o.momentum = 0.9;
  supcon::Sgd<float> opt(m.parameter_list(), o);
  for (int s = 0; s < 3; ++s) train_step(m, opt, s);
  Checkpoint ck = sample_checkpoint(m, opt);
  ck.model.push_back(supcon::to_checkpoint_tensor(
      "extra.f64", Tensor<double>({2}, std::vector<double>{1e-300, -0.1})));
  const std::string p = tmp_path("roundtrip.ck");
  supcon::save_checkpoint(p, ck);
  const Checkpoint back = supcon::load_checkpoint(p);
  CHECK(back.epoch == 3);
  CHECK(back.step == 1234);
  CHECK(back.rng == ck.rng);
  CHECK(back.config == ck.config);
  CHECK(back.config.at("note") == std::string("a\nb\0c", 5));  // any bytes, NUL included
  CHECK(back.optimizer == "sgd");
  CHECK(back.optimizer_steps == 3);
  REQUIRE(back.model.size() == 4);
  for (std::size_t i = 0; i < ck.model.size(); ++i) {
    CHECK(back.model[i].name == ck.model[i].name);
    CHECK(back.model[i].shape == ck.model[i].shape);
    CHECK(back.model[i].data == ck.model[i].data);  // the bytes, so bit-exact
  }
  CHECK(supcon::from_checkpoint_tensor<double>(back.model[3])[0] == 1e-300);
  CHECK(supcon::checkpoint_bytes(back) == supcon::read_file(p));  // and saving again is identical
}

TEST_CASE("Training resumed from a checkpoint continues exactly as if never stopped") {
  Affine<float> a(4, 3);
  supcon::Sgd<float> oa(a.parameter_list(), [] {
    supcon::SgdOptions o;
    o.momentum = 0.9;
    o.nesterov = true;
    o.weight_decay = 1e-3;
    return o;
  }());
  for (int s = 0; s < 4; ++s) train_step(a, oa, s);
  supcon::Rng rng(7);
  rng.next_u64();
  const std::string p = tmp_path("resume.ck");
  supcon::save_checkpoint(p, supcon::make_checkpoint<float>(a, &oa, 1, 4, rng));

  // A fresh model and optimizer, restored from the file.
  Affine<float> b(4, 3);
  supcon::Sgd<float> ob(b.parameter_list(), oa.options());
  const Checkpoint ck = supcon::load_checkpoint(p);
  supcon::restore_module(ck, b);
  supcon::restore_optimizer(ck, ob);
  supcon::Rng rng_b;
  rng_b.set_state(ck.rng);
  CHECK(ob.steps() == 4);

  for (int s = 4; s < 8; ++s) {
    train_step(a, oa, s);
    train_step(b, ob, s);
  }
  for (index_t k = 0; k < a.weight.value.size(); ++k) CHECK(a.weight.value[k] == b.weight.value[k]);
  for (index_t k = 0; k < a.running_mean.size(); ++k) CHECK(a.running_mean[k] == b.running_mean[k]);
  CHECK(rng.next_u64() == rng_b.next_u64());
}

TEST_CASE("AdamW's moments and step count survive a checkpoint") {
  Affine<double> a(2, 2), b(2, 2);
  supcon::AdamW<double> oa(a.parameter_list(), supcon::AdamWOptions{});
  supcon::AdamW<double> ob(b.parameter_list(), supcon::AdamWOptions{});
  for (int s = 0; s < 3; ++s) train_step(a, oa, s);
  const Checkpoint ck = supcon::parse_checkpoint(
      supcon::checkpoint_bytes(supcon::make_checkpoint<double>(a, &oa, 0, 3, supcon::Rng(1))),
      "mem");
  supcon::restore_module(ck, b);
  supcon::restore_optimizer(ck, ob);
  train_step(a, oa, 3);
  train_step(b, ob, 3);  // bias correction uses t = 4 in both
  for (index_t k = 0; k < a.weight.value.size(); ++k) CHECK(a.weight.value[k] == b.weight.value[k]);
}

TEST_CASE("A checkpoint file cut short anywhere is refused") {
  Affine<float> m(3, 2);
  supcon::Sgd<float> opt(m.parameter_list(), supcon::SgdOptions{});
  const std::string full = supcon::checkpoint_bytes(sample_checkpoint(m, opt));
  for (std::size_t n = 0; n < full.size(); n += (n < 40 ? 1 : 5)) {
    INFO("cut at byte " << n << " of " << full.size());
    CHECK_THROWS_AS(supcon::parse_checkpoint(full.substr(0, n), "cut.ck"), IoError);
  }
  const std::string p = tmp_path("cut.ck");
  supcon::write_file_atomic(p, full.substr(0, full.size() - 1));
  CHECK_THROWS_WITH(supcon::load_checkpoint(p),
                    Catch::Contains("cut.ck") && Catch::Contains("truncated"));
}

TEST_CASE("A checkpoint with any byte flipped is refused") {
  Affine<float> m(3, 2);
  supcon::Sgd<float> opt(m.parameter_list(), supcon::SgdOptions{});
  const std::string full = supcon::checkpoint_bytes(sample_checkpoint(m, opt));
  for (std::size_t i = 0; i < full.size(); ++i) {
    std::string bad = full;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    INFO("byte " << i);
    CHECK_THROWS_AS(supcon::parse_checkpoint(bad, "flip.ck"), IoError);
  }
  std::string bad = full;
  bad[full.size() / 2] ^= 1;
  CHECK_THROWS_WITH(supcon::parse_checkpoint(bad, "flip.ck"),
                    "flip.ck: checksum mismatch: file is damaged");
}

TEST_CASE("A wrong magic and an unknown format version are refused with their own messages") {
  Affine<float> m(3, 2);
  supcon::Sgd<float> opt(m.parameter_list(), supcon::SgdOptions{});
  std::string b = supcon::checkpoint_bytes(sample_checkpoint(m, opt));
  CHECK_THROWS_WITH(supcon::parse_checkpoint("\x93NUMPY" + b.substr(6), "x.npy"),
                    Catch::Contains("x.npy: not a supcon checkpoint"));
  b[8] = 2;  // version 2
  CHECK_THROWS_WITH(supcon::parse_checkpoint(reseal(b), "v2.ck"),
                    Catch::Contains("v2.ck: unsupported checkpoint format version 2"));
  CHECK_THROWS_WITH(supcon::load_checkpoint(tmp_path("no_such.ck")), Catch::Contains("no_such.ck"));
}

TEST_CASE("Malformed content behind a valid checksum is refused") {
  Affine<float> m(3, 2, false);
  supcon::Checkpoint ck;
  supcon::store_module(ck, m);  // weight, bias; no config, no optimizer
  const std::string b = supcon::checkpoint_bytes(ck);
  // Layout after the 68-byte head: u32 0 (config), u32 0 + "" (optimizer),
  // i64 steps, u32 2 (tensors), then u32 6 "weight", u8 dtype at 68+4+4+8+4+4+6 = 98.
  const std::size_t dtype_at = 98;
  REQUIRE(b.substr(dtype_at - 6, 6) == "weight");
  std::string bad = b;
  bad[dtype_at] = 3;
  CHECK_THROWS_WITH(supcon::parse_checkpoint(reseal(bad), "d.ck"),
                    Catch::Contains("unknown dtype code 3"));
  bad = b;
  bad[dtype_at - 10 - 4 + 3] = 0x7f;  // a model tensor count near 2^31
  CHECK_THROWS_WITH(supcon::parse_checkpoint(reseal(bad), "n.ck"),
                    Catch::Contains("more than the file can hold"));
  bad = b;
  bad.insert(b.size() - 8, "zz");
  CHECK_THROWS_WITH(supcon::parse_checkpoint(reseal(bad), "t.ck"),
                    Catch::Contains("2 unexpected bytes"));
}

TEST_CASE("An interrupted save leaves the previous checkpoint intact") {
  Affine<float> m(3, 2);
  supcon::Sgd<float> opt(m.parameter_list(), supcon::SgdOptions{});
  const std::string p = tmp_path("atomic.ck");
  Checkpoint good = sample_checkpoint(m, opt);
  supcon::save_checkpoint(p, good);
  // Make the temporary file impossible to create: a directory holds its name.
  const std::string tmp = p + ".tmp." + std::to_string(::getpid());
  REQUIRE(::mkdir(tmp.c_str(), 0755) == 0);
  Checkpoint newer = good;
  newer.epoch = 99;
  CHECK_THROWS_WITH(supcon::save_checkpoint(p, newer), Catch::Contains("atomic.ck"));
  ::rmdir(tmp.c_str());
  CHECK(supcon::load_checkpoint(p).epoch == 3);
  CHECK_THROWS_AS(supcon::save_checkpoint("/nonexistent_dir/x.ck", good), IoError);
}

TEST_CASE("Restoring into a model of another shape names the tensor and both shapes") {
  Affine<float> small(3, 2), big(4, 2);
  Checkpoint ck;
  supcon::store_module(ck, small);
  ck.source = "small.ck";
  const Tensor<float> before = big.weight.value;
  CHECK_THROWS_WITH(
      supcon::restore_module(ck, big),
      "small.ck: the model state does not fit: weight: checkpoint has shape (2, 3), "
      "model expects (2, 4); running_mean: checkpoint has shape (3,), model expects (4,)");
  CHECK_THROWS_AS(supcon::restore_module(ck, big), ShapeError);
  for (index_t k = 0; k < before.size(); ++k)
    CHECK(big.weight.value[k] == before[k]);  // bias untouched too
}

TEST_CASE("Missing and unexpected keys are listed by name") {
  Affine<float> with(3, 2, true), without(3, 2, false);
  Checkpoint ck;
  supcon::store_module(ck, without);
  CHECK_THROWS_WITH(supcon::restore_module(ck, with),
                    Catch::Contains("missing keys: running_mean"));
  supcon::store_module(ck, with);
  CHECK_THROWS_WITH(supcon::restore_module(ck, without),
                    Catch::Contains("unexpected keys: running_mean"));
}

TEST_CASE("Optimizer state is refused for another optimizer, or when the checkpoint has none") {
  Affine<float> m(3, 2);
  supcon::SgdOptions o;
  o.momentum = 0.5;
  supcon::Sgd<float> sgd(m.parameter_list(), o);
  supcon::AdamW<float> adamw(m.parameter_list(), supcon::AdamWOptions{});
  Checkpoint ck = supcon::make_checkpoint<float>(m, &sgd, 0, 0, supcon::Rng());
  CHECK_THROWS_WITH(supcon::restore_optimizer(ck, adamw),
                    Catch::Contains("'sgd'") && Catch::Contains("'adamw'"));
  supcon::Sgd<float> plain(m.parameter_list(), supcon::SgdOptions{});  // no momentum buffers
  CHECK_THROWS_WITH(supcon::restore_optimizer(ck, plain),
                    Catch::Contains("unexpected keys: momentum.0, momentum.1"));
  const Checkpoint no_opt = supcon::make_checkpoint<float>(m, nullptr, 0, 0, supcon::Rng());
  CHECK_THROWS_WITH(supcon::restore_optimizer(no_opt, sgd), Catch::Contains("no optimizer state"));
}

TEST_CASE("A float32 checkpoint restores into a double model exactly") {
  Affine<float> f(3, 2);
  Affine<double> d(3, 2);
  d.weight.value.zero();
  Checkpoint ck;
  supcon::store_module(ck, f);
  supcon::restore_module(ck, d);
  for (index_t k = 0; k < f.weight.value.size(); ++k)
    CHECK(d.weight.value[k] == static_cast<double>(f.weight.value[k]));
}
