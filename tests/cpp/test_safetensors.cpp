// The C++ safetensors API: round trip of every dtype, the reference byte layout, atomic replacement, hostile files.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "loom/loom.h"

namespace {

using loom::DType;
using loom::Tensor;
namespace fs = std::filesystem;

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("loom_safetensors_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    return out;
  }
  fs::path dir_;
};

Tensor arange_as(int64_t n, DType dtype, const loom::Shape& shape) {
  Tensor t = loom::arange(loom::Scalar(int64_t(0)), loom::Scalar(n));
  return loom::reshape(loom::to_dtype(t, dtype), shape);
}

std::vector<double> values_of(const Tensor& t) {
  Tensor c = loom::contiguous(loom::to_dtype(t, DType::Float64));
  return std::vector<double>(c.data<double>(), c.data<double>() + c.numel());
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string with_header(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t(header.size()) >> (8 * i)) & 0xFF);
  return out + header + data;
}

std::string load_error(const std::string& path) {
  try {
    loom::serialize::load_safetensors(path);
  } catch (const loom::Error& e) {
    EXPECT_EQ(e.kind(), loom::ErrorKind::Value) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected load_safetensors to raise";
  return "";
}

TEST_F(Safetensors, RoundTripEveryDType) {
  const DType dtypes[] = {DType::Bool,    DType::UInt8,    DType::Int8,    DType::Int16,   DType::Int32,
                          DType::Int64,   DType::Float16,  DType::BFloat16, DType::Float32, DType::Float64};
  loom::serialize::NamedTensors tensors;
  for (DType d : dtypes) tensors.emplace_back(std::string("t_") + loom::dtype_name(d), arange_as(6, d, {2, 3}));
  tensors.emplace_back("scalar", loom::scalar_tensor(loom::Scalar(2.5), DType::Float32));
  tensors.emplace_back("empty", loom::zeros({0, 4}));
  // A transposed view of a tensor whose storage is also saved under another name: written contiguously, separately.
  Tensor base = arange_as(6, DType::Float32, {2, 3});
  tensors.emplace_back("base", base);
  tensors.emplace_back("base_t", loom::transpose(base, 0, 1));
  loom::serialize::save_safetensors(path("a.safetensors"), tensors, {{"framework", "loom"}, {"note", "é ✓"}});

  auto loaded = loom::serialize::load_safetensors(path("a.safetensors"));
  EXPECT_EQ(loaded.metadata, (loom::serialize::Metadata{{"framework", "loom"}, {"note", "é ✓"}}));
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  for (const auto& [name, original] : tensors) {
    auto it = std::find_if(loaded.tensors.begin(), loaded.tensors.end(), [&](const auto& p) { return p.first == name; });
    ASSERT_NE(it, loaded.tensors.end()) << name;
    EXPECT_EQ(it->second.dtype(), original.dtype()) << name;
    EXPECT_EQ(it->second.sizes(), original.sizes()) << name;
    EXPECT_TRUE(it->second.is_contiguous());
    EXPECT_EQ(values_of(it->second), values_of(original)) << name;
  }
  EXPECT_EQ(files(), std::vector<std::string>{"a.safetensors"});  // no temporary file left behind
}

TEST_F(Safetensors, ReferenceLayout) {
  // The same bytes as the reference library's own serialization test (safetensors/src/tensor.rs): one F32 tensor
  // "attn.0" of shape [1, 2, 3] holding 0..5, header padded with spaces to a multiple of 8.
  loom::serialize::save_safetensors(path("r.safetensors"), {{"attn.0", arange_as(6, DType::Float32, {1, 2, 3})}});
  std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  std::string expected_data;
  for (float v : {0.f, 1.f, 2.f, 3.f, 4.f, 5.f}) expected_data.append(reinterpret_cast<const char*>(&v), 4);
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(read_bytes(path("r.safetensors")), with_header(padded, expected_data));
  // Tensors are ordered by dtype (I64 before F32 before U8) and then by name, as the reference orders them.
  loom::serialize::save_safetensors(path("o.safetensors"), {{"b", loom::zeros({1}, DType::UInt8)},
                                                              {"c", loom::zeros({1})},
                                                              {"a", loom::zeros({1})},
                                                              {"d", loom::zeros({1}, DType::Int64)}});
  auto loaded = loom::serialize::load_safetensors(path("o.safetensors"));
  std::vector<std::string> names;
  for (const auto& p : loaded.tensors) names.push_back(p.first);
  EXPECT_EQ(names, (std::vector<std::string>{"d", "a", "c", "b"}));
}

TEST_F(Safetensors, FailedSaveKeepsOldFile) {
  std::string target = path("ckpt.safetensors");
  loom::serialize::save_safetensors(target, {{"w", loom::ones({3})}});
  std::string before = read_bytes(target);
  EXPECT_THROW(loom::serialize::save_safetensors(target, {{"w", loom::ones({3})}, {"w", loom::ones({2})}}),
               loom::Error);  // duplicate name
  EXPECT_THROW(loom::serialize::save_safetensors(target, {{"w", Tensor()}}), loom::Error);
  EXPECT_THROW(loom::serialize::save_safetensors(path("missing_dir/x.safetensors"), {{"w", loom::ones({3})}}),
               loom::Error);
  // Renaming onto a directory fails after the data is written: the temporary file must be cleaned up.
  fs::create_directories(dir_ / "adir" / "inner");
  EXPECT_THROW(loom::serialize::save_safetensors(path("adir"), {{"w", loom::ones({3})}}), loom::Error);
  EXPECT_EQ(read_bytes(target), before);
  auto names = files();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"adir", "ckpt.safetensors"}));
}

