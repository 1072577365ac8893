// safetensors writer (reference layout and ordering) and a loader that validates the whole header first.
#include "loom/serialize/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/ops/creation.h"
#include "loom/ops/shape.h"
#include "loom/serialize/atomic_file.h"

namespace loom::serialize {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr const char* kMetadataKey = "__metadata__";
// Real headers nest three levels deep; anything past this is hostile and is rejected before parsing.
constexpr int kMaxHeaderDepth = 64;

// Builds the header's DOM like json::parse and stops at the first duplicate key of any object (a plain parse
// keeps the last value silently). One set of seen keys per open object, so the check is linear in the header
// size; nlohmann's callback parser rescans the parent object at every object end (quadratic in the tensors).
class DuplicateKeyCheck : public nlohmann::detail::json_sax_dom_parser<json> {
 public:
  using Base = nlohmann::detail::json_sax_dom_parser<json>;
  explicit DuplicateKeyCheck(json& root) : Base(root, /*allow_exceptions=*/true) {}

  bool start_object(std::size_t size) {
    open_objects_.emplace_back();
    return Base::start_object(size);
  }
  bool end_object() {
    open_objects_.pop_back();
    return Base::end_object();
  }
  bool key(json::string_t& name) {
    if (!open_objects_.back().insert(name).second) {
      duplicate = name;
      return false;  // stops the parse; the caller reports the key
    }
    return Base::key(name);
  }

  std::string duplicate;

 private:
  std::vector<std::unordered_set<std::string>> open_objects_;
};

struct DTypeInfo {
  DType dtype;
  const char* name;
  // The reference library sorts tensors by its Dtype enum, highest first; this is that enum's order.
  int rank;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::Bool, "BOOL", 0},  {DType::UInt8, "U8", 1},    {DType::Int8, "I8", 2},      {DType::Int16, "I16", 3},
    {DType::Float16, "F16", 4}, {DType::BFloat16, "BF16", 5}, {DType::Int32, "I32", 6}, {DType::Float32, "F32", 7},
    {DType::Float64, "F64", 8}, {DType::Int64, "I64", 9},
};

const DTypeInfo& dtype_info(DType dtype) {
  for (const DTypeInfo& info : kDTypes)
    if (info.dtype == dtype) return info;
  fail(ErrorKind::Type, "safetensors: dtype ", dtype_name(dtype), " has no safetensors equivalent");
}

const DTypeInfo* dtype_info_from_name(const std::string& name) {
  for (const DTypeInfo& info : kDTypes)
    if (name == info.name) return &info;
  return nullptr;
}

std::string supported_dtype_names() {
  std::string out;
  for (const DTypeInfo& info : kDTypes) out += (out.empty() ? "" : ", ") + std::string(info.name);
  return out;
}

void check_little_endian(const char* caller) {
  LOOM_CHECK(std::endian::native == std::endian::little, NotImplemented, caller,
             ": safetensors files are little-endian; big-endian hosts are not supported");
}

// ---------------------------------------------------------------- loading

// Reads exactly n bytes at `offset`; false when the file ended first.
bool read_exactly(int fd, void* data, size_t n, uint64_t offset, int& error) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    ssize_t got = ::pread(fd, p, chunk, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      error = errno;
      return false;
    }
    if (got == 0) {
      error = 0;
      return false;
    }
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return true;
}

class FileCloser {
 public:
  explicit FileCloser(int fd) : fd_(fd) {}
  ~FileCloser() { ::close(fd_); }

 private:
  int fd_;
};

