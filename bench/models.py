"""Models for the end-to-end cases, written once against a torch-like `nn` namespace so loom.nn and torch.nn build
the same structure and state_dict names; plus a PyTorch twin of loom.models.GPT (module names as in
tests/python/torch_reference_models.py, copied here so this file never imports loom: the memory subprocess for
PyTorch must not load loom) with a KV-cached greedy generate loop mirroring loom's GPT.generate."""
import math
from dataclasses import dataclass


def make_mlp(nn, sizes=(784, 1024, 1024, 10)):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def make_cnn(nn, widths=(32, 64, 128), num_classes=10):
    """ResNet-style: stem conv, then per width a residual block (conv-bn-relu-conv-bn + identity), with stride-2
    convs between widths, global average pool and a linear head. For 3x32x32 inputs."""

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)
            self.relu = nn.ReLU()

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + x)

    layers = [nn.Conv2d(3, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    for i, w in enumerate(widths):
        if i > 0:
            layers += [nn.Conv2d(widths[i - 1], w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        layers.append(Block(w))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], num_classes)]
    return nn.Sequential(*layers)


@dataclass
class Config:
    vocab_size: int = 65
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    bias: bool = True


def torch_gpt(config):
    """nanoGPT in PyTorch with loom.models.GPT's module names."""
    import torch
    import torch.nn as tnn
    import torch.nn.functional as TF

    class Attention(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = tnn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
            self.c_proj = tnn.Linear(config.n_embd, config.n_embd, bias=config.bias)
            self.attn_dropout = tnn.Dropout(config.dropout)
            self.resid_dropout = tnn.Dropout(config.dropout)
            self.n_head = config.n_head
            self.n_embd = config.n_embd

        def forward(self, x, past=None):
            B, T, C = x.shape
            H = self.n_head
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            q = q.view(B, T, H, C // H).transpose(1, 2)
            k = k.view(B, T, H, C // H).transpose(1, 2)
            v = v.view(B, T, H, C // H).transpose(1, 2)
            if past is not None:
                k = torch.cat([past[0], k], dim=2)
                v = torch.cat([past[1], v], dim=2)
            # Same cases as loom's CausalSelfAttention: causal without a cache, no mask for one new position.
            assert past is None or T == 1
            y = TF.scaled_dot_product_attention(q, k, v, is_causal=past is None)
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.resid_dropout(self.c_proj(y)), (k, v)

    class MLP(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = tnn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
            self.gelu = tnn.GELU()
            self.c_proj = tnn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
            self.dropout = tnn.Dropout(config.dropout)

        def forward(self, x):
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = tnn.LayerNorm(config.n_embd, bias=config.bias)
            self.attn = Attention()
            self.ln_2 = tnn.LayerNorm(config.n_embd, bias=config.bias)
            self.mlp = MLP()

        def forward(self, x, past=None):
            a, present = self.attn(self.ln_1(x), past)
            x = x + a
            return x + self.mlp(self.ln_2(x)), present

    class GPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.config = config
            self.transformer = tnn.ModuleDict(dict(
                wte=tnn.Embedding(config.vocab_size, config.n_embd),
                wpe=tnn.Embedding(config.block_size, config.n_embd),
                drop=tnn.Dropout(config.dropout),
                h=tnn.ModuleList([Block() for _ in range(config.n_layer)]),
                ln_f=tnn.LayerNorm(config.n_embd, bias=config.bias),
            ))
            self.lm_head = tnn.Linear(config.n_embd, config.vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight
            for name, p in self.named_parameters():
                if p.dim() >= 2:
                    tnn.init.normal_(p, mean=0.0, std=0.02 / (math.sqrt(2 * config.n_layer)
                                                              if name.endswith("c_proj.weight") else 1.0))
                else:
                    tnn.init.zeros_(p) if "bias" in name else None

        def hidden(self, idx, cache=None):
            B, T = idx.shape
            past = 0 if cache is None else cache[0][0].shape[2]
            pos = torch.arange(past, past + T, dtype=torch.long)
            x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
            presents = []
            for i, block in enumerate(self.transformer.h):
                x, present = block(x, None if cache is None else cache[i])
                presents.append(present)
            return self.transformer.ln_f(x), presents

        def forward(self, idx, targets=None):
            x, _ = self.hidden(idx)
            logits = self.lm_head(x)
            loss = None
            if targets is not None:
                loss = TF.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
            return logits, loss

        @torch.no_grad()
        def generate(self, idx, max_new_tokens):
            """Greedy decoding with a KV cache, step for step as loom's GPT.generate(temperature=0) while the
            sequence fits in block_size."""
            cache = None
            for _ in range(max_new_tokens):
                if cache is None:
                    x, cache = self.hidden(idx)
                else:
                    x, cache = self.hidden(idx[:, -1:], cache)
                logits = self.lm_head(x)[:, -1, :]
                idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], dim=1)
            return idx

    return GPT()
