"""The promises of docs/guarantees.md (Delivery semantics), proven on the real stack (issue 4):
nothing is lost, duplicates are bounded, the poll loop never blocks, one bad record never stalls a
partition.

Every scenario asserts what was delivered, lost (nothing) and duplicated, and records its
figures in build/fault-report.json (the table in the issue's closing note comes from there).
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from pipeline_helpers import (
    Collector,
    all_mock_calls,
    committed_total,
    envelope,
    make_config,
    make_topics,
    mock_admin,
    produce,
    redis_client,
    report_rows,
    start_worker,
    stop_process,
    wait_for,
    write_worker_config,
)

from kafka_llm import Pipeline
from kafka_llm.devstack import Stack, StackInfo

REPORT = Path(__file__).resolve().parents[2] / "build" / "fault-report.json"


@pytest.fixture(scope="module")
def report() -> Iterator[dict[str, dict[str, Any]]]:
    yield from report_rows(REPORT)


def ledger(
    stack: StackInfo, ids: list[str], responses: Collector, dlq: Collector | None = None
) -> dict[str, Any]:
    """Sent / completed / lost / duplicated figures for one scenario."""
    answered = responses.by_key()
    dead = dlq.ids() if dlq is not None else set()
    calls = all_mock_calls(stack)
    completed = {i for i in ids if i in answered or i in dead}
    return {
        "sent": len(ids),
        "completed": len(completed),
        "lost": len(set(ids) - completed),
        "duplicate_provider_calls": sum(max(0, calls.get(i, 0) - 1) for i in ids),
        "duplicate_responses": sum(max(0, len(answered.get(i, [])) - 1) for i in ids),
    }


def assert_results_done_once(stack: StackInfo, ids: list[str], responses: Collector) -> None:
    """Every id is done in Redis, and every response published for it carries that one result."""
    client = redis_client(stack)
    stored = client.mget([f"kafka-llm:result:{i}" for i in ids])
    answered = responses.by_key()
    for request_id, raw in zip(ids, stored, strict=True):
        assert raw is not None, f"{request_id} has no result in Redis"
        record = json.loads(raw)
        assert record["status"] == "done", (request_id, record["status"])
        bodies = {json.dumps(r["body"], sort_keys=True) for r in answered[request_id]}
        assert bodies == {json.dumps(record["body"], sort_keys=True)}, f"{request_id}: the result changed"


def test_kill_9_mid_flight_then_restart_loses_nothing(
    stack: StackInfo, unique_name: str, tmp_path: Path, report: dict[str, Any]
) -> None:
    window = 500
    topics = make_topics(stack, unique_name, partitions=4)
    config = write_worker_config(tmp_path / "worker.yaml", stack, topics, max_handlers=window)
    ids = [f"{unique_name}-{i}" for i in range(3000)]
    responses = Collector(stack, topics.responses)
    worker = start_worker(config)
    try:
        produce(
            stack,
            topics.requests,
            [
                json.dumps(envelope(i, request_id=i, body_extra={"mock": {"latency_ms": 200}})).encode()
                for i in ids
            ],
        )
        responses.poll_until(lambda c: len(c.ids()) >= 600, 90, "600 responses before the crash")
        stop_process(worker, signal.SIGKILL)
        answered_before = len(responses.ids())
        worker = start_worker(config)
        responses.poll_until(lambda c: set(ids) <= c.ids(), 120, "every request after the restart")
    finally:
        assert stop_process(worker) == 0
    row = ledger(stack, ids, responses) | {"killed_after": answered_before, "window": window}
    report["kill -9 worker mid-flight, restart"] = row
    assert row["lost"] == 0
    assert row["duplicate_provider_calls"] <= window, row
    assert_results_done_once(stack, ids, responses)
    responses.close()


def test_broker_restart_mid_run_loses_nothing_and_the_worker_recovers_by_itself(
    stack_handle: Stack, unique_name: str, report: dict[str, Any]
) -> None:
    stack = stack_handle.info
    window = 100
    topics = make_topics(stack, unique_name, partitions=3)
    ids = [f"{unique_name}-{i}" for i in range(1500)]
    responses = Collector(stack, topics.responses)
    with Pipeline(make_config(stack, topics, max_handlers=window)) as pipeline:
        produce(
            stack,
            topics.requests,
            [
                json.dumps(envelope(i, request_id=i, body_extra={"mock": {"latency_ms": 200}})).encode()
                for i in ids
            ],
        )
        responses.poll_until(lambda c: len(c.ids()) >= 200, 60, "200 responses before the broker restart")
        stack_handle.restart_part("kafka")
        responses.poll_until(lambda c: set(ids) <= c.ids(), 180, "every request after the broker restart")
        stats = pipeline.stats()
    row = ledger(stack, ids, responses) | {"rebalances": stats["rebalances"], "window": window}
    report["broker restart mid-run"] = row
    assert row["lost"] == 0
    assert row["duplicate_provider_calls"] <= window * 2, row  # at most the window, once per group rejoin
    assert_results_done_once(stack, ids, responses)
    responses.close()


def test_redis_outage_applies_backpressure_and_commits_nothing_unstored(
    stack_handle: Stack, unique_name: str, report: dict[str, Any]
) -> None:
    stack = stack_handle.info
    window = 100
    topics = make_topics(stack, unique_name, partitions=2)
    ids = [f"{unique_name}-{i}" for i in range(3000)]  # more than the window plus the backlog
    responses = Collector(stack, topics.responses)
    samples: list[dict[str, Any]] = []
    with Pipeline(make_config(stack, topics, max_handlers=window)) as pipeline:
        produce(
            stack,
            topics.requests,
            [
                json.dumps(envelope(i, request_id=i, body_extra={"mock": {"latency_ms": 20}})).encode()
                for i in ids
            ],
        )
        responses.poll_until(lambda c: len(c.ids()) >= 200, 60, "200 responses before the outage")
        stack_handle.signal_part(
            "redis", signal.SIGSTOP
        )  # Redis hangs: connections stay open, nothing answers
        try:
            time.sleep(1.0)  # what finished before the hang is committed by now
            committed_during = committed_total(stack, topics, 2)
            for _ in range(25):
                samples.append(pipeline.stats())
                time.sleep(0.2)
            committed_after = committed_total(stack, topics, 2)
        finally:
            stack_handle.signal_part("redis", signal.SIGCONT)
        responses.poll_until(lambda c: set(ids) <= c.ids(), 120, "every request after Redis came back")
        stats = pipeline.stats()
    row = ledger(stack, ids, responses) | {
        "rebalances": stats["rebalances"] - 1,
        "max_paused_partitions": max(s["paused_partitions"] for s in samples),
        "committed_during_outage": committed_after - committed_during,
    }
    report["Redis outage (SIGSTOP 5 s)"] = row
    assert row["lost"] == 0
    assert row["committed_during_outage"] == 0, "offsets moved past results that were not stored"
    assert row["max_paused_partitions"] > 0, "the full window should pause consumption"
    assert max(s["inflight"] for s in samples) <= window * 1.2
    assert stats["rebalances"] == 1, "the worker must stay in its group through the outage"
    assert_results_done_once(stack, ids, responses)
    responses.close()


def test_429_storm_and_hangs_longer_than_max_poll_interval_cause_no_rebalance(
    stack: StackInfo, unique_name: str, report: dict[str, Any]
) -> None:
    topics = make_topics(stack, unique_name, partitions=2)
    config = make_config(
        stack,
        topics,
        max_handlers=300,
        providers=[{"name": "mock", "baseURL": stack.provider_url, "firstByteTimeout": "1500ms"}],
        retry={"maxAttempts": 30, "initialBackoff": "200ms", "maxBackoff": "1s", "requestTimeout": "60s"},
        kafka={
            "bootstrap.servers": stack.bootstrap_servers,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "max.poll.interval.ms": 7000,
        },
    )
    storm = [f"{unique_name}-storm-{i}" for i in range(600)]
    hinted = [f"{unique_name}-hint-{i}" for i in range(20)]  # 429 three times with Retry-After: 1
    jittered = [f"{unique_name}-jit-{i}" for i in range(40)]  # 503 twice, no hint: backoff with jitter
    hanging = [f"{unique_name}-hang-{i}" for i in range(20)]  # the first call hangs
    special: dict[str, dict[str, Any]] = {}
    special |= {i: {"fault": "429", "fault_times": 3, "retry_after": 1} for i in hinted}
    special |= {i: {"fault": "503", "fault_times": 2} for i in jittered}
    special |= {i: {"fault": "hang", "fault_times": 1} for i in hanging}
    # Interleaved with the storm traffic, as real failures arrive (a run of request-specific
    # failures back to back would rightly trip the circuit breaker, a different scenario).
    order: list[str] = []
    pending = list(special)
    for n, request_id in enumerate(storm):
        order.append(request_id)
        if n % 7 == 3 and pending:
            order.append(pending.pop(0))
    order.extend(pending)
    values = [
        json.dumps(
            envelope(i, request_id=i, body_extra={"mock": special[i]} if i in special else {})
        ).encode()
        for i in order
    ]
    ids = storm + hinted + jittered + hanging
    responses = Collector(stack, topics.responses)
    mock_admin(stack, fault_429=0.5, retry_after=1)
    try:
        with Pipeline(config) as pipeline:
            produce(stack, topics.requests, values)
            time.sleep(10)  # longer than max.poll.interval.ms, with half the calls answered 429
            mock_admin(stack, fault_429=0.0)
            responses.poll_until(lambda c: set(ids) <= c.ids(), 120, "every request after the storm")
            stats = pipeline.stats()
    finally:
        mock_admin(stack, fault_429=0.0)
    answered = responses.by_key()
    row = ledger(stack, ids, responses) | {
        "rebalances": stats["rebalances"] - 1,
        "retries": sum(stats["retries"].values()),
    }
    report["429 storm (50% for 10 s) + hangs, max.poll.interval 7 s"] = row
    assert row["lost"] == 0
    assert stats["rebalances"] == 1, "a storm must not cost the group membership"
    failed = [
        (i, answered[i][0]["status_code"], answered[i][0]["body"])
        for i in ids
        if answered[i][0]["status_code"] != 200
    ]
    assert not failed, (len(failed), failed[:3])
    # No request retried sooner than its Retry-After: three 429s with Retry-After: 1 take >= 3 s.
    assert min(answered[i][0]["latency_ms"] for i in hinted) >= 3000
    # Backoff without a hint is jittered: the retry delays spread out instead of marching in step.
    jitter = [answered[i][0]["latency_ms"] for i in jittered]
    assert statistics.pstdev(jitter) > 20 and len({round(v / 10) for v in jitter}) > len(jitter) // 3, jitter
    assert max(jitter) < 200 + 400 + 500  # ceilings of two backoffs plus slack
    assert all(answered[i][0]["attempts"] == 2 for i in hanging)
    assert stats["retries"].get("timeout_first_byte", 0) >= len(hanging)
    responses.close()


def test_rebalance_while_work_is_in_flight_loses_nothing(
    stack: StackInfo, unique_name: str, report: dict[str, Any]
) -> None:
    window = 100
    topics = make_topics(stack, unique_name, partitions=6)
    config = make_config(stack, topics, max_handlers=window)
    ids = [f"{unique_name}-{i}" for i in range(2000)]
    responses = Collector(stack, topics.responses)
    first = Pipeline(config).start()
    others: list[Pipeline] = []
    try:
        produce(
            stack,
            topics.requests,
            [
                json.dumps(envelope(i, request_id=i, body_extra={"mock": {"latency_ms": 300}})).encode()
                for i in ids
            ],
        )
        responses.poll_until(lambda c: len(c.ids()) >= 300, 60, "300 responses before the others join")
        others = [Pipeline(config).start(), Pipeline(config).start()]
        responses.poll_until(lambda c: len(c.ids()) >= 900, 60, "900 responses before the first leaves")
        first.stop()
        responses.poll_until(lambda c: set(ids) <= c.ids(), 120, "every request after the rebalances")
    finally:
        first.stop()
        for pipeline in others:
            pipeline.stop()
    row = ledger(stack, ids, responses) | {"workers": "1 -> 3 -> 2", "window": window}
    report["rebalance in flight (2 join, 1 leaves)"] = row
    assert row["lost"] == 0
    assert row["duplicate_provider_calls"] <= 3 * window, row
    assert_results_done_once(stack, ids, responses)
    responses.close()


def test_poison_records_of_every_kind_go_to_the_dlq_without_delaying_good_ones(
    stack: StackInfo, unique_name: str, report: dict[str, Any]
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    poison = {
        "invalid-utf8": b'{"body": {"model": "m", "prompt": "\xff\xfe"}}',
        "huge": json.dumps({"body": {"model": "m", "prompt": "x" * 200_000}}).encode(),
        "deep": b"[" * 30_000 + b"]" * 30_000,  # under the size limit, far over the depth limit
        "body-not-object": json.dumps({"body": ["model", "m"]}).encode(),
        "model-not-string": json.dumps({"body": {"model": 7, "prompt": "p"}}).encode(),
        "messages-not-array": json.dumps(
            {"path": "/v1/chat/completions", "body": {"model": "m", "messages": "hi"}}
        ).encode(),
        "empty": b"",
        "json-null": b"null",
        "unsupported-path": json.dumps({"path": "/v1/images", "body": {"model": "m"}}).encode(),
    }
    good = [f"{unique_name}-good-{i}" for i in range(50)]
    values: list[bytes] = []
    keys: list[bytes | None] = []
    for i, request_id in enumerate(good):
        values.append(json.dumps(envelope(request_id, request_id=request_id)).encode())
        keys.append(request_id.encode())
        if i < len(poison):
            name = list(poison)[i]
            values.append(poison[name])
            keys.append(f"{unique_name}-{name}".encode())
    responses = Collector(stack, topics.responses)
    dlq = Collector(stack, topics.dlq)
    with Pipeline(make_config(stack, topics, maxRequestBytes=65536)) as pipeline:
        started = time.monotonic()
        produce(stack, topics.requests, values, keys)
        responses.poll_until(lambda c: set(good) <= c.ids(), 60, "the good requests")
        good_done_after = time.monotonic() - started
        dlq.poll_until(lambda c: len(c.records) >= len(poison), 30, "every poison record in the DLQ")
        stats = pipeline.stats()
    classes = {r.key.decode().removeprefix(f"{unique_name}-"): dict(r.headers) for r in dlq.records if r.key}
    assert set(classes) == set(poison)
    assert {h["x-error-class"] for h in classes.values()} == {b"poison"}
    assert classes["huge"]["x-http-status"] == b"413"
    assert b"UTF-8" in classes["invalid-utf8"]["x-error"]
    assert b"deeper" in classes["deep"]["x-error"] or b"depth" in classes["deep"]["x-error"]
    assert b"body.model" in classes["model-not-string"]["x-error"]
    assert {r.value for r in dlq.records} == set(poison.values())  # byte for byte
    assert good_done_after < 10, f"good records behind poison took {good_done_after:.1f} s"
    assert stats["latency"]["end_to_end"]["p99_ms"] < 2000
    report["poison records interleaved"] = {
        "sent": len(good) + len(poison),
        "completed": len(good) + len(dlq.records),
        "lost": 0,
        "dead_lettered": len(dlq.records),
        "good_p99_ms": stats["latency"]["end_to_end"]["p99_ms"],
    }
    responses.close()
    dlq.close()


def test_malformed_provider_responses_become_error_envelopes_and_dead_letters(
    stack: StackInfo, unique_name: str, report: dict[str, Any]
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    cases = {
        "malformed": ({"fault": "malformed"}, False),
        "wrong-content-type": ({"fault": "wrong-content-type"}, False),
        "truncated-stream": ({"fault": "truncate"}, True),
        "reset": ({"fault": "reset"}, False),
    }
    values = [
        json.dumps(
            envelope(name, request_id=f"{unique_name}-{name}", stream=stream, body_extra={"mock": mock})
        ).encode()
        for name, (mock, stream) in cases.items()
    ]
    values.append(json.dumps(envelope("fine", request_id=f"{unique_name}-fine")).encode())
    responses = Collector(stack, topics.responses)
    dlq = Collector(stack, topics.dlq)
    with Pipeline(make_config(stack, topics, retry={"maxAttempts": 3})) as pipeline:
        produce(stack, topics.requests, values)
        dlq.poll_until(lambda c: len(c.records) >= len(cases), 60, "a dead letter per malformed response")
        responses.poll_until(lambda c: f"{unique_name}-fine" in c.ids(), 30, "the good request")
        assert pipeline.running
    answered = responses.by_key()
    for name in cases:
        final = answered[f"{unique_name}-{name}"][-1]
        status = final["status_code"]
        assert status >= 500, (name, final)
    assert answered[f"{unique_name}-fine"][0]["status_code"] == 200
    dead = {
        h["x-request-id"].decode().removeprefix(f"{unique_name}-"): h
        for h in (dict(r.headers) for r in dlq.records)
    }
    assert set(dead) == set(cases)
    assert all(h["x-error-class"] in (b"retries_exhausted", b"non_retryable") for h in dead.values())
    report["malformed provider responses"] = {
        "sent": len(values),
        "completed": len(values),
        "lost": 0,
        "dead_lettered": len(dlq.records),
    }
    responses.close()
    dlq.close()


def test_secrets_never_appear_in_logs_errors_metrics_or_dead_letters(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    secret_key = "sk-planted-" + unique_name[-8:] + "ABCDEFGH"
    sasl_password = "sasl-planted-" + unique_name[-8:]
    redis_password = "redis-planted-" + unique_name[-8:]
    port = _free_port()
    own_redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--requirepass", redis_password, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis_lib.Redis(port=port, password=redis_password)
        wait_for(lambda: _pings(client), 10, "the password-protected redis-server")
        topics = make_topics(stack, unique_name, partitions=1)
        secret_stack = StackInfo(
            stack.bootstrap_servers,
            f"redis://127.0.0.1:{port}/0",
            stack.provider_url,
            stack.provider_base,
            stack.pids,
            stack.state_dir,
            redis_password,
        )
        config = write_worker_config(
            tmp_path / "worker.yaml",
            secret_stack,
            topics,
            providers=[{"name": "mock", "baseURL": stack.provider_url, "apiKey": secret_key}],
            kafka={
                "bootstrap.servers": stack.bootstrap_servers,
                "sasl.username": "u",
                "sasl.password": sasl_password,
            },
            retry={"maxAttempts": 2},
        )
        ids = {
            "ok": envelope("fine", request_id=f"{unique_name}-ok"),
            "fail": envelope("boom", request_id=f"{unique_name}-fail", body_extra={"mock": {"fault": "500"}}),
            "unauthorized": envelope(
                "no", request_id=f"{unique_name}-401", body_extra={"mock": {"fault": "404"}}
            ),
        }
        worker = start_worker(config)
        try:
            produce(stack, topics.requests, [json.dumps(e).encode() for e in ids.values()] + [b"not json"])
            responses = Collector(stack, topics.responses)
            responses.poll_until(lambda c: len(c.ids()) >= 3, 60, "the responses")
            dlq = Collector(stack, topics.dlq)
            dlq.poll_until(lambda c: len(c.records) >= 3, 30, "the dead letters")
        finally:
            assert stop_process(worker) == 0
        stored = json.loads(client.get(f"kafka-llm:result:{unique_name}-ok") or b"{}")
        assert stored["status"] == "done", "the pipeline stored its result through Redis AUTH"
        everything = b"".join(
            [Path(worker.log_file.name).read_bytes()]
            + [
                r.value + b"".join(k.encode() + v for k, v in r.headers)
                for r in responses.records + dlq.records
            ]
            + [client.get(key) or b"" for key in client.keys("kafka-llm:*")]
        )
        for secret in (secret_key, sasl_password, redis_password):
            assert secret.encode() not in everything, f"a planted secret leaked: {secret[:12]}..."
        responses.close()
        dlq.close()
    finally:
        own_redis.terminate()
        own_redis.wait(10)


def test_metrics_and_stats_carry_no_secrets(stack: StackInfo, unique_name: str) -> None:
    secret_key = "sk-planted-metrics-" + unique_name[-8:]
    topics = make_topics(stack, unique_name, partitions=1)
    config = make_config(
        stack, topics, providers=[{"name": "mock", "baseURL": stack.provider_url, "apiKey": secret_key}]
    )
    with Pipeline(config) as pipeline:
        produce(stack, topics.requests, [json.dumps(envelope("x", request_id=f"{unique_name}-m")).encode()])
        wait_for(lambda: pipeline.stats()["requests_total"] == 1, 30, "the request")
        text = pipeline.metrics_text() + json.dumps(pipeline.stats()) + repr(pipeline.config)
    assert secret_key not in text
    assert "kafka_llm_requests_total{" in text and "kafka_llm_provider_latency_seconds_bucket" in text


def _pings(client: redis_lib.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis_lib.ConnectionError:
        return False


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
