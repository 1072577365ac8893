# The two commands of the README: `make demo` (the main job: train a GPT) and `make test` (every test).
# Each does its own set-up (apt + pip packages, build) on a fresh Debian 12 machine.
PYTHON ?= python3
JOBS ?= 2
CMAKE_BUILD := build/cmake
ASAN_BUILD := build/asan
FUZZ_BUILD := build/fuzz
CLANG ?= clang++-14
FUZZ_SECONDS ?= 60

.PHONY: demo test test-fast lint format setup setup-test install cpp-build cpp-test package-test backend-plugin py-test \
        py-test-capabilities \
        sanitize-build sanitize-test fuzz-build fuzz-test cuda-build clean

demo: setup install
	$(PYTHON) -m loom.train

test: setup-test install cpp-build
	$(MAKE) lint cpp-test cuda-build package-test backend-plugin py-test py-test-capabilities sanitize-test fuzz-test

# The inner loop (a few minutes instead of most of an hour): the C++ tests and the Python suite without the tests
# marked slow (those that start processes, build or train; tests/python/conftest.py lists them). Needs `make install`,
# `make cpp-build` and `make backend-plugin` done; `make test` remains the check before a merge.
test-fast: lint
	ctest --test-dir $(CMAKE_BUILD) --output-on-failure --no-tests=error -j $(JOBS)
	$(PYTHON) -m pytest -q -m "not slow" tests/python

# Lint (docs/testing.md, "Lint"), a few seconds: ruff over the Python code (pyproject.toml [tool.ruff]), clang-format
# over the C++ files listed in tools/clang_format_files.txt (those already formatted; a file joins the list in the
# commit that formats it), and the include check of the layers (tools/check_layers.py).
CLANG_FORMAT ?= clang-format
CLANG_FORMAT_FILES = $(shell grep -v '^\#' tools/clang_format_files.txt)
lint:
	$(PYTHON) -m ruff check --quiet .
	@echo "$(CLANG_FORMAT) --dry-run --Werror <the $(words $(CLANG_FORMAT_FILES)) files of tools/clang_format_files.txt>"
	@$(CLANG_FORMAT) --dry-run --Werror $(CLANG_FORMAT_FILES)
	$(PYTHON) tools/check_layers.py

# Rewrites the listed C++ files and applies ruff's safe fixes: run before committing.
format:
	$(PYTHON) -m ruff check --quiet --fix .
	$(CLANG_FORMAT) -i $(CLANG_FORMAT_FILES)

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

# The Python package, built incrementally in build/<wheel tag> (ccache speeds up clean builds).
install:
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PYTHON) -m pip install --no-build-isolation --no-deps -q .

