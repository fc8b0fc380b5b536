"""The scenarios of bench/README.md (issue 5). Each returns a JSON-ready dict: per-repeat figures for
both workers and the medians over repeats."""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo
from kllm_bench.load import (
    Observed,
    RedisWatcher,
    ResponseMonitor,
    Sent,
    produce,
    request_body,
)
from kllm_bench.procfs import cpu_seconds, load_average, rss_bytes
from kllm_bench.stats import interpolate, median, percentile, steady_window
from kllm_bench.workers import KINDS, Kind, WorkerProcess, free_port, worker_config

MOCK_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0,
    "latency_dist": "fixed",
    "latency_sigma": 0.5,
    "token_interval_ms": 0,
    "fault_429": 0,
    "retry_after": 1,
    "fault_500": 0,
    "fault_503": 0,
    "fault_hang": 0,
    "fault_reset": 0,
    "fault_malformed": 0,
}


@dataclass
class Sizes:
    """Request counts and durations; ``quick`` shrinks them for CI-sized runs."""

    s1_requests: int = 20_000
    s1_handlers: int = 5_000
    s2_requests: int = 50_000
    s2_handlers: int = 5_000
    s2_median_ms: float = 1000.0
    s2_sigma: float = 0.5
    s3_rates: tuple[int, ...] = (100, 1_000, 5_000)
    s3_seconds: float = 10.0
    s3_latency_ms: float = 20.0
    s3_stream_rate: int = 100
    s4_requests: int = 10_000
    s4_handlers: int = 5_000
    s4_fault: float = 0.3
    s4_retry_after: float = 1.0
    s6_requests: int = 10_000
    s6_handlers: int = 1_000
    s6_latency_ms: float = 20.0
    s5_stream_calls: int = 200
    loopback_seconds: int = 5

    @classmethod
    def smoke(cls) -> Sizes:
        """A few hundred requests per scenario: checks that the harness runs end to end (``make
        test``); its figures mean nothing."""
        return cls(
            s1_requests=400,
            s1_handlers=100,
            s2_requests=400,
            s2_handlers=200,
            s2_median_ms=100.0,
            s3_rates=(100,),
            s3_seconds=1.0,
            s3_stream_rate=50,
            s4_requests=200,
            s4_handlers=100,
            s4_fault=0.1,
            s6_requests=300,
            s6_handlers=100,
            s5_stream_calls=10,
            loopback_seconds=1,
        )

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            s1_requests=4_000,
            s2_requests=10_000,
            s3_seconds=3.0,
            s4_requests=2_000,
            s6_requests=3_000,
            loopback_seconds=3,
        )


@dataclass
class Context:
    stack: StackInfo
    workdir: Path
    partitions: int
    sizes: Sizes
    run_id: str
    progress: Callable[[str], None]
    counter: int = 0
    own_pids: set[int] = field(default_factory=set)
    pythonpath: str | None = None
    """Where the workers import kafka_llm from (a snapshot of the installed package)."""
    kafka_extra: dict[str, str] = field(default_factory=dict)
    """librdkafka properties added to the native worker's configuration (``--kafka-property``)."""

    def name(self, scenario: str, kind: str) -> str:
        self.counter += 1
        return f"bench-{self.run_id}-{scenario}-{kind}-{self.counter}"


# --- the mock provider


