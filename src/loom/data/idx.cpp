// IDX reader/writer. zlib's gzread reads gzip'd and plain files alike; we detect gzip ourselves for the messages.
#include "loom/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "loom/core/error.h"
#include "loom/ops/shape.h"

namespace loom::data {

namespace {

constexpr uint64_t kMaxBytes = uint64_t(1) << 40;  // 1 TiB: anything larger is a corrupt header

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  fail(ErrorKind::Value, "read_idx: '", path, "': ", what);
}

bool type_from_code(uint8_t code, DType& dtype) {
  switch (code) {
    case 0x08: dtype = DType::UInt8; return true;
    case 0x09: dtype = DType::Int8; return true;
    case 0x0B: dtype = DType::Int16; return true;
    case 0x0C: dtype = DType::Int32; return true;
    case 0x0D: dtype = DType::Float32; return true;
    case 0x0E: dtype = DType::Float64; return true;
    default: return false;
  }
}

bool code_from_type(DType dtype, uint8_t& code) {
  switch (dtype) {
    case DType::UInt8: code = 0x08; return true;
    case DType::Int8: code = 0x09; return true;
    case DType::Int16: code = 0x0B; return true;
    case DType::Int32: code = 0x0C; return true;
    case DType::Float32: code = 0x0D; return true;
    case DType::Float64: code = 0x0E; return true;
    default: return false;
  }
}

// Owns a gzFile; reads exactly n bytes or reports how many it got.
class Reader {
 public:
  Reader(const std::string& path, bool gz) : path_(path), gz_(gz) {
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) bad(path, std::string("cannot open: ") + std::strerror(errno));
    gzbuffer(file_, 1 << 17);
  }
  ~Reader() {
    if (file_) gzclose(file_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Reads up to n bytes into out; returns the count (less than n only at the end of the data).
  size_t read(void* out, size_t n) {
    size_t done = 0;
    while (done < n) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      int got = gzread(file_, static_cast<char*>(out) + done, chunk);
      if (got < 0) {
        int code = 0;
        const char* msg = gzerror(file_, &code);
        bad(path_, std::string(gz_ ? "corrupt gzip data: " : "read error: ") + (msg ? msg : "unknown"));
      }
      if (got == 0) {
        // zlib reports a gzip stream cut short only through gzerror after a short read.
        int code = 0;
        const char* msg = gzerror(file_, &code);
        if (code != Z_OK && code != Z_STREAM_END)
          bad(path_, std::string("corrupt or truncated gzip data: ") + (msg ? msg : "unknown"));
        break;
      }
      done += static_cast<size_t>(got);
    }
    return done;
  }

 private:
  std::string path_;
  bool gz_;
  gzFile file_ = nullptr;
};

void byteswap_inplace(uint8_t* data, int64_t count, size_t width) {
  if (width == 1) return;
  for (int64_t i = 0; i < count; ++i) std::reverse(data + i * width, data + (i + 1) * width);
}

}  // namespace

