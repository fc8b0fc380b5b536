"""Lag an autoscaler can trust (issue 13, docs/operations.md "Scaling on lag"): the worker's
``kafka_llm_consumer_lag`` is the brokers' view (high watermark minus the group's committed offset),
and the records the worker holds are exported apart (``inflight``, ``backlog``)."""

from __future__ import annotations

import json
import time

from pipeline_helpers import (
    committed_total,
    envelope,
    make_config,
    make_topics,
    produce,
    read_until,
    wait_for,
)

from kafka_llm import Pipeline
from kafka_llm.devstack import StackInfo


def _lag(pipeline: Pipeline, topic: str) -> int | None:
    lags = pipeline.stats()["consumer_lag"]
    return lags.get(f"{topic}/0")


def test_consumer_lag_is_what_the_brokers_have_committed_and_held_records_are_counted_apart(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    n, window = 20, 10
    produce(
        stack,
        topics.requests,
        [
            json.dumps(
                envelope(str(i), request_id=f"{unique_name}-{i}", body_extra={"mock": {"latency_ms": 1500}})
            ).encode()
            for i in range(n)
        ],
    )
    # Commits only every 60 s (and at stop): what the worker finished is not committed yet, so the
    # brokers' lag stays at n even once every record is answered.
    config = make_config(stack, topics, max_handlers=window, commitInterval="60s", lagInterval="100ms")
    with Pipeline(config) as pipeline:
        wait_for(lambda: pipeline.stats()["inflight"] == window, 30, "a full window")
        stats = pipeline.stats()
        assert stats["backlog"] == n - window, stats["backlog"]
        wait_for(lambda: _lag(pipeline, topics.requests) == n, 10, "the lag of the uncommitted records")
        assert "kafka_llm_backlog 10\n" in pipeline.metrics_text()

        responses = read_until(stack, topics.responses, lambda r: len(r) >= n, timeout=60)
        assert len(responses) == n
        wait_for(lambda: pipeline.stats()["inflight"] == 0, 10, "an empty window")
        time.sleep(0.5)  # several probe intervals: the lag is the committed one, not the finished one
        assert _lag(pipeline, topics.requests) == n
        assert committed_total(stack, topics, 1) == 0
        text = pipeline.metrics_text()
        assert f'kafka_llm_consumer_lag{{topic="{topics.requests}",partition="0"}} {n}\n' in text
        assert "kafka_llm_backlog 0\n" in text
    # stop() commits what was finished
    assert committed_total(stack, topics, 1) == n
