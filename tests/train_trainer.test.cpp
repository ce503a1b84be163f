// The trainer on a tiny synthetic data set: the loss falls, a resumed run
// ends with the weights of an uninterrupted one, the stop flag saves a
// checkpoint, and the linear probe separates separable features.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <supcon/train/metrics.hpp>
#include <supcon/train/train_run.hpp>

using namespace supcon;

namespace {
// 64 grayscale 8x8 images of two classes: a bright left half (class 0) or a
// bright right half (class 1), with pixel noise.
data::InMemoryDataset halves(index_t n = 64, std::uint64_t seed = 3) {
  Rng rng(seed);
  std::vector<std::uint8_t> px;
  std::vector<std::int64_t> labels;
  for (index_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(i % 2);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        const bool bright = (x < 4) == (c == 0);
        px.push_back(static_cast<std::uint8_t>((bright ? 180 : 40) + rng.below(60)));
      }
    labels.push_back(c);
  }
  return data::InMemoryDataset(px, labels, 1, 8, 8, 2);
}

data::AugmentConfig small_augment() {
  data::AugmentConfig a = data::AugmentConfig::fashion_mnist();
  a.out_height = a.out_width = 8;
  a.crop_scale_min = 0.6;
  return a;
}

TrainConfig tiny(Method m, index_t epochs) {
  TrainConfig c;
  c.method = m;
  c.encoder.width = 2;
  c.feat_dim = 8;
  c.num_classes = 2;
  c.epochs = epochs;
  c.batch_size = 16;
  c.lr = 0.05;
  c.seed = 11;
  return c;
}

std::vector<float> weights(Trainer<float>& tr) {
  std::vector<NamedTensor<float>> s;
  tr.model().state("", s);
  std::vector<float> w;
  for (const auto& nt : s) w.insert(w.end(), nt.tensor->begin(), nt.tensor->end());
  return w;
}

std::string temp_dir(const std::string& name) {
  const std::string d = (std::filesystem::temp_directory_path() / ("supcon_" + name)).string();
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

double mean_loss(Trainer<float>& tr) {
  EpochReport r;
  REQUIRE(tr.run_epoch(nullptr, {}, r));
  return r.loss;
}
}  // namespace

// Mean loss of the last epoch over that of the first, after 6 epochs.
double loss_ratio(Method m) {
  const data::InMemoryDataset ds = halves();
  Trainer<float> tr(tiny(m, 6), ds, small_augment());
  const double first = mean_loss(tr);
  double last = first;
  while (!tr.done()) last = mean_loss(tr);
  return last / first;
}

TEST_CASE("SupCon training lowers the loss on a separable synthetic set") {
  CHECK(loss_ratio(Method::supcon) < 1);
}

TEST_CASE("cross-entropy training lowers the loss on a separable synthetic set") {
  CHECK(loss_ratio(Method::ce) < 1);
}

TEST_CASE("each step reports its position, loss and learning rate") {
  const data::InMemoryDataset ds = halves();
  Trainer<float> tr(tiny(Method::simclr, 2), ds, small_augment());
  std::vector<StepReport> steps;
  EpochReport r;
  tr.run_epoch(nullptr, [&](const StepReport& s) { steps.push_back(s); }, r);
  REQUIRE(steps.size() == 4);  // 64 images / batch 16
  CHECK(steps[3].batch == 3);
  CHECK(steps[3].batches == 4);
  CHECK(steps[0].lr == Approx(tr.lr_of(0, 0)));
  CHECK(std::isfinite(steps[0].loss));
  CHECK(r.loss == Approx((steps[0].loss + steps[1].loss + steps[2].loss + steps[3].loss) / 4));
}

TEST_CASE("a run resumed from its epoch-1 checkpoint ends with the weights of an uninterrupted run") {
  const data::InMemoryDataset ds = halves();
  Trainer<float> straight(tiny(Method::supcon, 2), ds, small_augment());
  while (!straight.done()) mean_loss(straight);

  Trainer<float> first(tiny(Method::supcon, 2), ds, small_augment());
  mean_loss(first);
  const std::string path = temp_dir("resume") + "/ck.ckpt";
  save_checkpoint(path, first.checkpoint());
  Trainer<float> resumed(tiny(Method::supcon, 2), ds, small_augment());
  resumed.restore(load_checkpoint(path));
  CHECK(resumed.epoch() == 1);
  mean_loss(resumed);
  CHECK(weights(resumed) == weights(straight));  // bit-identical
}