def mock_post(ctx: Context, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{ctx.stack.provider_base}{path}",
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def mock_configure(ctx: Context, **knobs: Any) -> dict[str, Any]:
    """Sets every knob (the defaults plus ``knobs``) and clears the mock's counters."""
    config: dict[str, Any] = mock_post(ctx, "/admin/config", {**MOCK_DEFAULTS, **knobs})
    mock_post(ctx, "/stats/reset")
    return config


def mock_total_calls(ctx: Context) -> int:
    with urllib.request.urlopen(f"{ctx.stack.provider_base}/stats", timeout=30) as response:
        return int(json.load(response)["total"])


# --- one worker under one load


@dataclass
class Run:
    kind: Kind
    n: int
    sent: Sent
    observed: Observed
    ready_stats: dict[str, Any]
    final_stats: dict[str, Any]
    idle_rss: int
    stats_samples: list[tuple[float, dict[str, Any]]]
    redis_set_at: dict[str, float]
    complete: bool
    load_before: tuple[float, float, float]
    mock_calls: int

    @property
    def finish_times(self) -> list[float]:
        return list(self.observed.final_at.values())

    def rebalances_after_start(self) -> int:
        return int(self.final_stats.get("rebalances", 0)) - int(self.ready_stats.get("rebalances", 0))

    def retries(self) -> int:
        retries = self.final_stats.get("retries", 0)
        return int(sum(retries.values()) if isinstance(retries, dict) else retries)

    def dlq(self) -> int:
        dlq = self.final_stats.get("dlq", 0)
        return int(sum(dlq.values()) if isinstance(dlq, dict) else dlq)


def run_load(
    ctx: Context,
    scenario: str,
    kind: Kind,
    *,
    n: int,
    max_handlers: int,
    rate: float | None = None,
    stream: bool = False,
    max_attempts: int = 6,
    timeout: float = 300.0,
    stall: float = 60.0,
    watch_redis: bool = False,
    poll_stats: bool = False,
    linger_ms: int = 5,
    grace: float | None = None,
    exactly_once: bool = False,
) -> Run:
    """Starts a worker on fresh topics, waits until it owns every partition, produces ``n``
    requests (a burst, or paced at ``rate``), and waits until every response is out (or
    ``timeout`` / ``stall`` seconds without progress / ``grace`` seconds after the last send)."""
    name = ctx.name(scenario, kind)
    requests, responses, dlq = f"{name}.requests", f"{name}.responses", f"{name}.dlq"
    k.create_topics(ctx.stack.bootstrap_servers, [requests, responses, dlq], partitions=ctx.partitions)
    config = worker_config(
        bootstrap=ctx.stack.bootstrap_servers,
        redis_url=ctx.stack.redis_url_with_password(),
        provider_url=ctx.stack.provider_url,
        group=f"{name}.workers",
        requests=requests,
        responses=responses,
        dlq=dlq,
        max_handlers=max_handlers,
        max_attempts=max_attempts,
        kafka_extra=ctx.kafka_extra if kind == "core" else None,
        exactly_once=exactly_once,
    )
    worker = WorkerProcess(kind, config, ctx.workdir, name, pythonpath=ctx.pythonpath)
    load_before = load_average()
    worker.start()
    ctx.own_pids.add(worker.pid)
    monitor: ResponseMonitor | None = None
    watcher: RedisWatcher | None = None
    samples: list[tuple[float, dict[str, Any]]] = []
    try:
        ready = worker.wait_ready(ctx.partitions)
        time.sleep(0.5)  # let start-up work settle before the idle figures
        idle_rss = worker.rss_bytes()
        pid = worker.pid
        monitor = ResponseMonitor(
            ctx.stack.bootstrap_servers,
            responses,
            lambda: (cpu_seconds(pid), rss_bytes(pid)),
            f"{name}.monitor",
        )
        monitor.wait_assigned()
        monitor.start()
        if watch_redis:
            watcher = RedisWatcher(ctx.stack.redis_url_with_password())
            watcher.start()
        ids = [f"{name}-{i}" for i in range(n)]
        sent = produce(
            ctx.stack.bootstrap_servers,
            requests,
            ctx.partitions,
            ids,
            rate=rate,
            stream=stream,
            linger_ms=linger_ms,
        )
        deadline = sent.started + timeout
        if grace is not None:
            deadline = min(deadline, sent.finished + grace)
        last_count, last_progress = -1, time.monotonic()
        while True:
            now = time.monotonic()
            count = monitor.finished()
            if monitor.error is not None:
                raise RuntimeError(f"response monitor failed: {monitor.error!r}")
            if count >= n or now > deadline or not worker.alive():
                break
            if count != last_count:
                last_count, last_progress = count, now
            elif now - last_progress > stall:
                break
            if poll_stats and (stats := worker.stats()) is not None:
                samples.append((time.monotonic(), stats))
            time.sleep(0.25 if poll_stats else 0.05)
        time.sleep(0.3)  # late duplicates and the last Redis notifications
        final = worker.stats() or {}
        complete = monitor.finished() >= n
        if not complete:
            ctx.progress(
                f"    {name}: only {monitor.finished()}/{n} finished; worker log: {worker.log_tail(5)}"
            )
    finally:
        if monitor is not None:
            monitor.stop_event.set()
            monitor.join(10)
        if watcher is not None:
            watcher.close()
        code = worker.stop()
        if code not in (0, None):
            ctx.progress(f"    {name} exited with {code}: {worker.log_tail(5)}")
    return Run(
        kind=kind,
        n=n,
        sent=sent,
        observed=monitor.observed,
        ready_stats=ready,
        final_stats=final,
        idle_rss=idle_rss,
        stats_samples=samples,
        redis_set_at=dict(watcher.last_set) if watcher else {},
        complete=complete,
        load_before=load_before,
        mock_calls=mock_total_calls(ctx),
    )


def throughput(run: Run, low: float = 0.05, high: float = 0.95) -> dict[str, Any]:
    """Steady-state requests/s and worker CPU per request between two completion fractions."""
    start, end, count = steady_window(run.finish_times, low, high)
    times = [s[0] for s in run.observed.samples]
    cpus = [s[2] for s in run.observed.samples]
    cpu = interpolate(times, cpus, end) - interpolate(times, cpus, start)
    finished = len(run.finish_times)
    total_s = max(run.finish_times) - run.sent.started
    return {
        "requests_per_s": count / (end - start),
        "cpu_us_per_request": cpu / count * 1e6,
        "cpu_s_per_1000": cpu / count * 1000,
        "window_s": end - start,
        "first_send_to_last_result_s": total_s,
        "requests_per_s_overall": finished / total_s,
        "finished": finished,
        "ok": sum(1 for s in run.observed.status.values() if s == 200),
    }


def ms_percentiles(values: list[float]) -> dict[str, float | None]:
    return {f"p{q}_ms": (None if (v := percentile(values, q)) is None else v * 1000) for q in (50, 95, 99)}


def medians(per_repeat: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric field over the repeats (nested dicts too)."""
    out: dict[str, Any] = {}
    for key in per_repeat[0]:
        values = [r.get(key) for r in per_repeat]
        if all(isinstance(v, dict) for v in values):
            out[key] = medians(values)  # type: ignore[arg-type]
        elif all(isinstance(v, bool) for v in values):
            out[key] = all(values)
        elif all(isinstance(v, int | float) or v is None for v in values):
            out[key] = median(values)  # type: ignore[arg-type]
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


# --- the loopback limit


def wrk_rate(ctx: Context, connections: int, seconds: int) -> dict[str, Any]:
    """The mock provider driven directly (wrk, 2 threads) at ``connections`` over loopback."""
    if shutil.which("wrk") is None:
        return {"error": "wrk is not installed"}
    script = ctx.workdir / "chat.lua"
    body = json.dumps(request_body()).replace("'", "\\'")
    script.write_text(
        f"wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\nwrk.body = '{body}'\n"
    )
    url = f"{ctx.stack.provider_base}/v1/chat/completions"
    mock_pid = ctx.stack.pids.get("provider")
    cpu_before = cpu_seconds(mock_pid) if mock_pid else 0.0
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    mock_cpu = cpu_seconds(mock_pid) - cpu_before if mock_pid else 0.0
    if "Non-2xx" in out:
        return {"error": "non-2xx answers", "output": out}
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_s": rate,
        "connections": connections,
        "mock_cpu_us_per_request": mock_cpu / total * 1e6,
        "socket_errors": errors.group(1).strip() if errors else "",
    }


# --- scenario 1: overhead-bound


def scenario_overhead(ctx: Context, repeats: int) -> dict[str, Any]:
    sz = ctx.sizes
    ctx.progress(
        f"scenario 1: overhead-bound, mock latency 0, {sz.s1_requests} requests, maxHandlers {sz.s1_handlers}"
    )
    per_repeat = []
    for rep in range(repeats):
        mock_configure(ctx, latency_ms=0)
        row: dict[str, Any] = {"loopback": wrk_rate(ctx, sz.s1_handlers, sz.loopback_seconds)}
        for kind in KINDS:
            mock_configure(ctx, latency_ms=0)
            run = run_load(ctx, "s1", kind, n=sz.s1_requests, max_handlers=sz.s1_handlers, timeout=600)
            row[kind] = throughput(run) | {"complete": run.complete, "load_1m_before": run.load_before[0]}
        row["core_vs_peer"] = ratio(row["core"]["requests_per_s"], row["peer"]["requests_per_s"])
        row["core_vs_loopback"] = ratio(row["core"]["requests_per_s"], row["loopback"].get("requests_per_s"))
        row["peer_vs_loopback"] = ratio(row["peer"]["requests_per_s"], row["loopback"].get("requests_per_s"))
        ctx.progress(
            f"  repeat {rep + 1}: core {row['core']['requests_per_s']:.0f}/s "
            f"({row['core']['cpu_us_per_request']:.0f} us CPU/req), "
            f"peer {row['peer']['requests_per_s']:.0f}/s "
            f"({row['peer']['cpu_us_per_request']:.0f} us CPU/req), loopback "
            f"{row['loopback'].get('requests_per_s', float('nan')):.0f}/s"
        )
        per_repeat.append(row)
    return {
        "settings": {
            "requests": sz.s1_requests,
            "max_handlers": sz.s1_handlers,
            "mock_latency_ms": 0,
            "wrk_connections": sz.s1_handlers,
            "window": "5%..95% of completions",
        },
        "repeats": per_repeat,
        "median": medians(per_repeat),
    }


# --- scenario 2: concurrency-bound


def scenario_concurrency(ctx: Context, repeats: int) -> dict[str, Any]:
    sz = ctx.sizes
    mean_s = sz.s2_median_ms / 1000 * math.exp(sz.s2_sigma**2 / 2)
    ideal = sz.s2_handlers / mean_s
    ctx.progress(
        f"scenario 2: concurrency-bound, log-normal latency median {sz.s2_median_ms:.0f} ms "
        f"sigma {sz.s2_sigma}, maxHandlers {sz.s2_handlers}, {sz.s2_requests} requests; "
        f"ideal {ideal:.0f}/s"
    )
    per_repeat = []
    for rep in range(repeats):
        row: dict[str, Any] = {}
        for kind in KINDS:
            mock_configure(
                ctx, latency_ms=sz.s2_median_ms, latency_dist="lognormal", latency_sigma=sz.s2_sigma
            )
            run = run_load(
                ctx, "s2", kind, n=sz.s2_requests, max_handlers=sz.s2_handlers, timeout=900, poll_stats=True
            )
            figures = throughput(run, 0.1, 0.9)
            peak_rss = max((s[3] for s in run.observed.samples), default=run.idle_rss)
            inflight = [int(s.get("inflight", 0)) for _, s in run.stats_samples]
            peak_inflight = max(inflight, default=0)
            row[kind] = {
                "requests_per_s": figures["requests_per_s"],
                "vs_ideal": figures["requests_per_s"] / ideal,
                "cpu_us_per_request": figures["cpu_us_per_request"],
                "idle_rss_mib": run.idle_rss / 2**20,
                "peak_rss_mib": peak_rss / 2**20,
                "peak_inflight": peak_inflight,
                "rss_kib_per_inflight": (peak_rss - run.idle_rss) / 1024 / peak_inflight
                if peak_inflight
                else None,
                "provider_p50_ms": percentile(list(run.observed.provider_ms.values()), 50),
                "complete": run.complete,
                "finished": len(run.finish_times),
            }
        row["core_vs_peer"] = ratio(row["core"]["requests_per_s"], row["peer"]["requests_per_s"])
        ctx.progress(
            f"  repeat {rep + 1}: core {row['core']['requests_per_s']:.0f}/s "
            f"({row['core']['vs_ideal']:.0%} of ideal, {row['core']['rss_kib_per_inflight'] or 0:.1f} "
            f"KiB/in-flight), peer {row['peer']['requests_per_s']:.0f}/s "
            f"({row['peer']['vs_ideal']:.0%}, {row['peer']['rss_kib_per_inflight'] or 0:.1f} KiB)"
        )
        per_repeat.append(row)
    return {
        "settings": {
            "requests": sz.s2_requests,
            "max_handlers": sz.s2_handlers,
            "latency": f"lognormal median {sz.s2_median_ms:.0f} ms sigma {sz.s2_sigma}",
            "mean_latency_s": mean_s,
            "ideal_requests_per_s": ideal,
            "ideal_rule": "maxHandlers / mean latency (Little's law)",
            "window": "10%..90% of completions",
        },
        "repeats": per_repeat,
        "median": medians(per_repeat),
    }


# --- scenario 3: added latency at fixed rates


def added_latency(run: Run, provider_ms: float) -> dict[str, Any]:
    sent, o = run.sent.t0, run.observed
    base = provider_ms / 1000
    response = [o.final_at[r] - sent[r] - base for r in o.final_at if r in sent]
    redis_ = [run.redis_set_at[r] - sent[r] - base for r in run.redis_set_at if r in sent]
    last_send = run.sent.finished
    backlog = max(run.finish_times) - last_send if run.finish_times else None
    sustained = run.complete and backlog is not None and backlog < 1.0 + provider_ms / 1000
    return {
        "to_response": ms_percentiles(response),
        "to_redis": ms_percentiles(redis_),
        "worker_reported_provider_p50_ms": percentile(list(o.provider_ms.values()), 50),
        "output_hop": {f"p{q}_ms": percentile(list(o.output_hop_ms.values()), q) for q in (50, 99)},
        "achieved_send_rate": run.n / (run.sent.finished - run.sent.started) if run.n > 1 else None,
        "sustained": sustained,
        "finished": len(o.final_at),
    }


def scenario_latency(ctx: Context, repeats: int) -> dict[str, Any]:
    sz = ctx.sizes
    ctx.progress(
        f"scenario 3: added latency at {', '.join(map(str, sz.s3_rates))} requests/s for "
        f"{sz.s3_seconds:.0f} s each, mock latency fixed {sz.s3_latency_ms:.0f} ms"
    )
    per_repeat = []
    for rep in range(repeats):
        row: dict[str, Any] = {}
        for rate in sz.s3_rates:
            cell: dict[str, Any] = {}
            for kind in KINDS:
                mock_configure(ctx, latency_ms=sz.s3_latency_ms)
                n = int(rate * sz.s3_seconds)
                run = run_load(
                    ctx,
                    "s3",
                    kind,
                    n=n,
                    max_handlers=5000,
                    rate=rate,
                    watch_redis=True,
                    linger_ms=0,
                    grace=max(10.0, sz.s3_seconds),
                )
                cell[kind] = added_latency(run, sz.s3_latency_ms)
            row[str(rate)] = cell
            ctx.progress(
                f"  repeat {rep + 1} at {rate}/s: "
                + "; ".join(
                    f"{kind} p50/p99 {cell[kind]['to_response']['p50_ms'] or 0:.1f}/"
                    f"{cell[kind]['to_response']['p99_ms'] or 0:.1f} ms"
                    f"{'' if cell[kind]['sustained'] else ' (NOT sustained)'}"
                    for kind in KINDS
                )
            )
        stream: dict[str, Any] = {}
        for kind in KINDS:
            mock_configure(ctx, latency_ms=sz.s3_latency_ms)
            n = int(sz.s3_stream_rate * sz.s3_seconds)
            run = run_load(
                ctx,
                "s3s",
                kind,
                n=n,
                max_handlers=5000,
                rate=sz.s3_stream_rate,
                stream=True,
                linger_ms=0,
                grace=max(10.0, sz.s3_seconds),
            )
            ttft = [run.observed.first_frame_at[r] - run.sent.t0[r] for r in run.observed.first_frame_at]
            stream[kind] = {
                "time_to_first_token": ms_percentiles(ttft),
                "added_to_first_token": ms_percentiles([t - sz.s3_latency_ms / 1000 for t in ttft]),
                "finished": len(run.finish_times),
                "complete": run.complete,
            }
        row["stream"] = stream
        ctx.progress(
            f"  repeat {rep + 1} streamed at {sz.s3_stream_rate}/s: time to first token p50/p99 "
            + "; ".join(
                f"{kind} {stream[kind]['time_to_first_token']['p50_ms'] or 0:.1f}/"
                f"{stream[kind]['time_to_first_token']['p99_ms'] or 0:.1f} ms"
                for kind in KINDS
            )
        )
        per_repeat.append(row)
    return {
        "settings": {
            "rates": list(sz.s3_rates),
            "seconds": sz.s3_seconds,
            "mock_latency_ms": sz.s3_latency_ms,
            "stream_rate": sz.s3_stream_rate,
            "max_handlers": 5000,
            "added": "end-to-end (produce call -> response record read / result SET seen in Redis) "
            "minus the mock's fixed latency",
        },
        "repeats": per_repeat,
        "median": medians(per_repeat),
    }


# --- scenario 4: 429 storm


def finish_offsets(run: Run) -> dict[tuple[int, int], float]:
    """(partition, position) -> seconds from the first send to that request's result."""
    return {
        run.sent.position[r]: t - run.sent.started
        for r, t in run.observed.final_at.items()
        if r in run.sent.position
    }


def scenario_storm(ctx: Context, repeats: int) -> dict[str, Any]:
    sz = ctx.sizes
    ctx.progress(
        f"scenario 4: 429 storm, {sz.s4_fault:.0%} of calls 429 with Retry-After "
        f"{sz.s4_retry_after:g} s, {sz.s4_requests} requests, maxHandlers {sz.s4_handlers}"
    )
    per_repeat = []
    for rep in range(repeats):
        row: dict[str, Any] = {}
        for kind in KINDS:
            mock_configure(ctx, latency_ms=0)
            base = run_load(
                ctx, "s4base", kind, n=sz.s4_requests, max_handlers=sz.s4_handlers, max_attempts=30
            )
            mock_configure(ctx, latency_ms=0, fault_429=sz.s4_fault, retry_after=sz.s4_retry_after)
            storm = run_load(ctx, "s4", kind, n=sz.s4_requests, max_handlers=sz.s4_handlers, max_attempts=30)
            base_at = finish_offsets(base)
            base_total = max(base_at.values())
            # No schedule beats either bound: all the work at the fault-free pace, or the longest
            # chain of Retry-After waits that one request was dealt.
            longest_chain = (
                max((a - 1 for a in storm.observed.attempts.values()), default=0) * sz.s4_retry_after
            )
            ideal = max(base_total, longest_chain)
            total = max(storm.finish_times) - storm.sent.started
            attempts = list(storm.observed.attempts.values())
            row[kind] = {
                "completion_s": total,
                "ideal_s": ideal,
                "vs_ideal": total / ideal,
                "no_fault_completion_s": base_total,
                "longest_retry_after_chain_s": longest_chain,
                "rebalances": storm.rebalances_after_start(),
                "retries": storm.retries(),
                "provider_calls_beyond_one": storm.mock_calls - sz.s4_requests,
                "max_attempts": max(attempts, default=0),
                "ok": sum(1 for s in storm.observed.status.values() if s == 200),
                "dlq": storm.dlq(),
                "complete": storm.complete,
            }
        ctx.progress(
            f"  repeat {rep + 1}: "
            + "; ".join(
                f"{kind} {row[kind]['completion_s']:.1f} s vs ideal {row[kind]['ideal_s']:.1f} s "
                f"({row[kind]['vs_ideal']:.2f}x), {row[kind]['rebalances']} rebalances, "
                f"{row[kind]['retries']} retries"
                for kind in KINDS
            )
        )
        per_repeat.append(row)
    return {
        "settings": {
            "requests": sz.s4_requests,
            "max_handlers": sz.s4_handlers,
            "fault_429": sz.s4_fault,
            "retry_after_s": sz.s4_retry_after,
            "max_attempts": 30,
            "mock_latency_ms": 0,
            "ideal_rule": "max(completion time of a fault-free run of the same worker and N, the "
            "longest Retry-After chain of one request = (its 429s) x Retry-After)",
        },
        "repeats": per_repeat,
        "median": medians(per_repeat),
    }


# --- scenario 5: the HTTP service


def _process_lua(key: str | None) -> str:
    """wrk's script: POST /process with a unique prompt per request (no cache hits)."""
    auth = f', ["Authorization"] = "Bearer {key}"' if key else ""
    return f"""
counter = 0
request = function()
  counter = counter + 1
  local body = '{{"provider":"mock","model":"mock-model","max_tokens":16,"prompt":"bench ' ..
    counter .. ' ' .. math.random(1000000000) .. '"}}'
  return wrk.format("POST", "/process", {{["Content-Type"] = "application/json"{auth}}}, body)
end
"""


def _wrk_latency_ms(out: str, label: str) -> float | None:
    """A percentile line of ``wrk --latency`` (e.g. ``99%   12.34ms``) in milliseconds."""
    match = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if match is None:
        return None
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


_CLI = (sys.executable, "-m", "kafka_llm.cli")


class _Api:
    """One ``kafka-llm api`` process (one uvicorn worker), started and stopped by its PID."""

    def __init__(self, ctx: Context, config_path: Path, database: str, name: str, *, auth: bool) -> None:
        self.port = free_port()
        env = {k_: v for k_, v in os.environ.items() if not k_.startswith(("KAFKA_", "REDIS_"))}
        env["KAFKA_LLM_AUTH_ENABLED"] = "true" if auth else "false"
        env["KAFKA_LLM_CACHE_TTL_SECONDS"] = "0"
        if ctx.pythonpath:
            env["PYTHONPATH"] = ctx.pythonpath
        self.log_path = ctx.workdir / f"{name}.log"
        argv = [
            *_CLI,
            "api",
            "--config",
            str(config_path),
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--database-url",
            database,
            "--log-level",
            "warning",
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)

    def wait_healthy(self, timeout: float = 60.0) -> str | None:
        """None once /health answers, else why not."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                return f"kafka-llm api exited: {self.log_path.read_text(errors='replace')[-800:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return None
            except OSError:
                if time.monotonic() > deadline:
                    return f"kafka-llm api did not answer /health in {timeout:g} s"
                time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _wrk_process(ctx: Context, api: _Api, connections: int, seconds: int, key: str | None) -> dict[str, Any]:
    """wrk (2 threads) on POST /process at ``connections``: requests/s, p50/p99 and the service's
    CPU per request, after a 2 s warm-up (connections, producer metadata)."""
    script = ctx.workdir / f"process-{'auth' if key else 'open'}.lua"
    script.write_text(_process_lua(key))
    url = f"http://127.0.0.1:{api.port}"
    subprocess.run(["wrk", "-t1", "-c4", "-d2s", "-s", str(script), url], capture_output=True, check=True)
    cpu_before = cpu_seconds(api.proc.pid)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_seconds(api.proc.pid) - cpu_before
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _wrk_latency_ms(out, "50%"),
        "p99_ms": _wrk_latency_ms(out, "99%"),
        "cpu_us_per_request": cpu / total * 1e6 if total else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def first_token_ms(url: str, body: dict[str, Any], headers: dict[str, str], n: int) -> list[float]:
    """``n`` streamed calls one after the other on one keep-alive connection: the time from sending
    each request to its first SSE ``data:`` line, in ms. The same client times the provider alone
    and the service, so the difference is what the service, Kafka and the worker add."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    payload = json.dumps(body).encode()
    out: list[float] = []
    try:
        for i in range(n):
            # A unique prompt per call, so no cache answers it.
            payload_i = payload.replace(b"__N__", str(i).encode())
            started = time.perf_counter()
            conn.request("POST", parsed.path, payload_i, {"Content-Type": "application/json", **headers})
            response = conn.getresponse()
            if response.status != 200:
                raise RuntimeError(f"{url}: HTTP {response.status}: {response.read()[:300]!r}")
            first: float | None = None
            for line in response:
                if first is None and line.startswith(b"data:"):
                    first = (time.perf_counter() - started) * 1000
            if first is None:
                raise RuntimeError(f"{url}: a stream without a data line")
            out.append(first)
    finally:
        conn.close()
    return out


def scenario_service(ctx: Context, repeats: int) -> dict[str, Any]:
    """The HTTP service as its users run it: ``kafka-llm api`` with one uvicorn worker.

    - POST /process driven by wrk with API keys on, at 16 and 64 connections, and with auth off at
      64 (the service's floor); unique prompts (no cache hits), no worker consuming meanwhile.
    - Time to first token of streamed chat calls made one after the other, through the service (a
      native worker answering) and against the mock provider alone, with the same client.
    """
    sz = ctx.sizes
    seconds = sz.loopback_seconds * 2
    ctx.progress(
        f"scenario 5: HTTP service, POST /process (wrk, {seconds} s, auth on at c16 and c64, "
        f"auth off at c64), then {sz.s5_stream_calls} sequential streamed calls"
    )
    if shutil.which("wrk") is None:
        return {"error": "wrk is not installed"}
    env = {k_: v for k_, v in os.environ.items() if not k_.startswith(("KAFKA_", "REDIS_"))}
    if ctx.pythonpath:
        env["PYTHONPATH"] = ctx.pythonpath
    stream_body = request_body(stream=True)
    stream_body["messages"][0]["content"] += " __N__"
    stream_body["provider"] = "mock"
    per_repeat = []
    for rep in range(repeats):
        mock_configure(ctx, latency_ms=0)
        name = ctx.name("s5", "api")
        requests, responses, dlq = f"{name}.requests", f"{name}.responses", f"{name}.dlq"
        k.create_topics(ctx.stack.bootstrap_servers, [requests, responses, dlq], partitions=ctx.partitions)
        config = worker_config(
            bootstrap=ctx.stack.bootstrap_servers,
            redis_url=ctx.stack.redis_url_with_password(),
            provider_url=ctx.stack.provider_url,
            group=f"{name}.workers",
            requests=requests,
            responses=responses,
            dlq=dlq,
            max_handlers=5000,
        )
        config_path = ctx.workdir / f"{name}.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        database = f"sqlite:///{ctx.workdir / name}.db"
        created = subprocess.run(
            [*_CLI, "keys", "--database-url", database, "create", "--name", "bench", "--json"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        key = str(json.loads(created.stdout)["key"])
        row: dict[str, Any] = {}
        for label, auth, connections in (
            ("auth_c16", True, 16),
            ("auth_c64", True, 64),
            ("open_c64", False, 64),
        ):
            api = _Api(ctx, config_path, database, f"{name}-{label}", auth=auth)
            try:
                if (error := api.wait_healthy()) is not None:
                    return {"error": error}
                row[label] = _wrk_process(ctx, api, connections, seconds, key if auth else None)
            finally:
                api.stop()
        # Streams need a worker: the native one, started once the /process runs are over (they
        # queued requests it now works off first: wait until it is idle).
        worker = WorkerProcess("core", config, ctx.workdir, f"{name}-worker", pythonpath=ctx.pythonpath)
        api = _Api(ctx, config_path, database, f"{name}-stream", auth=True)
        try:
            worker.start()
            worker.wait_ready(ctx.partitions)
            if (error := api.wait_healthy()) is not None:
                return {"error": error}
            deadline, idle = time.monotonic() + 300, 0
            while idle < 3:  # idle (nothing in flight) three samples in a row
                stats = worker.stats() or {}
                idle = idle + 1 if int(stats.get("inflight", 1)) == 0 else 0
                if time.monotonic() > deadline:
                    return {"error": "the worker did not work off the queued /process requests in 300 s"}
                time.sleep(0.5)
            headers = {"Authorization": f"Bearer {key}"}
            n = sz.s5_stream_calls
            first_token_ms(f"http://127.0.0.1:{api.port}/v1/chat/completions", stream_body, headers, 5)
            through = first_token_ms(
                f"http://127.0.0.1:{api.port}/v1/chat/completions", stream_body, headers, n
            )
            alone = first_token_ms(f"{ctx.stack.provider_base}/v1/chat/completions", stream_body, {}, n)
        finally:
            api.stop()
            worker.stop()
        row["first_token"] = {
            "service_p50_ms": percentile(through, 50),
            "service_p95_ms": percentile(through, 95),
            "provider_p50_ms": percentile(alone, 50),
            "provider_p95_ms": percentile(alone, 95),
            "added_p50_ms": median([t - a for t, a in zip(sorted(through), sorted(alone), strict=True)]),
        }
        ctx.progress(
            f"  repeat {rep + 1}: /process auth c16 {row['auth_c16']['requests_per_s']:.0f}/s, "
            f"auth c64 {row['auth_c64']['requests_per_s']:.0f}/s, "
            f"open c64 {row['open_c64']['requests_per_s']:.0f}/s; "
            f"first token {row['first_token']['service_p50_ms'] or 0:.1f} ms vs provider alone "
            f"{row['first_token']['provider_p50_ms'] or 0:.1f} ms"
        )
        per_repeat.append(row)
    return {
        "settings": {
            "process": "wrk -t2, unique prompts, no worker consuming; auth on at -c16 and -c64, off at -c64",
            "seconds": seconds,
            "uvicorn_workers": 1,
            "cache": "off",
            "stream_calls": sz.s5_stream_calls,
            "stream": "sequential, one keep-alive connection, mock latency 0, a native worker answering",
        },
        "repeats": per_repeat,
        "median": medians(per_repeat),
    }


# --- scenario 6: the cost of exactly-once mode


def scenario_exactly_once(ctx: Context, repeats: int) -> dict[str, Any]:
    """The native worker alone, its default mode and exactly-once mode side by side on the same load:
    throughput, CPU per request and end-to-end latency (send to the response a read_committed
    reader sees)."""
    sz = ctx.sizes
    ctx.progress(
        f"scenario 6: exactly-once cost, mock latency {sz.s6_latency_ms:g} ms, {sz.s6_requests} requests, "
        f"maxHandlers {sz.s6_handlers}"
    )
    per_repeat = []
    for rep in range(repeats):
        row: dict[str, Any] = {}
        for mode in ("default", "exactly_once"):
            mock_configure(ctx, latency_ms=sz.s6_latency_ms)
            run = run_load(
                ctx,
                "s6eos" if mode == "exactly_once" else "s6",
                "core",
                n=sz.s6_requests,
                max_handlers=sz.s6_handlers,
                timeout=600,
                exactly_once=mode == "exactly_once",
            )
            sent, final_at = run.sent.t0, run.observed.final_at
            end_to_end = [final_at[r] - sent[r] for r in final_at if r in sent]
            transactions = run.final_stats.get("transactions", {})
            # Over the whole run, first send to last response: exactly-once responses arrive in
            # bursts (one per transaction), which a 5%..95% window would cut arbitrarily.
            times = [s[0] for s in run.observed.samples]
            cpus = [s[2] for s in run.observed.samples]
            last = max(run.finish_times) if run.finish_times else run.sent.started
            cpu = interpolate(times, cpus, last) - interpolate(times, cpus, run.sent.started)
            finished = len(run.finish_times)
            row[mode] = {
                "requests_per_s": finished / (last - run.sent.started) if last > run.sent.started else None,
                "cpu_us_per_request": cpu / finished * 1e6 if finished else None,
                "finished": finished,
                "ok": sum(1 for s in run.observed.status.values() if s == 200),
                "complete": run.complete,
                "end_to_end": ms_percentiles(end_to_end),
                "transactions": sum(transactions.values()) if isinstance(transactions, dict) else 0,
            }
        eos, default = row["exactly_once"], row["default"]
        row["throughput_eos_vs_default"] = ratio(eos["requests_per_s"], default["requests_per_s"])
        row["cpu_eos_vs_default"] = ratio(eos["cpu_us_per_request"], default["cpu_us_per_request"])
        for mode, figures in (("default", default), ("exactly-once", eos)):
            ctx.progress(
                f"  repeat {rep + 1}, {mode}: {figures['requests_per_s'] or 0:.0f}/s, "
                f"{figures['cpu_us_per_request'] or 0:.0f} us CPU/req, "
                f"p50/p99 {figures['end_to_end']['p50_ms'] or 0:.0f}/"
                f"{figures['end_to_end']['p99_ms'] or 0:.0f} ms, "
                f"{figures['transactions']} transactions"
            )
        per_repeat.append(row)
    return {
        "settings": {
            "requests": sz.s6_requests,
            "max_handlers": sz.s6_handlers,
            "mock_latency_ms": sz.s6_latency_ms,
            "commit_interval_ms": 200,
            "window": "first send to last response",
        },
        "repeats": per_repeat,
        "median": medians(per_repeat),
    }
