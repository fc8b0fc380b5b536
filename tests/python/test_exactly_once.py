"""Exactly-once mode on the real broker (issue 13, docs/guarantees.md "Exactly-once"): outputs and
consumed offsets are committed in one transaction, so after a kill -9, a broker restart or a fenced
producer a read_committed reader sees exactly one final response per request, and nothing of the
transactions that did not commit. Each scenario records its row in build/exactly-once-report.json."""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import (
    Collector,
    all_mock_calls,
    envelope,
    make_config,
    make_topics,
    produce,
    read_until,
    report_rows,
    start_worker,
    stop_process,
    wait_for,
    write_worker_config,
)

from kafka_llm import Pipeline
from kafka_llm import kafka as k
from kafka_llm.devstack import Stack, StackInfo

REPORT = Path(__file__).resolve().parents[2] / "build" / "exactly-once-report.json"


@pytest.fixture(scope="module")
def report() -> Iterator[dict[str, dict[str, Any]]]:
    yield from report_rows(REPORT)


def _requests(ids: list[str], latency_ms: int) -> list[bytes]:
    return [
        json.dumps(envelope(i, request_id=i, body_extra={"mock": {"latency_ms": latency_ms}})).encode()
        for i in ids
    ]


def _final_responses(stack: StackInfo, topic: str, isolation: str, expected: int) -> Counter[str]:
    """Every response on ``topic`` per request id, as a reader with ``isolation`` sees them: read
    until a few seconds pass without anything new beyond ``expected`` records."""
    consumer = k.consumer(
        stack.bootstrap_servers,
        [topic],
        f"eos-check-{topic}-{isolation}",
        properties={"isolation.level": isolation},
    )
    seen: Counter[str] = Counter()
    try:
        idle = 0
        while idle < 15:  # 15 empty polls of 200 ms once everything expected is in
            batch = consumer.consume(2000, 200)
            for record in batch:
                seen[json.loads(record.value)["request_id"]] += 1
            idle = idle + 1 if not batch and sum(seen.values()) >= expected else 0
    finally:
        consumer.close()
    return seen


def _row(stack: StackInfo, topic: str, ids: list[str]) -> dict[str, Any]:
    """Sent / completed / lost / duplicated, as a read_committed and a read_uncommitted reader of
    ``topic`` see it."""
    committed = _final_responses(stack, topic, "read_committed", len(ids))
    uncommitted = _final_responses(stack, topic, "read_uncommitted", len(ids))
    calls = all_mock_calls(stack)
    return {
        "sent": len(ids),
        "completed": sum(1 for i in ids if committed[i] > 0),
        "lost": sum(1 for i in ids if committed[i] == 0),
        "duplicates_read_committed": sum(max(0, committed[i] - 1) for i in ids),
        "duplicates_read_uncommitted": sum(max(0, uncommitted[i] - 1) for i in ids),
        "duplicate_provider_calls": sum(max(0, calls.get(i, 0) - 1) for i in ids),
        "responses_read_committed": sum(committed.values()),
    }


def test_a_fenced_producer_is_replaced_and_its_transaction_retried_without_loss_or_duplicates(
    stack: StackInfo, unique_name: str, report: dict[str, Any]
) -> None:
    topics = make_topics(stack, unique_name, partitions=2)
    ids = [f"{unique_name}-{i}" for i in range(400)]
    config = make_config(stack, topics, max_handlers=50, exactlyOnce=True)
    assert config.exactly_once
    with Pipeline(config) as pipeline:
        produce(stack, topics.requests, _requests(ids[:200], 30))
        wait_for(lambda: pipeline.stats()["transactions"].get("committed", 0) >= 1, 60, "a transaction")
        fenced_id = pipeline.stats()["transactional_id"]
        # Another producer registering the worker's transactional.id fences it: its transaction under
        # way (or its next: the second half of the requests makes sure there is one) fails, it makes a
        # new producer and its partitions go back to their committed offsets.
        with k.TransactionalProducer({"bootstrap.servers": stack.bootstrap_servers}, fenced_id):
            pass
        produce(stack, topics.requests, _requests(ids[200:], 30))
        wait_for(
            lambda: pipeline.stats()["transactions"].get("fenced", 0) >= 1, 60, "the fence to be noticed"
        )
        responses = Collector(stack, topics.responses)
        responses.poll_until(lambda c: set(ids) <= c.ids(), 120, "every answer after the fence")
        responses.close()
        stats = pipeline.stats()
    assert stats["transactional_id"] != fenced_id
    row = _row(stack, topics.responses, ids) | {"transactions": stats["transactions"]}
    report["producer fenced mid-run"] = row
    assert row["lost"] == 0, row
    assert row["duplicates_read_committed"] == 0, row
    assert row["responses_read_committed"] == len(ids), "nothing but the requests' answers"
    assert stats["transaction_records"] >= len(ids)


