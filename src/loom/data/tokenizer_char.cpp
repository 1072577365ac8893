// CharTokenizer: sorted distinct code points; a dense code point -> id table makes encode one lookup per char.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/data/text_util.h"
#include "loom/data/tokenizer.h"
#include "loom/ops/creation.h"
#include "loom/ops/shape.h"

namespace loom::data {

namespace {

std::string describe_cp(uint32_t cp) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "U+%04X", cp);
  std::string s;
  if (cp >= 0x20 && cp != 0x7F) {
    s = "'";
    detail::utf8_append(s, cp);
    s += "' ";
  }
  return s + "(" + buf + ")";
}

[[noreturn]] void bad_utf8(const char* who, size_t offset, unsigned char byte) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", byte);
  fail(ErrorKind::Value, who, ": invalid UTF-8 at byte offset ", offset, " (byte ", buf, ")");
}

std::vector<int64_t> ids_from_tensor(const Tensor& ids, const char* who) {
  LOOM_CHECK(is_integral(ids.dtype()), Type, who, ": ids must be an integer tensor, got ", dtype_name(ids.dtype()));
  LOOM_CHECK(ids.dim() <= 1, Value, who, ": ids must be 1-d, got shape ", shape_str(ids.sizes()));
  Tensor c = contiguous(to_dtype(ids, DType::Int64));
  const int64_t* p = c.data<int64_t>();
  return std::vector<int64_t>(p, p + c.numel());
}

}  // namespace

Tensor ids_to_tensor(const std::vector<int32_t>& ids) {
  Tensor out = Tensor::empty({static_cast<int64_t>(ids.size())}, DType::Int64);
  int64_t* p = out.data<int64_t>();
  for (size_t i = 0; i < ids.size(); ++i) p[i] = ids[i];
  return out;
}

std::vector<int64_t> ids_from_tensor_checked(const Tensor& ids, const char* who) { return ids_from_tensor(ids, who); }

CharTokenizer& CharTokenizer::operator=(const CharTokenizer& other) {
  chars_ = other.chars_;
  unk_ = other.unk_;
  build_index();
  return *this;
}

void CharTokenizer::build_index() {
  index_.assign(chars_.empty() ? 0 : chars_.back() + 1, -1);
  for (size_t i = 0; i < chars_.size(); ++i) index_[chars_[i]] = static_cast<int32_t>(i);
}

void CharTokenizer::train(std::string_view text, bool add_unk) {
  std::vector<bool> seen(0x110000, false);
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    int len = detail::utf8_decode(p + i, n - i, cp);
    if (!len) bad_utf8("CharTokenizer.train", i, p[i]);
    seen[cp] = true;
    i += len;
  }
  chars_.clear();
  for (uint32_t cp = 0; cp < 0x110000; ++cp)
    if (seen[cp]) chars_.push_back(cp);
  unk_ = add_unk;
  build_index();
}

std::vector<int32_t> CharTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  const int32_t* index = index_.data();
  const uint32_t limit = static_cast<uint32_t>(index_.size());
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    int len;
    if (p[i] < 0x80) {
      cp = p[i], len = 1;
    } else {
      len = detail::utf8_decode(p + i, n - i, cp);
      if (!len) bad_utf8("CharTokenizer.encode", i, p[i]);
    }
    int32_t id = cp < limit ? index[cp] : -1;
    if (id < 0) {
      LOOM_CHECK(unk_, Value, "CharTokenizer.encode: character ", describe_cp(cp), " at byte offset ", i,
                 " is not in the vocabulary (", chars_.size(), " characters; train with unk=True to map unknown "
                 "characters to an unknown token)");
      id = static_cast<int32_t>(chars_.size());
    }
    out.push_back(id);
    i += len;
  }
  return out;
}

Tensor CharTokenizer::encode_tensor(std::string_view text) const { return ids_to_tensor(encode(text)); }

std::string CharTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  const int64_t v = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    int64_t id = ids[i];
    LOOM_CHECK(id >= 0 && id < v, Index, "CharTokenizer.decode: id ", id, " at position ", i,
               " is out of range for a vocabulary of ", v);
    detail::utf8_append(out, id == static_cast<int64_t>(chars_.size()) ? 0xFFFD : chars_[id]);
  }
  return out;
}

std::string CharTokenizer::decode(const Tensor& ids) const {
  return decode(ids_from_tensor(ids, "CharTokenizer.decode"));
}

std::string CharTokenizer::to_json() const {
  nlohmann::json j;
  j["type"] = "CharTokenizer";
  j["version"] = 1;
  j["unk"] = unk_;
  j["code_points"] = chars_;
  std::string text;
  for (uint32_t cp : chars_) detail::utf8_append(text, cp);
  j["characters"] = text;  // for people reading the file; code_points is authoritative
  return j.dump(1);
}

CharTokenizer CharTokenizer::from_json(const std::string& json, const std::string& source) {
  const char* who = "CharTokenizer.load";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::Value, who, ": '", source, "': invalid JSON: ", e.what());
  }
  LOOM_CHECK(j.is_object() && j.contains("type") && j["type"] == "CharTokenizer", Value, who, ": '", source,
             "': not a CharTokenizer file (expected an object with \"type\": \"CharTokenizer\")");
  LOOM_CHECK(j.contains("code_points") && j["code_points"].is_array(), Value, who, ": '", source,
             "': missing the \"code_points\" array");
  CharTokenizer t;
  for (const auto& v : j["code_points"]) {
    LOOM_CHECK(v.is_number_unsigned() && v.get<uint64_t>() <= 0x10FFFF, Value, who, ": '", source,
               "': code point ", v.dump(), " is not an integer in [0, 0x10FFFF]");
    uint32_t cp = v.get<uint32_t>();
    LOOM_CHECK(!(cp >= 0xD800 && cp <= 0xDFFF), Value, who, ": '", source, "': code point ", cp, " is a surrogate");
    LOOM_CHECK(t.chars_.empty() || cp > t.chars_.back(), Value, who, ": '", source,
               "': code points must be strictly increasing (", cp, " after ", t.chars_.back(), ")");
    t.chars_.push_back(cp);
  }
  if (j.contains("unk")) {
    LOOM_CHECK(j["unk"].is_boolean(), Value, who, ": '", source, "': \"unk\" must be true or false");
    t.unk_ = j["unk"].get<bool>();
  }
  t.build_index();
  return t;
}

void CharTokenizer::save(const std::string& path) const {
  detail::write_file_atomic(path, to_json(), "CharTokenizer.save");
}

CharTokenizer CharTokenizer::load(const std::string& path) {
  return from_json(detail::read_file(path, "CharTokenizer.load"), path);
}

}  // namespace loom::data
