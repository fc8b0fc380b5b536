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

PY_DIRS := $(wildcard python service tests bench)

.PHONY: help demo test test-cpp test-python bench lint tidy format system-deps venv install cpp sanitize clean

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

$(STAMPS)/venv-deps: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q "scikit-build-core>=0.10" "pybind11>=2.12" \
	  pyyaml pytest pytest-timeout ruff mypy types-PyYAML redis \
	  "fastapi>=0.110" "uvicorn[standard]>=0.29" "pydantic-settings>=2.2" "sqlalchemy>=2" "psycopg[binary]>=3.1" \
	  "prometheus-client>=0.20" "opentelemetry-api>=1.25" "opentelemetry-sdk>=1.25" \
	  "opentelemetry-exporter-otlp-proto-http>=1.25" openai httpx websockets
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
# private local stack; results in bench/results/. BENCH_ARGS=--quick for a CI-sized run. The
# bench extra's packages are installed by name (installing ".[bench]" would rebuild the package).
BENCH_ARGS ?=
bench: install
	$(PY) -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["bench"]))' \
	  | xargs $(PIP) install -q
	$(PY) bench/run.py $(BENCH_ARGS)

lint: venv
	git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror
	$(VENV)/bin/ruff check $(PY_DIRS)
	$(VENV)/bin/ruff format --check $(PY_DIRS)
	$(VENV)/bin/mypy

# clang-tidy over the core library and tools, with the dev build's compile commands.
tidy: cpp
	run-clang-tidy -quiet -p build/$(PRESET) -j 2 '$(CURDIR)/cpp/(src|tools)/.*\.cpp$$' > build/clang-tidy.log 2>&1 \
	  || { grep -E 'error|warning' build/clang-tidy.log | head -50; exit 1; }

format: venv
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i
	$(VENV)/bin/ruff format $(PY_DIRS)
	$(VENV)/bin/ruff check --fix $(PY_DIRS)

clean:
	rm -rf build $(VENV)
