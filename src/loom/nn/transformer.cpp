// loom::nn attention layers: MultiheadAttention (one scaled_dot_product_attention per call) and
// TransformerEncoderLayer, composed of loom ops so autograd comes from them.
#include "loom/nn/transformer.h"

#include <cmath>
#include <limits>

#include "loom/core/error.h"
#include "loom/nn/init.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/linalg.h"
#include "loom/ops/nn.h"
#include "loom/ops/shape.h"

namespace loom::nn {

namespace {

// Bool masks (true = not allowed) become -inf/0 float masks of `dtype`; float masks are added as they are.
Tensor additive_mask(const Tensor& mask, DType dtype) {
  if (mask.dtype() == DType::Bool)
    return masked_fill(zeros(mask.sizes(), dtype, mask.device()), mask, -std::numeric_limits<double>::infinity());
  LOOM_CHECK(is_floating(mask.dtype()), Type, "MultiheadAttention: only bool and floating types of attn_mask are ",
             "supported, got ", dtype_name(mask.dtype()));
  return mask.dtype() == dtype ? mask : to_dtype(mask, dtype);
}

}  // namespace

// ================= MultiheadAttention =================

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads, MultiheadAttentionOptions options)
    : Module("MultiheadAttention"), embed_dim(embed_dim), num_heads(num_heads), options(options) {
  LOOM_CHECK(embed_dim > 0 && num_heads > 0, Value, "MultiheadAttention: embed_dim and num_heads must be greater ",
             "than 0, got embed_dim=", embed_dim, " and num_heads=", num_heads);
  LOOM_CHECK(embed_dim % num_heads == 0, Value, "MultiheadAttention: embed_dim (", embed_dim,
             ") must be divisible by num_heads (", num_heads, ")");
  LOOM_CHECK(options.dropout >= 0.0 && options.dropout <= 1.0, Value,
             "MultiheadAttention: dropout must be in [0, 1], got ", options.dropout);
  head_dim = embed_dim / num_heads;
  in_proj_weight = register_parameter("in_proj_weight", empty({3 * embed_dim, embed_dim}));
  in_proj_bias = register_parameter("in_proj_bias", options.bias ? empty({3 * embed_dim}) : Tensor());
  out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, options.bias));
  reset_parameters();
}

void MultiheadAttention::reset_parameters() {
  init::xavier_uniform_(in_proj_weight);
  if (in_proj_bias.defined()) {
    init::zeros_(in_proj_bias);
    init::zeros_(out_proj->bias);
  }
}

Tensor MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& attn_mask, bool is_causal) {
  LOOM_CHECK(query.defined() && key.defined() && value.defined(), Value,
             "MultiheadAttention: query, key and value must be defined tensors");
  LOOM_CHECK(query.dim() == 2 || query.dim() == 3, Value, "MultiheadAttention: query should be unbatched 2D or ",
             "batched 3D tensor but received ", query.dim(), "-D query tensor of shape ", shape_str(query.sizes()));
  LOOM_CHECK(key.dim() == query.dim() && value.dim() == query.dim(), Value, "MultiheadAttention: key ",
             shape_str(key.sizes()), " and value ", shape_str(value.sizes()), " must have the same number of dims ",
             "as query ", shape_str(query.sizes()));
  bool self_attention = query.is_same(key) && key.is_same(value);
  bool unbatched = query.dim() == 2;
  Tensor q_in = query, k_in = key, v_in = value;
  if (unbatched) {  // (L, E) -> (1, L, E)
    q_in = unsqueeze(query, 0), k_in = unsqueeze(key, 0), v_in = unsqueeze(value, 0);
  } else if (!options.batch_first) {  // (L, N, E) -> (N, L, E)
    q_in = transpose(query, 0, 1), k_in = transpose(key, 0, 1), v_in = transpose(value, 0, 1);
  }
  const int64_t N = q_in.size(0), L = q_in.size(1), E = q_in.size(2), S = k_in.size(1);
  LOOM_CHECK(E == embed_dim, Value, "MultiheadAttention: was expecting embedding dimension of ", embed_dim,
             ", but got ", E, " (query shape ", shape_str(query.sizes()), ")");
  LOOM_CHECK(k_in.size(0) == N && v_in.size(0) == N && k_in.size(2) == E && v_in.size(2) == E &&
                 v_in.size(1) == S,
             Value, "MultiheadAttention: key ", shape_str(key.sizes()), " and value ", shape_str(value.sizes()),
             " must match query ", shape_str(query.sizes()), " in batch size and embedding dim, and each other in ",
             "sequence length");
  const int64_t H = num_heads, D = head_dim;

  Tensor q, k, v;
  if (self_attention) {
    std::vector<Tensor> qkv = chunk(linear(q_in, in_proj_weight, in_proj_bias), 3, -1);
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else {
    auto part = [&](const Tensor& t, int64_t i) { return t.defined() ? narrow(t, 0, i * E, E) : Tensor(); };
    q = linear(q_in, part(in_proj_weight, 0), part(in_proj_bias, 0));
    k = linear(k_in, part(in_proj_weight, 1), part(in_proj_bias, 1));
    v = linear(v_in, part(in_proj_weight, 2), part(in_proj_bias, 2));
  }
  q = transpose(reshape(q, {N, L, H, D}), 1, 2);  // (N, H, L, D)
  k = transpose(reshape(k, {N, S, H, D}), 1, 2);
  v = transpose(reshape(v, {N, S, H, D}), 1, 2);

  Tensor mask;
  if (attn_mask.defined()) {
    mask = additive_mask(attn_mask, q.dtype());
    if (mask.dim() == 2) {
      LOOM_CHECK(mask.size(0) == L && mask.size(1) == S, Runtime, "MultiheadAttention: the shape of the 2D ",
                 "attn_mask is ", shape_str(mask.sizes()), ", but should be ", shape_str({L, S}));
      mask = reshape(mask, {1, 1, L, S});
    } else if (mask.dim() == 3) {
      LOOM_CHECK(mask.size(0) == N * H && mask.size(1) == L && mask.size(2) == S, Runtime,
                 "MultiheadAttention: the shape of the 3D attn_mask is ", shape_str(mask.sizes()),
                 ", but should be ", shape_str({N * H, L, S}));
      mask = reshape(mask, {N, H, L, S});
    } else {
      fail(ErrorKind::Runtime, "MultiheadAttention: attn_mask's dimension ", mask.dim(), " is not supported");
    }
  }
  double dropout_p = is_training() ? options.dropout : 0.0;
  Tensor out = scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal && !mask.defined());
  out = out_proj->forward(reshape(transpose(out, 1, 2), {N, L, E}));
  if (unbatched) return squeeze(out, {0});
  return options.batch_first ? out : transpose(out, 0, 1);
}

