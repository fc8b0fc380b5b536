"""Request deadlines on the real stack (issue 13): work nobody waits for any more is not paid for."""

from __future__ import annotations

import json
import time

from pipeline_helpers import envelope, headers, make_config, make_topics, mock_calls, read_until

from kafka_llm import Pipeline
from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo


def test_expired_requests_are_not_sent_and_retries_stop_at_the_deadline(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    now_ms = int(time.time() * 1000)
    rate_limited = {"mock": {"fault": "429", "fault_times": 10, "retry_after": 1}}
    cases: dict[str, tuple[dict[str, object], list[tuple[str, bytes]]]] = {
        # already past when produced: never sent
        "past": (envelope("a", deadline_ms=now_ms - 1000), []),
        "past-header": (envelope("b"), [("x-deadline-ms", str(now_ms - 5).encode())]),
        # the earliest of the three counts
        "earliest": (
            envelope("d", deadline_ms=now_ms + 600_000, timeout_ms=100),
            [("x-deadline-ms", str(now_ms + 600_000).encode())],
        ),
        # a deadline far enough away, and none of its own (the stream's 60 s): answered
        "in-time": (envelope("e", deadline_ms=now_ms + 600_000), []),
        "stream-default": (envelope("f"), []),
        # bad deadlines are clear errors, not stalls
        "negative": (envelope("g", timeout_ms=-3), []),
        "bad-header": (envelope("h"), [("x-deadline-ms", b"soon")]),
    }
    producer = k.producer(stack.bootstrap_servers)
    for name, (request, request_headers) in cases.items():
        value = json.dumps({**request, "request_id": f"{unique_name}-{name}"}).encode()
        producer.produce(topics.requests, value, headers=request_headers)
    assert producer.flush(30_000) == []
    # Queued in Kafka for a second before any worker runs: queue time, not provider time.
    time.sleep(1.0)
    config = make_config(
        stack,
        topics,
        retry={"maxAttempts": 10, "requestTimeout": "60s"},
        stream_extra={"deadline": "60s"},
    )
    with Pipeline(config) as pipeline:
        deadline = time.monotonic() + 30
        while not pipeline.stats()["assignment"]:
            assert time.monotonic() < deadline, "no partition assigned"
            time.sleep(0.05)
        # Produced once the worker runs: 1.5 s to live, Retry-After: 1 each time, so attempts at
        # 0 s and 1 s; the third would start at 2 s, after the deadline, and is not made.
        retrying = envelope(
            "c", request_id=f"{unique_name}-retrying", timeout_ms=1500, body_extra=rate_limited
        )
        producer.produce(topics.requests, json.dumps(retrying).encode())
        assert producer.flush(30_000) == []
        cases["retrying"] = (retrying, [])
        responses = read_until(stack, topics.responses, lambda r: len(r) >= len(cases), timeout=60)
        dead = read_until(stack, topics.dlq, lambda r: len(r) >= 5, timeout=30)
        stats = pipeline.stats()
        text = pipeline.metrics_text()

    by_id = {
        json.loads(r.value)["request_id"].removeprefix(f"{unique_name}-"): json.loads(r.value)
        for r in responses
    }
    assert sorted(by_id) == sorted(cases)
    status = {name: response["status_code"] for name, response in by_id.items()}
    assert status == {
        "past": 504, "past-header": 504, "retrying": 504, "earliest": 504,
        "in-time": 200, "stream-default": 200, "negative": 400, "bad-header": 400,
    }  # fmt: skip
    assert "deadline exceeded" in by_id["retrying"]["body"]["error"]["message"]
    assert (
        "timeout_ms must be a non-negative number of milliseconds (got -3)"
        in (by_id["negative"]["body"]["error"]["message"])
    )
    assert "header x-deadline-ms must be" in by_id["bad-header"]["body"]["error"]["message"]

    calls = {name: mock_calls(stack, f"{unique_name}-{name}") for name in cases}
    assert calls == {
        "past": 0, "past-header": 0, "retrying": 2, "earliest": 0,
        "in-time": 1, "stream-default": 1, "negative": 0, "bad-header": 0,
    }, "an expired request must not be sent, and no attempt is made after the deadline"  # fmt: skip

    classes = {
        headers(r)["x-request-id"].removeprefix(f"{unique_name}-"): headers(r)["x-error-class"] for r in dead
    }
    assert classes == {
        "past": "expired", "past-header": "expired", "retrying": "expired", "earliest": "expired",
        "negative": "poison", "bad-header": "poison",
    }  # fmt: skip
    assert stats["dlq"]["expired"] == 4

    queue = stats["latency"]["queue"]
    assert queue["count"] == 3  # the requests that reached a provider call
    assert queue["max_ms"] >= 1000, queue  # at least the second the first ones spent in Kafka
    assert stats["latency"]["provider"]["p50_ms"] < 500  # provider time is counted apart
    assert "kafka_llm_queue_seconds_count 3\n" in text
    assert 'outcome="expired"} 4' in text
