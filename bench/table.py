"""Formatting of suite results (no loom/torch import, so `python -m bench.report` can re-read a JSON file)."""
import json


def observed_limits(rows, limits):
    """Records per thread count the best rates the cases reached: the achieved BLAS peak (best fp32 sgemm: OpenBLAS
    through loom, MKL/oneDNN through torch) and the best bandwidth-bound case."""
    for t in {r["threads"] for r in rows}:
        lim = limits.setdefault(str(t), {})
        mm = [r for r in rows if r["threads"] == t and r["case"].startswith("matmul fp32")]
        for side in ("loom", "torch"):
            best = max(mm, key=lambda r: r[f"{side}_rate"] or 0, default=None)
            if best and best[f"{side}_rate"]:
                lim[f"blas_best_sgemm_gflops_{side}"] = best[f"{side}_rate"]
                lim[f"blas_best_sgemm_case_{side}"] = best["case"]
        bw = [r[f"{side}_rate"] for r in rows if r["threads"] == t and r["limit"] == "bandwidth"
              for side in ("loom", "torch") if r[f"{side}_rate"]]
        if bw:
            lim["best_bandwidth_case_gbs"] = max(bw)
    return limits


def derive_limits(limits):
    """Adds fma_gflops_limit and bandwidth_gbs_limit per thread count (see limits_how['limits_used'])."""
    one = limits.get("1", {}).get("fma_gflops_measured")
    for t, lim in limits.items():
        lim["fma_gflops_limit"] = max(v for v in (lim.get("fma_gflops_measured"), one and one * int(t),
                                                  lim.get("fma_gflops_theoretical"),
                                                  lim.get("blas_best_sgemm_gflops_loom"),
                                                  lim.get("blas_best_sgemm_gflops_torch"), 0.0)
                                      if v is not None) or None
        lim["bandwidth_gbs_limit"] = max([0.0] + [max(o.get("stream_copy_gbs") or 0, o.get("stream_triad_gbs") or 0,
                                                      o.get("best_bandwidth_case_gbs") or 0)
                                                  for k, o in limits.items() if int(k) <= int(t)]) or None
    return limits


def apply_limits(row, limits):
    """Fills loom/torch_pct_of_limit of a row from its rates and the limits of its thread count."""
    lim = limits.get(str(row["threads"]), {})
    peak = {"fma": lim.get("fma_gflops_limit"), "bandwidth": lim.get("bandwidth_gbs_limit")}.get(row["limit"])
    for side in ("loom", "torch"):
        rate = row.get(f"{side}_rate")
        row[f"{side}_pct_of_limit"] = 100.0 * rate / peak if peak and rate and row["unit"] == "s" else None
    return row


def _fmt_value(v, unit):
    if v is None:
        return "-"
    if unit == "MB":
        return f"{v:.0f} MB"
    if v < 1e-3:
        return f"{v * 1e6:.2f} us"
    if v < 1:
        return f"{v * 1e3:.2f} ms"
    return f"{v:.3f} s"


def _fmt_side(row, side):
    if row[f"{side}_status"] != "ok":
        return row[f"{side}_status"].split(" (")[0]
    return _fmt_value(row[f"{side}_median"], row["unit"])


def _pct(row):
    if row["unit"] == "MB" and row.get("loom_peak_above_import_mb") is not None \
            and row.get("torch_peak_above_import_mb") is not None:
        return (f"above import: {row['loom_peak_above_import_mb']:.0f} / {row['torch_peak_above_import_mb']:.0f} MB"
                f" (ratio {row['ratio_above_import']:.2f})")
    if row["loom_pct_of_limit"] is None and row["torch_pct_of_limit"] is None:
        rate = row.get("rate_unit")
        if rate and row.get("loom_rate") is not None and row.get("torch_rate") is not None:
            return f"{row['loom_rate']:.1f} / {row['torch_rate']:.1f} {rate}"
        return ""
    lim = "FMA" if row["limit"] == "fma" else "BW"
    fmt = lambda v: "-" if v is None else f"{v:.0f}%"  # noqa: E731
    return f"{fmt(row['loom_pct_of_limit'])} / {fmt(row['torch_pct_of_limit'])} of {lim}"


HEADER = f"{'case':66s} {'thr':>3s} {'loom':>12s} {'torch':>12s} {'ratio':>6s}  % of limit (loom / torch)"


def print_row(row):
    ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
    print(f"{row['case'][:66]:66s} {row['threads']:>3d} {_fmt_side(row, 'loom'):>12s} "
          f"{_fmt_side(row, 'torch'):>12s} {ratio:>6s}  {_pct(row)}", flush=True)


def markdown_table(rows):
    lines = ["| case | threads | loom | PyTorch | ratio | % of limit (loom / PyTorch) |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"| {r['case']} | {r['threads']} | {_fmt_side(r, 'loom')} | {_fmt_side(r, 'torch')} | {ratio} "
                     f"| {_pct(r)} |")
    return "\n".join(lines)


def report(path, markdown=False):
    """Prints the table of a results file, re-deriving the limits and fractions with this version's rules."""
    with open(path) as f:
        data = json.load(f)
    observed_limits(data["rows"], data["limits"])
    derive_limits(data["limits"])
    m = data["machine"]
    print(f"{m['cpu_model']}, loom {str(m['loom_commit'])[:10]}, torch {m['torch_version']}, {m['date_utc']}, "
          f"load average {m['loadavg_start'][0]:.2f} -> {m.get('loadavg_end', [float('nan')])[0]:.2f}")
    for t, lim in data["limits"].items():
        print(f"limits at {t} thread(s): FMA {lim['fma_gflops_limit']:.1f} GFLOP/s (measured "
              f"{lim['fma_gflops_measured'] or 0:.1f}, theoretical {lim['fma_gflops_theoretical'] or 0:.1f}), "
              f"bandwidth {lim['bandwidth_gbs_limit']:.1f} GB/s (copy {lim['stream_copy_gbs']:.1f}, "
              f"triad {lim['stream_triad_gbs']:.1f}), best sgemm loom "
              f"{lim.get('blas_best_sgemm_gflops_loom') or 0:.1f} / torch {lim.get('blas_best_sgemm_gflops_torch') or 0:.1f}")
    rows = [apply_limits(r, data["limits"]) for r in data["rows"]]
    if markdown:
        print(markdown_table(rows))
    else:
        print(HEADER)
        for r in rows:
            print_row(r)