// ================= TransformerEncoderLayer =================

TransformerEncoderLayer::TransformerEncoderLayer(int64_t d_model, int64_t nhead, TransformerEncoderLayerOptions options)
    : Module("TransformerEncoderLayer"), d_model(d_model), nhead(nhead), options(options) {
  LOOM_CHECK(options.activation == "relu" || options.activation == "gelu", Runtime,
             "TransformerEncoderLayer: activation should be relu/gelu, not ", options.activation);
  self_attn = register_module(
      "self_attn", std::make_shared<MultiheadAttention>(
                       d_model, nhead,
                       MultiheadAttentionOptions{
                           .dropout = options.dropout, .bias = options.bias, .batch_first = options.batch_first}));
  linear1 = register_module("linear1", std::make_shared<Linear>(d_model, options.dim_feedforward, options.bias));
  dropout = register_module("dropout", std::make_shared<Dropout>(options.dropout));
  linear2 = register_module("linear2", std::make_shared<Linear>(options.dim_feedforward, d_model, options.bias));
  LayerNormOptions norm_options{.eps = options.layer_norm_eps, .elementwise_affine = true, .bias = options.bias};
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(Shape{d_model}, norm_options));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(Shape{d_model}, norm_options));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(options.dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(options.dropout));
}

Tensor TransformerEncoderLayer::sa_block(const Tensor& x, const Tensor& mask, bool is_causal) {
  return dropout1->forward(self_attn->forward(x, x, x, mask, is_causal));
}

Tensor TransformerEncoderLayer::ff_block(const Tensor& x) {
  Tensor h = linear1->forward(x);
  h = options.activation == "relu" ? relu(h) : gelu(h);
  return dropout2->forward(linear2->forward(dropout->forward(h)));
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const Tensor& src_mask, bool is_causal) {
  Tensor x = src;
  if (options.norm_first) {
    x = x + sa_block(norm1->forward(x), src_mask, is_causal);
    x = x + ff_block(norm2->forward(x));
  } else {
    x = norm1->forward(x + sa_block(x, src_mask, is_causal));
    x = norm2->forward(x + ff_block(x));
  }
  return x;
}

// ================= TransformerEncoder =================

TransformerEncoder::TransformerEncoder(const TransformerEncoderLayer& encoder_layer, int64_t num_layers,
                                       std::shared_ptr<LayerNorm> norm)
    : Module("TransformerEncoder"), num_layers(num_layers) {
  LOOM_CHECK(num_layers >= 0, Value, "TransformerEncoder: num_layers must be non-negative, got ", num_layers);
  layers = register_module("layers", std::make_shared<ModuleList>());
  StateDict state = encoder_layer.state_dict();
  for (int64_t i = 0; i < num_layers; ++i) {  // torch deep-copies the layer: same options, values, dtype, mode
    auto layer = std::make_shared<TransformerEncoderLayer>(encoder_layer.d_model, encoder_layer.nhead,
                                                           encoder_layer.options);
    layer->to(encoder_layer.self_attn->in_proj_weight.dtype());
    layer->load_state_dict(state);
    layer->train(encoder_layer.is_training());
    layers->push_back(layer);
  }
  if (norm) this->norm = register_module("norm", std::move(norm));
}

Tensor TransformerEncoder::forward(const Tensor& src, const Tensor& mask, bool is_causal) {
  Tensor x = src;
  for (const auto& layer : *layers)
    x = std::static_pointer_cast<TransformerEncoderLayer>(layer)->forward(x, mask, is_causal);
  return norm ? norm->forward(x) : x;
}

}  // namespace loom::nn