def test_kill_9_mid_flight_then_restart_gives_a_read_committed_reader_each_answer_once(
    stack: StackInfo, unique_name: str, tmp_path: Path, report: dict[str, Any]
) -> None:
    window = 200
    topics = make_topics(stack, unique_name, partitions=3)
    config = write_worker_config(
        tmp_path / "worker.yaml", stack, topics, max_handlers=window, stream_extra={"exactlyOnce": True}
    )
    ids = [f"{unique_name}-{i}" for i in range(2000)]
    responses = Collector(stack, topics.responses)
    worker = start_worker(config)
    try:
        # 2,000 calls of 200 ms through a window of 200: at least 2 s of work, killed after 300.
        produce(stack, topics.requests, _requests(ids, 200))
        responses.poll_until(lambda c: len(c.ids()) >= 300, 90, "300 committed answers before the crash")
        stop_process(worker, signal.SIGKILL)
        answered_before = len(responses.ids())
        worker = start_worker(config)
        responses.poll_until(lambda c: set(ids) <= c.ids(), 180, "every answer after the restart")
    finally:
        assert stop_process(worker) == 0
    responses.close()
    assert answered_before < len(ids), "the kill came after everything was answered"
    row = _row(stack, topics.responses, ids) | {"killed_after": answered_before, "window": window}
    report["kill -9 worker mid-flight, restart"] = row
    assert row["lost"] == 0, row
    assert row["duplicates_read_committed"] == 0, row
    assert row["duplicate_provider_calls"] <= window, row


def test_broker_restart_mid_run_gives_a_read_committed_reader_each_answer_once(
    stack_handle: Stack, unique_name: str, report: dict[str, Any]
) -> None:
    stack = stack_handle.info
    topics = make_topics(stack, unique_name, partitions=3)
    ids = [f"{unique_name}-{i}" for i in range(800)]
    responses = Collector(stack, topics.responses)
    with Pipeline(make_config(stack, topics, max_handlers=100, exactlyOnce=True)) as pipeline:
        produce(stack, topics.requests, _requests(ids, 100))
        responses.poll_until(lambda c: len(c.ids()) >= 150, 60, "150 answers before the broker restart")
        stack_handle.restart_part("kafka")
        responses.poll_until(lambda c: set(ids) <= c.ids(), 180, "every answer after the broker restart")
        stats = pipeline.stats()
    responses.close()
    row = _row(stack, topics.responses, ids) | {"transactions": stats["transactions"]}
    report["broker restart mid-run"] = row
    assert row["lost"] == 0, row
    assert row["duplicates_read_committed"] == 0, row


def test_without_exactly_once_nothing_is_transactional(stack: StackInfo, unique_name: str) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    with Pipeline(make_config(stack, topics)) as pipeline:
        produce(stack, topics.requests, _requests([f"{unique_name}-a"], 0))
        read_until(stack, topics.responses, lambda r: len(r) >= 1, timeout=30)
        stats = pipeline.stats()
    assert stats["transactional_id"] is None
    assert stats["transactions"] == {}
