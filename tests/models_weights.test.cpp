// Weights as .npy files named by PyTorch state_dict keys, and the parameter
// and FLOP counts of the full-size networks against PyTorch's.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <supcon/models/classifier.hpp>
#include <supcon/models/supcon_model.hpp>
#include <supcon/train/weights_npy.hpp>

using namespace supcon;
namespace fs = std::filesystem;

namespace {

const std::string kWeights = std::string(SUPCON_TEST_DATA_DIR) + "/models/resnet18_supcon_mlp/weights";

SupConModel<float> tiny(std::uint64_t seed) {
  Rng rng(seed);
  return SupConModel<float>({"resnet18", 3, 4, Stem::cifar}, HeadKind::mlp, 8, rng);
}

// A fresh scratch directory holding a copy of the fixture weights.
std::string scratch_copy(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("supcon_models_" + name);
  fs::remove_all(dir);
  fs::copy(kWeights, dir);
  return dir.string();
}

template <class E>
void check_throws(SupConModel<float>& m, const std::string& dir, const std::string& text) {
  try {
    load_weights_npy(m, dir);
    FAIL("no error");
  } catch (const E& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(text) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("The state lists PyTorch's keys: encoder, shortcut projections and mlp head", "[models]") {
  auto m = tiny(1);
  std::vector<NamedTensor<float>> state;
  m.state("", state);
  std::vector<std::string> keys;
  for (const auto& s : state) keys.push_back(s.name);
  // 20 convolutions' worth of tensors: 1 + 8 * 2 + 3 shortcuts; 5 per conv + bn; plus 4 head tensors
  CHECK(keys.size() == 20 * 5 + 4);
  for (const char* k : {"encoder.conv1.weight", "encoder.bn1.running_var", "encoder.layer1.0.conv2.weight",
                        "encoder.layer2.0.shortcut.0.weight", "encoder.layer4.0.shortcut.1.running_mean",
                        "head.0.weight", "head.2.bias"})
    CHECK(std::find(keys.begin(), keys.end(), k) != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "encoder.layer1.0.shortcut.0.weight") == keys.end());
}

TEST_CASE("Exported weights load back into a differently initialised model bit for bit", "[models]") {
  auto a = tiny(1), b = tiny(2);
  const std::string dir = (fs::temp_directory_path() / "supcon_models_roundtrip").string();
  fs::remove_all(dir);
  save_weights_npy(a, dir);
  CHECK(fs::exists(dir + "/encoder.layer3.0.shortcut.1.running_var.npy"));
  load_weights_npy(b, dir);
  std::vector<NamedTensor<float>> sa, sb;
  a.state("", sa);
  b.state("", sb);
  for (std::size_t i = 0; i < sa.size(); ++i) CHECK(sa[i].tensor->vec() == sb[i].tensor->vec());
}

TEST_CASE("Importing names the missing and the unexpected keys", "[models]") {
  const std::string dir = scratch_copy("keys");
  fs::remove(dir + "/head.2.weight.npy");
  fs::copy_file(dir + "/head.0.bias.npy", dir + "/head.1.bias.npy");
  auto m = tiny(3);
  check_throws<IoError>(m, dir, "missing head.2.weight; unexpected head.1.bias");
}

TEST_CASE("Importing refuses a tensor of the wrong shape and names both shapes", "[models]") {
  const std::string dir = scratch_copy("shape");
  save_npy(dir + "/head.2.bias.npy", Tensor<float>({9}));
  auto m = tiny(4);
  check_throws<ShapeError>(m, dir, "head.2.bias.npy: shape (9,) does not match the model's head.2.bias of shape (8,)");
}

TEST_CASE("Importing refuses NaN and leaves the model unchanged", "[models]") {
  const std::string dir = scratch_copy("nan");
  Tensor<float> w = load_npy<float>(dir + "/head.0.weight.npy");
  w[3] = std::nanf("");
  save_npy(dir + "/head.0.weight.npy", w);
  auto m = tiny(5);
  const Tensor<float> before = m.encoder().forward(Tensor<float>({2, 3, 8, 8}, 0.5f));
  check_throws<ValueError>(m, dir, "head.0.weight.npy: contains NaN");
  CHECK(m.encoder().forward(Tensor<float>({2, 3, 8, 8}, 0.5f)).vec() == before.vec());
}

TEST_CASE("Importing from a missing directory names it", "[models]") {
  auto m = tiny(6);
  check_throws<IoError>(m, "/no/such/weights", "/no/such/weights: weights directory does not exist");
}

TEST_CASE("Unknown architectures, stems and heads are refused by name", "[models]") {
  Rng rng(1);
  CHECK_THROWS_WITH(ResNet<float>({"resnet19"}, rng), Catch::Contains("unknown architecture 'resnet19'"));
  CHECK_THROWS_WITH(parse_stem("vgg"), Catch::Contains("stem: expected cifar or imagenet"));
  CHECK_THROWS_WITH(parse_head("deep"), Catch::Contains("head: expected mlp or linear"));
  CHECK_THROWS_AS(ResNet<float>({"resnet18", 0}, rng), ValueError);
}

TEST_CASE("Parameter counts and FLOPs equal PyTorch's for every architecture and head", "[models]") {
  // param_counts.txt: counted by tools/make_model_fixtures.py from PyTorch's modules.
  std::ifstream in(std::string(SUPCON_TEST_DATA_DIR) + "/models/param_counts.txt");
  REQUIRE(in);
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string arch, kind, head, stem;
    index_t feat_dim, classes, channels, width, size, params;
    double flops;
    is >> arch >> kind >> head >> feat_dim >> classes >> channels >> width >> stem >> size >> params >> flops;
    INFO(line);
    Rng rng(0);
    const ResNetConfig cfg{arch, channels, width, parse_stem(stem)};
    std::vector<LayerSummary> summary;
    if (kind == "supcon") {
      SupConModel<float> m(cfg, parse_head(head), feat_dim, rng);
      CHECK(count_parameters(m) == params);
      summary = m.summary({channels, size, size});
    } else {
      CEModel<float> m(cfg, classes, rng);
      CHECK(count_parameters(m) == params);
      summary = m.summary({channels, size, size});
    }
    CHECK(summary_totals(summary).first == params);
    CHECK(summary_totals(summary).second == flops);
    ++rows;
  }
  CHECK(rows == 14);
}
