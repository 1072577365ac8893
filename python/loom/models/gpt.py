"""A nanoGPT-style decoder-only transformer (GPT-2 layout and parameter names) with KV-cached generation."""
import math
from dataclasses import dataclass

from loom import _C
from loom.autograd import no_grad
from loom.nn import functional as F
from loom.nn import init
from loom.nn.module import Module
from loom.nn.modules import GELU, Dropout, Embedding, LayerNorm, Linear, ModuleDict, ModuleList

__all__ = ["GPTConfig", "GPT", "Block", "CausalSelfAttention", "MLP"]


@dataclass
class GPTConfig:
    """Model size: vocabulary, context length (block_size), layers, heads, embedding width, dropout, biases."""

    vocab_size: int = 65
    block_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True


class CausalSelfAttention(Module):
    """Multi-head causal self-attention with packed q/k/v projection c_attn and output projection c_proj.

    forward(x, past_key_value=None) attends to the cached keys/values of earlier positions as well; with
    use_cache=True it also returns the (key, value) cache extended by x's positions, each (B, n_head, T, head_dim).
    """

    def __init__(self, config):
        super().__init__()
        if config.n_embd % config.n_head != 0:
            raise ValueError(f"CausalSelfAttention: n_embd ({config.n_embd}) must be divisible by n_head "
                             f"({config.n_head})")
        self.c_attn = Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = Dropout(config.dropout)
        self.resid_dropout = Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout

    def forward(self, x, past_key_value=None, use_cache=False):
        B, T, C = x.shape  # batch, new positions, embedding width
        H = self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.reshape(B, T, H, C // H).transpose(1, 2)  # (B, H, T, head_dim)
        k = k.reshape(B, T, H, C // H).transpose(1, 2)
        v = v.reshape(B, T, H, C // H).transpose(1, 2)
        past = 0
        if past_key_value is not None:
            past_k, past_v = past_key_value
            past = past_k.shape[2]
            k = _C.cat([past_k, k], dim=2)
            v = _C.cat([past_v, v], dim=2)
        dropout_p = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        elif T == 1:  # one new position sees every cached one: no mask
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        else:  # query i (absolute position past + i) sees keys 0..past + i
            allowed = _C.ones(T, past + T, dtype=_C.bool, device=q.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout_p)
        y = y.transpose(1, 2).reshape(B, T, C)
        y = self.resid_dropout(self.c_proj(y))
        if use_cache:
            return y, (k, v)
        return y


class MLP(Module):
    """c_fc (n_embd -> 4 n_embd), GELU, c_proj (4 n_embd -> n_embd), dropout."""

    def __init__(self, config):
        super().__init__()
        self.c_fc = Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = GELU()
        self.c_proj = Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(Module):
    """Pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, past_key_value=None, use_cache=False):
        attn = self.attn(self.ln_1(x), past_key_value, use_cache)
        present = None
        if use_cache:
            attn, present = attn
        x = x + attn
        x = x + self.mlp(self.ln_2(x))
        return (x, present) if use_cache else x


class GPT(Module):
    """Decoder-only transformer: token + position embeddings, n_layer Blocks, final LayerNorm, and an lm_head whose
    weight is tied to the token embedding. forward(idx, targets=None) -> (logits (B, T, vocab), loss or None)."""

    def __init__(self, config):
        super().__init__()
        if config.vocab_size <= 0 or config.block_size <= 0:
            raise ValueError(f"GPT: vocab_size and block_size must be positive, got {config}")
        self.config = config
        self.transformer = ModuleDict(dict(
            wte=Embedding(config.vocab_size, config.n_embd),
            wpe=Embedding(config.block_size, config.n_embd),
            drop=Dropout(config.dropout),
            h=ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: one Parameter under two names (state_dict has both keys, parameters() yields it once).
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        # GPT-2's scaled init of the residual projections.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, Linear):
            init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, Embedding):
            init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding=True):
        """Number of parameters (tied weights counted once); without the position embedding by default."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    get_num_params = num_params

    def _hidden(self, idx, past_key_values=None, use_cache=False):
        if idx.dim() != 2:
            raise ValueError(f"GPT: expected token indices of shape (B, T), got {tuple(idx.shape)}")
        B, T = idx.shape
        past = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if past + T > self.config.block_size:
            raise ValueError(f"GPT: cannot forward a sequence of length {past + T}, block size is only "
                             f"{self.config.block_size}")
        pos = _C.arange(past, past + T, dtype=_C.int64, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        presents = []
        for i, block in enumerate(self.transformer.h):
            layer_past = None if past_key_values is None else past_key_values[i]
            if use_cache:
                x, present = block(x, layer_past, True)
                presents.append(present)
            else:
                x = block(x, layer_past)
        return self.transformer.ln_f(x), presents

    def forward(self, idx, targets=None):
        x, _ = self._hidden(idx)
        logits = self.lm_head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def forward_cached(self, idx, past_key_values=None):
        """Logits for the new tokens ``idx`` (B, T) after the cached positions, and the extended cache (one
        (key, value) pair per layer)."""
        x, presents = self._hidden(idx, past_key_values, use_cache=True)
        return self.lm_head(x), presents

    def crop_block_size(self, block_size):
        """Shrinks the context length (for a model trained with a longer one)."""
        if block_size > self.config.block_size:
            raise ValueError(f"GPT.crop_block_size: {block_size} exceeds the current {self.config.block_size}")
        self.config.block_size = block_size
        from loom.nn.parameter import Parameter

        self.transformer.wpe.weight = Parameter(self.transformer.wpe.weight.detach()[:block_size].clone())

    @no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        """Samples ``max_new_tokens`` tokens after ``idx`` (B, T) and returns (B, T + max_new_tokens).

        Uses a KV cache, so each new token costs one position; once the sequence outgrows block_size the context
        is cropped to the last block_size tokens and recomputed each step (positions shift). temperature=0 is greedy.
        """
        if top_k is not None and top_k <= 0:
            raise ValueError(f"GPT.generate: top_k must be positive, got {top_k}")
        block = self.config.block_size
        cache = None
        for _ in range(max_new_tokens):
            if cache is not None and idx.shape[1] <= block:
                logits, cache = self.forward_cached(idx[:, -1:], cache)
            else:
                context = idx if idx.shape[1] <= block else idx[:, -block:]
                logits, cache = self.forward_cached(context)
                if idx.shape[1] >= block:
                    cache = None  # the next step must crop and recompute anyway
            logits = logits[:, -1, :]
            if temperature == 0:
                next_token = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = _C.topk(logits, min(top_k, logits.shape[-1]))[0][:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                next_token = _sample(F.softmax(logits, dim=-1), generator)
            idx = _C.cat([idx, next_token], dim=1)
        return idx


def _sample(probs, generator):
    """One index per row of probs (B, V), by inverting the cumulative distribution at a uniform draw."""
    cdf = probs.double().cumsum(-1)
    u = _C.rand(probs.shape[0], 1, dtype=_C.float64, generator=generator, device=probs.device) * cdf[:, -1:]
    index = (cdf <= u).sum(-1, keepdim=True)
    return index.clamp(None, probs.shape[-1] - 1).long()
