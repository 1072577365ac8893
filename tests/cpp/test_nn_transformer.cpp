// The C++ attention layers and GPT: ModuleDict, MultiheadAttention and TransformerEncoderLayer (PyTorch's
// state-dict keys, init, forward against a manual composition in float64), and loom::models::GPT (the Python
// GPT's key list, tied weights, gradients of every parameter, a finite-difference check, loss at init, learning a
// repeating sequence, generation).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "loom/loom.h"

namespace nn = loom::nn;
using loom::DType;
using loom::Scalar;
using loom::Tensor;
using loom::models::GPT;
using loom::models::GPTConfig;

namespace {

std::vector<std::string> keys(const nn::StateDict& entries) {
  std::vector<std::string> out;
  for (const auto& entry : entries) out.push_back(entry.first);
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return loom::max(loom::abs(loom::to_dtype(a, DType::Float64) - loom::to_dtype(b, DType::Float64)))
      .item()
      .to_double();
}

loom::ErrorKind error_kind(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const loom::Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no loom::Error raised";
  return loom::ErrorKind::Runtime;
}

// Reference attention of (N, L, E) inputs, written out: packed in-projection split into q/k/v weights, heads
// by reshape, softmax(Q K^T / sqrt(d) + mask) V, heads merged, out_proj.
Tensor manual_attention(const nn::MultiheadAttention& m, const Tensor& query, const Tensor& key, const Tensor& value,
                        const Tensor& additive_mask) {
  const int64_t E = m.embed_dim, H = m.num_heads, D = E / H;
  const int64_t N = query.size(0), L = query.size(1), S = key.size(1);
  auto w = [&](int64_t i) { return loom::narrow(m.in_proj_weight, 0, i * E, E); };
  auto b = [&](int64_t i) { return loom::narrow(m.in_proj_bias, 0, i * E, E); };
  Tensor q = loom::matmul(query, loom::t(w(0))) + b(0);
  Tensor k = loom::matmul(key, loom::t(w(1))) + b(1);
  Tensor v = loom::matmul(value, loom::t(w(2))) + b(2);
  q = loom::permute(loom::reshape(q, {N, L, H, D}), {0, 2, 1, 3});
  k = loom::permute(loom::reshape(k, {N, S, H, D}), {0, 2, 1, 3});
  v = loom::permute(loom::reshape(v, {N, S, H, D}), {0, 2, 1, 3});
  Tensor scores = loom::matmul(q, loom::transpose(k, -2, -1)) / std::sqrt(static_cast<double>(D));
  if (additive_mask.defined()) scores = scores + additive_mask;
  Tensor out = loom::matmul(loom::softmax(scores, -1), v);  // (N, H, L, D)
  out = loom::reshape(loom::permute(out, {0, 2, 1, 3}), {N, L, E});
  return loom::matmul(out, loom::t(m.out_proj->weight)) + m.out_proj->bias;
}

// -inf above the diagonal (key j > query i), 0 elsewhere.
Tensor causal_additive(int64_t L, DType dtype) {
  Tensor allowed = loom::tril(loom::ones({L, L}, DType::Bool));
  return loom::masked_fill(loom::zeros({L, L}, dtype), loom::logical_not(allowed),
                           -std::numeric_limits<double>::infinity());
}

// Perturbs every parameter (so zero biases and unit LayerNorm weights do not hide mistakes).
void perturb(nn::Module& m, double scale = 0.1) {
  loom::NoGradGuard no_grad;
  for (Tensor p : m.parameters()) loom::add_(p, loom::randn(p.sizes(), p.dtype()) * scale);
}

GPTConfig small_config() {
  return GPTConfig{.vocab_size = 11, .block_size = 8, .n_layer = 2, .n_head = 2, .n_embd = 16};
}

}  // namespace

// ---------------- ModuleDict ----------------