# libloom, its GoogleTest suite and the C++ examples, built directly with CMake.
cpp-build:
	cmake -S . -B $(CMAKE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOOM_BUILD_PYTHON=OFF -DLOOM_BUILD_TESTS=ON -DLOOM_BUILD_EXAMPLES=ON
	cmake --build $(CMAKE_BUILD) -j $(JOBS)

cpp-test:
	ctest --test-dir $(CMAKE_BUILD) --output-on-failure --no-tests=error -j $(JOBS)

# Builds tests/package (an application, a backend plugin, and every installed header compiled alone) with
# find_package(Loom) against the two installs of loom's C++ package, and runs it: libloom installed from the CMake build
# into build/install, and the pip-installed wheel (`make install`) through loom.utils.cmake_prefix_path.
package-test:
	rm -rf build/install  # a fresh prefix: headers an older build installed must not linger
	cmake --install $(CMAKE_BUILD) --prefix build/install > /dev/null
	cmake -S tests/package -B build/package -G Ninja -DCMAKE_PREFIX_PATH=$(CURDIR)/build/install > /dev/null
	cmake --build build/package -j $(JOBS)
	build/package/consumer
	cmake -S tests/package -B build/package-wheel -G Ninja \
	  -DCMAKE_PREFIX_PATH="$$($(PYTHON) -c 'import loom.utils; print(loom.utils.cmake_prefix_path)')" > /dev/null
	cmake --build build/package-wheel -j $(JOBS)
	build/package-wheel/consumer

# The example out-of-tree backend (examples/backend_plugin), built as a vendor would against the installed libloom:
# build/vdev for the device tests, build/vdev-wrong-abi (claims ABI 9999) for the loader's refusal. The Python tests
# load them from these paths and fail if they are missing.
VDEV_CMAKE := -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=$(CURDIR)/build/install
backend-plugin: cpp-build
	cmake --install $(CMAKE_BUILD) --prefix build/install > /dev/null
	cmake -S examples/backend_plugin -B build/vdev $(VDEV_CMAKE) > /dev/null
	cmake --build build/vdev -j $(JOBS)
	cmake -S examples/backend_plugin -B build/vdev-wrong-abi $(VDEV_CMAKE) -DVDEV_WRONG_ABI=ON > /dev/null
	cmake --build build/vdev-wrong-abi -j $(JOBS)

py-test:
	$(PYTHON) -m pytest -q tests/python

# The suite again with PyTorch (the reference) forced off its best SIMD path and loom's default path lowered to the
# portable loops, then the kernel tests with PyTorch and loom on AVX2: a test that only passes with the reference's SIMD
# path of this machine fails here instead of on the next machine (docs/testing.md, "Every CPU").
SIMD_TESTS := tests/python/test_simd_elementwise.py tests/python/test_fused_capability.py \
	tests/python/test_attention.py tests/python/test_conv_fused.py tests/python/test_matmul_paths.py \
	tests/python/test_autocast.py tests/python/test_ops.py
py-test-capabilities:
	ATEN_CPU_CAPABILITY=default LOOM_CPU_CAPABILITY=scalar $(PYTHON) -m pytest -q tests/python
	ATEN_CPU_CAPABILITY=avx2 LOOM_CPU_CAPABILITY=avx2 $(PYTHON) -m pytest -q $(SIMD_TESTS)

# libloom, its GoogleTest suite and the Python extension built with AddressSanitizer + UndefinedBehaviorSanitizer
# (-O1, any UB aborts) into build/asan; the Python package is staged in build/asan/python, so the release
# install that the other targets use is untouched.
sanitize-build:
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
	  -DLOOM_SANITIZE="address;undefined" -DLOOM_BUILD_PYTHON=ON -DLOOM_BUILD_TESTS=ON -DLOOM_BUILD_EXAMPLES=OFF \
	  -DPython_EXECUTABLE=$(shell command -v $(PYTHON))
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	rm -rf $(ASAN_BUILD)/python && mkdir -p $(ASAN_BUILD)/python
	cp -r python/loom $(ASAN_BUILD)/python/ && cp -P $(ASAN_BUILD)/_C.*.so $(ASAN_BUILD)/libloom.so* $(ASAN_BUILD)/python/loom/

# The interpreter is not built with ASan, so its runtime (gcc's) is preloaded; CPython's deliberate leaks are not
# reported. Runs the C++ tests and the Python tests of bad input, files, indexing and threads, and a fuzz slice.
SANITIZE_ENV := ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=4096 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# libstdc++ is preloaded too: ASan looks up __cxa_throw when it starts, before the extension loads libstdc++.
SANITIZE_PY_ENV := $(SANITIZE_ENV) LD_PRELOAD="$(shell g++ -print-file-name=libasan.so) $(shell g++ -print-file-name=libstdc++.so)" \
	PYTHONPATH=$(CURDIR)/$(ASAN_BUILD)/python LOOM_FUZZ_CALLS=10000
SANITIZE_PY_TESTS := $(wildcard tests/python/test_robustness*.py) \
	tests/python/test_serialization.py tests/python/test_indexing.py tests/python/test_views.py \
	tests/python/test_data.py tests/python/test_autocast.py $(wildcard tests/python/test_thread*.py)

sanitize-test: sanitize-build
	$(SANITIZE_ENV) ctest --test-dir $(ASAN_BUILD) --output-on-failure --no-tests=error -j $(JOBS)
	$(SANITIZE_PY_ENV) $(PYTHON) -c "import loom; assert '$(ASAN_BUILD)/python' in loom.__file__, loom.__file__"
	$(SANITIZE_PY_ENV) $(PYTHON) -m pytest -q -p no:cacheprovider $(SANITIZE_PY_TESTS)

# The coverage-guided fuzzer of the safetensors reader (libFuzzer, from clang): the reader's sources are
# instrumented, the rest of libloom is the release build of cpp-build. clang 14 has _Float16 on x86 only with
# AVX512-FP16; its storage-only __fp16 does the same float <-> half conversions (all that core/half.h asks of it).
fuzz-build: cpp-build
	mkdir -p $(FUZZ_BUILD)
	$(CLANG) -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Isrc -D_Float16=__fp16 \
	  tests/fuzz/safetensors_fuzzer.cpp src/loom/serialize/safetensors.cpp \
	  -L$(CMAKE_BUILD) -lloom -Wl,-rpath,$(CURDIR)/$(CMAKE_BUILD) -o $(FUZZ_BUILD)/safetensors_fuzzer

# A short seeded run from the committed corpus; new inputs go to build/fuzz/corpus, findings to build/fuzz/crash-*.
fuzz-test: fuzz-build
	rm -rf $(FUZZ_BUILD)/corpus && mkdir -p $(FUZZ_BUILD)/corpus
	$(FUZZ_BUILD)/safetensors_fuzzer $(FUZZ_BUILD)/corpus tests/fuzz/corpus/safetensors \
	  -dict=tests/fuzz/safetensors.dict -seed=1 -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	  -artifact_prefix=$(FUZZ_BUILD)/ -print_final_stats=1

# The CUDA backend plugin (backends/cuda, docs/cuda.md) compiled and linked on a machine without a GPU, so it cannot
# rot: needs nvcc (skipped, saying so, where there is none) and cuBLAS from the nvidia-cublas wheel (installed here
# when missing). Running it needs a GPU: scripts/gpu_check.sh.
CUDA_BUILD := build/cuda
CUBLAS_WHEEL := nvidia-cublas==13.0.2.14
cuda-build:
	@if ! command -v nvcc > /dev/null; then echo "cuda-build: no nvcc on this machine, CUDA backend not compiled"; exit 0; fi; \
	$(PYTHON) -c "import nvidia, os, sys; sys.exit(not any(os.path.exists(os.path.join(p, 'cu13', 'include', 'cublas_v2.h')) for p in nvidia.__path__))" 2> /dev/null \
	  || $(PYTHON) -m pip install -q "$(CUBLAS_WHEEL)"; \
	cmake -S . -B $(CUDA_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOOM_BUILD_PYTHON=OFF -DLOOM_BUILD_TESTS=OFF \
	  -DLOOM_BUILD_EXAMPLES=OFF -DLOOM_WITH_CUDA=ON -DPython_EXECUTABLE=$$(command -v $(PYTHON)) > /dev/null && \
	cmake --build $(CUDA_BUILD) -j $(JOBS) --target loom_cuda

clean:
	rm -rf build
