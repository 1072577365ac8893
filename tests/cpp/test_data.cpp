// Data loading in C++: IDX round trips (plain and gzip'd) and malformed files.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "loom/data/idx.h"
#include "loom/loom.h"

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("loom_test_data_" + std::to_string(::getpid()) + "_" + name)).string();
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

bool same(const loom::Tensor& a, const loom::Tensor& b) {
  return a.sizes() == b.sizes() && loom::all(loom::eq(a, b)).item().to_bool();
}

std::string error_of(const std::string& path) {
  try {
    loom::data::read_idx(path);
  } catch (const loom::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Idx, HandWrittenUint8) {
  // 2x3 uint8 written byte by byte, independent of write_idx.
  std::string path = temp_path("u8.idx");
  write_bytes(path, {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 5, 6});
  loom::Tensor t = loom::data::read_idx(path);
  ASSERT_EQ(t.dtype(), loom::DType::UInt8);
  ASSERT_EQ(t.sizes(), (loom::Shape{2, 3}));
  const uint8_t* d = t.data<uint8_t>();
  EXPECT_EQ(d[0], 1);
  EXPECT_EQ(d[3], 250);
  EXPECT_EQ(d[5], 6);
  std::remove(path.c_str());
}

TEST(Idx, HandWrittenBigEndianInt32AndFloat) {
  std::string path = temp_path("i32.idx");
  write_bytes(path, {0, 0, 0x0C, 1, 0, 0, 0, 2, 0x00, 0x00, 0x01, 0x02, 0xff, 0xff, 0xff, 0xfe});
  loom::Tensor t = loom::data::read_idx(path);
  ASSERT_EQ(t.dtype(), loom::DType::Int32);
  EXPECT_EQ(t.data<int32_t>()[0], 258);
  EXPECT_EQ(t.data<int32_t>()[1], -2);
  write_bytes(path, {0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3f, 0xc0, 0x00, 0x00});  // 1.5f big-endian
  t = loom::data::read_idx(path);
  EXPECT_EQ(t.data<float>()[0], 1.5f);
  std::remove(path.c_str());
}

TEST(Idx, RoundTripEveryDtypePlainAndGzip) {
  std::string path = temp_path("rt.idx");
  std::string gz_path = temp_path("rt.idx.gz");
  for (loom::DType dt : {loom::DType::UInt8, loom::DType::Int8, loom::DType::Int16, loom::DType::Int32,
                         loom::DType::Float32, loom::DType::Float64}) {
    loom::Tensor src = loom::to_dtype(loom::arange(int64_t(0), int64_t(24), int64_t(1), loom::DType::Float64), dt);
    src = loom::reshape(src, {2, 3, 4});
    loom::data::write_idx(path, src);
    loom::Tensor back = loom::data::read_idx(path);
    ASSERT_EQ(back.dtype(), dt);
    ASSERT_EQ(back.sizes(), src.sizes());
    EXPECT_TRUE(same(back, src)) << loom::dtype_name(dt);

    // The same file gzip'd (detected by magic, not by name).
    loom::data::write_idx(gz_path, src, /*gzip=*/true);
    std::ifstream gin(gz_path, std::ios::binary);
    ASSERT_EQ(gin.get(), 0x1f);
    loom::Tensor back_gz = loom::data::read_idx(gz_path);
    EXPECT_TRUE(same(back_gz, src)) << loom::dtype_name(dt);
  }
  std::remove(path.c_str());
  std::remove(gz_path.c_str());
}

TEST(Idx, MalformedFilesNameTheFile) {
  std::string path = temp_path("bad.idx");
  write_bytes(path, {0, 0, 0x08, 1, 0, 0, 0, 5, 1, 2});  // truncated payload
  std::string e = error_of(path);
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;

  write_bytes(path, {'P', 'K', 3, 4, 0, 0});  // bad magic
  e = error_of(path);
  EXPECT_NE(e.find("bad magic"), std::string::npos) << e;

  write_bytes(path, {0, 0, 0x08, 1, 0, 0, 0, 2, 1, 2, 3});  // trailing byte: dims do not match
  e = error_of(path);
  EXPECT_NE(e.find("trailing"), std::string::npos) << e;

  write_bytes(path, {0, 0, 0x0E, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  e = error_of(path);
  EXPECT_NE(e.find("absurd"), std::string::npos) << e;

  write_bytes(path, {0, 0, 0x07, 1, 0, 0, 0, 1, 0});
  e = error_of(path);
  EXPECT_NE(e.find("type code"), std::string::npos) << e;

  write_bytes(path, {0, 0});
  e = error_of(path);
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  std::remove(path.c_str());

  e = error_of("/usr/share/datasets/fashion-mnist/does-not-exist-idx1-ubyte.gz");
  EXPECT_NE(e.find("dataset-fashion-mnist"), std::string::npos) << e;
  e = error_of(temp_path("missing.idx"));
  EXPECT_NE(e.find("no such file"), std::string::npos) << e;
}

}  // namespace

namespace {

TEST(Tokenizer, CharRoundTripAndJson) {
  std::string text = "hello wörld 😀 hello";
  loom::data::CharTokenizer tok;
  tok.train(text);
  EXPECT_EQ(tok.vocab_size(), 10);  // ' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w', 'ö', '😀'
  auto ids = tok.encode(text);
  EXPECT_EQ(ids.size(), 19u);
  EXPECT_EQ(ids[0], 3);  // 'h'
  std::vector<int64_t> ids64(ids.begin(), ids.end());
  EXPECT_EQ(tok.decode(ids64), text);
  auto back = loom::data::CharTokenizer::from_json(tok.to_json());
  EXPECT_EQ(back.encode(text), ids);
  EXPECT_THROW(tok.encode("xyz"), loom::Error);
}

TEST(Tokenizer, BpeRoundTripDeterministicAndJson) {
  std::string corpus;
  for (int i = 0; i < 50; ++i) corpus += "the cat sat on the mat, the end. ";
  loom::data::ByteLevelBPETokenizer a, b;
  a.train(corpus, 265);
  b.train(corpus, 265);
  EXPECT_EQ(a.vocab_size(), 265);
  EXPECT_EQ(a.merges(), b.merges());
  auto ids = a.encode(corpus);
  EXPECT_LT(ids.size(), corpus.size() / 2);
  std::vector<int64_t> ids64(ids.begin(), ids.end());
  EXPECT_EQ(a.decode(ids64), corpus);
  std::string bytes("\xff\x00\x80 the\xc3", 7);
  auto bid = a.encode(bytes);
  EXPECT_EQ(a.decode(std::vector<int64_t>(bid.begin(), bid.end())), bytes);
  auto c = loom::data::ByteLevelBPETokenizer::from_json(a.to_json());
  EXPECT_EQ(c.encode(corpus), ids);
  EXPECT_THROW(loom::data::ByteLevelBPETokenizer::from_json("{\"type\": 1"), loom::Error);
}

TEST(Prefetcher, GathersBatchesInOrderAndPropagatesErrors) {
  loom::Tensor x = loom::reshape(loom::arange(int64_t(0), int64_t(20), int64_t(1), loom::DType::Float32), {10, 2});
  loom::data::BatchPrefetcher p({x}, {{0, 1}, {9}, {4, 4, 5}});
  std::vector<loom::Tensor> batch;
  ASSERT_TRUE(p.next(batch));
  EXPECT_EQ(batch[0].sizes(), (loom::Shape{2, 2}));
  ASSERT_TRUE(p.next(batch));
  EXPECT_EQ(batch[0].data<float>()[1], 19.0f);
  ASSERT_TRUE(p.next(batch));
  EXPECT_EQ(batch[0].data<float>()[2], 8.0f);
  EXPECT_FALSE(p.next(batch));

  loom::data::BatchPrefetcher bad({x}, {{0}, {10}});
  ASSERT_TRUE(bad.next(batch));
  EXPECT_THROW(bad.next(batch), loom::Error);
  EXPECT_FALSE(bad.next(batch));

  // Dropped mid-epoch with a full queue: the destructor stops and joins the worker.
  { loom::data::BatchPrefetcher early({x}, std::vector<std::vector<int64_t>>(100, {1, 2})); }
}

TEST(Prefetcher, BatchesSeeInPlaceUpdatesMadeBeforeNext) {
  // Each step overwrites the dataset; the next batch must hold the new values (prefetched copies are regathered).
  loom::Tensor x = loom::zeros({8, 1000}, loom::DType::Float32);
  std::vector<std::vector<int64_t>> batches{{0, 1}, {2, 3}, {4, 5}, {6, 7}};
  loom::data::BatchPrefetcher p({x}, batches);
  std::vector<loom::Tensor> batch;
  for (int step = 0; step < 4; ++step) {
    ASSERT_TRUE(p.next(batch));
    const float* values = batch[0].data<float>();
    for (int64_t i = 0; i < batch[0].numel(); ++i) ASSERT_EQ(values[i], static_cast<float>(step)) << "step " << step;
    loom::fill_(x, loom::Scalar(static_cast<double>(step + 1)));
  }
  EXPECT_FALSE(p.next(batch));
  EXPECT_EQ(p.regathered(), 3);
  // Without updates every prefetched batch is used as is.
  loom::data::BatchPrefetcher quiet({x}, batches);
  while (quiet.next(batch)) {
  }
  EXPECT_EQ(quiet.regathered(), 0);
}

}  // namespace