// Returns the byte offset of the first invalid UTF-8 sequence, or -1 when `text` is valid UTF-8.
int64_t invalid_utf8_offset(const std::string& text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    uint32_t code;
    if ((c & 0xE0) == 0xC0) {
      length = 2;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      code = c & 0x07;
    } else {
      return static_cast<int64_t>(i);
    }
    if (i + length > n) return static_cast<int64_t>(i);
    for (size_t k = 1; k < length; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return static_cast<int64_t>(i);
      code = (code << 6) | (s[i + k] & 0x3F);
    }
    static constexpr uint32_t kMinimum[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kMinimum[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return static_cast<int64_t>(i);
    i += length;
  }
  return -1;
}

// The deepest nesting of {} and [] outside strings (stops counting once past `limit`).
int nesting_depth(const std::string& text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

struct Entry {
  std::string name;
  const DTypeInfo* dtype;
  Shape shape;
  uint64_t begin, end;
};

class Loader {
 public:
  explicit Loader(const std::string& path) : path_(path) {}

  template <class... Parts>
  [[noreturn]] void invalid(const Parts&... parts) const {
    fail(ErrorKind::Value, "load_safetensors: '", path_, "': ", parts...);
  }

  SafetensorsContents load() {
    check_little_endian("load_safetensors");
    // O_NONBLOCK: opening a FIFO must not hang; it is then refused as not a regular file.
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      int error = errno;
      fail(ErrorKind::Runtime, "load_safetensors: cannot open '", path_, "': ", std::strerror(error));
    }
    FileCloser closer(fd);
    struct stat info {};
    if (::fstat(fd, &info) != 0) io_error("fstat failed", errno);
    if (!S_ISREG(info.st_mode)) invalid("not a regular file");
    uint64_t file_size = static_cast<uint64_t>(info.st_size);
    if (file_size < 8)
      invalid("the file has ", file_size, " bytes, too few for the 8-byte header length (truncated or not a safetensors file)");

    unsigned char length_bytes[8];
    read_or_fail(fd, length_bytes, 8, 0, "the header length");
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | length_bytes[i];
    if (header_length > kMaxSafetensorsHeaderBytes)
      invalid("header length ", header_length, " is larger than the ", kMaxSafetensorsHeaderBytes,
              "-byte limit (corrupted header length or not a safetensors file)");
    if (header_length > file_size - 8)
      invalid("header length ", header_length, " runs past the end of the file (", file_size,
              " bytes; truncated or corrupted)");
    if (header_length < 2) invalid("header length ", header_length, " is too small to hold a JSON object");

    std::string text(header_length, '\0');
    read_or_fail(fd, text.data(), header_length, 8, "the header");
    json header = parse_header(text);
    uint64_t buffer_size = file_size - 8 - header_length;

    SafetensorsContents out;
    std::vector<Entry> entries = validate(header, buffer_size, out.metadata);

    // Everything is validated: read each tensor straight into its own storage.
    uint64_t data_start = 8 + header_length;
    for (const Entry& e : entries) {
      Tensor t = Tensor::empty(e.shape, e.dtype->dtype);
      uint64_t nbytes = e.end - e.begin;
      if (nbytes > 0) {
        read_or_fail(fd, t.data_ptr(), nbytes, data_start + e.begin, "the data of tensor '" + e.name + "'");
        if (e.dtype->dtype == DType::Bool) {
          auto* bytes = static_cast<unsigned char*>(t.data_ptr());
          for (uint64_t i = 0; i < nbytes; ++i) bytes[i] = bytes[i] != 0;
        }
      }
      out.tensors.emplace_back(e.name, std::move(t));
    }
    return out;
  }

 private:
  [[noreturn]] void io_error(const char* what, int error) const {
    fail(ErrorKind::Runtime, "load_safetensors: '", path_, "': ", what, ": ", std::strerror(error));
  }

  void read_or_fail(int fd, void* data, size_t n, uint64_t offset, const std::string& what) const {
    int error = 0;
    if (read_exactly(fd, data, n, offset, error)) return;
    if (error != 0) io_error(("reading " + what + " failed").c_str(), error);
    invalid("the file ended while reading ", what, " (it changed or was truncated while being read)");
  }

  json parse_header(const std::string& text) const {
    int64_t bad = invalid_utf8_offset(text);
    if (bad >= 0) invalid("the header is not valid UTF-8 (bad byte at header offset ", bad, ")");
    size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || text[first] != '{')
      invalid("the header is not a JSON object (it must start with '{')");
    if (nesting_depth(text, kMaxHeaderDepth) > kMaxHeaderDepth)
      invalid("the header nests JSON deeper than ", kMaxHeaderDepth, " levels");
    json header;
    DuplicateKeyCheck sax(header);
    try {
      bool complete = json::sax_parse(text.begin(), text.end(), &sax);
      if (!sax.duplicate.empty()) invalid("duplicate key '", sax.duplicate, "' in the header");
      if (!complete || !header.is_object()) invalid("the header is not a JSON object");
      return header;
    } catch (const json::exception& e) {
      invalid("the header is not valid JSON: ", e.what());
    }
  }

  uint64_t unsigned_integer(const json& value, const std::string& what) const {
    if (value.is_number_unsigned()) return value.get<uint64_t>();
    if (value.is_number_integer()) invalid(what, " is negative (", value.get<int64_t>(), ")");
    invalid(what, " must be a non-negative integer that fits in 64 bits, got ", value.dump());
  }

  std::vector<Entry> validate(const json& header, uint64_t buffer_size, Metadata& metadata) const {
    std::vector<Entry> entries;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const json& value = it.value();
      if (name == kMetadataKey) {
        if (!value.is_object()) invalid("\"__metadata__\" must be an object of strings, got ", value.type_name());
        for (auto m = value.begin(); m != value.end(); ++m) {
          if (!m.value().is_string())
            invalid("\"__metadata__\" value for key '", m.key(), "' must be a string, got ", m.value().type_name());
          metadata[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      std::string tensor = "tensor '" + name + "'";
      if (!value.is_object()) invalid(tensor, ": expected an object with dtype, shape and data_offsets, got ", value.type_name());
      for (const char* field : {"dtype", "shape", "data_offsets"})
        if (!value.contains(field)) invalid(tensor, ": missing \"", field, "\"");
      Entry e;
      e.name = name;
      const json& dtype = value["dtype"];
      if (!dtype.is_string()) invalid(tensor, ": \"dtype\" must be a string, got ", dtype.dump());
      e.dtype = dtype_info_from_name(dtype.get<std::string>());
      if (e.dtype == nullptr)
        invalid(tensor, ": unknown or unsupported dtype ", dtype.dump(), " (supported: ", supported_dtype_names(), ")");

      const json& shape = value["shape"];
      if (!shape.is_array()) invalid(tensor, ": \"shape\" must be an array of integers, got ", shape.dump());
      if (shape.size() > static_cast<size_t>(kMaxRank))
        invalid(tensor, ": shape has ", shape.size(), " dimensions (at most ", kMaxRank, " are supported)");
      uint64_t numel = 1;
      bool overflow = false;
      for (size_t d = 0; d < shape.size(); ++d) {
        const json& dim = shape[d];
        if (dim.is_number_integer() && !dim.is_number_unsigned())
          invalid(tensor, ": negative dimension ", dim.get<int64_t>(), " in shape ", shape.dump());
        uint64_t size = unsigned_integer(dim, tensor + ": dimension " + std::to_string(d) + " of shape " + shape.dump());
        if (size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) overflow = true;
        overflow = overflow || __builtin_mul_overflow(numel, size, &numel);
        e.shape.push_back(static_cast<int64_t>(size));
      }
      uint64_t nbytes = 0;
      overflow = overflow || __builtin_mul_overflow(numel, static_cast<uint64_t>(itemsize(e.dtype->dtype)), &nbytes) ||
                 nbytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      if (overflow) invalid(tensor, ": the size of shape ", shape.dump(), " overflows 64-bit integers");

      const json& offsets = value["data_offsets"];
      if (!offsets.is_array() || offsets.size() != 2)
        invalid(tensor, ": \"data_offsets\" must be [begin, end], got ", offsets.dump());
      e.begin = unsigned_integer(offsets[0], tensor + ": data_offsets begin");
      e.end = unsigned_integer(offsets[1], tensor + ": data_offsets end");
      if (e.end < e.begin) invalid(tensor, ": data_offsets ", offsets.dump(), " end before they begin");
      if (e.end > buffer_size)
        invalid(tensor, ": data_offsets ", offsets.dump(), " are out of range: the data buffer has ", buffer_size,
                " bytes (truncated or corrupted file)");
      if (e.end - e.begin != nbytes)
        invalid(tensor, ": shape ", shape.dump(), " and dtype ", e.dtype->name, " need ", nbytes,
                " bytes but data_offsets ", offsets.dump(), " span ", e.end - e.begin);
      entries.push_back(std::move(e));
    }
    // The reference library's rule: sorted by offsets, the tensors tile the data buffer exactly.
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t covered = 0;
    const Entry* previous = nullptr;
    for (const Entry& e : entries) {
      if (e.begin < covered)
        invalid("tensors '", previous->name, "' [", previous->begin, ", ", previous->end, ") and '", e.name, "' [",
                e.begin, ", ", e.end, ") overlap in the data buffer");
      if (e.begin > covered)
        invalid("gap in the data buffer: bytes [", covered, ", ", e.begin, ") before tensor '", e.name,
                "' belong to no tensor");
      covered = e.end;
      previous = &e;
    }
    if (covered != buffer_size)
      invalid("the data buffer has ", buffer_size, " bytes but the tensors cover only ", covered,
              " (trailing bytes after the last tensor)");
    return entries;
  }

  std::string path_;
};

}  // namespace

const char* safetensors_dtype_name(DType dtype) { return dtype_info(dtype).name; }

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  check_little_endian("save_safetensors");
  struct Item {
    const std::string* name;
    Tensor tensor;
    const DTypeInfo* dtype;
    uint64_t nbytes;
  };
  std::vector<Item> items;
  items.reserve(tensors.size());
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    LOOM_CHECK(name != kMetadataKey, Value, "save_safetensors: '", path, "': the tensor name \"__metadata__\" is reserved");
    LOOM_CHECK(seen.insert(name).second, Value, "save_safetensors: '", path, "': duplicate tensor name '", name, "'");
    LOOM_CHECK(tensor.defined(), Value, "save_safetensors: '", path, "': tensor '", name, "' is undefined");
    items.push_back({&name, tensor, &dtype_info(tensor.dtype()),
                     static_cast<uint64_t>(tensor.numel()) * tensor.itemsize()});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return a.dtype->rank != b.dtype->rank ? a.dtype->rank > b.dtype->rank : *a.name < *b.name;
  });

  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header[kMetadataKey] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const Item& item : items) {
    ordered_json entry = ordered_json::object();
    entry["dtype"] = item.dtype->name;
    entry["shape"] = ordered_json::array();
    for (int64_t size : item.tensor.sizes()) entry["shape"].push_back(size);
    entry["data_offsets"] = ordered_json::array({offset, offset + item.nbytes});
    offset += item.nbytes;
    header[*item.name] = std::move(entry);
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    fail(ErrorKind::Value, "save_safetensors: '", path, "': a tensor name or metadata string is not valid UTF-8 (",
         e.what(), ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  LOOM_CHECK(text.size() <= kMaxSafetensorsHeaderBytes, Value, "save_safetensors: '", path, "': the header would be ",
             text.size(), " bytes, more than the ", kMaxSafetensorsHeaderBytes,
             " that readers accept; store large data in tensors, not in names or metadata");
  unsigned char length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(text.size() >> (8 * i));

  AtomicFileWriter out(path, "save_safetensors");
  out.write(length_bytes, 8);
  out.write(text.data(), text.size());
  NoGradGuard no_grad;
  for (const Item& item : items) {
    if (item.nbytes == 0) continue;
    // A tensor on a device is written from a host copy (made one tensor at a time, so only one is held at once).
    Tensor data = contiguous(item.tensor.detach().to_host());
    out.write(data.data_ptr(), item.nbytes);
  }
  out.commit();
}

SafetensorsContents load_safetensors(const std::string& path) { return Loader(path).load(); }

}  // namespace loom::serialize
