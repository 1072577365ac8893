"""Side-by-side CPU benchmark suite, loom vs PyTorch (issue 4).

    python -m bench [--filter REGEX] [--repeat N] [--threads 1,2] [--smoke] [--in-process] [--json PATH]
    (or: python bench/run.py ...)

Runs every case with loom and PyTorch alternately on the same inputs (built once from the same seeds, outside the
timed region), at 1 and 2 threads. By default each framework runs in a worker process of its own under its own
defaults (OpenMP wait policy above all), the idle one stopped while the other is timed (bench/worker.py): the mode
the targets are taken in. --in-process times both in this one process, where they share one OpenMP runtime and
loom's passive wait policy slows PyTorch (a quick look, labelled as such in the output and the JSON). It prints case, loom median, PyTorch median, ratio loom/PyTorch (below 1:
loom faster) and the fraction of the machine's limit reached: GFLOP/s against the FMA peak measured by a small C
kernel (theoretical from /proc/cpuinfo when no compiler), GB/s against the STREAM-style bandwidth the suite also
measures. Writes everything as JSON (default bench/results/latest.json, git-ignored) for later comparison.
"""
import os
import sys

# What the user set, before the defaults below: the PyTorch worker of the process mode inherits only these.
USER_ENV = {key: os.environ.get(key) for key in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
# Before torch or loom load: torch's wheel ships the libgomp that loom then shares, so loom's passive OpenMP wait
# policy must already be in the environment (see python/loom/__init__.py and tests/python/conftest.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:  # `python bench/run.py` puts bench/ itself first on sys.path, not the repo root
    sys.path.insert(0, _REPO)

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import loom  # noqa: E402
import torch  # noqa: E402

from bench import machine  # noqa: E402
from bench.cases import build_cases  # noqa: E402
from bench.table import HEADER, apply_limits, derive_limits, markdown_table, observed_limits, print_row  # noqa: E402
from bench.timing import alternate, side_by_side, summarize  # noqa: E402
from bench.worker import FRAMEWORKS, Worker, WorkerError  # noqa: E402

DEFAULT_JSON = os.path.join(_REPO, "bench", "results", "latest.json")
ROW_FIELDS = ("case", "group", "threads", "unit", "loom_status", "torch_status", "loom_median", "loom_iqr",
              "torch_median", "torch_iqr", "ratio", "samples", "calls_per_sample", "limit", "loom_pct_of_limit",
              "torch_pct_of_limit", "rate_unit", "loom_rate", "torch_rate", "note")


def set_threads(n):
    loom.set_num_threads(n)
    torch.set_num_threads(n)


def _short_error(e):
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"[:160]


def _probe(fn, optional):
    """None when fn runs, else 'unsupported (...)' (optional cases, e.g. bf16) or 'error (...)' naming the error."""
    try:
        fn()
        return None
    except Exception as e:  # noqa: BLE001 - a missing op or dtype must become a row, not a crash
        return ("unsupported (" if optional else "error (") + _short_error(e) + ")"


def measure_limits(threads_list, smoke):
    fma, how = machine.measured_fma_gflops(threads_list, smoke)
    n = (1 << 20) if smoke else (64 << 20)
    limits = {}
    for t in threads_list:
        stream = machine.stream_bandwidth(t, n, 2 if smoke else 12)
        theo = machine.theoretical_fma_gflops(t)
        limits[str(t)] = {
            "fma_gflops_measured": fma.get(t),
            "fma_gflops_theoretical": theo,
            "stream_copy_gbs": stream["copy_gbs"],
            "stream_triad_gbs": stream["triad_gbs"],
            "stream_array_mb": 4 * n / 2**20,
        }
    derive_limits(limits)
    gc.collect()
    return limits, {"fma_measured_how": how,
                    "fma_theoretical_how": "threads x cpu MHz (/proc/cpuinfo, nominal) x 2 FMA units x vector "
                                           "floats x 2",
                    "stream_how": "torch copy_ and add(alpha) on float32 arrays, STREAM byte counting, best of runs; "
                                  "limit for memory-bound cases = max(copy, triad)",
                    "limits_used": "the most conservative (highest) figure, so that load on a shared machine never "
                                   "inflates a fraction: FMA = max(measured at t threads, t x measured at 1 thread, "
                                   "theoretical, best fp32 sgemm either library reached at t threads); bandwidth = max(copy, triad, "
                                   "best rate of a bandwidth-bound case) over thread counts <= t"}


def _timing_budget(smoke):
    return dict(warmup=1 if smoke else 2, min_sample_s=0.0005 if smoke else 0.01, max_case_s=0.5 if smoke else 5.0)


def _finish_row(case, t, status, samples, number, limits, note):
    row = _row(case, t, status["loom"] or "ok", status["torch"] or "ok", samples.get("loom"), samples.get("torch"),
               number, len(next(iter(samples.values()))) if samples else 0, limits)
    if note:
        row["note"] = (row["note"] + "; " if row["note"] else "") + note
    print_row(row)
    return row


def run_time_case(case, threads_list, repeat, smoke, limits):
    """Both frameworks in this process (--in-process)."""
    rows = []
    try:
        fns = case.setup()
    except Exception as e:  # noqa: BLE001
        status = "error in setup (" + _short_error(e) + ")"
        return [_row(case, t, status, status, None, None, 0, 0, limits) for t in threads_list]
    note = fns.pop("note", None)
    for t in threads_list:
        set_threads(t)
        status = {side: _probe(fns[side], case.optional) for side in ("loom", "torch")}
        runnable = {side: fns[side] for side in fns if status[side] is None}
        samples, number = side_by_side(runnable, repeat=repeat, **_timing_budget(smoke)) if runnable else ({}, 0)
        rows.append(_finish_row(case, t, status, samples, number, limits, note))
    del fns
    gc.collect()
    return rows


def run_time_case_isolated(case, threads_list, repeat, smoke, limits, workers):
    """Each framework in its own worker process (the default mode)."""
    status, note = {}, None
    for side in FRAMEWORKS:
        try:
            note = workers[side].setup(case.name, smoke) or note
        except WorkerError as e:
            status[side] = "error in setup (" + str(e) + ")"
    rows = []
    for t in threads_list:
        row_status = dict(status)
        for side in FRAMEWORKS:
            if side not in status:
                workers[side].set_threads(t)
                failure = workers[side].probe()
                row_status[side] = None if failure is None else \
                    ("unsupported (" if case.optional else "error (") + failure + ")"
        runnable = {side: workers[side].sample for side in FRAMEWORKS if row_status[side] is None}
        samples, number = alternate(runnable, repeat, **_timing_budget(smoke)) if runnable else ({}, 0)
        rows.append(_finish_row(case, t, row_status, samples, number, limits, note))
    for side in FRAMEWORKS:
        workers[side].release()
    return rows


def _row(case, threads, loom_status, torch_status, loom_s, torch_s, number, n, limits):
    row = dict.fromkeys(ROW_FIELDS)
    row.update(case=case.name, group=case.group, threads=threads, unit="s", loom_status=loom_status,
               torch_status=torch_status, samples=n, calls_per_sample=number, limit=case.limit, note=case.note)
    for side, s in (("loom", loom_s), ("torch", torch_s)):
        if not s:
            continue
        s = [x / case.per_call for x in s]
        med, iqr, _ = summarize(s)
        row[f"{side}_median"], row[f"{side}_iqr"] = med, iqr
        if case.flops:
            row["rate_unit"] = "GFLOP/s"
            row[f"{side}_rate"] = case.flops / med / 1e9
        elif case.bytes:
            row["rate_unit"] = "GB/s"
            row[f"{side}_rate"] = case.bytes / med / 1e9
        elif case.rate:
            row["rate_unit"] = case.rate[0]
            row[f"{side}_rate"] = case.rate[1] / med
    apply_limits(row, limits)
    if row["loom_median"] and row["torch_median"]:
        row["ratio"] = row["loom_median"] / row["torch_median"]
    return row


def run_memory_case(case, threads_list, smoke):
    cfg, batch, steps = case.extra["cfg"], case.extra["batch"], case.extra["steps"]
    rows = []
    for t in threads_list:
        result = {}
        for side in ("loom", "torch"):
            cmd = [sys.executable, "-m", "bench.memory", "--framework", side, "--threads", str(t), "--steps",
                   str(steps), "--layers", str(cfg.n_layer), "--heads", str(cfg.n_head), "--width", str(cfg.n_embd),
                   "--context", str(cfg.block_size), "--vocab", str(cfg.vocab_size), "--batch", str(batch)]
            try:
                out = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, timeout=300)
                result[side] = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else \
                    "error (" + (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1][:150] + ")"
            except (subprocess.SubprocessError, ValueError, IndexError) as e:
                result[side] = "error (" + _short_error(e) + ")"
        row = dict.fromkeys(ROW_FIELDS)
        row.update(case=case.name, group=case.group, threads=t, unit="MB", samples=1, calls_per_sample=1,
                   note=case.note)
        for side in ("loom", "torch"):
            r = result[side]
            if isinstance(r, dict):
                row[f"{side}_status"] = "ok"
                row[f"{side}_median"] = r["peak_rss_mb"]
                row[f"{side}_iqr"] = 0.0
                row[f"{side}_rss_after_import_mb"] = r["rss_after_import_mb"]
                row[f"{side}_rss_after_setup_mb"] = r["rss_after_setup_mb"]
                row[f"{side}_peak_above_import_mb"] = r["peak_rss_mb"] - r["rss_after_import_mb"]
            else:
                row[f"{side}_status"] = r
        if row["loom_median"] and row["torch_median"]:
            row["ratio"] = row["loom_median"] / row["torch_median"]
            row["ratio_above_import"] = (row["loom_peak_above_import_mb"] /
                                         max(row["torch_peak_above_import_mb"], 1e-9))
        rows.append(row)
        print_row(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--filter", default=None, help="only cases whose name matches this regular expression")
    p.add_argument("--repeat", type=int, default=None, help="timed rounds per case and thread count (default 7; "
                                                            "fewer when a case exceeds its time budget)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--smoke", action="store_true", help="one repetition, tiny sizes (CI)")
    p.add_argument("--json", default=DEFAULT_JSON, help=f"where to write results (default {DEFAULT_JSON})")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown at the end")
    p.add_argument("--in-process", action="store_true", help="time both frameworks in this one process (shared "
                                                              "OpenMP runtime: a quick look, not for targets)")
    args = p.parse_args(argv)
    repeat = args.repeat or (1 if args.smoke else 7)
    if repeat < 1:
        p.error("--repeat must be at least 1")
    threads_list = [int(t) for t in args.threads.split(",") if t.strip()]
    if not threads_list or min(threads_list) < 1:
        p.error(f"--threads must list positive counts, got {args.threads!r}")
    pattern = re.compile(args.filter) if args.filter else None

    started = time.time()
    info = machine.machine_info()
    mode = "in-process" if args.in_process else "process"
    print(f"loom {info['loom_commit'] and info['loom_commit'][:10]} vs torch {info['torch_version']} on "
          f"{info['cpu_model']} ({info['logical_cpus']} CPUs), load average {info['loadavg_start'][0]:.2f}; "
          + ("both frameworks in this process (shared OpenMP runtime: a quick look)" if args.in_process else
             "each framework in its own process under its own defaults"), flush=True)
    limits, limits_how = measure_limits(threads_list, args.smoke)
    for t, lim in limits.items():
        fm = lim["fma_gflops_measured"]
        print(f"limits at {t} thread(s): FMA peak {'-' if fm is None else f'{fm:.1f}'} GFLOP/s measured, "
              f"{lim['fma_gflops_theoretical'] or 0:.1f} theoretical; STREAM copy {lim['stream_copy_gbs']:.1f} GB/s, "
              f"triad {lim['stream_triad_gbs']:.1f} GB/s; limits used {lim['fma_gflops_limit']:.1f} GFLOP/s, "
              f"{lim['bandwidth_gbs_limit']:.1f} GB/s", flush=True)
    print(HEADER, flush=True)

    rows = []
    workers = {}
    try:
        for case in build_cases(args.smoke):
            if pattern and not pattern.search(case.name):
                continue
            if case.kind == "memory":
                rows += run_memory_case(case, threads_list, args.smoke)
            elif args.in_process:
                rows += run_time_case(case, threads_list, repeat, args.smoke, limits)
            else:
                if not workers:
                    workers = {side: Worker(side, USER_ENV) for side in FRAMEWORKS}
                try:
                    rows += run_time_case_isolated(case, threads_list, repeat, args.smoke, limits, workers)
                except WorkerError as e:  # a worker died (a crash in a case): the case's rows say so, fresh workers
                    status = "error (" + str(e) + ")"
                    rows += [_row(case, t, status, status, None, None, 0, 0, limits) for t in threads_list]
                    for worker in workers.values():
                        worker.close()
                    workers = {}
    finally:
        for worker in workers.values():
            worker.close()

    observed_limits(rows, limits)
    derive_limits(limits)  # again, now with the best sgemm and bandwidth-case rates
    for row in rows:
        apply_limits(row, limits)
    info["loadavg_end"] = list(os.getloadavg())
    result = {"schema": 1, "machine": info, "limits": limits, "limits_how": limits_how,
              "config": {"repeat": repeat, "smoke": args.smoke, "filter": args.filter, "threads": threads_list,
                         "mode": mode,
                         "statistic": "median and IQR of per-call seconds; ratio = loom median / torch median"},
              "elapsed_s": time.time() - started, "rows": rows}
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, allow_nan=False, default=str)
        print(f"wrote {args.json} ({len(rows)} rows, {result['elapsed_s']:.0f} s, load average now "
              f"{info['loadavg_end'][0]:.2f})")
    if args.markdown:
        print(markdown_table(rows))
    failed = [f"{r['case']} ({r['threads']} threads)" for r in rows
              if r["loom_status"].startswith("error") or r["torch_status"].startswith("error")]
    if failed:
        print(f"errors in {len(failed)} row(s): " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
