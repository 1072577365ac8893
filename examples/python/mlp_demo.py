"""The main job (for now): a 2-layer MLP written with loom learns to separate three interleaved spirals.

It uses only tensors, autograd and loom.nn.functional: parameters are plain leaf tensors, the update is a
hand-written SGD step under no_grad. Prints a falling loss and the final training accuracy.
Run: python examples/python/mlp_demo.py [--steps N] [--hidden H] [--lr LR]
"""
import argparse
import math
import time

import loom
import loom.nn.functional as F


def spirals(points_per_class=300, classes=3, noise=0.2, generator=None):
    """Three 2-D spirals, one per class: the classic task a linear model cannot solve."""
    radius = loom.linspace(0.05, 1.0, points_per_class)
    features, labels = [], []
    for c in range(classes):
        angle = loom.linspace(c * 4.0, (c + 1) * 4.0, points_per_class)
        angle = angle + loom.randn(points_per_class, generator=generator) * noise
        features.append(loom.stack([radius * loom.sin(angle), radius * loom.cos(angle)], dim=1))
        labels.append(loom.full((points_per_class,), c, dtype=loom.int64))
    return loom.cat(features), loom.cat(labels)


def init_linear(fan_in, fan_out, generator):
    """PyTorch's default Linear initialisation: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    weight = (loom.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound
    bias = (loom.rand(fan_out, generator=generator) * 2 - 1) * bound
    return weight.requires_grad_(), bias.requires_grad_()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="full-batch gradient steps (default 1500)")
    parser.add_argument("--hidden", type=int, default=128, help="hidden units (default 128)")
    parser.add_argument("--lr", type=float, default=1.0, help="SGD learning rate (default 1.0)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    generator = loom.Generator().manual_seed(args.seed)
    x, y = spirals(generator=generator)
    w1, b1 = init_linear(2, args.hidden, generator)
    w2, b2 = init_linear(args.hidden, 3, generator)
    params = [w1, b1, w2, b2]

    start = time.perf_counter()
    for step in range(args.steps + 1):
        logits = F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        with loom.no_grad():
            for p in params:
                p -= args.lr * p.grad
                p.grad = None
        if step % (args.steps // 10 or 1) == 0:
            accuracy = (logits.argmax(dim=1) == y).float().mean().item()
            print(f"step {step:5d}  loss {loss.item():.4f}  accuracy {accuracy:.3f}", flush=True)
    elapsed = time.perf_counter() - start
    print(f"trained a {2}-{args.hidden}-3 MLP on {x.shape[0]} points for {args.steps} steps in {elapsed:.1f}s")


if __name__ == "__main__":
    main()
