#!/usr/bin/env bash
# Builds bench/blas/sgemm_bench.c and times cblas_sgemm (oneDNN: dnnl_sgemm) of every BLAS it can find,
# alternately in one process. Not part of loom's build.
#
#   bench/blas/run.sh [--fetch] [sgemm_bench options...]     e.g. --rounds 7 --threads 1,2 --filter GPT
#
# Libraries are looked up in the system (Debian 12 multiarch paths) and under $BLAS_ROOT (default
# /tmp/loom-blas-root). --fetch downloads the Debian packages that are not installed with `apt-get download`
# and unpacks them there with `dpkg -x` (no root, nothing changes in the system). MKL is taken from the Python
# environment in $PYTHON (default .venv/bin/python) when `pip install mkl` put libmkl_rt.so.* there.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=${BLAS_ROOT:-/tmp/loom-blas-root}
PYTHON=${PYTHON:-../../.venv/bin/python}
ML=x86_64-linux-gnu
if [ "${1:-}" = "--fetch" ]; then
  shift
  mkdir -p "$ROOT/debs"
  (cd "$ROOT/debs" && apt-get download libopenblas0-openmp libblis4-openmp libblis4-pthread libdnnl2 ocl-icd-libopencl1)
  for f in "$ROOT"/debs/*.deb; do dpkg -x "$f" "$ROOT"; done
fi
cc -O2 -fopenmp -o "${TMPDIR:-/tmp}/loom_sgemm_bench" sgemm_bench.c -ldl -lm

find_lib() {  # first existing of: system path, $ROOT path
  for p in "/usr/lib/$ML/$1" "$ROOT/usr/lib/$ML/$1"; do [ -e "$p" ] && { echo "$p"; return; }; done
}
args=()
add() { local p; p=$(find_lib "$2"); [ -n "$p" ] && args+=("$1=$p${3:+,$3}") || echo "# not found: $1 ($2)" >&2; }
add openblas-pthread openblas-pthread/libopenblas.so.0
# OpenBLAS as loom's environments configure it on newer CPUs (OPENBLAS_CORETYPE=Haswell: AVX2 kernels), as a
# second copy of the library so that it loads apart from the auto-detecting one above.
ob=$(find_lib openblas-pthread/libopenblas.so.0)
if [ -n "$ob" ]; then
  mkdir -p "$ROOT/openblas-haswell" && cp -f "$ob" "$ROOT/openblas-haswell/libopenblas.so.0"
  args+=("openblas-haswell=$ROOT/openblas-haswell/libopenblas.so.0,openblas,OPENBLAS_CORETYPE=Haswell")
fi
add openblas-openmp openblas-openmp/libopenblas.so.0
add blis-pthread blis-pthread/libblis.so.4
add blis-openmp blis-openmp/libblis.so.4
add onednn libdnnl.so.2 dnnl
MKL_DIR=$("$PYTHON" -c 'import sys, os; print(os.path.join(sys.prefix, "lib"))' 2>/dev/null || true)
MKL=$(ls "$MKL_DIR"/libmkl_rt.so.* 2>/dev/null | head -1 || true)
[ -n "$MKL" ] && args+=("mkl=$MKL") || echo "# not found: MKL (pip install mkl)" >&2

# The conditions loom runs its BLAS under: passive OpenMP waiting, OpenBLAS workers that stop spinning soon.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-4}
export MKL_THREADING_LAYER=${MKL_THREADING_LAYER:-GNU}  # share the process's libgomp, like oneDNN and BLIS-openmp
export LD_LIBRARY_PATH="$ROOT/usr/lib/$ML${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}:$MKL_DIR"
exec "${TMPDIR:-/tmp}/loom_sgemm_bench" "$@" "${args[@]}"
