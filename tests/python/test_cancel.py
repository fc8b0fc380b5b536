"""Cancellation on the real stack (issue 13, docs/guarantees.md "Cancellation"): a record on the
stream's control topic skips a queued request, aborts one in flight (a stream ends with a final frame
saying cancelled), leaves a finished one as it is, and is remembered across a worker's restart and
in Redis. Every scenario counts the provider calls that still happened."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pipeline_helpers import (
    Topics,
    envelope,
    make_config,
    make_topics,
    mock_calls,
    produce,
    read_until,
    result_record,
    wait_for,
)

from kafka_llm import Pipeline
from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo
from kafka_llm.errors import ConfigError


def _cancel_topic(stack: StackInfo, topics: Topics) -> str:
    topic = f"{topics.requests}-cancel"
    k.create_topics(stack.bootstrap_servers, [topic], 2)
    return topic


def _cancel(
    stack: StackInfo, topic: str, request_id: str | None, value: dict[str, Any] | bytes | None = None
) -> None:
    producer = k.producer(stack.bootstrap_servers)
    raw = value if isinstance(value, bytes) else json.dumps(value or {"reason": "user asked"}).encode()
    producer.produce(topic, raw, key=request_id.encode() if request_id else None)
    assert producer.flush(30_000) == []


def _by_id(records: list[k.Record]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        value = json.loads(r.value)
        out.setdefault(value["request_id"], []).append(value)
    return out


def test_queued_requests_are_skipped_in_flight_ones_aborted_and_finished_ones_stay(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    cancel_topic = _cancel_topic(stack, topics)
    rid = {name: f"{unique_name}-{name}" for name in ("done", "slow", "queued", "after", "stream")}
    config = make_config(stack, topics, max_handlers=1, stream_extra={"cancelURL": f"kafka://{cancel_topic}"})
    with Pipeline(config) as pipeline:
        wait_for(lambda: bool(pipeline.stats()["assignment"]), 30, "an assignment")
        produce(stack, topics.requests, [json.dumps(envelope("fast", request_id=rid["done"])).encode()])
        wait_for(
            lambda: (result_record(stack, rid["done"]) or {}).get("status") == "done", 30, "the first answer"
        )

        # One slot: "slow" takes it for 20 s, "queued" and "after" wait behind it.
        slow = envelope("slow", request_id=rid["slow"], body_extra={"mock": {"latency_ms": 20_000}})
        produce(
            stack,
            topics.requests,
            [
                json.dumps(slow).encode(),
                json.dumps(envelope("queued", request_id=rid["queued"])).encode(),
                json.dumps(envelope("after", request_id=rid["after"])).encode(),
            ],
        )
        wait_for(lambda: mock_calls(stack, rid["slow"]) == 1, 30, "the slow call to be out")
        started = time.monotonic()
        _cancel(stack, cancel_topic, rid["queued"])  # waiting for the slot: never sent
        # Read before "slow" is cancelled (the two may land on different partitions of the control
        # topic): else the freed slot could start "queued" first.
        wait_for(lambda: pipeline.stats()["cancels"].get("remembered", 0) == 1, 30, "the first cancel read")
        _cancel(stack, cancel_topic, rid["slow"], {"request_id": rid["slow"], "reason": "user asked"})
        _cancel(stack, cancel_topic, rid["done"])  # finished: stays done
        _cancel(stack, cancel_topic, f"{unique_name}-unknown")  # nobody has it: remembered, no stall
        _cancel(stack, cancel_topic, None, b"not json")  # unreadable: counted, skipped
        responses = read_until(stack, topics.responses, lambda r: len(_by_id(r)) >= 4, timeout=30)
        aborted_after = time.monotonic() - started

        # A streamed request cancelled after its first frames.
        streamed = envelope(
            "stream",
            request_id=rid["stream"],
            stream=True,
            body_extra={"mock": {"content": " ".join(["word"] * 60), "token_interval_ms": 100}},
        )
        produce(stack, topics.requests, [json.dumps(streamed).encode()])
        frames = read_until(
            stack,
            topics.responses,
            lambda r: rid["stream"] in _by_id(r) and len(_by_id(r)[rid["stream"]]) >= 3,
            30,
        )
        _cancel(
            stack, cancel_topic, rid["stream"], {"request_id": rid["stream"], "reason": "client disconnected"}
        )
        frames = read_until(
            stack,
            topics.responses,
            lambda r: any(f.get("done") for f in _by_id(r).get(rid["stream"], [])),
            timeout=30,
        )
        stats = pipeline.stats()
        text = pipeline.metrics_text()

    answered = _by_id(responses)
    assert aborted_after < 10, f"the slow call was not aborted ({aborted_after:.1f} s)"
    assert answered[rid["slow"]][-1]["status_code"] == 499
    assert answered[rid["slow"]][-1]["body"]["error"] == {
        "message": "cancelled: user asked",
        "type": "cancelled",
        "code": "cancelled",
    }
    assert answered[rid["queued"]][-1]["status_code"] == 499
    assert answered[rid["after"]][-1]["status_code"] == 200
    assert [r["status_code"] for r in answered[rid["done"]]] == [200], "a finished request stays as it was"

    calls = {name: mock_calls(stack, request_id) for name, request_id in rid.items()}
    assert calls == {"done": 1, "slow": 1, "queued": 0, "after": 1, "stream": 1}

    stored = {
        name: (result_record(stack, request_id) or {}).get("status") for name, request_id in rid.items()
    }
    assert stored == {
        "done": "done",
        "slow": "cancelled",
        "queued": "cancelled",
        "after": "done",
        "stream": "cancelled",
    }
    assert result_record(stack, rid["slow"])["status_code"] == 499  # type: ignore[index]

    stream_frames = _by_id(frames)[rid["stream"]]
    final = stream_frames[-1]
    assert final["done"] is True
    assert final["status_code"] == 499
    assert final["finish_reason"] == "cancelled"
    assert final["error"]["message"] == "cancelled: client disconnected"
    assert 3 <= final["seq"] < 60, "the stream stopped early"
    assert len(stream_frames) == final["seq"] + 1

    assert stats["cancels"] == {"aborted": 2, "skipped": 1, "remembered": 3, "invalid": 1}
    assert stats["dlq"] == {}, "a cancellation is no dead letter"
    assert 'kafka_llm_cancels_total{result="aborted"} 2' in text
    assert 'outcome="cancelled"} 3' in text


def test_a_restarted_worker_reads_cancellations_back_and_redis_keeps_them(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    cancel_topic = _cancel_topic(stack, topics)
    early, late = f"{unique_name}-early", f"{unique_name}-late"
    # Cancelled before any worker ran: a worker starting reads the control topic back (cancelRetention).
    _cancel(stack, cancel_topic, early)
    produce(stack, topics.requests, [json.dumps(envelope("early", request_id=early)).encode()])
    stream_extra = {"cancelURL": f"kafka://{cancel_topic}"}
    with Pipeline(make_config(stack, topics, stream_extra=stream_extra)):
        responses = read_until(stack, topics.responses, lambda r: early in _by_id(r), timeout=30)
    assert _by_id(responses)[early][-1]["status_code"] == 499
    assert mock_calls(stack, early) == 0

    # A worker that remembers nothing (1 ms of retention) still does not run a cancelled request
    # again: the cancelled result in Redis is final, like a done one.
    short = {**stream_extra, "cancelRetention": "1ms"}
    with Pipeline(make_config(stack, topics, stream_extra=short)) as pipeline:
        produce(stack, topics.requests, [json.dumps(envelope("early", request_id=early)).encode()])
        produce(stack, topics.requests, [json.dumps(envelope("late", request_id=late)).encode()])
        responses = read_until(stack, topics.responses, lambda r: late in _by_id(r), timeout=30)
        stats = pipeline.stats()
    answered = _by_id(responses)
    assert [r["status_code"] for r in answered[early]] == [499, 499]
    assert answered[late][-1]["status_code"] == 200
    assert mock_calls(stack, early) == 0
    assert stats.get("cancels", {}) == {}, "nothing was read back with 1 ms of retention"


def test_a_missing_control_topic_fails_the_start_naming_the_key(stack: StackInfo, unique_name: str) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    config = make_config(stack, topics, stream_extra={"cancelURL": f"kafka://{unique_name}-nope"})
    pipeline = Pipeline(config)
    with pytest.raises(ConfigError) as error:
        pipeline.start()
    assert str(error.value) == (
        "invalid configuration: messaging.streams[0].cancelURL: "
        f'the topic "{unique_name}-nope" does not exist (create it first)'
    )
    pipeline.close()
