#!/usr/bin/env bash
# The one GPU check of the CUDA backend (docs/cuda.md): on a machine with an NVIDIA GPU, offline, it builds loom with
# CUDA using the machine's python3 (the one with PyTorch+CUDA), runs the CUDA tests against PyTorch on the same GPU,
# runs compute-sanitizer memcheck on a small loom-only kernel workload, and a short side-by-side benchmark with
# PyTorch. Writes a summary to $SUMMARY (default build/gpu/summary.txt; also $OUT/summary.txt when $OUT is set).
# Designed to finish in under 8 minutes on 16 cores. Usage: bash scripts/gpu_check.sh
#
# Nothing is downloaded. What the build needs besides python3/cmake/ninja/nvcc: nanobind and scikit-build-core
# (Python), and the C++ libraries of docs/dependencies.md (OpenBLAS, oneDNN, nlohmann-json, zlib headers). Where the
# machine lacks the system ones, carry their Debian packages in .gpu-debs/ (docs/cuda.md says which); they are
# unpacked into a private prefix, never into /.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
BUILD=${LOOM_GPU_BUILD:-build/gpu}
JOBS=${JOBS:-16}
ARCH=${LOOM_CUDA_ARCHITECTURES:-90}
mkdir -p "$BUILD"
SUMMARY=${SUMMARY:-$BUILD/summary.txt}
START=$(date +%s)
: > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
die() { note "FAILED: $*"; [ -n "${OUT:-}" ] && cp "$SUMMARY" "$OUT/summary.txt"; exit 1; }
elapsed() { echo "$(( $(date +%s) - START ))s"; }

note "== loom GPU check: $(git rev-parse --short HEAD 2>/dev/null || echo unknown) $(date -u +%Y-%m-%dT%H:%MZ)"
command -v nvidia-smi > /dev/null && note "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
command -v nvcc > /dev/null || die "nvcc not found (needed to build the CUDA backend)"
note "nvcc: $(nvcc --version | tail -1)"
note "python: $($PY -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1)"

