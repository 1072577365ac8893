"""Machine description and limits the suite measures itself: FMA peak (measured and theoretical) and STREAM bandwidth.

Imported by bench/run.py after the OpenMP/OpenBLAS environment variables are set.
"""
import datetime
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cpuinfo():
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_flags():
    m = re.search(r"^flags\s*:\s*(.*)$", _cpuinfo(), re.M)
    return set(m.group(1).split()) if m else set()


def cpu_mhz():
    """The clock /proc/cpuinfo reports (nominal under a hypervisor; turbo is not visible there)."""
    values = [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([0-9.]+)", _cpuinfo(), re.M)]
    return max(values) if values else None


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        return None, None


def machine_info():
    import loom
    import numpy
    import torch

    info = _cpuinfo()
    model = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    flags = cpu_flags()
    commit, dirty = git_commit()
    return {
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "logical_cpus": os.cpu_count(),
        "cpu_mhz": cpu_mhz(),
        "flags": {name: name in flags for name in
                  ("avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")},
        "hypervisor": "hypervisor" in flags,
        "python": platform.python_version(),
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "loom_version": getattr(loom, "__version__", None),
        "loom_commit": commit,
        "worktree_dirty": dirty,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "loadavg_start": list(os.getloadavg()),
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS")},
    }


def theoretical_fma_gflops(threads):
    """cores x GHz x FMA units x floats per vector x 2 (multiply + add). Assumes 2 FMA units per core (Zen 2+/
    Skylake-SP and later), the vector width the CPU flags allow and the nominal clock from /proc/cpuinfo."""
    mhz = cpu_mhz()
    if not mhz:
        return None
    flags = cpu_flags()
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags or "avx" in flags else 4
    return threads * mhz / 1e3 * 2 * lanes * 2


_FMA_SRC = r"""
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>
typedef float vec __attribute__((vector_size(LANES * 4)));
#define CHAINS 12
#define REPS 40
int main(int argc, char** argv) {
  long iters = atol(argv[1]);
  double best = 0.0;
  for (int rep = 0; rep < REPS; ++rep) {
    double t0 = omp_get_wtime();
    float sink = 0.0f;
    #pragma omp parallel reduction(+ : sink)
    {
      vec acc[CHAINS];
      vec m, a;
      for (int j = 0; j < LANES; ++j) { m[j] = 0.999999f; a[j] = 1e-7f; }
      for (int c = 0; c < CHAINS; ++c) for (int j = 0; j < LANES; ++j) acc[c][j] = (float)(c + j + omp_get_thread_num());
      for (long i = 0; i < iters; ++i) {
        #pragma GCC unroll 12
        for (int c = 0; c < CHAINS; ++c) acc[c] = acc[c] * m + a;
        __asm__ volatile("" : "+v"(m), "+v"(a));  /* both in registers: a memory operand per FMA is load-bound (AVX-512) */
      }
      for (int c = 0; c < CHAINS; ++c) for (int j = 0; j < LANES; ++j) sink += acc[c][j];
    }
    double dt = omp_get_wtime() - t0;
    double flops = (double)iters * CHAINS * LANES * 2.0 * omp_get_max_threads();
    if (flops / dt > best) best = flops / dt;
    if (sink == 12345.0f) printf("#");
  }
  printf("%.3f\n", best / 1e9);
  return 0;
}
"""


def measured_fma_gflops(threads_list, smoke=False):
    """Runs a tiny C kernel of independent vector FMA chains (compiled here with -march=native, -fopenmp) with
    each thread count and returns {threads: GFLOP/s}; empty when no C compiler works. Best of 40 short runs."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return {}, "no C compiler"
    lanes = 16 if "avx512f" in cpu_flags() else 8
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "fma.c")
        exe = os.path.join(tmp, "fma")
        with open(src, "w") as f:
            f.write(_FMA_SRC)
        cmd = [cc, "-O2", "-march=native", "-ffp-contract=fast", "-fopenmp", f"-DLANES={lanes}", src, "-o", exe]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            return {}, "compile failed: " + r.stderr.strip()[:200]
        iters = 100_000 if smoke else 2_000_000  # ~4 ms a run: short runs dodge other processes' time slices
        for t in threads_list:
            env = dict(os.environ, OMP_NUM_THREADS=str(t), OMP_PROC_BIND="false")
            r = subprocess.run([exe, str(iters)], capture_output=True, text=True, env=env, timeout=120)
            try:
                out[t] = float(r.stdout.strip().split()[-1])
            except (ValueError, IndexError):
                return out, "run failed: " + (r.stderr or r.stdout).strip()[:200]
    return out, f"C kernel, {lanes}-float vectors, 12 independent FMA chains per thread, best of 40 runs"


def stream_bandwidth(threads, n, runs):
    """STREAM-style copy (b = a) and triad (a = b + s*c) with torch's kernels on n float32 elements per array;
    GB/s counted as STREAM does (copy 2 x 4n bytes, triad 3 x 4n, write-allocate traffic not counted). Best of runs."""
    import torch

    torch.set_num_threads(threads)
    a = torch.ones(n)
    b = torch.full((n,), 2.0)
    c = torch.full((n,), 0.5)
    copy_best = triad_best = 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        b.copy_(a)
        dt = time.perf_counter() - t0
        copy_best = max(copy_best, 2 * 4 * n / dt / 1e9)
        t0 = time.perf_counter()
        torch.add(b, c, alpha=3.0, out=a)
        dt = time.perf_counter() - t0
        triad_best = max(triad_best, 3 * 4 * n / dt / 1e9)
    del a, b, c
    return {"copy_gbs": copy_best, "triad_gbs": triad_best}
