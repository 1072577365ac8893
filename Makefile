# The two commands of the README: `make demo` (the main job) and `make test` (every test).
# Each does its own set-up (apt + pip packages, build) on a fresh Debian 12 machine.
PYTHON ?= python3
JOBS ?= 2
CMAKE_BUILD := build/cmake

.PHONY: demo test setup setup-test build install cpp-build cpp-test py-test bench clean

demo: setup install
	$(PYTHON) examples/python/mlp_demo.py

test: setup-test install cpp-build
	$(MAKE) cpp-test py-test

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

# The Python package, built incrementally in build/<wheel tag> (ccache speeds up clean builds).
install:
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PYTHON) -m pip install --no-build-isolation --no-deps -q .

# libloom, its GoogleTest suite and the C++ examples, built directly with CMake.
cpp-build:
	cmake -S . -B $(CMAKE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOOM_BUILD_PYTHON=OFF
	cmake --build $(CMAKE_BUILD) -j $(JOBS)

cpp-test:
	ctest --test-dir $(CMAKE_BUILD) --output-on-failure -j $(JOBS)

py-test:
	$(PYTHON) -m pytest -q tests/python

clean:
	rm -rf build
