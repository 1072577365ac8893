"""Peak resident memory of GPT training steps in a fresh process with ONE framework imported (loom or torch).

    python -m bench.memory --framework loom|torch [--threads N] [--steps S] [--layers L --width W --context T
                           --heads H --batch B]

Prints one JSON line: peak_rss_mb (VmHWM), rss_after_import_mb, rss_after_setup_mb (model + optimizer + data).
"""
import argparse
import json
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


def _status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=["loom", "torch"], required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--vocab", type=int, default=65)
    p.add_argument("--batch", type=int, default=8)
    a = p.parse_args()

    import numpy as np

    from bench.models import Config, torch_gpt

    cfg = Config(vocab_size=a.vocab, block_size=a.context, n_layer=a.layers, n_head=a.heads, n_embd=a.width)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, a.vocab, size=(a.batch, a.context)).astype(np.int64)
    tgt = rng.integers(0, a.vocab, size=(a.batch, a.context)).astype(np.int64)
    if a.framework == "loom":
        import loom
        from loom.models import GPT, GPTConfig

        after_import = _status_mb("VmRSS")
        loom.set_num_threads(a.threads)
        model = GPT(GPTConfig(vocab_size=a.vocab, block_size=a.context, n_layer=a.layers, n_head=a.heads,
                              n_embd=a.width, dropout=0.0, bias=True))
        opt = loom.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
        x, y = loom.from_numpy(idx), loom.from_numpy(tgt)
    else:
        import torch

        after_import = _status_mb("VmRSS")
        torch.set_num_threads(a.threads)
        model = torch_gpt(cfg)
        try:
            opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, fused=True)
        except (RuntimeError, ValueError):
            opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, foreach=True)
        x, y = torch.from_numpy(idx), torch.from_numpy(tgt)
    after_setup = _status_mb("VmRSS")
    for _ in range(a.steps):
        opt.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        opt.step()
    print(json.dumps({"framework": a.framework, "threads": a.threads, "peak_rss_mb": _status_mb("VmHWM"),
                      "rss_after_import_mb": after_import, "rss_after_setup_mb": after_setup,
                      "loss": float(loss.item())}))


if __name__ == "__main__":
    main()
