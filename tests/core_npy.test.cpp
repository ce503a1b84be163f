// .npy reading and writing: round trips, and a clear error for every kind of bad file.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <supcon/core/npy.hpp>

using supcon::IoError;
using supcon::Tensor;

namespace {
std::string tmp_path(const std::string& name) {
  return std::string("/tmp/supcon_npy_test_") + name;
}
void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
// A v1.0 .npy file with the given header dict and data bytes.
std::string npy_with_header(std::string dict, const std::string& data) {
  const std::size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict + data;
}
}  // namespace

TEST_CASE("A tensor survives a save/load round trip in each supported dtype") {
  Tensor<float> f({2, 3, 4});
  for (supcon::index_t i = 0; i < f.size(); ++i) f[i] = 0.5f * static_cast<float>(i) - 3.0f;
  supcon::save_npy(tmp_path("f4.npy"), f);
  auto g = supcon::load_npy<float>(tmp_path("f4.npy"));
  CHECK(g.shape() == f.shape());
  for (supcon::index_t i = 0; i < f.size(); ++i) CHECK(g[i] == f[i]);

  Tensor<double> d({5}, std::vector<double>{1e-300, -2, 3, 4, 5});
  supcon::save_npy(tmp_path("f8.npy"), d);
  CHECK(supcon::load_npy<double>(tmp_path("f8.npy"))[0] == 1e-300);

  Tensor<std::int64_t> l({3}, std::vector<std::int64_t>{7, -1, 1LL << 40});
  supcon::save_npy(tmp_path("i8.npy"), l);
  CHECK(supcon::load_npy<std::int64_t>(tmp_path("i8.npy"))[2] == (1LL << 40));

  Tensor<std::int32_t> i4({2, 2}, std::vector<std::int32_t>{1, 2, 3, 4});
  supcon::save_npy(tmp_path("i4.npy"), i4);
  CHECK(supcon::load_npy<std::int64_t>(tmp_path("i4.npy"))[3] == 4);
}

TEST_CASE("Rank-0 and empty arrays round-trip") {
  Tensor<float> s(supcon::Shape{}, 2.5f);
  supcon::save_npy(tmp_path("scalar.npy"), s);
  auto r = supcon::load_npy<float>(tmp_path("scalar.npy"));
  CHECK(r.rank() == 0);
  CHECK(r[0] == 2.5f);
  Tensor<float> e({0, 4});
  supcon::save_npy(tmp_path("empty.npy"), e);
  CHECK(supcon::load_npy<float>(tmp_path("empty.npy")).shape() == supcon::Shape{0, 4});
}

TEST_CASE("Integer files convert to floating tensors; floating files refuse to become labels") {
  Tensor<std::int32_t> i4({2}, std::vector<std::int32_t>{3, 4});
  supcon::save_npy(tmp_path("lab.npy"), i4);
  CHECK(supcon::load_npy<double>(tmp_path("lab.npy"))[1] == 4.0);
  Tensor<float> f({2}, 1.0f);
  supcon::save_npy(tmp_path("notlab.npy"), f);
  CHECK_THROWS_WITH(supcon::load_npy<std::int64_t>(tmp_path("notlab.npy")),
                    Catch::Contains("notlab.npy") && Catch::Contains("integer"));
}

TEST_CASE("Files written by NumPy's own header layout are read") {
  std::string data(2 * 4, '\0');
  const float v[2] = {1.0f, 2.0f};
  std::memcpy(&data[0], v, 8);
  write_raw(tmp_path("np.npy"),
            npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data));
  auto t = supcon::load_npy<float>(tmp_path("np.npy"));
  CHECK(t[1] == 2.0f);
}

TEST_CASE("Every malformed .npy file is refused with its name and the problem") {
  const std::string p = tmp_path("bad.npy");
  const std::string eight(8, '\0');

  write_raw(p, "NOTNUMPY");
  CHECK_THROWS_WITH(supcon::load_npy<float>(p), Catch::Contains("bad.npy") && Catch::Contains("magic"));

  write_raw(p, npy_with_header("{'descr': '<u2', 'fortran_order': False, 'shape': (4,), }", eight));
  CHECK_THROWS_WITH(supcon::load_npy<float>(p), Catch::Contains("bad.npy") && Catch::Contains("dtype"));

  write_raw(p, npy_with_header("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", eight));
  CHECK_THROWS_WITH(supcon::load_npy<float>(p), Catch::Contains("dtype"));

  write_raw(p, npy_with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", eight));
  CHECK_THROWS_WITH(supcon::load_npy<float>(p), Catch::Contains("bad.npy") && Catch::Contains("Fortran"));

  write_raw(p, npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", eight));
  CHECK_THROWS_WITH(supcon::load_npy<float>(p), Catch::Contains("bad.npy") && Catch::Contains("truncated"));

  write_raw(p, npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", eight));
  CHECK_THROWS_WITH(supcon::load_npy<float>(p), Catch::Contains("bad.npy") && Catch::Contains("(1,)"));

  write_raw(p, npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }", eight));
  CHECK_THROWS_WITH(supcon::load_npy<float>(p), Catch::Contains("shape"));

  write_raw(p, npy_with_header("{'descr': '<f4', 'shape': (2,), }", eight));
  CHECK_THROWS_WITH(supcon::load_npy<float>(p), Catch::Contains("fortran_order"));

  write_raw(p, std::string("\x93NUMPY\x01\x00\xff\x00{'descr'", 18));
  CHECK_THROWS_WITH(supcon::load_npy<float>(p), Catch::Contains("truncated"));

  CHECK_THROWS_WITH(supcon::load_npy<float>(tmp_path("does_not_exist.npy")),
                    Catch::Contains("does_not_exist.npy"));
}

TEST_CASE("Saving over an existing file replaces it whole or not at all") {
  const std::string p = tmp_path("atomic.npy");
  supcon::save_npy(p, Tensor<float>({2}, 1.0f));
  // A directory that does not exist: the write fails and names the file.
  CHECK_THROWS_AS(supcon::save_npy("/nonexistent_dir/x.npy", Tensor<float>({2}, 1.0f)), IoError);
  CHECK(supcon::load_npy<float>(p)[0] == 1.0f);
}
