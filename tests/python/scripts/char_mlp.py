"""A small character-level language model in the style of public PyTorch examples (an MLP over a fixed context of
characters): trains for a few steps with NAdam, reports losses with f-string formatting, measures the predictive
entropy with torch.distributions and samples text with torch.multinomial.

Written against torch; the test suite also runs it with `import loom as torch` and compares the losses. The only
concession to that comparison is deterministic_init (NumPy-seeded weights), since the two frameworks' random
streams differ."""
import json
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TEXT = ("the quick brown fox jumps over the lazy dog. a stitch in time saves nine. all that glitters is not gold. "
        "the early bird catches the worm. where there is a will there is a way. ") * 4
BLOCK, BATCH, STEPS = 6, 32, 30


class CharMLP(nn.Module):
    def __init__(self, vocab_size, block, embed=12, hidden=48):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.net = nn.Sequential(nn.Linear(block * embed, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.SELU(),
                                 nn.Linear(hidden, vocab_size))

    def forward(self, idx):
        return self.net(self.embed(idx).flatten(1))


def deterministic_init(model, seed=0):
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in model.parameters():
            scale = 1.0 / np.sqrt(p.shape[-1])
            p.copy_(torch.FloatTensor(rng.normal(0.0, scale, size=tuple(p.shape)).tolist()))


def main():
    chars = sorted(set(TEXT))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.LongTensor([stoi[c] for c in TEXT])
    vocab, counts = data.unique(return_counts=True)
    assert len(vocab) == len(chars) and int(counts.sum()) == len(TEXT)

    model = torch.compile(CharMLP(len(chars), BLOCK))
    deterministic_init(model)
    optimizer = torch.optim.NAdam(model.parameters(), lr=5e-3, weight_decay=1e-4)
    rng = np.random.default_rng(1)
    losses = []
    for step in range(STEPS):
        starts = rng.integers(0, len(TEXT) - BLOCK - 1, size=BATCH)
        x = torch.stack([data[i:i + BLOCK] for i in starts])
        y = data[torch.from_numpy(starts + BLOCK)]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 0:
            print(f"step {step:3d} | loss {loss:.4f}")

    with torch.no_grad():
        dist = torch.distributions.Categorical(logits=logits)
        print(f"predictive entropy {dist.entropy().mean():.4f} nats")
        torch.manual_seed(0)
        context = x.new_zeros((1, BLOCK))
        out = []
        for _ in range(40):
            probs = F.softmax(model(context), dim=-1)
            nxt = torch.multinomial(probs, num_samples=1)
            context = torch.cat([context[:, 1:], nxt], dim=1)
            out.append(chars[int(nxt)])
        print("sample:", "".join(out))
    print("LOSSES " + json.dumps(losses))


if __name__ == "__main__":
    sys.exit(main())
