# The two commands of the README: `make demo` (the main job: train a GPT) and `make test` (every test).
# Each does its own set-up (apt + pip packages, build) on a fresh Debian 12 machine.
PYTHON ?= python3
JOBS ?= 2
CMAKE_BUILD := build/cmake

.PHONY: demo test setup setup-test install cpp-build cpp-test package-test py-test py-test-capabilities clean

demo: setup install
	$(PYTHON) -m loom.train

test: setup-test install cpp-build
	$(MAKE) cpp-test package-test py-test py-test-capabilities

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

# Installs libloom into build/install and builds a separate project against it with find_package(Loom).
package-test:
	cmake --install $(CMAKE_BUILD) --prefix build/install > /dev/null
	cmake -S tests/package -B build/package -G Ninja -DCMAKE_PREFIX_PATH=$(CURDIR)/build/install > /dev/null
	cmake --build build/package
	LD_LIBRARY_PATH=$(CURDIR)/build/install/lib build/package/consumer

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

clean:
	rm -rf build