# ---- what the build needs, checked up front so a missing piece is named, not buried in a CMake log ----
if compgen -G ".gpu-debs/*.deb" > /dev/null; then
  SYSROOT=/tmp/loom-sysroot
  mkdir -p "$SYSROOT"
  for deb in .gpu-debs/*.deb; do dpkg -x "$deb" "$SYSROOT" || die "cannot unpack $deb"; done
  export CMAKE_PREFIX_PATH="$SYSROOT/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export CPATH="$SYSROOT/usr/include:$SYSROOT/usr/include/x86_64-linux-gnu${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$SYSROOT/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$SYSROOT/usr/lib/x86_64-linux-gnu:$SYSROOT/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  note "unpacked $(ls .gpu-debs/*.deb | wc -l) carried Debian packages into $SYSROOT"
fi
missing=()
for module in nanobind numpy pytest torch; do
  $PY -c "import $module" 2> /dev/null || missing+=("python:$module")
done
$PY -c "import nvidia, os, sys; sys.exit(0 if any(os.path.exists(os.path.join(p, 'cu13', 'include', 'cublas_v2.h')) for p in nvidia.__path__) else 1)" 2> /dev/null \
  || [ -e /usr/local/cuda/include/cublas_v2.h ] || missing+=("cuBLAS headers (nvidia-cublas wheel or toolkit)")
command -v cmake > /dev/null || missing+=("cmake")
command -v ninja > /dev/null || missing+=("ninja")
header_found() {
  for dir in ${CPATH//:/ } /usr/include /usr/local/include /usr/include/x86_64-linux-gnu; do
    [ -e "$dir/$1" ] && return 0
  done
  return 1
}
header_found cblas.h || header_found openblas/cblas.h || header_found x86_64-linux-gnu/openblas-pthread/cblas.h \
  || missing+=("OpenBLAS headers (Debian libopenblas-dev)")
header_found oneapi/dnnl/dnnl.hpp || header_found dnnl.hpp || missing+=("oneDNN (Debian libdnnl-dev)")
header_found nlohmann/json.hpp || missing+=("nlohmann-json (Debian nlohmann-json3-dev)")
header_found zlib.h || missing+=("zlib headers (Debian zlib1g-dev)")
[ ${#missing[@]} -eq 0 ] || die "missing on this machine: ${missing[*]} (see docs/cuda.md, 'Running the GPU check')"

# ---- build: libloom, the Python extension and libloom_cuda, staged as a package under $BUILD/python ----
note "-- build (-j$JOBS, sm_$ARCH) [$(elapsed)]"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOOM_BUILD_PYTHON=ON -DLOOM_BUILD_TESTS=OFF \
  -DLOOM_BUILD_EXAMPLES=OFF -DLOOM_WITH_CUDA=ON -DLOOM_CUDA_ARCHITECTURES="$ARCH" \
  -DPython_EXECUTABLE="$(command -v $PY)" > "$BUILD/configure.log" 2>&1 || { tail -30 "$BUILD/configure.log"; die "cmake configure (log: $BUILD/configure.log)"; }
cmake --build "$BUILD" -j "$JOBS" --target _C loom_cuda > "$BUILD/build.log" 2>&1 || { grep -E "error|Error" "$BUILD/build.log" | head -40; die "build (log: $BUILD/build.log)"; }
rm -rf "$BUILD/python" && mkdir -p "$BUILD/python"
cp -r python/loom "$BUILD/python/" && cp -P "$BUILD"/_C.*.so "$BUILD"/libloom.so* "$BUILD/python/loom/" \
  && cp "$BUILD/backends/cuda/libloom_cuda.so" "$BUILD/python/loom/" || die "staging the package"
export PYTHONPATH="$ROOT/$BUILD/python"
$PY -c "import loom; assert loom._C._is_available('cuda'), 'loom did not load its CUDA backend'; print('loom', loom.__file__, 'cuda devices', loom._C._device_count('cuda'))" 2>&1 | tee -a "$SUMMARY" \
  || die "import loom with CUDA"
note "build done [$(elapsed)]"

# ---- tests ----
status=0
note "-- tests/python/test_cuda.py [$(elapsed)]"
PYTHONUNBUFFERED=1 timeout 240 $PY -m pytest -q -p no:cacheprovider tests/python/test_cuda.py -rs 2>&1 | tee "$BUILD/test_cuda.log" | tail -40
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
note "pytest: $(grep -E '(passed|failed|error)' "$BUILD/test_cuda.log" | tail -1)"

# ---- compute-sanitizer memcheck on a small loom-only workload (PyTorch would instrument its own kernels too) ----
note "-- compute-sanitizer memcheck [$(elapsed)]"
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2> /dev/null | head -1)
if [ -n "$SANITIZER" ]; then
  cat > "$BUILD/memcheck_workload.py" <<'PYEOF'
import loom
x = loom.randn(37, 129, device="cuda")
y = (x * 2 + 1).exp().log1p().t().contiguous()
z = loom.softmax(x, -1) + loom.log_softmax(x, 0)
s = x.sum(dim=1) + x.amax(dim=1) + x.mean()
m = x @ x.t()
b = loom.bmm(x.reshape(1, 37, 129), x.t().reshape(1, 129, 37))
w = loom.where(x > 0, x, loom.zeros_like(x)).to(loom.bfloat16).to(loom.float32)
r = loom.rand(1001, device="cuda") + loom.randint(0, 9, (1001,), device="cuda")
loom.cuda.synchronize()
print("memcheck workload ok", float(s.sum().cpu()), float(m.sum().cpu()), float(b.sum().cpu()), float(r.sum().cpu()))
PYEOF
  timeout 180 "$SANITIZER" --tool memcheck --error-exitcode 9 $PY "$BUILD/memcheck_workload.py" > "$BUILD/memcheck.log" 2>&1
  rc=$?
  tail -5 "$BUILD/memcheck.log"
  note "memcheck: exit $rc ($(grep -E 'ERROR SUMMARY' "$BUILD/memcheck.log" | tail -1))"
  [ $rc -eq 0 ] || status=1
else
  note "memcheck: compute-sanitizer not found on this machine, skipped"
fi

# ---- side-by-side benchmark with PyTorch on the same GPU ----
note "-- benchmark (median of CUDA-event timings; same GPU, same process) [$(elapsed)]"
timeout 150 $PY - <<'PYEOF' 2>&1 | tee -a "$SUMMARY" || status=1
import statistics
import loom, torch

def timed(fn, event, sync, repeat=20):
    for _ in range(3): fn()
    sync()
    times = []
    for _ in range(repeat):
        a, b = event(enable_timing=True), event(enable_timing=True)
        a.record(); fn(); b.record(); b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)

torch.backends.cuda.matmul.allow_tf32 = False
cases = []
for n, dt in [(4096, "float32"), (4096, "bfloat16"), (4096, "float16")]:
    ta = torch.randn(n, n, device="cuda", dtype=getattr(torch, dt)); la = loom.randn(n, n, device="cuda", dtype=getattr(loom, dt))
    cases.append((f"matmul {n}^3 {dt}", lambda ta=ta: ta @ ta, lambda la=la: la @ la, 2 * n ** 3 / 1e12, "TFLOP/s"))
ta = torch.randn(1 << 26, device="cuda"); la = loom.randn(1 << 26, device="cuda")
cases.append(("add 64M float32", lambda: ta + ta, lambda: la + la, 3 * 4 * (1 << 26) / 1e9, "GB/s"))
cases.append(("exp 64M float32", lambda: ta.exp(), lambda: la.exp(), 2 * 4 * (1 << 26) / 1e9, "GB/s"))
cases.append(("sum 64M float32", lambda: ta.sum(), lambda: la.sum(), 4 * (1 << 26) / 1e9, "GB/s"))
ts = torch.randn(8192, 4096, device="cuda"); ls = loom.randn(8192, 4096, device="cuda")
cases.append(("softmax 8192x4096 float32", lambda: torch.softmax(ts, -1), lambda: loom.softmax(ls, -1), 2 * 4 * 8192 * 4096 / 1e9, "GB/s"))
print(f"{'case':32s} {'torch ms':>10s} {'loom ms':>10s} {'loom/torch':>10s}   loom rate")
for name, tf, lf, work, unit in cases:
    t_ms = timed(tf, torch.cuda.Event, torch.cuda.synchronize)
    l_ms = timed(lf, loom.cuda.Event, loom.cuda.synchronize)
    print(f"{name:32s} {t_ms:10.3f} {l_ms:10.3f} {l_ms / t_ms:10.2f}x  {work / (l_ms / 1e3):.1f} {unit}")
PYEOF

note "== $( [ $status -eq 0 ] && echo PASSED || echo FAILED ) in $(elapsed)"
[ -n "${OUT:-}" ] && cp "$SUMMARY" "$OUT/summary.txt" && cp "$BUILD"/test_cuda.log "$OUT/" 2> /dev/null
exit $status
