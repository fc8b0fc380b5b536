#!/usr/bin/env bash
# The Python pipeline tests (tests/python/test_pipeline.py: the only tests that drive
# cpp/src/pipeline and cpp/bindings) with the native extension built under a sanitizer, against a
# fresh local stack whose mock provider is the same sanitized build.
#
#   scripts/sanitize-pipeline.sh asan|tsan [PYTEST ARGS...]
#
# Builds kafka_llm._core in build/asan or build/tsan (the preset plus KAFKA_LLM_BUILD_PYTHON=ON),
# puts it beside the package's sources in build/<sanitizer>/python, and runs pytest in the venv's
# Python with the sanitizer runtime preloaded (an uninstrumented interpreter needs it first in the
# library list). ASAN_OPTIONS / UBSAN_OPTIONS / TSAN_OPTIONS from the environment (the Makefile's)
# apply, plus: reports go to files (pytest captures stderr, and an aborting process would lose
# them), and LeakSanitizer is off (CPython does not free everything at exit). Any report fails the
# run and is printed. Needs the venv (`make install`); called by `make sanitize-pipeline-<san>`.
set -euo pipefail

if (($# < 1)) || [[ $1 != asan && $1 != tsan ]]; then
  echo "usage: $0 asan|tsan [PYTEST ARGS...]" >&2
  exit 2
fi
san=$1
shift
cd "$(dirname "$0")/.."
root=$PWD
python=$root/.venv/bin/python
build=$root/build/$san
jobs=${SAN_JOBS:-2}

cmake --preset "$san" -DKAFKA_LLM_BUILD_PYTHON=ON -Dpybind11_DIR="$("$python" -m pybind11 --cmakedir)" \
  -DPython_EXECUTABLE="$python" >/dev/null
cmake --build --preset "$san" -j "$jobs" --target _core kafka-llm-mock-provider

overlay=$build/python
rm -rf "$overlay"
mkdir -p "$overlay/kafka_llm"
ln -s "$root"/python/kafka_llm/* "$overlay/kafka_llm/"
ln -s "$build"/cpp/_core.*.so "$overlay/kafka_llm/"

reports=$build/pipeline-reports
rm -rf "$reports"
mkdir -p "$reports"
case $san in
  asan)
    preload="$(c++ -print-file-name=libasan.so):$(c++ -print-file-name=libubsan.so)"
    options=(
      "ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1}:detect_leaks=0:log_path=$reports/asan"
      "UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1}:log_path=$reports/ubsan"
    )
    ;;
  tsan)
    preload="$(c++ -print-file-name=libtsan.so):$build/libtsan_c11_threads.so"
    options=("TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1}:log_path=$reports/tsan")
    ;;
esac

status=0
"$python" scripts/with-stack.py --bin-dir "$build/cpp/tools" --timeout 1200 -- \
  env LD_PRELOAD="$preload" "${options[@]}" PYTHONPATH="$overlay" KAFKA_LLM_BIN_DIR="$build/cpp/tools" \
  "$python" -m pytest -p no:cacheprovider tests/python/test_pipeline.py "$@" || status=$?

shopt -s nullglob
found=("$reports"/*)
if ((${#found[@]} > 0)); then
  echo "sanitizer reports from the pipeline tests ($san):" >&2
  cat "${found[@]}" >&2
  status=1
fi
exit "$status"
