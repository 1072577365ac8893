// loom::models::GPT: modules registered in the order of python/loom/models/gpt.py, nanoGPT's initialisation,
// loss and sampling (the sampler inverts the cumulative distribution, as the Python _sample does).
#include "loom/models/gpt.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>

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
  Tensor u = rand({probs.size(0), 1}, DType::Float64, generator, probs.device()) * slice(cdf, 1, V - 1, V);
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

Tensor CausalSelfAttention::forward(const Tensor& x) { return std::get<0>(forward_cached(x, Tensor(), Tensor())); }

std::tuple<Tensor, Tensor, Tensor> CausalSelfAttention::forward_cached(const Tensor& x, const Tensor& past_k,
                                                                       const Tensor& past_v) {
  LOOM_CHECK(x.dim() == 3 && x.size(2) == n_embd, Value, "CausalSelfAttention: expected input (B, T, ", n_embd,
             "), got ", shape_str(x.sizes()));
  const int64_t B = x.size(0), T = x.size(1), C = n_embd, H = n_head;
  std::vector<Tensor> qkv = split(c_attn->forward(x), n_embd, 2);
  auto heads = [&](const Tensor& t) { return transpose(reshape(t, {B, T, H, C / H}), 1, 2); };  // (B, H, T, hd)
  Tensor q = heads(qkv[0]), k = heads(qkv[1]), v = heads(qkv[2]);
  int64_t past = 0;
  if (past_k.defined()) {
    LOOM_CHECK(past_v.defined() && past_k.dim() == 4 && past_k.size(0) == B && past_k.size(1) == H &&
                   past_k.size(3) == C / H && past_v.sizes() == past_k.sizes(),
               Value, "CausalSelfAttention: the cache must be (B, n_head, past, head_dim) = (", B, ", ", H,
               ", past, ", C / H, ") for keys and values, got ", shape_str(past_k.sizes()), " and ",
               past_v.defined() ? shape_str(past_v.sizes()) : std::string("(undefined)"));
    past = past_k.size(2);
    k = cat({past_k, k}, 2);
    v = cat({past_v, v}, 2);
  }
  double dropout_p = is_training() ? dropout : 0.0;
  Tensor y;
  if (past == 0) {
    y = scaled_dot_product_attention(q, k, v, Tensor(), dropout_p, /*is_causal=*/true);
  } else if (T == 1) {  // one new position sees every cached one: no mask
    y = scaled_dot_product_attention(q, k, v, Tensor(), dropout_p);
  } else {  // query i (absolute position past + i) sees keys 0..past + i
    Tensor allowed = tril(ones({T, past + T}, DType::Bool, q.device()), past);
    y = scaled_dot_product_attention(q, k, v, allowed, dropout_p);
  }
  y = reshape(transpose(y, 1, 2), {B, T, C});
  return {resid_dropout->forward(c_proj->forward(y)), k, v};
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

std::tuple<Tensor, Tensor, Tensor> Block::forward_cached(const Tensor& x, const Tensor& past_k, const Tensor& past_v) {
  auto [a, k, v] = attn->forward_cached(ln_1->forward(x), past_k, past_v);
  Tensor y = x + a;
  return {y + mlp->forward(ln_2->forward(y)), k, v};
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

Tensor GPT::embed(const Tensor& idx, int64_t past) {
  LOOM_CHECK(idx.defined() && idx.dim() == 2, Value, "GPT: expected token indices of shape (B, T), got ",
             idx.defined() ? shape_str(idx.sizes()) : std::string("an undefined tensor"));
  LOOM_CHECK(!is_floating(idx.dtype()) && idx.dtype() != DType::Bool, Type,
             "GPT: token indices must have an integer dtype, got ", dtype_name(idx.dtype()));
  const int64_t T = idx.size(1);
  LOOM_CHECK(past + T <= config.block_size, Value, "GPT: cannot forward a sequence of length ", past + T,
             ", block size is only ", config.block_size);
  Tensor pos = arange(Scalar(past), Scalar(past + T), Scalar(int64_t(1)), DType::Int64, idx.device());
  return drop->forward(wte->forward(idx) + wpe->forward(pos));
}

Tensor GPT::forward(const Tensor& idx) {
  Tensor x = embed(idx, 0);
  for (const auto& block : *h) x = block->forward(x);
  return lm_head->forward(ln_f->forward(x));
}

std::pair<Tensor, KVCache> GPT::forward_cached(const Tensor& idx, const KVCache& past) {
  LOOM_CHECK(past.empty() || past.layers.size() == h->size(), Value, "GPT.forward_cached: the cache has ",
             past.layers.size(), " layers, the model ", h->size());
  Tensor x = embed(idx, past.length());
  KVCache present;
  for (size_t i = 0; i < h->size(); ++i) {
    Tensor past_k = past.empty() ? Tensor() : past.layers[i].first;
    Tensor past_v = past.empty() ? Tensor() : past.layers[i].second;
    auto [y, k, v] = h->at<Block>(static_cast<int64_t>(i))->forward_cached(x, past_k, past_v);
    x = y;
    present.layers.emplace_back(k, v);
  }
  return {lm_head->forward(ln_f->forward(x)), std::move(present)};
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
  const int64_t block = config.block_size;
  Tensor out = idx;
  KVCache cache;
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    const int64_t T = out.size(1);
    Tensor logits;
    if (!cache.empty() && T <= block) {  // the cache holds positions 0..T-2: feed the newest token only
      std::tie(logits, cache) = forward_cached(slice(out, 1, T - 1, T), cache);
    } else {
      std::tie(logits, cache) = forward_cached(T <= block ? out : slice(out, 1, T - block, T));
      if (T >= block) cache = KVCache();  // the next step must crop and recompute anyway
    }
    logits = select(logits, 1, -1);  // (B, vocab)
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
