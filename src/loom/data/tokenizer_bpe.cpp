// ByteLevelBPETokenizer: GPT-2 style pre-tokenisation, merge training with a lazy max-heap, cached encoding.
#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>
#include <queue>

#include "loom/core/error.h"
#include "loom/data/text_util.h"
#include "loom/data/tokenizer.h"

namespace loom::data {

Tensor ids_to_tensor(const std::vector<int32_t>& ids);
std::vector<int64_t> ids_from_tensor_checked(const Tensor& ids, const char* who);

namespace {

enum class Cls : uint8_t { Letter, Number, Space, Other };

Cls classify_non_ascii(uint32_t cp) {
  // Unicode spaces (\s).
  if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
      cp == 0x202F || cp == 0x205F || cp == 0x3000)
    return Cls::Space;
  // Common numbers (\p{N}) outside ASCII.
  if (cp == 0xB2 || cp == 0xB3 || cp == 0xB9 || (cp >= 0xBC && cp <= 0xBE) || (cp >= 0x660 && cp <= 0x669) ||
      (cp >= 0x6F0 && cp <= 0x6F9) || (cp >= 0x966 && cp <= 0x96F) || (cp >= 0x2070 && cp <= 0x2089 && cp != 0x2071 &&
      cp != 0x207F) || (cp >= 0x2150 && cp <= 0x218B) || (cp >= 0x2460 && cp <= 0x249B) ||
      (cp >= 0xFF10 && cp <= 0xFF19))
    return Cls::Number;
  // Latin-1 punctuation and symbols (but ª µ º are letters), multiplication/division signs.
  if (cp < 0xC0) return (cp == 0xAA || cp == 0xB5 || cp == 0xBA) ? Cls::Letter : Cls::Other;
  if (cp == 0xD7 || cp == 0xF7) return Cls::Other;
  // Combining marks, general punctuation .. dingbats/arrows/math/box drawing, supplemental punctuation,
  // CJK punctuation, private use, variation selectors, half/full-width punctuation, emoji and symbols.
  if ((cp >= 0x300 && cp <= 0x36F) || (cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x2E00 && cp <= 0x2E7F) ||
      (cp >= 0x3001 && cp <= 0x303F) || (cp >= 0xE000 && cp <= 0xF8FF) || (cp >= 0xFE00 && cp <= 0xFE0F) ||
      (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) ||
      (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65) || (cp >= 0x1F000 && cp <= 0x1FAFF) ||
      (cp >= 0xE0000 && cp <= 0xE007F))
    return Cls::Other;
  return Cls::Letter;
}

struct AsciiTable {
  Cls cls[128];
  constexpr AsciiTable() : cls() {
    for (int c = 0; c < 128; ++c) {
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) cls[c] = Cls::Letter;
      else if (c >= '0' && c <= '9') cls[c] = Cls::Number;
      else if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F)) cls[c] = Cls::Space;
      else cls[c] = Cls::Other;
    }
  }
};
constexpr AsciiTable kAscii;

// Class and byte length of the character at i (invalid UTF-8: one byte of class Other).
inline Cls char_at(const unsigned char* p, size_t n, size_t i, int& len) {
  if (p[i] < 0x80) {
    len = 1;
    return kAscii.cls[p[i]];
  }
  uint32_t cp;
  len = detail::utf8_decode(p + i, n - i, cp);
  if (!len) {
    len = 1;
    return Cls::Other;
  }
  return classify_non_ascii(cp);
}

