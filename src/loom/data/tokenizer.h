// Tokenizers: character level (Unicode code points) and byte-level BPE (GPT-2 style), saved as JSON.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::data {

// Character-level tokenizer. The vocabulary is the sorted distinct Unicode code points of the training text
// (id i = i-th smallest code point), plus an optional unknown token with the last id that decodes to U+FFFD.
// Text is UTF-8; invalid UTF-8 raises ValueError naming the byte offset.
class CharTokenizer {
 public:
  CharTokenizer() = default;
  CharTokenizer(const CharTokenizer& other) : chars_(other.chars_), unk_(other.unk_) { build_index(); }
  CharTokenizer& operator=(const CharTokenizer& other);

  void train(std::string_view text, bool add_unk = false);
  std::vector<int32_t> encode(std::string_view text) const;
  // The same ids as an int64 tensor [n].
  Tensor encode_tensor(std::string_view text) const;
  std::string decode(const std::vector<int64_t>& ids) const;
  std::string decode(const Tensor& ids) const;
  int64_t vocab_size() const { return static_cast<int64_t>(chars_.size()) + (unk_ ? 1 : 0); }
  bool has_unk() const { return unk_; }
  int64_t unk_id() const { return unk_ ? static_cast<int64_t>(chars_.size()) : -1; }
  const std::vector<uint32_t>& code_points() const { return chars_; }

  std::string to_json() const;
  static CharTokenizer from_json(const std::string& json, const std::string& source = "<string>");
  // JSON file, written atomically (temporary file + rename).
  void save(const std::string& path) const;
  static CharTokenizer load(const std::string& path);

 private:
  void build_index();
  std::vector<uint32_t> chars_;  // sorted code points
  bool unk_ = false;
  std::vector<int32_t> index_;   // code point -> id, -1 if absent (sized to the largest code point + 1)
};

// Byte-level BPE like GPT-2: text is split into pre-tokens (contractions, letter runs, digit runs, punctuation
// runs, each optionally led by one space; whitespace runs), each pre-token's UTF-8 bytes start as the 256 byte
// tokens, and learned merges (id 256 + rank) are applied by rank. decode(encode(x)) == x for any bytes.
// Unicode classes: ASCII exact; non-ASCII code points count as letters except common Unicode spaces
// (whitespace), general/CJK punctuation, symbol and emoji blocks (punctuation) and invalid UTF-8 bytes (punctuation).
class ByteLevelBPETokenizer {
 public:
  ByteLevelBPETokenizer() { set_merges({}); }
  ByteLevelBPETokenizer(const ByteLevelBPETokenizer& other) { *this = other; }
  ByteLevelBPETokenizer& operator=(const ByteLevelBPETokenizer& other);

  // Learns merges until the vocabulary has vocab_size tokens (>= 256) or no pair occurs min_frequency times.
  // Ties in pair frequency go to the smallest (left id, right id), so training is deterministic.
  void train(std::string_view text, int64_t vocab_size, int64_t min_frequency = 2);
  std::vector<int32_t> encode(std::string_view text) const;
  Tensor encode_tensor(std::string_view text) const;
  // The exact bytes (may be invalid UTF-8 when the ids cut a character).
  std::string decode(const std::vector<int64_t>& ids) const;
  std::string decode(const Tensor& ids) const;
  int64_t vocab_size() const { return 256 + static_cast<int64_t>(merges_.size()); }
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }
  // The bytes of token `id`.
  const std::string& token_bytes(int64_t id) const;

  std::string to_json() const;
  static ByteLevelBPETokenizer from_json(const std::string& json, const std::string& source = "<string>");
  void save(const std::string& path) const;
  static ByteLevelBPETokenizer load(const std::string& path);

 private:
  void set_merges(std::vector<std::pair<int32_t, int32_t>> merges);
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  std::vector<std::pair<int32_t, int32_t>> merges_;
  std::unordered_map<uint64_t, int32_t> rank_;  // (left << 32 | right) -> merge rank
  std::vector<std::string> vocab_;               // id -> bytes
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;  // pre-token -> ids
};

// GPT-2 style pre-tokenisation: the byte ranges [begin, end) of each pre-token of `text` (they tile the text).
std::vector<std::pair<size_t, size_t>> pretokenize(std::string_view text);

}  // namespace loom::data
