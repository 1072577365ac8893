// loom::models::GPT: the C++ twin of python/loom/models/gpt.py (loom.models.GPT), a nanoGPT-style decoder-only
// transformer with GPT-2's layout and parameter names. The modules, their registration order and their
// initialisation mirror the Python classes, so the state dict has the same keys in the same order and weights
// saved from Python (loom.save_file(model.state_dict(), path)) load here by name:
//
//   transformer.wte.weight, transformer.wpe.weight,
//   transformer.h.{i}.ln_1.{weight,bias}, transformer.h.{i}.attn.c_attn.{weight,bias},
//   transformer.h.{i}.attn.c_proj.{weight,bias}, transformer.h.{i}.ln_2.{weight,bias},
//   transformer.h.{i}.mlp.c_fc.{weight,bias}, transformer.h.{i}.mlp.c_proj.{weight,bias},
//   transformer.ln_f.{weight,bias}, lm_head.weight          (lm_head.weight IS transformer.wte.weight)
//
//   loom::models::GPT model({.vocab_size = 65, .block_size = 64, .n_layer = 2, .n_head = 4, .n_embd = 64});
//   loom::Tensor logits = model.forward(idx);               // idx (B, T) int64 -> (B, T, vocab_size)
//   loom::Tensor loss = model.loss(idx, targets);           // mean cross entropy, targets == -1 ignored
//   loom::Tensor out = model.generate(idx, 100, 0.8, 10);   // (B, T + 100)
//
// Initialisation (nanoGPT): every Linear and Embedding weight ~ N(0, 0.02), biases zero, the residual
// projections (*.c_proj.weight) ~ N(0, 0.02 / sqrt(2 n_layer)); LayerNorms ones/zeros. With the same
// loom::manual_seed the draws happen in the same order as in Python.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "loom/core/generator.h"
#include "loom/core/tensor.h"
#include "loom/nn/container.h"
#include "loom/nn/layers.h"
#include "loom/nn/module.h"

namespace loom::models {

// The keys and values of the positions seen so far, one (key, value) pair per layer, each (B, n_head, T, head_dim)
// (Python: the past_key_values list of GPT.forward_cached).
struct KVCache {
  std::vector<std::pair<Tensor, Tensor>> layers;
  bool empty() const { return layers.empty(); }
  // The number of cached positions (0 when empty).
  int64_t length() const { return layers.empty() ? 0 : layers.front().first.size(2); }
};

// Model size: vocabulary, context length (block_size), layers, heads, embedding width, dropout, biases.
struct GPTConfig {
  int64_t vocab_size = 65;
  int64_t block_size = 256;
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t n_embd = 128;
  double dropout = 0.0;
  bool bias = true;  // biases of the Linear layers and LayerNorms
};

// Multi-head causal self-attention: packed q/k/v projection c_attn (n_embd -> 3 n_embd), causal
// scaled_dot_product_attention, output projection c_proj, dropout (attn_dropout on the weights, resid_dropout).
class CausalSelfAttention : public nn::Module {
 public:
  explicit CausalSelfAttention(const GPTConfig& config);
  // x (B, T, n_embd) -> (B, T, n_embd).
  Tensor forward(const Tensor& x) override;
  // x holds T new positions after the cached past_k / past_v (undefined: none). Returns (y, k, v): the output
  // and the cache extended by x's positions, each (B, n_head, past + T, head_dim).
  std::tuple<Tensor, Tensor, Tensor> forward_cached(const Tensor& x, const Tensor& past_k, const Tensor& past_v);

  int64_t n_head, n_embd;
  double dropout;
  std::shared_ptr<nn::Linear> c_attn, c_proj;
  std::shared_ptr<nn::Dropout> attn_dropout, resid_dropout;
};

// c_fc (n_embd -> 4 n_embd), GELU, c_proj (4 n_embd -> n_embd), dropout.
class MLP : public nn::Module {
 public:
  explicit MLP(const GPTConfig& config);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Linear> c_fc;
  std::shared_ptr<nn::GELU> gelu;
  std::shared_ptr<nn::Linear> c_proj;
  std::shared_ptr<nn::Dropout> dropout;
};

// Pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).
class Block : public nn::Module {
 public:
  explicit Block(const GPTConfig& config);
  Tensor forward(const Tensor& x) override;
  std::tuple<Tensor, Tensor, Tensor> forward_cached(const Tensor& x, const Tensor& past_k, const Tensor& past_v);

  std::shared_ptr<nn::LayerNorm> ln_1;
  std::shared_ptr<CausalSelfAttention> attn;
  std::shared_ptr<nn::LayerNorm> ln_2;
  std::shared_ptr<MLP> mlp;
};

// Decoder-only transformer: token + position embeddings, n_layer Blocks, final LayerNorm and an lm_head
// (no bias) whose weight is the token embedding's (one tensor under two state-dict keys; parameters() lists it
// once). Submodules: transformer (a ModuleDict: wte, wpe, drop, h, ln_f) and lm_head.
class GPT : public nn::Module {
 public:
  explicit GPT(const GPTConfig& config);

  // idx (B, T) integer token ids, T <= block_size -> logits (B, T, vocab_size).
  Tensor forward(const Tensor& idx) override;
  // Mean cross entropy of forward(idx) against targets (B, T) over all positions; targets equal to -1 are
  // ignored (Python: GPT.forward(idx, targets)[1]).
  Tensor loss(const Tensor& idx, const Tensor& targets);
  // Logits (B, T, vocab_size) of the new tokens idx (B, T) after the cached positions, and the extended cache
  // (Python: GPT.forward_cached). past + T must not exceed block_size.
  std::pair<Tensor, KVCache> forward_cached(const Tensor& idx, const KVCache& past = {});
  // Samples max_new_tokens tokens after idx (B, T) and returns (B, T + max_new_tokens), without recording
  // autograd, as the Python GPT.generate: with a KV cache, so each new token costs one position; once the
  // sequence outgrows block_size the context is cropped to the last block_size tokens and recomputed each step
  // (positions shift). temperature 0 is greedy; top_k keeps the k most likely tokens; draws come from
  // `generator` (default: the default generator). The mode is left as it is (call eval() to turn dropout off).
  Tensor generate(const Tensor& idx, int64_t max_new_tokens, double temperature = 1.0,
                  std::optional<int64_t> top_k = std::nullopt, Generator* generator = nullptr);
  // Number of parameters (the tied weight counted once); without the position embedding by default.
  int64_t num_params(bool non_embedding = true) const;

  GPTConfig config;
  std::shared_ptr<nn::ModuleDict> transformer;
  std::shared_ptr<nn::Embedding> wte, wpe;  // transformer["wte"], transformer["wpe"]
  std::shared_ptr<nn::Dropout> drop;        // transformer["drop"]
  std::shared_ptr<nn::ModuleList> h;        // transformer["h"]: the Blocks
  std::shared_ptr<nn::LayerNorm> ln_f;      // transformer["ln_f"]
  std::shared_ptr<nn::Linear> lm_head;

 private:
  // drop(wte(idx) + wpe(past .. past + T)), with the shape, dtype and length checks.
  Tensor embed(const Tensor& idx, int64_t past);
};

}  // namespace loom::models
