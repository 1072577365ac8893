"""Fused AdamW step time: loom vs torch.optim.AdamW (foreach=True, fused=True) on a GPT-sized param list.

About 10.6M float32 parameters in 50 tensors (a 6-layer, 384-wide GPT). The optimizers are timed alternately
in one process (so machine load affects all alike); the median of the repetitions is reported.

    python bench/bench_optim.py [--reps 30] [--threads N]
"""
import argparse
import statistics
import time

import numpy as np

import loom  # first: sets OMP_WAIT_POLICY for the OpenMP runtime both libraries use
import loom.optim
import torch


def gpt_shapes(layers=6, width=384, vocab=65, context=256):
    shapes = [(vocab, width), (context, width)]
    for _ in range(layers):
        shapes += [(width,), (3 * width, width), (width, width), (width,), (4 * width, width), (width, 4 * width),
                   (width,), (3 * width,)]
    return shapes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="threads for both libraries (default: theirs)")
    args = parser.parse_args()
    if args.threads:
        loom.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)

    shapes = gpt_shapes()
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) * 0.02 for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) * 1e-3 for s in shapes]
    numel = sum(a.size for a in arrays)

    lp = [loom.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
    for p, g in zip(lp, grads):
        p.grad = loom.from_numpy(g.copy())
    candidates = {"loom fused": loom.optim.AdamW(lp, lr=1e-3, weight_decay=0.1)}
    for label, kwargs in [("torch foreach", dict(foreach=True)), ("torch fused", dict(fused=True))]:
        tp = [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
        for p, g in zip(tp, grads):
            p.grad = torch.from_numpy(g.copy())
        try:
            candidates[label] = torch.optim.AdamW(tp, lr=1e-3, weight_decay=0.1, **kwargs)
            candidates[label].step()
        except (RuntimeError, ValueError) as e:  # fused CPU AdamW missing in this torch build
            print(f"{label}: unavailable ({e})")
            candidates.pop(label, None)

    times = {label: [] for label in candidates}
    for rep in range(args.warmup + args.reps):
        for label, opt in candidates.items():
            start = time.perf_counter()
            opt.step()
            elapsed = time.perf_counter() - start
            if rep >= args.warmup:
                times[label].append(elapsed)

    print(f"AdamW step, {numel / 1e6:.2f}M float32 params in {len(shapes)} tensors, "
          f"threads loom={loom.get_num_threads()} torch={torch.get_num_threads()}, median of {args.reps}:")
    ours = statistics.median(times["loom fused"])
    for label, ts in times.items():
        median = statistics.median(ts)
        ratio = "" if label == "loom fused" else f"   loom/{label} = {ours / median:.2f}x time"
        print(f"  {label:14s} {median * 1e3:8.2f} ms  ({numel * 7 * 4 / median / 1e9:5.1f} GB/s moved){ratio}")


if __name__ == "__main__":
    main()
