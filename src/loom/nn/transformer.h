// loom::nn attention layers: MultiheadAttention, TransformerEncoderLayer and TransformerEncoder with torch.nn's
// constructor options, submodule and parameter names, shapes and default initialisation, so state dicts move
// between loom, loom's Python API and PyTorch by name:
//
//   MultiheadAttention(8, 2):            in_proj_weight (24, 8), in_proj_bias (24), out_proj.weight, out_proj.bias
//   TransformerEncoderLayer(8, 2, ...):  self_attn.*, linear1.*, linear2.*, norm1.*, norm2.*
//   TransformerEncoder(layer, 2, norm):   layers.0.*, layers.1.*, norm.*
//
//   auto attn = std::make_shared<loom::nn::MultiheadAttention>(64, 4, loom::nn::MultiheadAttentionOptions{
//       .batch_first = true});
//   loom::Tensor y = attn->forward(x, x, x, /*attn_mask=*/{}, /*is_causal=*/true);   // (N, L, 64)
//
// forward returns the attention output only: it is torch's need_weights=False path (one
// loom::scaled_dot_product_attention per call); key_padding_mask, add_bias_kv, add_zero_attn and kdim/vdim
// other than embed_dim are not supported.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "loom/core/tensor.h"
#include "loom/nn/container.h"
#include "loom/nn/layers.h"
#include "loom/nn/module.h"

namespace loom::nn {

struct MultiheadAttentionOptions {
  double dropout = 0.0;      // dropout on the attention weights (training mode only)
  bool bias = true;          // in_proj_bias and out_proj.bias
  bool batch_first = false;  // inputs (N, L, E) instead of (L, N, E)
};

// softmax(Q K^T / sqrt(head_dim) + mask) V per head, with the q/k/v projections packed in in_proj_weight
// (3 * embed_dim, embed_dim; xavier_uniform_) and in_proj_bias (3 * embed_dim; zeros), and an output projection
// out_proj (a Linear whose bias is zeroed, torch's NonDynamicallyQuantizableLinear).
class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, MultiheadAttentionOptions options = {});

  // query (L, N, E) / key, value (S, N, E), or (N, L, E) / (N, S, E) with batch_first, or unbatched (L, E) /
  // (S, E). attn_mask (L, S) or (N * num_heads, L, S): bool (true = NOT allowed, as torch) or float (added to the
  // scores). is_causal: query i attends to keys j <= i; with an attn_mask it is a hint (as in torch) and the
  // mask is used as given; without one the causal mask is applied (torch raises there instead).
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& attn_mask = Tensor(),
                 bool is_causal = false);
  // Self-attention: forward(x, x, x).
  Tensor forward(const Tensor& x) override { return forward(x, x, x); }
  using Module::operator();
  void reset_parameters();

  int64_t embed_dim, num_heads, head_dim;
  MultiheadAttentionOptions options;
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;
};

struct TransformerEncoderLayerOptions {
  int64_t dim_feedforward = 2048;
  double dropout = 0.1;
  std::string activation = "relu";  // "relu" or "gelu" (exact, erf)
  double layer_norm_eps = 1e-5;
  bool batch_first = false;
  bool norm_first = false;  // pre-norm when true
  bool bias = true;         // of the Linear layers, the attention and the LayerNorms
};

// torch.nn.TransformerEncoderLayer: self-attention then a feed-forward block (linear1, activation, dropout,
// linear2), each with a residual connection and a LayerNorm (after it, or before it with norm_first), and
// dropout1 / dropout2 on the two branches. Submodules, in torch's order: self_attn, linear1, dropout, linear2,
// norm1, norm2, dropout1, dropout2.
class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(int64_t d_model, int64_t nhead, TransformerEncoderLayerOptions options = {});
  // src as MultiheadAttention's query (batch_first decides the layout); src_mask and is_causal go to self_attn.
  Tensor forward(const Tensor& src, const Tensor& src_mask, bool is_causal = false);
  Tensor forward(const Tensor& src) override { return forward(src, Tensor()); }
  using Module::operator();

  int64_t d_model, nhead;
  TransformerEncoderLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1;
  std::shared_ptr<Dropout> dropout;
  std::shared_ptr<Linear> linear2;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<Dropout> dropout1, dropout2;

 private:
  Tensor sa_block(const Tensor& x, const Tensor& mask, bool is_causal);
  Tensor ff_block(const Tensor& x);
};

// torch.nn.TransformerEncoder: num_layers copies of encoder_layer (same options, same initial weights, as torch's
// deep copies; the template itself is not registered) in `layers`, then an optional final `norm`. State dict
// keys: layers.{i}.self_attn.in_proj_weight, ..., norm.weight, norm.bias.
class TransformerEncoder : public Module {
 public:
  TransformerEncoder(const TransformerEncoderLayer& encoder_layer, int64_t num_layers,
                     std::shared_ptr<LayerNorm> norm = nullptr);
  Tensor forward(const Tensor& src, const Tensor& mask, bool is_causal = false);
  Tensor forward(const Tensor& src) override { return forward(src, Tensor()); }
  using Module::operator();

  int64_t num_layers;
  std::shared_ptr<ModuleList> layers;
  std::shared_ptr<LayerNorm> norm;  // null when absent
};

}  // namespace loom::nn
