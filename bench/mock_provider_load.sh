#!/usr/bin/env bash
# Request rate of the native mock provider, driven directly with wrk over loopback.
#
# Usage: bench/mock_provider_load.sh [BINARY]
#   BINARY    the kafka-llm-mock-provider to measure (default: an optimised build in
#             build/mock-provider-release, configured and built on first use)
# Environment:
#   WRK_THREADS (2), WRK_CONNECTIONS (64), WRK_DURATION (10s), RUNS (3),
#   MOCK_THREADS (hardware concurrency), LATENCY_MS (0), MAX_TOKENS (16)
#
# The mock and wrk share the machine, so the figure is a co-located loopback limit, not the
# mock's capacity on its own; the load average is printed with it. Prints each run (rate,
# latency percentiles, the mock's CPU time per request) and the median rate.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="${1:-}"
wrk_threads="${WRK_THREADS:-2}"
wrk_connections="${WRK_CONNECTIONS:-64}"
wrk_duration="${WRK_DURATION:-10s}"
runs="${RUNS:-3}"
latency_ms="${LATENCY_MS:-0}"
max_tokens="${MAX_TOKENS:-16}"

command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }

if [[ -z "$binary" ]]; then
  build_dir="$repo/build/mock-provider-release"
  cmake --preset release -B "$build_dir" >/dev/null
  cmake --build "$build_dir" --target kafka-llm-mock-provider >/dev/null
  binary="$build_dir/cpp/tools/kafka-llm-mock-provider"
fi
[[ -x "$binary" ]] || { echo "not an executable: $binary" >&2; exit 1; }

workdir="$(mktemp -d)"
mock_pid=""
cleanup() {
  if [[ -n "$mock_pid" ]]; then
    kill "$mock_pid" 2>/dev/null || true
    wait "$mock_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

mock_args=(--port 0 --port-file "$workdir/port" --latency-ms "$latency_ms")
[[ -n "${MOCK_THREADS:-}" ]] && mock_args+=(--threads "$MOCK_THREADS")
"$binary" "${mock_args[@]}" >"$workdir/stdout" 2>"$workdir/stderr" &
mock_pid=$!
for _ in $(seq 100); do
  [[ -s "$workdir/port" ]] && break
  sleep 0.05
done
[[ -s "$workdir/port" ]] || { echo "mock provider did not start:" >&2; cat "$workdir/stderr" >&2; exit 1; }
port="$(cat "$workdir/port")"

body='{"model":"mock-model","max_tokens":'"$max_tokens"',"messages":[{"role":"user","content":"Say hello to the benchmark"}]}'
cat >"$workdir/chat.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$body'
EOF

# Sanity check: the body gets a real completion, so wrk measures successful requests.
curl -sf -X POST -H 'Content-Type: application/json' --data "$body" "http://127.0.0.1:$port/v1/chat/completions" \
  | grep -q '"chat.completion"' || { echo "mock provider did not answer a chat completion" >&2; exit 1; }

echo "mock provider: $binary (pid $mock_pid, port $port), latency ${latency_ms} ms, max_tokens ${max_tokens}"
echo "wrk -t$wrk_threads -c$wrk_connections -d$wrk_duration -s chat.lua http://127.0.0.1:$port/v1/chat/completions"
echo "co-located on $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# CPU time (user + system, in clock ticks) the mock has used so far: the rate depends on what
# else runs on the machine, CPU per request much less.
mock_ticks() { awk '{print $14 + $15}' "/proc/$mock_pid/stat"; }
ticks_per_second="$(getconf CLK_TCK)"
rates=()
cpu_costs=()
for run in $(seq "$runs"); do
  ticks_before="$(mock_ticks)"
  # bash's `time` gives wrk's own CPU seconds (user + system) on stderr.
  wrk_cpu_s="$( { TIMEFORMAT='%U %S'; time wrk -t"$wrk_threads" -c"$wrk_connections" -d"$wrk_duration" --latency \
    -s "$workdir/chat.lua" "http://127.0.0.1:$port/v1/chat/completions" >"$workdir/wrk.out"; } 2>&1 \
    | awk 'END {print $1 + $2}')"
  out="$(cat "$workdir/wrk.out")"
  if grep -q "Non-2xx" <<<"$out"; then
    echo "run $run: non-2xx answers:" >&2
    echo "$out" >&2
    exit 1
  fi
  rate="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  requests="$(awk '/ requests in / {print $1}' <<<"$out")"
  cpu_us="$(awk -v t="$(($(mock_ticks) - ticks_before))" -v hz="$ticks_per_second" -v n="$requests" \
    'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
  wrk_us="$(awk -v s="$wrk_cpu_s" -v n="$requests" 'BEGIN {printf "%.1f", s * 1e6 / n}')"
  echo "run $run: $rate req/s (p50 $p50, p99 $p99; CPU per request: mock $cpu_us us, wrk $wrk_us us)"
  rates+=("$rate")
  cpu_costs+=("$cpu_us $wrk_us")
done
median="$(printf '%s\n' "${rates[@]}" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')"
echo "median: $median req/s over $runs runs"
# What the two would reach alone on this machine's cores, if CPU were the only limit.
printf '%s\n' "${cpu_costs[@]}" | awk -v cores="$(nproc)" \
  '{m += $1; w += $2} END {printf "CPU-bound ceiling with the machine to themselves: %.0f req/s (%d cores / %.1f us)\n", cores * 1e6 / ((m + w) / NR), cores, (m + w) / NR}'