// Length of a GPT-2 contraction ('s 't 're 've 'm 'll 'd) at i, or 0.
inline size_t contraction_at(const unsigned char* p, size_t n, size_t i) {
  if (p[i] != '\'' || i + 1 >= n) return 0;
  unsigned char a = p[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 < n) {
    unsigned char b = p[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  return 0;
}

// Calls fn(begin, end) for each pre-token, following GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
template <class Fn>
void for_each_pretoken(std::string_view text, Fn&& fn) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  int len;
  while (i < n) {
    if (size_t c = contraction_at(p, n, i)) {
      fn(i, i + c);
      i += c;
      continue;
    }
    Cls cls = char_at(p, n, i, len);
    size_t start = i;
    if (cls == Cls::Space) {
      // A space directly before a non-space joins the next token.
      if (p[i] == ' ' && i + 1 < n) {
        int len2;
        Cls next = char_at(p, n, i + 1, len2);
        if (next != Cls::Space) {
          size_t j = i + 1 + len2;
          while (j < n) {
            int l;
            if (char_at(p, n, j, l) != next) break;
            j += l;
          }
          fn(i, j);
          i = j;
          continue;
        }
      }
      // A whitespace run: all of it at the end of the text, else all but its last character.
      size_t j = i + len, last = i;
      while (j < n) {
        int l;
        if (char_at(p, n, j, l) != Cls::Space) break;
        last = j;
        j += l;
      }
      if (j < n && last > start) {
        fn(start, last);
        i = last;
      } else {
        fn(start, j);
        i = j;
      }
      continue;
    }
    size_t j = i + len;
    while (j < n) {
      // Inside a letter or number run a contraction cannot start (its quote is Other); a punctuation run eats it.
      int l;
      if (char_at(p, n, j, l) != cls) break;
      j += l;
    }
    fn(start, j);
    i = j;
  }
}

inline uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

}  // namespace

std::vector<std::pair<size_t, size_t>> pretokenize(std::string_view text) {
  std::vector<std::pair<size_t, size_t>> out;
  for_each_pretoken(text, [&](size_t b, size_t e) { out.emplace_back(b, e); });
  return out;
}

ByteLevelBPETokenizer& ByteLevelBPETokenizer::operator=(const ByteLevelBPETokenizer& other) {
  if (this != &other) set_merges(other.merges_);
  return *this;
}

void ByteLevelBPETokenizer::set_merges(std::vector<std::pair<int32_t, int32_t>> merges) {
  merges_ = std::move(merges);
  rank_.clear();
  rank_.reserve(merges_.size() * 2);
  vocab_.assign(256, std::string());
  for (int b = 0; b < 256; ++b) vocab_[b] = std::string(1, static_cast<char>(b));
  for (size_t r = 0; r < merges_.size(); ++r) {
    rank_[pair_key(merges_[r].first, merges_[r].second)] = static_cast<int32_t>(r);
    vocab_.push_back(vocab_[merges_[r].first] + vocab_[merges_[r].second]);
  }
  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_.clear();
}

const std::string& ByteLevelBPETokenizer::token_bytes(int64_t id) const {
  LOOM_CHECK(id >= 0 && id < vocab_size(), Index, "ByteLevelBPETokenizer.token_bytes: id ", id,
             " is out of range for a vocabulary of ", vocab_size());
  return vocab_[id];
}

