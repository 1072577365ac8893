"""Side-by-side timing: loom and PyTorch alternately, warm-up, repeated samples, median and IQR."""
import math
import statistics
import time


def summarize(samples):
    """median, IQR (q75 - q25) and min of a list of seconds."""
    med = statistics.median(samples)
    if len(samples) >= 2:
        q = statistics.quantiles(samples, n=4, method="inclusive")
        iqr = q[2] - q[0]
    else:
        iqr = 0.0
    return med, iqr, min(samples)


def time_once(fn, number):
    """Seconds per call of fn, over `number` calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def side_by_side(fns, repeat, warmup=1, min_sample_s=0.005, max_case_s=6.0):
    """Times each callable of `fns` (name -> fn) in this process; see alternate()."""
    return alternate({name: (lambda number, fn=fn: time_once(fn, number)) for name, fn in fns.items()}, repeat,
                     warmup, min_sample_s, max_case_s)


def alternate(samplers, repeat, warmup=1, min_sample_s=0.005, max_case_s=6.0):
    """Times each side alternately. `samplers` maps a name to sample(number) -> seconds per call over `number`
    calls (in this process, or in a worker process of its own). Warm-up calls, then `repeat` rounds, each round one
    sample per side with the order flipped every round (so neither side always runs on a warm cache after the
    other). A sample makes `number` calls, `number` chosen from the warm-up so that a sample takes at least
    min_sample_s; returns ({name: [seconds per call, ...]}, number). Stops after max_case_s of sampling (at least
    3 rounds, or `repeat` when fewer)."""
    names = list(samplers)
    first = {name: samplers[name](1) for name in names}
    for _ in range(warmup):
        for name in names:
            first[name] = min(first[name], samplers[name](1))
    fastest = max(min(first.values()), 1e-9)
    number = max(1, math.ceil(min_sample_s / fastest))
    samples = {name: [] for name in names}
    started = time.perf_counter()
    for r in range(repeat):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(samplers[name](number))
        if r + 1 >= min(3, repeat) and time.perf_counter() - started > max_case_s:
            break
    return samples, number
