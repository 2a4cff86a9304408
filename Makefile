# SPDX-License-Identifier: Apache-2.0
# metaprobe: the two README commands and their helpers.
#   make demo   installs dependencies, builds, runs the appliance on the bundled capture
#   make test   installs dependencies, builds (Release and ASan+UBSan), runs ctest in both
#               (the real-client traffic test, label traffic, in the Release run only)
#   make test-docker  the compose stack in a private Docker engine (root; .ci/run)
#   make bench  benchmark figures (not a test)
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
CMAKE_GEN := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all deps build build-debug build-asan build-fuzz demo test test-release test-asan test-docker bench clean

all: build

deps:
	@bash deploy/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j$(JOBS)

build-debug: deps
	cmake -S . -B build-debug $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-debug -j$(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMETAPROBE_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)

build-fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMETAPROBE_FUZZ=ON -DMETAPROBE_SANITIZE=ON
	cmake --build $(FUZZ_BUILD) -j$(JOBS)

demo: build
	@bash tools/demo.sh $(BUILD)

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600 -LE docker

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS) --timeout 900 -LE 'perf|docker|traffic'

test: test-release test-asan

# The container stack end to end (tests/deploy/docker_stack.py): root, its
# own dockerd; run by .ci/run after `make test`.
test-docker: build
	cd $(BUILD) && ctest --output-on-failure -L docker

bench: build
	@bash tools/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) build-debug out