void ByteLevelBPETokenizer::train(std::string_view text, int64_t vocab_size, int64_t min_frequency) {
  LOOM_CHECK(vocab_size >= 256, Value, "ByteLevelBPETokenizer.train: vocab_size must be at least 256 (the byte "
             "tokens), got ", vocab_size);
  LOOM_CHECK(vocab_size <= (int64_t(1) << 30), Value, "ByteLevelBPETokenizer.train: vocab_size ", vocab_size,
             " is too large");
  LOOM_CHECK(min_frequency >= 1, Value, "ByteLevelBPETokenizer.train: min_frequency must be >= 1, got ", min_frequency);
  // Distinct pre-tokens with their counts, in first-seen order (deterministic).
  std::unordered_map<std::string_view, int32_t> word_index;
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> counts;
  for_each_pretoken(text, [&](size_t b, size_t e) {
    std::string_view w = text.substr(b, e - b);
    auto [it, inserted] = word_index.try_emplace(w, static_cast<int32_t>(words.size()));
    if (inserted) {
      words.emplace_back(w.begin(), w.end());
      for (auto& x : words.back()) x &= 0xFF;
      counts.push_back(0);
    }
    ++counts[it->second];
  });
  word_index.clear();

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (size_t w = 0; w < words.size(); ++w) {
    const auto& ids = words[w];
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      uint64_t k = pair_key(ids[i], ids[i + 1]);
      pair_count[k] += counts[w];
      auto& list = where[k];
      if (list.empty() || list.back() != static_cast<int32_t>(w)) list.push_back(static_cast<int32_t>(w));
    }
  }
  // Max-heap on (count, then the smallest pair key).
  using Entry = std::pair<int64_t, uint64_t>;
  auto less = [](const Entry& a, const Entry& b) { return a.first != b.first ? a.first < b.first : a.second > b.second; };
  std::priority_queue<Entry, std::vector<Entry>, decltype(less)> heap(less);
  for (const auto& [k, c] : pair_count) heap.emplace(c, k);

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::unordered_map<uint64_t, int64_t> delta;
  std::vector<int32_t> merged;
  while (256 + static_cast<int64_t>(merges.size()) < vocab_size && !heap.empty()) {
    auto [count, key] = heap.top();
    heap.pop();
    auto it = pair_count.find(key);
    if (it == pair_count.end() || it->second != count) continue;  // stale entry
    if (count < min_frequency) break;
    const int32_t a = static_cast<int32_t>(key >> 32), b = static_cast<int32_t>(key & 0xFFFFFFFF);
    const int32_t id = 256 + static_cast<int32_t>(merges.size());
    merges.emplace_back(a, b);
    std::vector<int32_t> list = std::move(where[key]);
    where.erase(key);
    delta.clear();
    for (int32_t w : list) {
      auto& ids = words[w];
      bool has = false;
      for (size_t i = 0; i + 1 < ids.size(); ++i)
        if (ids[i] == a && ids[i + 1] == b) {
          has = true;
          break;
        }
      if (!has) continue;
      const int64_t c = counts[w];
      for (size_t i = 0; i + 1 < ids.size(); ++i) delta[pair_key(ids[i], ids[i + 1])] -= c;
      merged.clear();
      for (size_t i = 0; i < ids.size();) {
        if (i + 1 < ids.size() && ids[i] == a && ids[i + 1] == b) {
          merged.push_back(id);
          i += 2;
        } else {
          merged.push_back(ids[i++]);
        }
      }
      ids.assign(merged.begin(), merged.end());
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        uint64_t k = pair_key(ids[i], ids[i + 1]);
        delta[k] += c;
        if (ids[i] == id || ids[i + 1] == id) {
          auto& l = where[k];
          if (l.empty() || l.back() != w) l.push_back(w);
        }
      }
    }
    pair_count.erase(key);
    for (const auto& [k, d] : delta) {
      if (d == 0 || k == key) continue;
      int64_t& c = pair_count[k];
      c += d;
      if (c <= 0) {
        pair_count.erase(k);
      } else {
        heap.emplace(c, k);
      }
    }
  }
  set_merges(std::move(merges));
}

void ByteLevelBPETokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  std::vector<int32_t> ids(word.size());
  for (size_t i = 0; i < word.size(); ++i) ids[i] = static_cast<unsigned char>(word[i]);
  while (ids.size() > 1) {
    int32_t best = INT32_MAX;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      auto it = rank_.find(pair_key(ids[i], ids[i + 1]));
      if (it != rank_.end() && it->second < best) best = it->second;
    }
    if (best == INT32_MAX) break;
    const int32_t a = merges_[best].first, b = merges_[best].second, id = 256 + best;
    size_t o = 0;
    for (size_t i = 0; i < ids.size();) {
      if (i + 1 < ids.size() && ids[i] == a && ids[i + 1] == b) {
        ids[o++] = id;
        i += 2;
      } else {
        ids[o++] = ids[i++];
      }
    }
    ids.resize(o);
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int32_t> ByteLevelBPETokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 16);
  if (merges_.empty()) {
    for (unsigned char c : text) out.push_back(c);
    return out;
  }
  std::lock_guard<std::mutex> lock(cache_mutex_);
  constexpr size_t kMaxCache = size_t(1) << 20;
  std::string key;
  for_each_pretoken(text, [&](size_t b, size_t e) {
    std::string_view w = text.substr(b, e - b);
    if (w.size() == 1) {
      out.push_back(static_cast<unsigned char>(w[0]));
      return;
    }
    key.assign(w);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
    size_t before = out.size();
    encode_word(w, out);
    if (w.size() <= 256) {
      if (cache_.size() >= kMaxCache) cache_.clear();
      cache_.emplace(key, std::vector<int32_t>(out.begin() + before, out.end()));
    }
  });
  return out;
}

