#!/usr/bin/env bash
# Installs everything loom needs on a fresh Debian 12 machine: system packages and Python packages.
# Safe to run repeatedly; skips what is already there.
set -euo pipefail

# Build tools and libraries, then the built-in datasets (Fashion-MNIST IDX files, the fortunes text corpus).
APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config libopenblas-dev libdnnl-dev libgtest-dev nlohmann-json3-dev
              zlib1g-dev libcli11-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist fortunes)
missing=()
# For `make test` also clang, whose libFuzzer drives the safetensors fuzzer (tests/fuzz/safetensors_fuzzer.cpp).
# And clang-format (14 on Debian 12) for `make lint`.
[ "${1:-}" = "--test" ] && APT_PACKAGES+=(clang-14 libclang-rt-14-dev clang-format)
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
RUFF_VERSION=0.17.6
# Build tools (no build isolation, so incremental builds reuse build/) and the test references.
need_pip=()
$PYTHON -c "import scikit_build_core" 2>/dev/null || need_pip+=("scikit-build-core>=0.10")
$PYTHON -c "import nanobind" 2>/dev/null || need_pip+=("nanobind>=2.0")
$PYTHON -c "import numpy" 2>/dev/null || need_pip+=(numpy)
# The trainer's progress bar and loss-curve plot.
$PYTHON -c "import tqdm" 2>/dev/null || need_pip+=(tqdm)
$PYTHON -c "import matplotlib" 2>/dev/null || need_pip+=(matplotlib)
# Where nvcc is installed, the CUDA backend plugin is built too (docs/cuda.md); its cuBLAS comes from NVIDIA's wheel.
if command -v nvcc > /dev/null; then
  $PYTHON -c "import nvidia, os, sys; sys.exit(not any(os.path.exists(os.path.join(p, 'cu13', 'include', 'cublas_v2.h')) for p in nvidia.__path__))" 2>/dev/null \
    || need_pip+=("nvidia-cublas==13.0.2.14")
fi
if [ "${1:-}" = "--test" ]; then
  $PYTHON -c "import pytest" 2>/dev/null || need_pip+=(pytest)
  $PYTHON -c "import torch; assert torch.__version__.startswith('2.13.0')" 2>/dev/null || need_pip+=("torch==2.13.0")
  $PYTHON -c "import safetensors" 2>/dev/null || need_pip+=(safetensors)
  # The Python linter of `make lint`, pinned: a newer ruff may add checks that fail on unchanged code.
  [ "$($PYTHON -m ruff --version 2>/dev/null)" = "ruff $RUFF_VERSION" ] || need_pip+=("ruff==$RUFF_VERSION")
fi
if [ ${#need_pip[@]} -gt 0 ]; then
  $PYTHON -m pip install -q "${need_pip[@]}"
fi
