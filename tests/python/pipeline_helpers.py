"""Helpers for tests that run the pipeline on the real stack: topics, configs, readers."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
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
    stream_extra: Mapping[str, Any] | None = None,
    **top: Any,
) -> Config:
    """``stream_extra`` adds keys to the stream entry (prompt, redact, outputSchema, ...)."""
    document: dict[str, Any] = {
        "messaging": {
            "errorMaxBackoff": "5s",
            "streams": [
                {
                    "requestsURL": f"kafka://{topics.group}?topic={topics.requests}",
                    "responsesURL": f"kafka://{topics.responses}",
                    "dlqURL": f"kafka://{topics.dlq}",
                    "maxHandlers": max_handlers,
                    **(stream_extra or {}),
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
    stack: StackInfo,
    topic: str,
    values: list[bytes],
    keys: list[bytes | None] | None = None,
    spread_over: int = 0,
) -> None:
    """Produces and waits for every acknowledgement. ``spread_over=N`` puts record i on partition
    i % N (keyless records otherwise go to one partition per batch: the sticky partitioner)."""
    producer = k.producer(stack.bootstrap_servers)
    for i, value in enumerate(values):
        partition = i % spread_over if spread_over else -1
        producer.produce(topic, value, key=keys[i] if keys else None, partition=partition)
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


def write_worker_config(path: Any, stack: StackInfo, topics: Topics, **kwargs: Any) -> Any:
    """The YAML a ``kafka-llm worker`` reads, built like make_config (same keyword arguments)."""
    import yaml

    config = make_config(stack, topics, **kwargs)
    document = {
        "messaging": {
            "errorMaxBackoff": "5s",
            "streams": [
                {
                    "requestsURL": f"kafka://{s.group}?topic={s.requests_topic}",
                    "responsesURL": f"kafka://{s.responses_topic}",
                    "dlqURL": f"kafka://{s.dlq_topic}",
                    "maxHandlers": s.max_handlers,
                    **(kwargs.get("stream_extra") or {}),
                }
                for s in config.streams
            ],
        },
        "kafka": dict(config.kafka),
        "redis": {"url": config.redis_url, "resultTTL": "10m"},
        "providers": [
            {
                "name": p.name,
                "kind": p.kind,
                "baseURL": p.base_url,
                **({"apiKey": p.api_key} if p.api_key else {}),
            }
            | ({"rpm": p.rpm} if p.rpm else {})
            | ({"firstByteTimeout": f"{p.first_byte_timeout_ms}ms"})
            for p in config.providers
        ],
        "retry": {
            "maxAttempts": config.retry["max_attempts"],
            "initialBackoff": f"{config.retry['initial_backoff_ms']}ms",
            "maxBackoff": f"{config.retry['max_backoff_ms']}ms",
            "requestTimeout": f"{config.retry['request_timeout_ms']}ms",
        },
        "commitInterval": f"{config.commit_interval_ms}ms",
    }
    path.write_text(yaml.safe_dump(document))
    return path


def worker_env() -> dict[str, str]:
    """This process's environment without the variables a worker would take as configuration
    overrides (KAFKA_*, REDIS_*, provider keys), so a worker reads only its config file."""
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_", "OPENAI_", "GROQ_"))}


def start_worker(config_path: Any, **popen: Any) -> Any:
    """A ``kafka-llm worker`` process (stop it by PID); its stderr is captured to a file next to
    the config so tests can read it."""
    import subprocess
    import sys

    env = worker_env()
    log = open(f"{config_path}.{time.monotonic_ns()}.log", "w")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kafka_llm.cli",
            "worker",
            "--config",
            str(config_path),
            "--stats-interval",
            "0",
        ],
        env=env,
        stdout=log,
        stderr=log,
        **popen,
    )
    process.log_file = log  # type: ignore[attr-defined]
    return process


def stop_process(process: Any, sig: int | None = None, timeout: float = 60) -> int:
    import signal as signals

    if process.poll() is None:
        process.send_signal(signals.SIGTERM if sig is None else sig)
    code = int(process.wait(timeout))
    log = getattr(process, "log_file", None)
    if log is not None:
        log.close()
    return code


class Collector:
    """Reads a topic from the beginning in one consumer, keeping every record across calls."""

    def __init__(self, stack: StackInfo, topic: str) -> None:
        self.consumer = k.consumer(
            stack.bootstrap_servers, [topic], f"collector-{topic}-{time.monotonic_ns()}"
        )
        self.records: list[k.Record] = []

    def poll_until(self, done: Callable[[Collector], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done(self):
            assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
            self.records.extend(self.consumer.consume(2000, 200))

    def ids(self) -> set[str]:
        return {r.key.decode() for r in self.records if r.key is not None}

    def by_key(self) -> dict[str, list[dict[str, Any]]]:
        return by_key(self.records)

    def close(self) -> None:
        self.consumer.close()


def all_mock_calls(stack: StackInfo) -> dict[str, int]:
    with urllib.request.urlopen(f"{stack.provider_base}/stats", timeout=10) as response:
        stats = json.load(response)
    return {str(key): int(value) for key, value in stats["by_request_id"].items()}


def mock_request_bodies(stack: StackInfo, request_id: str) -> list[dict[str, Any]]:
    """The bodies the mock provider received for ``request_id`` (requests that carried
    ``"mock": {"record_body": true}``), oldest first."""
    url = f"{stack.provider_base}/stats?request_id={urllib.parse.quote(request_id)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        stats = json.load(response)
    return [json.loads(body) for body in stats["bodies"]]


def mock_admin(stack: StackInfo, **knobs: Any) -> None:
    request = urllib.request.Request(
        f"{stack.provider_base}/admin/config",
        data=json.dumps(knobs).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def committed_total(stack: StackInfo, topics: Topics, partitions: int) -> int:
    consumer = k.Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": topics.group})
    try:
        offsets = consumer.committed([(topics.requests, p) for p in range(partitions)], 5000)
        return sum(max(0, o) for _, _, o in offsets)
    finally:
        consumer.close()


def report_rows(path: Any) -> Iterator[dict[str, dict[str, Any]]]:
    """Body of a module-scoped ``report`` fixture: the rows the tests add, written as JSON to
    ``path`` once the module is done (the tables of the issues' closing notes come from there)."""
    rows: dict[str, dict[str, Any]] = {}
    yield rows
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
