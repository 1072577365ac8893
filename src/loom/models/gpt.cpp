// loom::models::GPT: modules registered in the order of python/loom/models/gpt.py, nanoGPT's initialisation,
// loss and sampling (the sampler inverts the cumulative distribution, as the Python _sample does).
#include "loom/models/gpt.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "loom/autograd/grad_mode.h"
#include "loom/core/error.h"
#include "loom/nn/init.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/loss.h"
#include "loom/ops/nn.h"
#include "loom/ops/random.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"
#include "loom/ops/sort.h"

namespace loom::models {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

nn::LayerNormOptions ln_options(const GPTConfig& config) { return {.bias = config.bias}; }

// One index per row of probs (B, V): the first index whose cumulative probability exceeds a uniform draw.
Tensor sample(const Tensor& probs, Generator* generator) {
  Tensor cdf = cumsum(to_dtype(probs, DType::Float64), -1);
  int64_t V = probs.size(-1);
  Tensor u = rand({probs.size(0), 1}, DType::Float64, generator) * slice(cdf, 1, V - 1, V);
  Tensor index = sum(le(cdf, u), {-1}, /*keepdim=*/true);
  return to_dtype(clamp(index, std::nullopt, Scalar(V - 1)), DType::Int64);
}

}  // namespace

// ================= CausalSelfAttention =================

CausalSelfAttention::CausalSelfAttention(const GPTConfig& config)
    : Module("CausalSelfAttention"), n_head(config.n_head), n_embd(config.n_embd), dropout(config.dropout) {
  LOOM_CHECK(config.n_head > 0 && config.n_embd % config.n_head == 0, Value, "CausalSelfAttention: n_embd (",
             config.n_embd, ") must be divisible by n_head (", config.n_head, ")");
  c_attn = register_module("c_attn", std::make_shared<nn::Linear>(n_embd, 3 * n_embd, config.bias));
  c_proj = register_module("c_proj", std::make_shared<nn::Linear>(n_embd, n_embd, config.bias));
  attn_dropout = register_module("attn_dropout", std::make_shared<nn::Dropout>(config.dropout));
  resid_dropout = register_module("resid_dropout", std::make_shared<nn::Dropout>(config.dropout));
}

Tensor CausalSelfAttention::forward(const Tensor& x) {
  LOOM_CHECK(x.dim() == 3 && x.size(2) == n_embd, Value, "CausalSelfAttention: expected input (B, T, ", n_embd,
             "), got ", shape_str(x.sizes()));
  const int64_t B = x.size(0), T = x.size(1), C = n_embd, H = n_head;
  std::vector<Tensor> qkv = split(c_attn->forward(x), n_embd, 2);
  auto heads = [&](const Tensor& t) { return transpose(reshape(t, {B, T, H, C / H}), 1, 2); };  // (B, H, T, hd)
  double dropout_p = is_training() ? dropout : 0.0;
  Tensor y = scaled_dot_product_attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2]), Tensor(), dropout_p,
                                          /*is_causal=*/true);
  y = reshape(transpose(y, 1, 2), {B, T, C});
  return resid_dropout->forward(c_proj->forward(y));
}

// ================= MLP, Block =================

MLP::MLP(const GPTConfig& config) : Module("MLP") {
  c_fc = register_module("c_fc", std::make_shared<nn::Linear>(config.n_embd, 4 * config.n_embd, config.bias));
  gelu = register_module("gelu", std::make_shared<nn::GELU>());
  c_proj = register_module("c_proj", std::make_shared<nn::Linear>(4 * config.n_embd, config.n_embd, config.bias));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(config.dropout));
}

Tensor MLP::forward(const Tensor& x) {
  return dropout->forward(c_proj->forward(gelu->forward(c_fc->forward(x))));
}

Block::Block(const GPTConfig& config) : Module("Block") {
  ln_1 = register_module("ln_1", std::make_shared<nn::LayerNorm>(Shape{config.n_embd}, ln_options(config)));
  attn = register_module("attn", std::make_shared<CausalSelfAttention>(config));
  ln_2 = register_module("ln_2", std::make_shared<nn::LayerNorm>(Shape{config.n_embd}, ln_options(config)));
  mlp = register_module("mlp", std::make_shared<MLP>(config));
}

Tensor Block::forward(const Tensor& x) {
  Tensor y = x + attn->forward(ln_1->forward(x));
  return y + mlp->forward(ln_2->forward(y));
}

// ================= GPT =================

