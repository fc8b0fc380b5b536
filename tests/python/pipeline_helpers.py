"""Helpers for tests that run the pipeline on the real stack: topics, configs, readers."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from kafka_llm import Config, load_config
from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo


@dataclass(frozen=True)
class Topics:
    requests: str
    responses: str
    dlq: str
    group: str


def make_topics(stack: StackInfo, name: str, partitions: int = 3) -> Topics:
    topics = Topics(f"{name}-req", f"{name}-resp", f"{name}-dlq", f"{name}-workers")
    k.create_topics(stack.bootstrap_servers, [topics.requests, topics.responses, topics.dlq], partitions)
    return topics


def make_config(
    stack: StackInfo,
    topics: Topics,
    *,
    max_handlers: int = 200,
    providers: list[dict[str, Any]] | None = None,
    retry: Mapping[str, Any] | None = None,
    **top: Any,
) -> Config:
    document: dict[str, Any] = {
        "messaging": {
            "errorMaxBackoff": "5s",
            "streams": [
                {
                    "requestsURL": f"kafka://{topics.group}?topic={topics.requests}",
                    "responsesURL": f"kafka://{topics.responses}",
                    "dlqURL": f"kafka://{topics.dlq}",
                    "maxHandlers": max_handlers,
                }
            ],
        },
        "kafka": {"bootstrap.servers": stack.bootstrap_servers},
        "redis": {"url": stack.redis_url_with_password(), "resultTTL": "10m"},
        "providers": providers or [{"name": "mock", "baseURL": stack.provider_url}],
        "retry": {"initialBackoff": "20ms", "maxBackoff": "200ms", **(retry or {})},
        "commitInterval": "50ms",
        **top,
    }
    return load_config(document, env={})


def envelope(
    content: str, *, model: str = "mock-model", stream: bool = False, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if stream:
        body["stream"] = True
    body.update(extra.pop("body_extra", {}))
    return {"path": "/v1/chat/completions", "body": body, **extra}


def produce(
    stack: StackInfo, topic: str, values: list[bytes], keys: list[bytes | None] | None = None
) -> None:
    producer = k.producer(stack.bootstrap_servers)
    for i, value in enumerate(values):
        producer.produce(topic, value, key=keys[i] if keys else None)
    failures = producer.flush(30_000)
    assert failures == [], failures


def read_until(
    stack: StackInfo,
    topic: str,
    done: Callable[[list[k.Record]], bool],
    timeout: float = 60.0,
    group: str | None = None,
) -> list[k.Record]:
    """Every record of ``topic`` from the beginning until ``done(records)`` or the timeout."""
    consumer = k.consumer(stack.bootstrap_servers, [topic], group or f"reader-{topic}-{time.monotonic_ns()}")
    records: list[k.Record] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(records) and time.monotonic() < deadline:
            records.extend(consumer.consume(1000, 200))
    finally:
        consumer.close()
    return records


def by_key(records: list[k.Record]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        assert r.key is not None
        out.setdefault(r.key.decode(), []).append(json.loads(r.value))
    return out


def headers(record: k.Record) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def redis_client(stack: StackInfo) -> redis.Redis:
    return redis.Redis.from_url(stack.redis_url_with_password(), decode_responses=True)


def result_record(stack: StackInfo, request_id: str) -> dict[str, Any] | None:
    raw = redis_client(stack).get(f"kafka-llm:result:{request_id}")
    return None if raw is None else json.loads(raw)


def mock_calls(stack: StackInfo, request_id: str) -> int:
    with urllib.request.urlopen(f"{stack.provider_base}/stats", timeout=5) as response:
        stats = json.load(response)
    return int(stats["by_request_id"].get(request_id, 0))


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)