TEST_CASE("the stop flag stops before the next step, and resuming mid-epoch is exact") {
  const data::InMemoryDataset ds = halves();
  Trainer<float> straight(tiny(Method::ce, 2), ds, small_augment());
  while (!straight.done()) mean_loss(straight);

  // Stop after the second step of epoch 1, as a Ctrl-C would.
  std::atomic<bool> stop{false};
  Trainer<float> a(tiny(Method::ce, 2), ds, small_augment());
  EpochReport r;
  CHECK_FALSE(a.run_epoch(&stop, [&](const StepReport& s) { stop = s.batch == 1; }, r));
  CHECK(a.epoch() == 0);
  CHECK(a.batch() == 2);
  Trainer<float> b(tiny(Method::ce, 2), ds, small_augment());
  b.restore(a.checkpoint());
  while (!b.done()) mean_loss(b);
  CHECK(weights(b) == weights(straight));
}

TEST_CASE("train_run writes a checkpoint, metrics and curves, and an interrupted run loses nothing") {
  const data::InMemoryDataset ds = halves();
  const std::string dir = temp_dir("run");
  std::atomic<bool> stop{true};  // as if Ctrl-C came before the first step
  RunOptions opt;
  opt.out_dir = dir;
  opt.stop = &stop;
  opt.monitor_bank = &ds;
  opt.monitor_queries = &ds;
  opt.augment = small_augment();
  Trainer<float> t1(tiny(Method::supcon, 2), ds, small_augment());
  const RunResult r1 = train_run(t1, opt);
  CHECK(r1.interrupted);
  CHECK_FALSE(r1.finished);
  CHECK(std::filesystem::exists(dir + "/checkpoint.ckpt"));

  stop = false;
  const Checkpoint ck = load_checkpoint(dir + "/checkpoint.ckpt");
  opt.resume_from = &ck;
  Trainer<float> t2(tiny(Method::supcon, 2), ds, small_augment());
  const RunResult r2 = train_run(t2, opt);
  CHECK(r2.finished);
  CHECK(r2.epochs_done == 2);
  const std::string csv = read_file(dir + "/metrics.csv");
  CHECK(csv.rfind("epoch,loss,lr,seconds,images_per_s,knn_monitor\n1,", 0) == 0);
  CHECK(csv.find("\n2,") != std::string::npos);
  CHECK(read_file(dir + "/metrics.json").find("\"knn_monitor\": ") != std::string::npos);
  CHECK(read_file(dir + "/loss.svg").find("<polyline") != std::string::npos);
  CHECK(std::filesystem::exists(dir + "/knn.svg"));
  // The final checkpoint carries the whole log.
  CHECK(load_checkpoint(dir + "/checkpoint.ckpt").config.at("log.csv") == csv);
}

TEST_CASE("restoring a checkpoint of another configuration names the differing option") {
  const data::InMemoryDataset ds = halves();
  Trainer<float> a(tiny(Method::supcon, 2), ds, small_augment());
  TrainConfig other = tiny(Method::supcon, 2);
  other.lr = 0.1;
  Trainer<float> b(other, ds, small_augment());
  CHECK_THROWS_WITH(b.restore(a.checkpoint()), Catch::Contains("train.lr"));
}

TEST_CASE("a damaged checkpoint is refused with a message naming the file") {
  const data::InMemoryDataset ds = halves();
  Trainer<float> a(tiny(Method::supcon, 1), ds, small_augment());
  const std::string path = temp_dir("damaged") + "/ck.ckpt";
  std::string bytes = checkpoint_bytes(a.checkpoint());
  bytes[bytes.size() / 2] ^= 0x10;
  write_file_atomic(path, bytes);
  CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains(path) && Catch::Contains("damaged"));
}