TEST(NNModuleDict, OrderedKeysNamesAndCasts) {
  auto dict = std::make_shared<nn::ModuleDict>();
  auto b = dict->insert("b", std::make_shared<nn::Linear>(2, 3));
  dict->insert("a", std::make_shared<nn::ReLU>());
  dict->insert("c", std::make_shared<nn::LayerNorm>(loom::Shape{3}));
  EXPECT_EQ(dict->keys(), (std::vector<std::string>{"b", "a", "c"}));  // insertion order, not sorted
  EXPECT_EQ(keys(dict->state_dict()), (std::vector<std::string>{"b.weight", "b.bias", "c.weight", "c.bias"}));
  EXPECT_EQ(dict->size(), 3u);
  EXPECT_TRUE(dict->contains("a"));
  EXPECT_FALSE(dict->contains("z"));
  EXPECT_EQ(dict->at<nn::Linear>("b"), b);
  EXPECT_EQ(error_kind([&] { dict->at<nn::Linear>("a"); }), loom::ErrorKind::Type);
  EXPECT_EQ(error_kind([&] { (*dict)["z"]; }), loom::ErrorKind::Index);
  // Replacing keeps the position (torch's OrderedDict assignment).
  dict->insert("b", std::make_shared<nn::Linear>(2, 5));
  EXPECT_EQ(dict->keys(), (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(dict->at<nn::Linear>("b")->out_features, 5);
  std::vector<std::string> iterated;
  for (const auto& [key, module] : *dict) iterated.push_back(key + ":" + module->name());
  EXPECT_EQ(iterated, (std::vector<std::string>{"b:Linear", "a:ReLU", "c:LayerNorm"}));
  // Nested in a module, keys are dotted through it.
  nn::ModuleDict outer({{"inner", dict}});
  EXPECT_EQ(keys(outer.state_dict())[0], "inner.b.weight");
}

// ---------------- state dict keys ----------------

TEST(NNTransformer, StateDictKeysMatchPyTorch) {
  // Printed by PyTorch 2.13: list(torch.nn.MultiheadAttention(8, 2).state_dict()) and
  // list(torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16).state_dict()).
  std::vector<std::string> mha = {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"};
  std::vector<std::string> layer = {"self_attn.in_proj_weight",  "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                                    "self_attn.out_proj.bias",   "linear1.weight",         "linear1.bias",
                                    "linear2.weight",            "linear2.bias",           "norm1.weight",
                                    "norm1.bias",                "norm2.weight",           "norm2.bias"};
  nn::MultiheadAttention attn(8, 2);
  EXPECT_EQ(keys(attn.state_dict()), mha);
  nn::TransformerEncoderLayer enc(8, 2, {.dim_feedforward = 16});
  EXPECT_EQ(keys(enc.state_dict()), layer);
  EXPECT_EQ(enc.linear1->weight.sizes(), (loom::Shape{16, 8}));
  EXPECT_EQ(attn.in_proj_weight.sizes(), (loom::Shape{24, 8}));
  // bias=false drops every bias, as torch (in_proj_bias, out_proj.bias, linear biases, LayerNorm biases).
  nn::TransformerEncoderLayer no_bias(8, 2, {.dim_feedforward = 16, .bias = false});
  EXPECT_EQ(keys(no_bias.state_dict()),
            (std::vector<std::string>{"self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight",
                                      "linear2.weight", "norm1.weight", "norm2.weight"}));
  // The submodules in torch's order (named_children of torch's layer).
  std::vector<std::string> children;
  for (const auto& [name, child] : enc.named_children()) children.push_back(name);
  EXPECT_EQ(children, (std::vector<std::string>{"self_attn", "linear1", "dropout", "linear2", "norm1", "norm2",
                                                "dropout1", "dropout2"}));
}

TEST(NNTransformer, GPTStateDictKeysMatchPython) {
  // Printed by the Python GPT: list(loom.models.GPT(loom.models.GPTConfig(vocab_size=11, block_size=8,
  // n_layer=2, n_head=2, n_embd=16)).state_dict()) (the same keys as nanoGPT's torch model).
  std::vector<std::string> expected = {
      "transformer.wte.weight",
      "transformer.wpe.weight",
      "transformer.h.0.ln_1.weight",
      "transformer.h.0.ln_1.bias",
      "transformer.h.0.attn.c_attn.weight",
      "transformer.h.0.attn.c_attn.bias",
      "transformer.h.0.attn.c_proj.weight",
      "transformer.h.0.attn.c_proj.bias",
      "transformer.h.0.ln_2.weight",
      "transformer.h.0.ln_2.bias",
      "transformer.h.0.mlp.c_fc.weight",
      "transformer.h.0.mlp.c_fc.bias",
      "transformer.h.0.mlp.c_proj.weight",
      "transformer.h.0.mlp.c_proj.bias",
      "transformer.h.1.ln_1.weight",
      "transformer.h.1.ln_1.bias",
      "transformer.h.1.attn.c_attn.weight",
      "transformer.h.1.attn.c_attn.bias",
      "transformer.h.1.attn.c_proj.weight",
      "transformer.h.1.attn.c_proj.bias",
      "transformer.h.1.ln_2.weight",
      "transformer.h.1.ln_2.bias",
      "transformer.h.1.mlp.c_fc.weight",
      "transformer.h.1.mlp.c_fc.bias",
      "transformer.h.1.mlp.c_proj.weight",
      "transformer.h.1.mlp.c_proj.bias",
      "transformer.ln_f.weight",
      "transformer.ln_f.bias",
      "lm_head.weight",
  };
  GPT model(small_config());
  EXPECT_EQ(keys(model.state_dict()), expected);
  // parameters() lists the tied weight once: every key but lm_head.weight.
  auto named = model.named_parameters();
  EXPECT_EQ(named.size(), expected.size() - 1);
  EXPECT_EQ(named.front().first, "transformer.wte.weight");
}

// ---------------- MultiheadAttention ----------------

TEST(NNTransformer, MultiheadAttentionInit) {
  loom::manual_seed(0);
  nn::MultiheadAttention attn(8, 2);
  double bound = std::sqrt(6.0 / (8 + 24));  // xavier_uniform_ of (24, 8)
  double largest = loom::max(loom::abs(attn.in_proj_weight)).item().to_double();
  EXPECT_LE(largest, bound);
  EXPECT_GT(largest, 0.8 * bound);
  EXPECT_EQ(loom::max(loom::abs(attn.in_proj_bias)).item().to_double(), 0.0);
  EXPECT_EQ(loom::max(loom::abs(attn.out_proj->bias)).item().to_double(), 0.0);
  EXPECT_LE(loom::max(loom::abs(attn.out_proj->weight)).item().to_double(), 1.0 / std::sqrt(8.0));
  EXPECT_EQ(error_kind([] { nn::MultiheadAttention(10, 3); }), loom::ErrorKind::Value);
}

TEST(NNTransformer, MultiheadAttentionEqualsManualComposition) {
  loom::manual_seed(1);
  const int64_t N = 3, L = 5, S = 7, E = 8;
  for (bool batch_first : {false, true}) {
    nn::MultiheadAttention attn(E, 2, {.batch_first = batch_first});
    attn.to(DType::Float64);
    perturb(attn);  // non-zero biases
    Tensor x = loom::randn({N, L, E}, DType::Float64);
    Tensor kv = loom::randn({N, S, E}, DType::Float64);
    Tensor v2 = loom::randn({N, S, E}, DType::Float64);
    auto layout = [&](const Tensor& t) { return batch_first ? t : loom::transpose(t, 0, 1); };
    auto back = [&](const Tensor& t) { return batch_first ? t : loom::transpose(t, 0, 1); };
    SCOPED_TRACE(batch_first ? "batch_first" : "(L, N, E)");
    // self-attention (packed projection), without and with a causal mask
    Tensor self_in = layout(x);
    EXPECT_LT(max_abs_diff(back(attn.forward(self_in, self_in, self_in)), manual_attention(attn, x, x, x, {})), 1e-12);
    Tensor causal = manual_attention(attn, x, x, x, causal_additive(L, DType::Float64));
    EXPECT_LT(max_abs_diff(back(attn.forward(self_in, self_in, self_in, {}, /*is_causal=*/true)), causal), 1e-12);
    Tensor bool_mask = loom::logical_not(loom::tril(loom::ones({L, L}, DType::Bool)));  // true = masked, as torch
    EXPECT_LT(max_abs_diff(back(attn.forward(self_in, self_in, self_in, bool_mask)), causal), 1e-12);
    EXPECT_LT(max_abs_diff(back(attn.forward(self_in, self_in, self_in, causal_additive(L, DType::Float64), true)),
                           causal),
              1e-12);
    // cross-attention with separate key and value (split projection) and a float (N * H, L, S) mask
    Tensor mask3 = loom::randn({N * 2, L, S}, DType::Float64);
    Tensor expected = manual_attention(attn, x, kv, v2, loom::reshape(mask3, {N, 2, L, S}));
    EXPECT_LT(max_abs_diff(back(attn.forward(layout(x), layout(kv), layout(v2), mask3)), expected), 1e-12);
    // the manual reference itself is not trivially equal to something else
    EXPECT_GT(max_abs_diff(expected, manual_attention(attn, x, kv, v2, {})), 1e-3);
  }
  // unbatched (L, E)
  nn::MultiheadAttention attn(E, 4);
  attn.to(DType::Float64);
  perturb(attn);
  Tensor x = loom::randn({L, E}, DType::Float64);
  Tensor expected = loom::squeeze(manual_attention(attn, loom::unsqueeze(x, 0), loom::unsqueeze(x, 0),
                                                   loom::unsqueeze(x, 0), {}),
                                  {0});
  EXPECT_LT(max_abs_diff(attn.forward(x), expected), 1e-12);
  EXPECT_EQ(error_kind([&] { attn.forward(loom::randn({2, 3, 5}, DType::Float64)); }), loom::ErrorKind::Value);
  EXPECT_EQ(error_kind([&] { attn.forward(x, x, x, loom::zeros({L, L + 1}, DType::Float64)); }),
            loom::ErrorKind::Runtime);
}

TEST(NNTransformer, MultiheadAttentionGradients) {
  loom::manual_seed(2);
  nn::MultiheadAttention attn(8, 2, {.batch_first = true});
  Tensor x = loom::randn({2, 4, 8});
  loom::sum(attn.forward(x, x, x, {}, true)).backward();
  for (const auto& [name, p] : attn.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_GT(loom::max(loom::abs(p.grad())).item().to_double(), 0.0) << name;
  }
}

// ---------------- TransformerEncoderLayer ----------------

TEST(NNTransformer, EncoderLayerEqualsManualComposition) {
  loom::manual_seed(3);
  const int64_t N = 2, L = 6, E = 8;
  for (bool norm_first : {false, true}) {
    for (std::string activation : {"relu", "gelu"}) {
      SCOPED_TRACE(std::string(norm_first ? "norm_first " : "post-norm ") + activation);
      nn::TransformerEncoderLayer layer(
          E, 2, {.dim_feedforward = 16, .activation = activation, .batch_first = true, .norm_first = norm_first});
      layer.to(DType::Float64);
      perturb(layer);
      layer.eval();  // dropout off
      Tensor x = loom::randn({N, L, E}, DType::Float64);
      auto norm = [&](const nn::LayerNorm& ln, const Tensor& t) {
        Tensor mu = loom::mean(t, {-1}, true);
        Tensor var = loom::mean((t - mu) * (t - mu), {-1}, true);
        return (t - mu) / loom::sqrt(var + 1e-5) * ln.weight + ln.bias;
      };
      auto ff = [&](const Tensor& t) {
        Tensor h = loom::matmul(t, loom::t(layer.linear1->weight)) + layer.linear1->bias;
        h = activation == "relu" ? loom::maximum(h, loom::zeros_like(h))
                                 : h * 0.5 * (loom::erf(h / std::sqrt(2.0)) + 1.0);
        return loom::matmul(h, loom::t(layer.linear2->weight)) + layer.linear2->bias;
      };
      for (bool causal : {false, true}) {
        Tensor mask = causal ? causal_additive(L, DType::Float64) : Tensor();
        auto sa = [&](const Tensor& t) { return manual_attention(*layer.self_attn, t, t, t, mask); };
        Tensor expected;
        if (norm_first) {
          Tensor h = x + sa(norm(*layer.norm1, x));
          expected = h + ff(norm(*layer.norm2, h));
        } else {
          Tensor h = norm(*layer.norm1, x + sa(x));
          expected = norm(*layer.norm2, h + ff(h));
        }
        EXPECT_LT(max_abs_diff(layer.forward(x, {}, causal), expected), 1e-10) << (causal ? "causal" : "");
      }
    }
  }
  EXPECT_EQ(error_kind([] { nn::TransformerEncoderLayer(8, 2, {.activation = "tanh"}); }), loom::ErrorKind::Runtime);
}

TEST(NNTransformer, EncoderLayerDropoutFollowsMode) {
  loom::manual_seed(4);
  nn::TransformerEncoderLayer layer(8, 2, {.dim_feedforward = 16, .dropout = 0.5});
  Tensor x = loom::randn({5, 2, 8});
  Tensor a = layer.forward(x), b = layer.forward(x);
  EXPECT_GT(max_abs_diff(a, b), 1e-4);  // training: different dropout masks
  layer.eval();
  EXPECT_EQ(max_abs_diff(layer.forward(x), layer.forward(x)), 0.0);
}

TEST(NNTransformer, EncoderStacksCopiesOfTheLayer) {
  loom::manual_seed(13);
  nn::TransformerEncoderLayer layer(8, 2, {.dim_feedforward = 16, .batch_first = true});
  layer.to(DType::Float64);
  perturb(layer);
  nn::TransformerEncoder encoder(layer, 2, std::make_shared<nn::LayerNorm>(loom::Shape{8}));
  // Printed by PyTorch 2.13: list(torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2,
  // dim_feedforward=16), 2, norm=torch.nn.LayerNorm(8)).state_dict())
  std::vector<std::string> expected = {
      "layers.0.self_attn.in_proj_weight", "layers.0.self_attn.in_proj_bias", "layers.0.self_attn.out_proj.weight",
      "layers.0.self_attn.out_proj.bias",  "layers.0.linear1.weight",         "layers.0.linear1.bias",
      "layers.0.linear2.weight",           "layers.0.linear2.bias",           "layers.0.norm1.weight",
      "layers.0.norm1.bias",               "layers.0.norm2.weight",           "layers.0.norm2.bias",
      "layers.1.self_attn.in_proj_weight", "layers.1.self_attn.in_proj_bias", "layers.1.self_attn.out_proj.weight",
      "layers.1.self_attn.out_proj.bias",  "layers.1.linear1.weight",         "layers.1.linear1.bias",
      "layers.1.linear2.weight",           "layers.1.linear2.bias",           "layers.1.norm1.weight",
      "layers.1.norm1.bias",               "layers.1.norm2.weight",           "layers.1.norm2.bias",
      "norm.weight",                       "norm.bias"};
  EXPECT_EQ(keys(encoder.state_dict()), expected);
  // copies: equal values (float64 kept), separate tensors
  auto first = encoder.layers->at<nn::TransformerEncoderLayer>(0);
  EXPECT_EQ(first->linear1->weight.dtype(), DType::Float64);
  EXPECT_EQ(max_abs_diff(first->linear1->weight, layer.linear1->weight), 0.0);
  EXPECT_FALSE(first->linear1->weight.is_same(layer.linear1->weight));
  encoder.eval();
  layer.eval();
  encoder.norm->to(DType::Float64);
  Tensor x = loom::randn({2, 5, 8}, DType::Float64);
  Tensor mask = causal_additive(5, DType::Float64);
  Tensor expected_out = encoder.norm->forward(layer.forward(layer.forward(x, mask), mask));
  EXPECT_LT(max_abs_diff(encoder.forward(x, mask), expected_out), 1e-12);
}

// ---------------- GPT ----------------

TEST(NNGPT, TiedWeightsShareStorage) {
  GPT model(small_config());
  EXPECT_TRUE(model.wte->weight.is_same(model.lm_head->weight));
  EXPECT_TRUE(model.parameter("transformer.wte.weight").is_same(model.parameter("lm_head.weight")));
  auto state = model.state_dict();
  EXPECT_EQ(state.front().second.storage(), state.back().second.storage());
  {
    loom::NoGradGuard no_grad;
    Tensor w = model.lm_head->weight;
    loom::fill_(w, 0.5);
  }
  EXPECT_EQ(loom::max(loom::abs(model.wte->weight - 0.5)).item().to_double(), 0.0);
  EXPECT_EQ(model.transformer->at<nn::Embedding>("wte"), model.wte);
  EXPECT_EQ(model.h->size(), 2u);
  // num_params: tied weight counted once, wpe excluded by default.
  int64_t total = 0;
  for (const auto& [name, t] : state) total += t.numel();
  EXPECT_EQ(model.num_params(false), total - 11 * 16);
  EXPECT_EQ(model.num_params(), total - 11 * 16 - 8 * 16);
}

TEST(NNGPT, InitFollowsNanoGPT) {
  loom::manual_seed(5);
  GPTConfig config{.vocab_size = 64, .block_size = 64, .n_layer = 4, .n_head = 4, .n_embd = 64};
  GPT model(config);
  auto std_of = [](const Tensor& t) {
    Tensor m = loom::mean(t);
    return std::sqrt(loom::mean((t - m) * (t - m)).item().to_double());
  };
  EXPECT_NEAR(std_of(model.wte->weight), 0.02, 0.002);
  EXPECT_NEAR(std_of(model.wpe->weight), 0.02, 0.002);
  auto block = model.h->at<loom::models::Block>(0);
  EXPECT_NEAR(std_of(block->attn->c_attn->weight), 0.02, 0.002);
  EXPECT_NEAR(std_of(block->mlp->c_fc->weight), 0.02, 0.002);
  double scaled = 0.02 / std::sqrt(2.0 * 4);
  EXPECT_NEAR(std_of(block->attn->c_proj->weight), scaled, 0.1 * scaled);
  EXPECT_NEAR(std_of(block->mlp->c_proj->weight), scaled, 0.1 * scaled);
  EXPECT_EQ(loom::max(loom::abs(block->attn->c_attn->bias)).item().to_double(), 0.0);
  EXPECT_EQ(loom::max(loom::abs(block->ln_1->weight - 1.0)).item().to_double(), 0.0);
}

TEST(NNGPT, LossAtInitIsLogVocab) {
  loom::manual_seed(6);
  GPTConfig config{.vocab_size = 50, .block_size = 16, .n_layer = 2, .n_head = 2, .n_embd = 32};
  GPT model(config);
  Tensor idx = loom::randint(0, 50, {4, 16});
  Tensor targets = loom::randint(0, 50, {4, 16});
  double loss = model.loss(idx, targets).item().to_double();
  EXPECT_NEAR(loss, std::log(50.0), 0.1);
  // ignore_index -1: ignored positions do not count
  Tensor partial = loom::clone(targets);
  {
    Tensor first = loom::narrow(partial, 1, 0, 8);
    loom::fill_(first, -1);
  }
  Tensor logits = model.forward(idx);
  Tensor kept = loom::cross_entropy(loom::reshape(loom::narrow(logits, 1, 8, 8), {-1, 50}),
                                    loom::reshape(loom::narrow(targets, 1, 8, 8), {-1}));
  EXPECT_LT(max_abs_diff(model.loss(idx, partial), kept), 1e-6);
  EXPECT_EQ(model.forward(idx).sizes(), (loom::Shape{4, 16, 50}));
  EXPECT_EQ(error_kind([&] { model.forward(loom::randint(0, 50, {1, 17})); }), loom::ErrorKind::Value);
  EXPECT_EQ(error_kind([&] { model.forward(loom::randint(0, 50, {16})); }), loom::ErrorKind::Value);
}

TEST(NNGPT, GradientsReachEveryParameter) {
  loom::manual_seed(7);
  GPT model(small_config());
  Tensor idx = loom::randint(0, 11, {3, 8});  // T = block_size: every wpe row is used
  Tensor targets = loom::randint(0, 11, {3, 8});
  model.loss(idx, targets).backward();
  auto named = model.named_parameters();
  ASSERT_EQ(named.size(), 28u);
  for (const auto& [name, p] : named) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.grad().sizes(), p.sizes()) << name;
    EXPECT_GT(loom::max(loom::abs(p.grad())).item().to_double(), 0.0) << name;
  }
}

TEST(NNGPT, GradientMatchesFiniteDifferences) {
  loom::manual_seed(8);
  GPT model(small_config());
  model.to(DType::Float64);
  perturb(model, 0.05);
  Tensor idx = loom::randint(0, 11, {2, 6});
  Tensor targets = loom::randint(0, 11, {2, 6});
  // the tied weight (embedding + output), an attention projection and a LayerNorm weight
  for (std::string name : {"lm_head.weight", "transformer.h.0.attn.c_attn.weight", "transformer.h.1.ln_2.weight"}) {
    SCOPED_TRACE(name);
    model.zero_grad();
    model.loss(idx, targets).backward();
    Tensor p = model.parameter(name);
    Tensor grad = loom::contiguous(p.grad());
    ASSERT_TRUE(p.is_contiguous());
    double* data = p.data<double>();
    const double* g = grad.data<double>();
    const double eps = 1e-6;
    for (int64_t i : {int64_t(0), p.numel() / 3, p.numel() - 1}) {
      double saved = data[i];
      double up, down;
      {
        loom::NoGradGuard no_grad;
        data[i] = saved + eps;
        up = model.loss(idx, targets).item().to_double();
        data[i] = saved - eps;
        down = model.loss(idx, targets).item().to_double();
        data[i] = saved;
      }
      double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(g[i], numeric, 1e-7 + 1e-5 * std::abs(numeric)) << "element " << i;
    }
  }
}

TEST(NNGPT, AdamWLearnsARepeatingSequence) {
  loom::manual_seed(9);
  GPTConfig config{.vocab_size = 16, .block_size = 16, .n_layer = 2, .n_head = 2, .n_embd = 32};
  GPT model(config);
  // 0 1 2 ... 7 0 1 2 ...: every next token is determined by the current one.
  std::vector<int64_t> seq(17);
  for (int64_t i = 0; i < 17; ++i) seq[i] = i % 8;
  Tensor all = loom::from_blob_copy(seq.data(), {1, 17}, DType::Int64);
  Tensor x = loom::expand(loom::narrow(all, 1, 0, 16), {4, 16});
  Tensor y = loom::expand(loom::narrow(all, 1, 1, 16), {4, 16});
  loom::optim::AdamW optimizer(model.parameters(), {.lr = 1e-2});
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    Tensor loss = model.loss(x, y);
    if (step == 0) first = loss.item().to_double();
    last = loss.item().to_double();
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  EXPECT_NEAR(first, std::log(16.0), 0.15);
  EXPECT_LT(last, 0.2 * first) << "first " << first << ", last " << last;
  // Greedy generation continues the pattern.
  model.eval();
  Tensor out = model.generate(loom::narrow(all, 1, 0, 3), 6, /*temperature=*/0.0);
  ASSERT_EQ(out.sizes(), (loom::Shape{1, 9}));
  for (int64_t i = 0; i < 9; ++i) EXPECT_EQ(out.data<int64_t>()[i], i % 8) << "position " << i;
}

TEST(NNGPT, KVCacheEqualsFullForward) {
  loom::manual_seed(11);
  GPT model(small_config());
  model.to(DType::Float64);
  perturb(model, 0.05);
  Tensor idx = loom::randint(0, 11, {2, 8});
  Tensor full = model.forward(idx);
  // positions 0..2, then 3..6 (several new positions after a cache: the offset causal mask), then 7 alone
  auto [a, cache] = model.forward_cached(loom::narrow(idx, 1, 0, 3));
  EXPECT_EQ(cache.length(), 3);
  auto [b, cache2] = model.forward_cached(loom::narrow(idx, 1, 3, 4), cache);
  auto [c, cache3] = model.forward_cached(loom::narrow(idx, 1, 7, 1), cache2);
  EXPECT_EQ(cache3.length(), 8);
  EXPECT_EQ(cache3.layers.size(), 2u);
  EXPECT_EQ(cache3.layers[0].first.sizes(), (loom::Shape{2, 2, 8, 8}));
  EXPECT_LT(max_abs_diff(loom::cat({a, b, c}, 1), full), 1e-12);
  // past + T beyond block_size raises
  EXPECT_EQ(error_kind([&] { model.forward_cached(loom::narrow(idx, 1, 0, 1), cache3); }), loom::ErrorKind::Value);
}

TEST(NNGPT, GreedyGenerateEqualsRecomputation) {
  loom::manual_seed(12);
  GPT model(small_config());
  model.to(DType::Float64);
  perturb(model, 0.5);  // sharper distributions: no near-ties between the two paths
  model.eval();
  Tensor prompt = loom::randint(0, 11, {2, 3});
  Tensor out = model.generate(prompt, 10, /*temperature=*/0.0);  // 13 > block_size 8: cache, then cropping
  Tensor expected = prompt;
  {
    loom::NoGradGuard no_grad;
    for (int i = 0; i < 10; ++i) {
      int64_t T = expected.size(1);
      Tensor context = T <= 8 ? expected : loom::narrow(expected, 1, T - 8, 8);
      Tensor next = loom::argmax(loom::select(model.forward(context), 1, -1), -1, true);
      expected = loom::cat({expected, next}, 1);
    }
  }
  EXPECT_EQ(max_abs_diff(out, expected), 0.0);
}

TEST(NNGPT, Generate) {
  loom::manual_seed(10);
  GPT model(small_config());
  model.eval();
  Tensor prompt = loom::randint(0, 11, {2, 3});
  // longer than block_size (8): the context is cropped
  Tensor out = model.generate(prompt, 12, 1.0, 3);
  ASSERT_EQ(out.sizes(), (loom::Shape{2, 15}));
  EXPECT_FALSE(out.requires_grad());
  EXPECT_EQ(max_abs_diff(loom::narrow(out, 1, 0, 3), prompt), 0.0);
  EXPECT_GE(loom::min(out).item().to_double(), 0.0);
  EXPECT_LE(loom::max(out).item().to_double(), 10.0);
  // top_k = 1 is greedy
  Tensor greedy = model.generate(prompt, 5, 0.0);
  Tensor top1 = model.generate(prompt, 5, 1.0, 1);
  EXPECT_EQ(max_abs_diff(greedy, top1), 0.0);
  // the same generator seed gives the same samples
  loom::Generator g1(123), g2(123);
  EXPECT_EQ(max_abs_diff(model.generate(prompt, 5, 1.0, std::nullopt, &g1),
                         model.generate(prompt, 5, 1.0, std::nullopt, &g2)),
            0.0);
  EXPECT_EQ(error_kind([&] { model.generate(prompt, 1, 1.0, 0); }), loom::ErrorKind::Value);
}
