"""Host <-> device copy bandwidth through loom's device layer, on the example out-of-tree backend vdev.

For each size (1 MiB .. 256 MiB of float32), times `host.to(device)` (host to device) and `dev.cpu()` (device to
host), each followed by a device synchronisation, from pageable host memory and, when this loom has pin_memory(),
from pinned memory; reports the median GB/s (1 GB = 1e9 bytes) of the repetitions, the directions alternating so
machine load affects both alike. vdev's "device memory" is host RAM behind a second mapping, so these figures measure
the layer's overhead on top of a memcpy (a fresh allocation per copy, the stream hand-off), not a bus.

    python bench/bench_device.py [--plugin build/vdev/libloom_vdev.so] [--reps 9] [--max-mib 256]
"""
import argparse
import os
import statistics
import time

import numpy as np

import loom

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(fn, sync):
    start = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - start, out


def bandwidth_rows(device, sizes_mib, reps, pinned):
    sync = lambda: loom._C._synchronize(loom.device(device))  # noqa: E731
    rows = []
    for mib in sizes_mib:
        nbytes = mib << 20
        host = loom.from_numpy(np.ones(nbytes // 4, dtype=np.float32))
        if pinned:
            host = host.pin_memory()
        on_device = host.to(device)
        sync()
        up, down = [], []
        for _ in range(reps):
            up.append(timed(lambda: host.to(device), sync)[0])
            down.append(timed(lambda: on_device.cpu(), sync)[0])
        rows.append((mib, "pinned" if pinned else "pageable", nbytes / statistics.median(up) / 1e9,
                     nbytes / statistics.median(down) / 1e9))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", default=os.path.join(REPO, "build", "vdev", "libloom_vdev.so"))
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--max-mib", type=int, default=256)
    args = parser.parse_args()
    (device,) = loom._C._load_backend(args.plugin)
    sizes = [s for s in (1, 4, 16, 64, 256) if s <= args.max_mib]
    kinds = [False] + ([True] if hasattr(loom.Tensor, "pin_memory") else [])
    print(f"{'size':>8} {'host memory':>12} {'host->' + device + ' GB/s':>16} {device + '->host GB/s':>16}")
    for pinned in kinds:
        for mib, kind, up, down in bandwidth_rows(device, sizes, args.reps, pinned):
            print(f"{mib:>5} MiB {kind:>12} {up:>16.2f} {down:>16.2f}")
    if len(kinds) == 1:
        print("(no pin_memory() in this loom: pageable only)")


if __name__ == "__main__":
    main()