TEST_CASE("the training configuration survives the trip through a checkpoint") {
  TrainConfig c = tiny(Method::supcon_in, 7);
  c.lr = 0.1234567890123;
  c.warmup = 0.5;
  c.schedule = "step";
  c.crop_scale_min = 0.55;
  const TrainConfig d = train_config_from(to_strings(c), "x");
  CHECK(to_strings(d) == to_strings(c));
  CHECK(d.lr == c.lr);
  CHECK(d.crop_scale_min == c.crop_scale_min);
}

TEST_CASE("an unset crop scale leaves no trace, so older checkpoints still match") {
  TrainConfig c = tiny(Method::ce, 1);
  CHECK(to_strings(c).count("train.crop_scale_min") == 0);
  CHECK(train_config_from(to_strings(c), "x").crop_scale_min == 0);
}

TEST_CASE("the run's crop scale replaces the augmentation's, and only when set") {
  data::AugmentConfig a;
  a.crop_scale_min = 0.3;
  TrainConfig c = tiny(Method::ce, 1);
  CHECK(training_views(a, c).crop_scale_min == 0.3);
  c.crop_scale_min = 0.7;
  CHECK(training_views(a, c).crop_scale_min == 0.7);
}

TEST_CASE("bad training options are refused with the option's name") {
  const data::InMemoryDataset ds = halves();
  TrainConfig c = tiny(Method::supcon, 0);
  CHECK_THROWS_WITH(validate(c), Catch::Contains("--epochs must be >= 1"));
  c = tiny(Method::supcon, 1);
  c.batch_size = 0;
  CHECK_THROWS_WITH(validate(c), Catch::Contains("--batch-size"));
  c = tiny(Method::supcon, 1);
  c.temperature = -1;
  CHECK_THROWS_WITH(validate(c), Catch::Contains("--temperature"));
  c = tiny(Method::supcon, 1);
  c.crop_scale_min = 1.5;
  CHECK_THROWS_WITH(validate(c), Catch::Contains("--crop-scale must be in (0, 1]"));
  CHECK_THROWS_WITH(parse_method("supcom"), Catch::Contains("--method"));
  c = tiny(Method::supcon, 1);
  c.batch_size = 128;  // more than the 64 images
  CHECK_THROWS_WITH(Trainer<float>(c, ds, small_augment()), Catch::Contains("larger than the training set"));
}

TEST_CASE("the linear probe and kNN separate the features of separable classes") {
  // Features: class c has a large value in coordinate c, plus noise.
  Rng rng(5);
  FeatureSet<float> train, test;
  train.features = Tensor<float>({300, 5});
  test.features = Tensor<float>({60, 5});
  for (FeatureSet<float>* fs : {&train, &test})
    for (index_t i = 0; i < fs->features.dim(0); ++i) {
      const index_t c = i % 3;
      for (index_t j = 0; j < 5; ++j)
        fs->features(i, j) = static_cast<float>(0.3 * rng.normal() + (j == c ? 2.0 : 0.0));
      fs->labels.push_back(c);
    }
  ProbeOptions opt;
  opt.epochs = 10;
  LinearProbe<float> probe = train_linear_probe(train, 3, opt);
  CHECK(probe.epoch_loss.back() < probe.epoch_loss.front());
  CHECK(classification_metrics(probe.logits(test.features), test.labels).top1 > 0.97);
  const auto pred = knn_predict(train.features, train.labels, test.features, 3);
  CHECK(prediction_metrics(pred, test.labels, 3).top1 > 0.97);
}

TEST_CASE("features are extracted in data-set order with the encoder in evaluation mode") {
  const data::InMemoryDataset ds = halves(20);
  Rng rng(1);
  ResNet<float> enc(ResNetConfig{"resnet18", 1, 2, Stem::cifar, false}, rng);
  const FeatureSet<float> f = extract_features(enc, ds, small_augment(), 8);
  CHECK(f.features.shape() == Shape{20, enc.feature_dim()});
  CHECK(f.labels == ds.labels());
  CHECK_FALSE(enc.training());
  // The same image alone gives the same row (evaluation mode: no batch statistics).
  const FeatureSet<float> one = extract_features(enc, data::head(ds, 1), small_augment());
  for (index_t j = 0; j < enc.feature_dim(); ++j) CHECK(one.features(0, j) == Approx(f.features(0, j)));
}