Tensor read_idx(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    std::string msg = "read_idx: '" + path + "': no such file";
    if (path.rfind("/usr/share/datasets/fashion-mnist", 0) == 0)
      msg += " (the Debian package 'dataset-fashion-mnist' provides it: apt-get install dataset-fashion-mnist)";
    fail(ErrorKind::Value, msg);
  }
  if (fs::is_directory(path, ec)) bad(path, "is a directory, expected an IDX file");

  // Sniff the first two bytes: 1f 8b is gzip.
  bool gz = false;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) bad(path, std::string("cannot open: ") + std::strerror(errno));
    unsigned char head[2] = {0, 0};
    in.read(reinterpret_cast<char*>(head), 2);
    gz = in.gcount() == 2 && head[0] == 0x1f && head[1] == 0x8b;
  }
  const std::string kind = gz ? "gzip'd IDX file" : "IDX file";
  Reader reader(path, gz);

  uint8_t magic[4];
  size_t got = reader.read(magic, 4);
  if (got < 4) bad(path, "truncated " + kind + ": " + std::to_string(got) + " bytes, the IDX header needs at least 4");
  if (magic[0] != 0 || magic[1] != 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "bad magic %02x %02x %02x %02x", magic[0], magic[1], magic[2], magic[3]);
    bad(path, std::string(buf) + " (an IDX file starts with 00 00 <type code> <ndim>)" +
                  (gz ? "" : "; it is not a gzip file either"));
  }
  DType dtype;
  if (!type_from_code(magic[2], dtype)) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "unknown IDX type code 0x%02x (expected 08, 09, 0b, 0c, 0d or 0e)", magic[2]);
    bad(path, buf);
  }
  const int ndim = magic[3];
  if (ndim == 0) bad(path, "IDX header declares 0 dimensions");

  std::vector<uint8_t> dim_bytes(4 * static_cast<size_t>(ndim));
  got = reader.read(dim_bytes.data(), dim_bytes.size());
  if (got < dim_bytes.size())
    bad(path, "truncated " + kind + ": the header declares " + std::to_string(ndim) + " dimensions but ends after " +
                  std::to_string(4 + got) + " bytes");
  Shape shape(ndim);
  uint64_t count = 1;
  bool overflow = false;
  std::string dims_str = "[";
  for (int d = 0; d < ndim; ++d) {
    const uint8_t* p = &dim_bytes[4 * d];
    uint64_t n = (uint64_t(p[0]) << 24) | (uint64_t(p[1]) << 16) | (uint64_t(p[2]) << 8) | uint64_t(p[3]);
    shape[d] = static_cast<int64_t>(n);
    dims_str += (d ? ", " : "") + std::to_string(n);
    if (n != 0 && count > kMaxBytes / n) overflow = true;
    count *= n;
  }
  dims_str += "]";
  const size_t width = itemsize(dtype);
  if (overflow || count > kMaxBytes / width)
    bad(path, "absurd dimensions " + dims_str + " in the IDX header (more than 1 TiB of data)");
  const uint64_t nbytes = count * width;

  // Read in chunks so a header that lies about a huge size cannot make us allocate before the data is there.
  std::vector<uint8_t> payload;
  while (payload.size() < nbytes) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(nbytes - payload.size(), uint64_t(64) << 20));
    size_t old = payload.size();
    payload.resize(old + want);
    size_t n = reader.read(payload.data() + old, want);
    if (n < want) {
      uint64_t have = old + n;
      bad(path, "truncated " + kind + ": dimensions " + dims_str + " of " + dtype_name(dtype) + " need " +
                    std::to_string(nbytes) + " data bytes, the file has " + std::to_string(have));
    }
  }
  uint8_t extra;
  if (reader.read(&extra, 1) != 0)
    bad(path, "dimensions " + dims_str + " of " + dtype_name(dtype) + " need " + std::to_string(nbytes) +
                  " data bytes but the file has more (trailing data; dims do not match the size)");

  Tensor out = Tensor::empty(shape, dtype);
  if (nbytes) {
    std::memcpy(out.data_ptr(), payload.data(), nbytes);
    byteswap_inplace(static_cast<uint8_t*>(out.data_ptr()), static_cast<int64_t>(count), width);
  }
  return out;
}

void write_idx(const std::string& path, const Tensor& t, bool gzip) {
  uint8_t code;
  LOOM_CHECK(code_from_type(t.dtype(), code), Type, "write_idx: IDX cannot hold dtype ", dtype_name(t.dtype()),
             " (uint8, int8, int16, int32, float32 or float64)");
  LOOM_CHECK(t.dim() >= 1 && t.dim() <= 255, Value, "write_idx: IDX needs 1 to 255 dimensions, got ", t.dim());
  for (int64_t s : t.sizes())
    LOOM_CHECK(s < (int64_t(1) << 32), Value, "write_idx: dimension ", s, " does not fit IDX's 32-bit sizes");
  Tensor c = contiguous(t);
  std::vector<uint8_t> bytes;
  bytes.reserve(4 + 4 * c.dim() + c.numel() * c.itemsize());
  bytes.insert(bytes.end(), {0, 0, code, static_cast<uint8_t>(c.dim())});
  for (int64_t s : c.sizes())
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>((uint64_t(s) >> shift) & 0xff));
  size_t header = bytes.size();
  const uint8_t* src = static_cast<const uint8_t*>(c.data_ptr());
  bytes.insert(bytes.end(), src, src + c.numel() * c.itemsize());
  byteswap_inplace(bytes.data() + header, c.numel(), c.itemsize());

  std::string tmp = path + ".tmp";
  if (gzip) {
    gzFile gz = gzopen(tmp.c_str(), "wb");
    LOOM_CHECK(gz != nullptr, Runtime, "write_idx: cannot open '", tmp, "' for writing: ", std::strerror(errno));
    size_t done = 0;
    bool ok = true;
    while (ok && done < bytes.size()) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(bytes.size() - done, 1u << 30));
      ok = gzwrite(gz, bytes.data() + done, chunk) == static_cast<int>(chunk);
      done += chunk;
    }
    ok = (gzclose(gz) == Z_OK) && ok;
    LOOM_CHECK(ok, Runtime, "write_idx: writing '", tmp, "' failed");
  } else {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    LOOM_CHECK(out.good(), Runtime, "write_idx: cannot open '", tmp, "' for writing: ", std::strerror(errno));
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    LOOM_CHECK(out.good(), Runtime, "write_idx: writing '", tmp, "' failed: ", std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail(ErrorKind::Runtime, "write_idx: cannot rename '", tmp, "' to '", path, "'");
  }
}

}  // namespace loom::data
