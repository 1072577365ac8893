# The two commands of the README: `make demo` (the main job: train a GPT) and `make test` (every test).
# Each does its own set-up (apt + pip packages, build) on a fresh Debian 12 machine.
PYTHON ?= python3
JOBS ?= 2
CMAKE_BUILD := build/cmake

.PHONY: demo test setup setup-test install cpp-build cpp-test package-test py-test clean

demo: setup install
	$(PYTHON) -m loom.train

test: setup-test install cpp-build
	$(MAKE) cpp-test package-test py-test

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

clean:
	rm -rf build