GPT::GPT(const GPTConfig& config) : Module("GPT"), config(config) {
  LOOM_CHECK(config.vocab_size > 0 && config.block_size > 0, Value, "GPT: vocab_size and block_size must be ",
             "positive, got vocab_size=", config.vocab_size, ", block_size=", config.block_size);
  LOOM_CHECK(config.n_layer >= 0, Value, "GPT: n_layer must be non-negative, got ", config.n_layer);
  // Construction order = Python's (ModuleDict(dict(wte, wpe, drop, h, ln_f)), then lm_head): same RNG draws.
  transformer = register_module("transformer", std::make_shared<nn::ModuleDict>());
  wte = transformer->insert("wte", std::make_shared<nn::Embedding>(config.vocab_size, config.n_embd));
  wpe = transformer->insert("wpe", std::make_shared<nn::Embedding>(config.block_size, config.n_embd));
  drop = transformer->insert("drop", std::make_shared<nn::Dropout>(config.dropout));
  h = transformer->insert("h", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < config.n_layer; ++i) h->push_back(std::make_shared<Block>(config));
  ln_f = transformer->insert("ln_f", std::make_shared<nn::LayerNorm>(Shape{config.n_embd}, ln_options(config)));
  lm_head = register_module("lm_head", std::make_shared<nn::Linear>(config.n_embd, config.vocab_size, false));
  // Weight tying: one tensor under two names.
  wte->weight = wte->register_parameter("weight", lm_head->weight);

  apply([](nn::Module& m) {
    if (auto* linear = dynamic_cast<nn::Linear*>(&m)) {
      nn::init::normal_(linear->weight, 0.0, 0.02);
      if (linear->bias.defined()) nn::init::zeros_(linear->bias);
    } else if (auto* embedding = dynamic_cast<nn::Embedding*>(&m)) {
      nn::init::normal_(embedding->weight, 0.0, 0.02);
    }
  });
  // GPT-2's scaled init of the residual projections.
  double std = 0.02 / std::sqrt(2.0 * static_cast<double>(config.n_layer));
  for (auto& [name, p] : named_parameters())
    if (ends_with(name, "c_proj.weight")) nn::init::normal_(p, 0.0, std);
}

int64_t GPT::num_params(bool non_embedding) const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  if (non_embedding) n -= wpe->weight.numel();
  return n;
}

Tensor GPT::forward(const Tensor& idx) {
  LOOM_CHECK(idx.defined() && idx.dim() == 2, Value, "GPT: expected token indices of shape (B, T), got ",
             idx.defined() ? shape_str(idx.sizes()) : std::string("an undefined tensor"));
  LOOM_CHECK(!is_floating(idx.dtype()) && idx.dtype() != DType::Bool, Type,
             "GPT: token indices must have an integer dtype, got ", dtype_name(idx.dtype()));
  const int64_t T = idx.size(1);
  LOOM_CHECK(T <= config.block_size, Value, "GPT: cannot forward a sequence of length ", T,
             ", block size is only ", config.block_size);
  Tensor pos = arange(Scalar(int64_t(0)), Scalar(T), Scalar(int64_t(1)), DType::Int64);
  Tensor x = drop->forward(wte->forward(idx) + wpe->forward(pos));
  for (const auto& block : *h) x = block->forward(x);
  return lm_head->forward(ln_f->forward(x));
}

Tensor GPT::loss(const Tensor& idx, const Tensor& targets) {
  Tensor logits = forward(idx);
  LOOM_CHECK(targets.defined() && targets.sizes() == idx.sizes(), Value, "GPT.loss: targets ",
             targets.defined() ? shape_str(targets.sizes()) : std::string("(undefined)"),
             " must have the shape of idx ", shape_str(idx.sizes()));
  return cross_entropy(reshape(logits, {-1, logits.size(-1)}), reshape(targets, {-1}), Tensor(),
                       /*ignore_index=*/-1);
}

Tensor GPT::generate(const Tensor& idx, int64_t max_new_tokens, double temperature, std::optional<int64_t> top_k,
                     Generator* generator) {
  LOOM_CHECK(!top_k || *top_k > 0, Value, "GPT.generate: top_k must be positive, got ", top_k.value_or(0));
  LOOM_CHECK(temperature >= 0.0, Value, "GPT.generate: temperature must be non-negative, got ", temperature);
  LOOM_CHECK(max_new_tokens >= 0, Value, "GPT.generate: max_new_tokens must be non-negative, got ", max_new_tokens);
  NoGradGuard no_grad;
  Tensor out = idx;
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    const int64_t T = out.size(1);
    Tensor context = T <= config.block_size ? out : slice(out, 1, T - config.block_size, T);
    Tensor logits = select(forward(context), 1, -1);  // (B, vocab)
    Tensor next;
    if (temperature == 0.0) {
      next = argmax(logits, -1, /*keepdim=*/true);
    } else {
      logits = logits / temperature;
      if (top_k) {
        int64_t k = std::min(*top_k, logits.size(-1));
        Tensor kth = slice(topk(logits, k).first, 1, k - 1, k);
        logits = masked_fill(logits, lt(logits, kth), -std::numeric_limits<double>::infinity());
      }
      next = sample(softmax(logits, -1), generator);
    }
    out = cat({out, to_dtype(next, out.dtype())}, 1);
  }
  return out;
}

}  // namespace loom::models