Tensor ByteLevelBPETokenizer::encode_tensor(std::string_view text) const { return ids_to_tensor(encode(text)); }

std::string ByteLevelBPETokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  const int64_t v = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    int64_t id = ids[i];
    LOOM_CHECK(id >= 0 && id < v, Index, "ByteLevelBPETokenizer.decode: id ", id, " at position ", i,
               " is out of range for a vocabulary of ", v);
    if (id < 256) {
      out.push_back(static_cast<char>(id));
    } else {
      out += vocab_[id];
    }
  }
  return out;
}

std::string ByteLevelBPETokenizer::decode(const Tensor& ids) const {
  return decode(ids_from_tensor_checked(ids, "ByteLevelBPETokenizer.decode"));
}

std::string ByteLevelBPETokenizer::to_json() const {
  nlohmann::json j;
  j["type"] = "ByteLevelBPETokenizer";
  j["version"] = 1;
  j["pretokenizer"] = "gpt2";
  j["vocab_size"] = vocab_size();
  nlohmann::json merges = nlohmann::json::array();
  for (const auto& [a, b] : merges_) merges.push_back({a, b});
  j["merges"] = std::move(merges);
  return j.dump();
}

ByteLevelBPETokenizer ByteLevelBPETokenizer::from_json(const std::string& json, const std::string& source) {
  const char* who = "ByteLevelBPETokenizer.load";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::Value, who, ": '", source, "': invalid JSON: ", e.what());
  }
  LOOM_CHECK(j.is_object() && j.contains("type") && j["type"] == "ByteLevelBPETokenizer", Value, who, ": '", source,
             "': not a ByteLevelBPETokenizer file (expected an object with \"type\": \"ByteLevelBPETokenizer\")");
  LOOM_CHECK(j.contains("merges") && j["merges"].is_array(), Value, who, ": '", source, "': missing the \"merges\" array");
  std::vector<std::pair<int32_t, int32_t>> merges;
  for (const auto& m : j["merges"]) {
    const int64_t limit = 256 + static_cast<int64_t>(merges.size());
    bool ok = m.is_array() && m.size() == 2 && m[0].is_number_integer() && m[1].is_number_integer();
    if (ok) {
      int64_t a = m[0].get<int64_t>(), b = m[1].get<int64_t>();
      ok = a >= 0 && a < limit && b >= 0 && b < limit;
      if (ok) merges.emplace_back(static_cast<int32_t>(a), static_cast<int32_t>(b));
    }
    LOOM_CHECK(ok, Value, who, ": '", source, "': merge ", merges.size(), " is ", m.dump(),
               ", expected [left id, right id] with ids below ", limit);
  }
  if (j.contains("vocab_size")) {
    LOOM_CHECK(j["vocab_size"].is_number_integer() && j["vocab_size"].get<int64_t>() == 256 + int64_t(merges.size()),
               Value, who, ": '", source, "': \"vocab_size\" ", j["vocab_size"].dump(), " does not match 256 + ",
               merges.size(), " merges");
  }
  ByteLevelBPETokenizer t;
  t.set_merges(std::move(merges));
  return t;
}

void ByteLevelBPETokenizer::save(const std::string& path) const {
  detail::write_file_atomic(path, to_json(), "ByteLevelBPETokenizer.save");
}

ByteLevelBPETokenizer ByteLevelBPETokenizer::load(const std::string& path) {
  return from_json(detail::read_file(path, "ByteLevelBPETokenizer.load"), path);
}

}  // namespace loom::data
