# kafka-llm developer entry points. Every target installs what it needs, idempotently:
# Debian packages (scripts/install-system-deps.sh), a virtualenv (.venv) with the package built
# from this checkout, and (on first use) the Apache Kafka jars from Maven Central.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PRESET ?= dev
STAMPS := build/.stamps
CPP_SOURCES := $(shell find cpp tests/cpp -type f \( -name '*.cpp' -o -name '*.hpp' -o -name CMakeLists.txt \) 2>/dev/null)
PY_SOURCES := $(shell find python -type f -name '*.py*' 2>/dev/null)

PY_DIRS := $(wildcard python service tests bench notebooks)

.PHONY: help demo test test-cpp test-python bench lint tidy format system-deps venv install cpp sanitize clean soak

help:
	@echo "make demo   - start the local stack, run a worker, send requests, print results"
	@echo "make test   - build everything and run the C++ and Python test suites"
	@echo "make bench  - run the benchmarks (bench/results/)"
	@echo "make lint   - clang-format, ruff, mypy, clang-tidy"

system-deps:
	@bash scripts/install-system-deps.sh

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Build requirements plus every optional-dependency group in pyproject.toml (one list of packages).
$(STAMPS)/venv-deps: pyproject.toml | $(VENV)/bin/python
	$(PY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
	  print("\n".join(p["build-system"]["requires"] + sum(p["project"]["optional-dependencies"].values(), [])))' \
	  | xargs $(PIP) install -q
	@mkdir -p $(STAMPS) && touch $@

venv: system-deps $(STAMPS)/venv-deps

# The package, built by scikit-build-core into build/<wheel tag> (incremental across runs).
$(STAMPS)/install: $(STAMPS)/venv-deps $(CPP_SOURCES) $(PY_SOURCES) CMakeLists.txt pyproject.toml
	$(PIP) install -q --no-build-isolation .
	@touch $@

install: venv $(STAMPS)/install

cpp: system-deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET)

test-cpp: cpp
	ctest --preset $(PRESET) -L unit

test-python: install cpp
	KAFKA_LLM_CPP_BUILD_DIR=build/$(PRESET) $(PY) -m pytest

test: test-cpp test-python

demo: install
	$(PY) -m kafka_llm.demo

# The benchmarks (bench/README.md): the native worker and a Python asyncio peer side by side on a
# private local stack; results in bench/results/. BENCH_ARGS=--quick for a CI-sized run.
BENCH_ARGS ?=
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

lint: venv
	git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror
	$(VENV)/bin/ruff check $(PY_DIRS)
	$(VENV)/bin/ruff format --check $(PY_DIRS)
	$(VENV)/bin/mypy

# clang-tidy over the core library and tools, with the dev build's compile commands.
tidy: cpp
	run-clang-tidy -quiet -p build/$(PRESET) -j 2 '$(CURDIR)/cpp/(src|tools)/.*\.cpp$$' > build/clang-tidy.log 2>&1 \
	  || { grep -aE 'error:|warning:' build/clang-tidy.log | sort -u | head -50 || true; exit 1; }

format: venv
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i
	$(VENV)/bin/ruff format $(PY_DIRS)
	$(VENV)/bin/ruff check --fix $(PY_DIRS)

clean:
	rm -rf build $(VENV)

# The chaos soak (tests/python/test_soak.py) for SOAK_SECONDS; `make test` runs a 25 s version.
SOAK_SECONDS ?= 600
soak: install
	KAFKA_LLM_SOAK_SECONDS=$(SOAK_SECONDS) $(PY) -m pytest tests/python/test_soak.py -s \
	  --timeout $$(($(SOAK_SECONDS) + 900))

# --- Sanitizers and fuzzing -----------------------------------------------------------------------
# `make sanitize`: the C++ unit and integration tests under ASan+UBSan (build/asan) and under TSan
# (build/tsan); the integration tests against a fresh local stack (scripts/with-stack.py) whose mock
# provider is the same sanitized build. `make sanitize-ci`: the subset CI runs in bounded time.
# `make fuzz` / `make fuzz-ci`: the libFuzzer targets in tests/fuzz (build/fuzz, clang).
.PHONY: sanitize-ci sanitize-build-asan sanitize-build-tsan sanitize-unit-asan sanitize-unit-tsan \
        sanitize-integration-asan sanitize-integration-tsan sanitize-pipeline-asan sanitize-pipeline-tsan \
        fuzz fuzz-ci fuzz-build