TEST_F(Safetensors, HostileFilesRaiseNamingTheFile) {
  std::string data(24, '\0');
  std::string good = R"({"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
  write_bytes(path("good.safetensors"), with_header(good, data));
  EXPECT_EQ(loom::serialize::load_safetensors(path("good.safetensors")).tensors.size(), 1u);

  struct Case {
    std::string name, bytes, message;
  };
  std::string huge_length = "\xff\xff\xff\xff\xff\xff\xff\x7f{}";
  std::vector<Case> cases = {
      {"huge", huge_length, "larger than the 100000000-byte limit"},
      {"past_end", with_header(good, data).substr(0, 40), "runs past the end of the file"},
      {"truncated", with_header(good, data.substr(0, 20)), "out of range"},
      {"json", with_header(R"({"x":{"dtype":"F32",)", ""), "not valid JSON"},
      {"dtype", with_header(R"({"x":{"dtype":"F128","shape":[2],"data_offsets":[0,32]}})", std::string(32, '\0')),
       "unknown or unsupported dtype \"F128\""},
      {"overlap", with_header(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                              std::string(12, '\0')),
       "overlap"},
      {"negative", with_header(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0')),
       "negative dimension -2"},
      {"overflow",
       with_header(R"({"x":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                   std::string(8, '\0')),
       "overflows"},
      {"duplicate", with_header(R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                R"("x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                                std::string(1, '\0')),
       "duplicate key 'x'"},
  };
  for (const Case& c : cases) {
    std::string p = path(c.name + ".safetensors");
    write_bytes(p, c.bytes);
    std::string message = load_error(p);
    EXPECT_NE(message.find(p), std::string::npos) << c.name << ": " << message;
    EXPECT_NE(message.find(c.message), std::string::npos) << c.name << ": " << message;
  }
}

TEST_F(Safetensors, RandomCorruptionNeverCrashes) {
  // Bit flips, byte overwrites, digit changes (JSON stays valid) and truncations of a valid file: every load
  // either succeeds or raises loom::Error naming the file. Run under LOOM_SANITIZE=address;undefined as well.
  loom::serialize::NamedTensors tensors = {{"a", arange_as(12, DType::Float32, {3, 4})},
                                           {"b", arange_as(5, DType::Int64, {5})},
                                           {"c", arange_as(3, DType::Bool, {3})},
                                           {"d", loom::zeros({0, 2}, DType::BFloat16)},
                                           {"e", loom::scalar_tensor(loom::Scalar(1.5), DType::Float16)}};
  std::string source = path("good.safetensors"), target = path("bad.safetensors");
  loom::serialize::save_safetensors(source, tensors, {{"note", "fuzz"}});
  const std::string good = read_bytes(source);
  size_t header_end = 8;
  for (int i = 0; i < 8; ++i) header_end += size_t(static_cast<unsigned char>(good[i])) << (8 * i);
  std::vector<size_t> digits;
  for (size_t i = 8; i < header_end; ++i)
    if (good[i] >= '0' && good[i] <= '9') digits.push_back(i);
  std::mt19937_64 rng(1234);
  auto below = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string bad = good;
    size_t kind = below(10);
    if (kind == 0) {
      bad.resize(below(bad.size()));
    } else if (kind == 1) {
      for (int i = 0; i < 8; ++i) bad[below(8)] = static_cast<char>(below(256));
    } else if (kind < 5) {
      for (size_t k = 0, n = 1 + below(3); k < n; ++k) bad[digits[below(digits.size())]] = static_cast<char>('0' + below(10));
    } else {
      for (size_t k = 0, n = 1 + below(4); k < n; ++k) {
        size_t at = below(4) ? below(header_end) : below(bad.size());
        bad[at] = below(2) ? static_cast<char>(below(256)) : static_cast<char>(bad[at] ^ (1 << below(8)));
      }
    }
    write_bytes(target, bad);
    try {
      loom::serialize::load_safetensors(target);
      ++loaded;
    } catch (const loom::Error& e) {
      EXPECT_NE(std::string(e.what()).find(target), std::string::npos) << e.what();
      ++rejected;
    }
  }
  EXPECT_EQ(loaded + rejected, 400);
  EXPECT_GT(rejected, 200);
}

}  // namespace
