#!/usr/bin/env bash
# Runs each libFuzzer target for a fixed time from its seed corpus and prints one summary line per
# target (executions, exec/s, coverage, features, corpus size, crashes). Fails when any target finds
# a crash, a leak, a sanitizer report, a violated invariant or a slow input.
#
#   tests/fuzz/run-fuzzers.sh BUILD_DIR SECONDS WORK_DIR [TARGET...]
#
# BUILD_DIR holds the fuzzers (build/fuzz); WORK_DIR receives the grown corpora (WORK_DIR/corpus/T,
# kept between runs, so longer runs build on earlier ones), the logs (WORK_DIR/logs/T.log) and any
# crashing input (WORK_DIR/artifacts/T/crash-…). The seed corpus in tests/fuzz/corpus/T is only read.
# To reproduce a finding: BUILD_DIR/T WORK_DIR/artifacts/T/crash-….
set -euo pipefail

if (($# < 3)); then
  echo "usage: $0 BUILD_DIR SECONDS WORK_DIR [TARGET...]" >&2
  exit 2
fi
build_dir=$1
seconds=$2
work_dir=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(request_envelope sse retry_after result_record)
fi

declare -A dict=([request_envelope]=json [sse]=sse [retry_after]=retry_after [result_record]=json)
declare -A max_len=([request_envelope]=8192 [sse]=8192 [retry_after]=1024 [result_record]=8192)

# abort_on_error: a report ends in abort(), which libFuzzer catches and records as a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

status=0
summary=()
for target in "${targets[@]}"; do
  binary=$build_dir/${target}_fuzzer
  seeds=$here/corpus/$target
  if [[ ! -x $binary || ! -d $seeds ]]; then
    echo "no fuzzer $binary or no seed corpus $seeds" >&2
    exit 2
  fi
  corpus=$work_dir/corpus/$target
  artifacts=$work_dir/artifacts/$target
  log=$work_dir/logs/$target.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  marker=$work_dir/.started-$target
  touch "$marker"
  echo "fuzzing $target for ${seconds}s (log: $log)"
  code=0
  # New inputs go to the first directory (the work corpus); the seeds are read, never written.
  "$binary" "$corpus" "$seeds" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="${max_len[$target]}" \
    -dict="$here/dict/${dict[$target]}.dict" -use_value_profile=1 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1 || code=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")
  found=$(find "$artifacts" -type f -newer "$marker" | wc -l)
  line=$(printf '%-17s exit %-3s execs %-9s exec/s %-7s cov %-5s ft %-6s corpus %-12s findings %s' \
    "$target" "$code" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$found")
  summary+=("$line")
  if ((code != 0)); then
    status=1
    echo "FAILED: $target (exit $code); the end of its log:" >&2
    tail -60 "$log" >&2
  fi
done
printf '%s\n' "${summary[@]}" | tee "$work_dir/summary.txt"
exit "$status"