SAN_UNIT_TARGETS := kafka_llm_unit_tests
SAN_INTEGRATION_TARGETS := kafka_llm_integration_tests kafka-llm-mock-provider
SAN_JOBS ?= 2
SAN_UNIT_TIMEOUT ?= 600
SAN_INTEGRATION_TIMEOUT ?= 900
SAN_SUPPRESSIONS := $(CURDIR)/tests/cpp
# Every report is fatal (UBSan is built with -fno-sanitize-recover=all as well). The suppression
# files list third-party reports only, each with the reason.
SAN_ENV_asan := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:strict_init_order=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
SAN_ENV_tsan := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(SAN_SUPPRESSIONS)/tsan.supp:print_suppressions=0
# librdkafka uses C11 threads, which TSan does not intercept; the shim routes them through pthreads
# (see tests/cpp/tsan_c11_threads.c). Preloaded into the tests only, not into the stack's processes.
TSAN_C11_SHIM := build/tsan/libtsan_c11_threads.so
SAN_RUN_asan :=
SAN_RUN_tsan := env LD_PRELOAD=$(CURDIR)/$(TSAN_C11_SHIM)

sanitize: sanitize-unit-asan sanitize-unit-tsan sanitize-integration-asan sanitize-integration-tsan \
          sanitize-pipeline-asan sanitize-pipeline-tsan

# What CI runs (about 1.7 min with warm builds; the two sanitized builds add about 12 min cold): all
# but the pipeline tests under TSan, whose 5-15x slowdown makes the Python tests' timing flaky.
sanitize-ci: sanitize-unit-asan sanitize-unit-tsan sanitize-integration-asan sanitize-integration-tsan \
             sanitize-pipeline-asan

# Each step builds only the executables it runs.
sanitize-build-asan sanitize-build-tsan: sanitize-build-%: system-deps
	cmake --preset $* >/dev/null
	cmake --build --preset $* -j $(SAN_JOBS) --target $(SAN_UNIT_TARGETS) $(SAN_INTEGRATION_TARGETS)

$(TSAN_C11_SHIM): tests/cpp/tsan_c11_threads.c
	@mkdir -p $(@D)
	cc -std=c11 -shared -fPIC -O1 -Wall -Wextra -Wpedantic -Werror -o $@ $< -lpthread

sanitize-build-tsan sanitize-unit-tsan sanitize-integration-tsan sanitize-pipeline-tsan: $(TSAN_C11_SHIM)

# The unit test binary itself, in SAN_JOBS shards at once: a third of the time ctest takes with one
# sanitized process per test (all of them `unit`; LeakSanitizer checks each shard at exit).
sanitize-unit-asan sanitize-unit-tsan: sanitize-unit-%: system-deps
	cmake --preset $* >/dev/null
	cmake --build --preset $* -j $(SAN_JOBS) --target $(SAN_UNIT_TARGETS)
	seq 0 $$(($(SAN_JOBS) - 1)) | xargs -P $(SAN_JOBS) -I{} env $(SAN_ENV_$*) GTEST_TOTAL_SHARDS=$(SAN_JOBS) \
	  GTEST_SHARD_INDEX={} $(SAN_RUN_$*) timeout $(SAN_UNIT_TIMEOUT) build/$*/tests/cpp/kafka_llm_unit_tests --gtest_brief=1

sanitize-integration-asan sanitize-integration-tsan: sanitize-integration-%: install
	cmake --preset $* >/dev/null
	cmake --build --preset $* -j $(SAN_JOBS) --target $(SAN_INTEGRATION_TARGETS)
	$(SAN_ENV_$*) $(PY) scripts/with-stack.py --bin-dir build/$*/cpp/tools \
	  --timeout $(SAN_INTEGRATION_TIMEOUT) -- $(SAN_RUN_$*) ctest --preset $* -L integration --no-tests=error

# The pipeline (cpp/src/pipeline, cpp/bindings) is driven only from Python: its tests run with the
# extension built under the sanitizer (scripts/sanitize-pipeline.sh). SAN_PIPELINE_PYTEST_ARGS
# narrows them (e.g. -k NAME).
SAN_PIPELINE_PYTEST_ARGS ?=

sanitize-pipeline-asan sanitize-pipeline-tsan: sanitize-pipeline-%: install
	$(SAN_ENV_$*) SAN_JOBS=$(SAN_JOBS) bash scripts/sanitize-pipeline.sh $* $(SAN_PIPELINE_PYTEST_ARGS)

FUZZ_SECONDS ?= 300
FUZZ_CI_SECONDS ?= 25
FUZZ_TARGETS ?= request_envelope sse retry_after result_record

fuzz-build: system-deps
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(SAN_JOBS) --target kafka_llm_fuzzers

# Grows build/fuzz/work/corpus/<target> across runs; crashes land in build/fuzz/work/artifacts/.
fuzz: fuzz-build
	bash tests/fuzz/run-fuzzers.sh build/fuzz/tests/fuzz $(FUZZ_SECONDS) build/fuzz/work $(FUZZ_TARGETS)

# From the seed corpus only, so a CI run does not depend on earlier ones.
fuzz-ci: fuzz-build
	rm -rf build/fuzz/ci-work
	bash tests/fuzz/run-fuzzers.sh build/fuzz/tests/fuzz $(FUZZ_CI_SECONDS) build/fuzz/ci-work $(FUZZ_TARGETS)
