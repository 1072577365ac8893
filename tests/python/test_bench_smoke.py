"""CI smoke test of the benchmark suite (bench/, issue 4): `python -m bench --smoke` completes and its JSON is
well-formed. No speed is asserted (shared, noisy machines); the real figures are in docs/performance.md."""
import json
import math
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIELDS = ("case", "group", "threads", "unit", "loom_status", "torch_status", "loom_median", "loom_iqr",
          "torch_median", "torch_iqr", "ratio", "samples", "limit", "loom_pct_of_limit", "torch_pct_of_limit",
          "note")


def _positive_finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def check_results(data):
    """Raises AssertionError naming the first problem in a suite result."""
    for key in ("machine", "limits", "config", "rows"):
        assert key in data, f"missing top-level key {key!r}"
    machine = data["machine"]
    for key in ("cpu_model", "logical_cpus", "flags", "loom_commit", "date_utc", "torch_version", "loadavg_start"):
        assert key in machine, f"machine info lacks {key!r}"
    for flag in ("avx2", "avx512f", "amx_bf16"):
        assert isinstance(machine["flags"].get(flag), bool), f"machine flag {flag!r} not reported"
    for t in ("1", "2"):
        lim = data["limits"].get(t)
        assert lim is not None, f"no machine limits for {t} thread(s)"
        assert _positive_finite(lim["stream_copy_gbs"]) and _positive_finite(lim["stream_triad_gbs"]), lim
        assert _positive_finite(lim["fma_gflops_measured"] or lim["fma_gflops_theoretical"]), lim
    rows = data["rows"]
    assert rows, "no rows"
    for row in rows:
        for field in FIELDS:
            assert field in row, f"row {row.get('case')!r} lacks {field!r}"
        assert row["threads"] in (1, 2), row
        assert row["unit"] in ("s", "MB"), row
        for side in ("loom", "torch"):
            status = row[f"{side}_status"]
            assert isinstance(status, str) and status, row
            if status == "ok":
                assert _positive_finite(row[f"{side}_median"]), f"{row['case']}: {side} median {row[f'{side}_median']}"
                assert row[f"{side}_iqr"] >= 0, row
            else:
                assert status.startswith("unsupported"), f"{row['case']} ({side}) failed: {status}"
                assert row[f"{side}_median"] is None, row
        both = row["loom_status"] == "ok" and row["torch_status"] == "ok"
        if both:
            assert _positive_finite(row["ratio"]), f"{row['case']}: ratio {row['ratio']}"
            assert math.isclose(row["ratio"], row["loom_median"] / row["torch_median"], rel_tol=1e-9), row
        else:
            assert row["ratio"] is None, row
        if row["limit"] is not None and row["loom_status"] == "ok":
            assert _positive_finite(row["loom_pct_of_limit"]), row
    cases = {r["case"] for r in rows}
    for name in cases:
        assert {r["threads"] for r in rows if r["case"] == name} == {1, 2}, f"{name}: not run at 1 and 2 threads"
    groups = {r["group"] for r in rows}
    for group in ("matmul", "conv", "fused", "bandwidth", "dispatch", "train", "generate", "memory"):
        assert group in groups, f"no {group!r} case ran"


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    with open(out) as f:
        data = json.load(f)
    # The saved file re-renders (python -m bench.report), Markdown included.
    rep = subprocess.run([sys.executable, "-m", "bench.report", str(out), "--markdown"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert rep.returncode == 0, rep.stderr[-4000:]
    assert rep.stdout.count("\n| ") >= len(data["rows"]), rep.stdout[-2000:]
    return data, proc.stdout


def test_smoke_run_is_well_formed(smoke_results):
    data, stdout = smoke_results
    check_results(data)
    assert data["config"]["smoke"] is True
    assert data["config"]["mode"] == "process"  # each framework in its own worker: the mode targets use
    assert "ratio" in stdout and "matmul fp32" in stdout  # the printed table


def test_checker_rejects_broken_results(smoke_results):
    data, _ = smoke_results
    row = next(r for r in data["rows"] if r["ratio"] is not None)
    for mutate in (lambda r: r.update(ratio=-1.0), lambda r: r.update(ratio=float("nan")),
                   lambda r: r.update(loom_status="error (boom)"), lambda r: r.pop("torch_median"),
                   lambda r: r.update(threads=3)):
        broken = json.loads(json.dumps(data))
        mutate(next(r for r in broken["rows"] if r["case"] == row["case"] and r["threads"] == row["threads"]))
        with pytest.raises(AssertionError):
            check_results(broken)
    broken = json.loads(json.dumps(data))
    broken["rows"] = [r for r in broken["rows"] if r["threads"] == 1]
    with pytest.raises(AssertionError):
        check_results(broken)


def test_filter_and_repeat(tmp_path):
    out = tmp_path / "one.json"
    proc = subprocess.run([sys.executable, "bench/run.py", "--smoke", "--filter", "^add ", "--repeat", "3",
                           "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert {r["case"] for r in data["rows"]} == {"add 4096 float32"}
    assert all(r["samples"] == 3 for r in data["rows"])


def test_in_process_mode_is_labelled(tmp_path):
    out = tmp_path / "in.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--in-process", "--filter", "^add ",
                           "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "quick look" in proc.stdout
    data = json.loads(out.read_text())
    assert data["config"]["mode"] == "in-process"
    check_rows = [r for r in data["rows"] if r["case"] == "add 4096 float32"]
    assert {r["threads"] for r in check_rows} == {1, 2} and all(r["ratio"] > 0 for r in check_rows)


def test_torch_worker_runs_under_its_own_openmp_defaults():
    """The PyTorch worker must not inherit loom's OMP_WAIT_POLICY default from the parent."""
    from bench.worker import Worker

    env = {}
    worker = Worker("torch", {"OMP_WAIT_POLICY": None, "OPENBLAS_THREAD_TIMEOUT": None})
    try:
        with open(f"/proc/{worker.proc.pid}/environ", "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    finally:
        worker.close()
    assert b"OMP_WAIT_POLICY" not in env
    user = Worker("torch", {"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_THREAD_TIMEOUT": None})
    try:
        with open(f"/proc/{user.proc.pid}/environ", "rb") as f:
            assert b"OMP_WAIT_POLICY=ACTIVE" in f.read().split(b"\0")
    finally:
        user.close()


def test_compare_two_runs(smoke_results, tmp_path):
    data, _ = smoke_results
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(data))
    changed = json.loads(json.dumps(data))
    row = next(r for r in changed["rows"] if r["ratio"] is not None)
    row["ratio"] *= 0.5  # loom twice as good, relative to PyTorch, in the new run
    new.write_text(json.dumps(changed))
    proc = subprocess.run([sys.executable, "-m", "bench.compare", str(old), str(new)], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith(row["case"]) and l.split()[-4] == str(row["threads"]))
    assert line.split()[-1] == "0.50", line
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    proc = subprocess.run([sys.executable, "-m", "bench.compare", str(old), str(bad)], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "not a result file" in proc.stderr
