"""Load generation (burst or paced), and observation of what comes out: the response topic and,
optionally, result writes in Redis (keyspace notifications). Every timestamp is this process's
``time.monotonic()``; a request carries its send time in ``metadata.t0`` and in ``sent``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from kafka_llm import kafka as k

PROMPT = "Say hello to the benchmark"
MAX_TOKENS = 16


def request_body(stream: bool = False) -> dict[str, Any]:
    """The body every scenario sends, and wrk too for the loopback limit."""
    body: dict[str, Any] = {
        "model": "mock-model",
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    if stream:
        body["stream"] = True
    return body


@dataclass
class Sent:
    """What was produced: request id -> (send time, partition, position in its partition)."""

    t0: dict[str, float] = field(default_factory=dict)
    position: dict[str, tuple[int, int]] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0


def produce(
    bootstrap: str,
    topic: str,
    partitions: int,
    ids: list[str],
    *,
    rate: float | None = None,
    stream: bool = False,
    linger_ms: int = 5,
) -> Sent:
    """Produces one request per id, round-robin over the partitions: all at once (``rate`` None)
    or paced at ``rate`` per second. Returns when every record is acknowledged."""
    producer = k.producer(bootstrap, {"linger.ms": str(linger_ms)})
    sent = Sent()
    body = request_body(stream)
    sent.started = time.monotonic()
    for i, request_id in enumerate(ids):
        if rate is not None:
            due = sent.started + i / rate
            ahead = due - time.monotonic()
            if ahead > 0.0005:
                time.sleep(ahead)
        t0 = time.monotonic()
        envelope = {
            "request_id": request_id,
            "metadata": {"t0": t0},
            "path": "/v1/chat/completions",
            "body": body,
        }
        partition = i % partitions
        producer.produce(topic, orjson.dumps(envelope), key=request_id, partition=partition)
        sent.t0[request_id] = t0
        sent.position[request_id] = (partition, i // partitions)
    sent.finished = time.monotonic()
    failures = producer.flush(60_000)
    if failures:
        raise RuntimeError(f"{len(failures)} requests were not produced: {failures[:3]}")
    return sent


@dataclass
class Observed:
    """Per request id: when its final output arrived, its first token frame, and what it said."""

    final_at: dict[str, float] = field(default_factory=dict)
    first_frame_at: dict[str, float] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    provider_ms: dict[str, float] = field(default_factory=dict)
    output_hop_ms: dict[str, float] = field(default_factory=dict)
    """Wall-clock read time minus the record's CreateTime (set by the worker's producer when it
    produced the output): how long the output took from the worker's produce call to the reader."""
    records: int = 0
    samples: list[tuple[float, int, float, int]] = field(default_factory=list)
    """(time, finished so far, worker CPU seconds, worker RSS bytes), one per consumer batch."""


class ResponseMonitor(threading.Thread):
    """Reads the response topic from the beginning in its own consumer group and notes when each
    request's final output (response envelope or final stream frame) and first frame arrive."""

    def __init__(
        self, bootstrap: str, topic: str, sample: Callable[[], tuple[float, int]], group: str
    ) -> None:
        super().__init__(name=f"monitor-{topic}", daemon=True)
        self.consumer = k.consumer(bootstrap, [topic], group, properties={"fetch.wait.max.ms": "10"})
        self.sample = sample
        self.observed = Observed()
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.error: BaseException | None = None

    def wait_assigned(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.consumer.assignment():
            if time.monotonic() > deadline:
                raise RuntimeError("the response monitor got no partitions")
            record = self.consumer.poll(50)
            if isinstance(record, k.Record):
                self._note(record.value, time.monotonic())

    def finished(self) -> int:
        with self.lock:
            return len(self.observed.final_at)

    def _note(self, raw: bytes, now: float, created_ms: int = -1) -> None:
        o = self.observed
        o.records += 1
        value = orjson.loads(raw)
        rid = value.get("request_id")
        if "chunk" in value:
            o.first_frame_at.setdefault(rid, now)
            return
        if rid in o.final_at:
            return  # a duplicate (redelivery): the first one counts
        o.final_at[rid] = now
        if created_ms > 0:
            o.output_hop_ms[rid] = time.time() * 1000 - created_ms
        o.status[rid] = int(value.get("status_code", 0))
        if "attempts" in value:
            o.attempts[rid] = int(value["attempts"])
            o.provider_ms[rid] = float(value.get("latency_ms") or 0.0)

    def run(self) -> None:
        o = self.observed
        last_sample = 0.0
        try:
            while not self.stop_event.is_set():
                # One record at a time, stamped as it comes out of the client (a batch call would
                # hold records back until it fills up or times out).
                record = self.consumer.poll(20)
                got = record is not None
                with self.lock:
                    while record is not None:
                        if isinstance(record, k.Record):  # else an error event librdkafka recovers from
                            self._note(record.value, time.monotonic(), record.timestamp_ms)
                        record = self.consumer.poll(0)
                    now = time.monotonic()
                    if got or now - last_sample > 0.1:
                        cpu, rss = self.sample()
                        o.samples.append((now, len(o.final_at), cpu, rss))
                        last_sample = now
        except BaseException as e:  # reported by the harness, not swallowed
            self.error = e
        finally:
            self.consumer.close()


class RedisWatcher(threading.Thread):
    """Notes the time of the last SET of each result key (keyspace notifications), i.e. when the
    final result record landed in Redis (a worker may SET a pending record first)."""

    def __init__(self, url: str, prefix: str = "kafka-llm") -> None:
        super().__init__(name="redis-watcher", daemon=True)
        self.client = redis.Redis.from_url(url)
        self.client.config_set("notify-keyspace-events", "K$")
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pattern = f"__keyspace@0__:{prefix}:result:*"
        self.channel_prefix = len(f"__keyspace@0__:{prefix}:result:")
        self.pubsub.psubscribe(self.pattern)
        self.last_set: dict[str, float] = {}
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            message = self.pubsub.get_message(timeout=0.05)
            if message is None or message["data"] != b"set":
                continue
            self.last_set[message["channel"][self.channel_prefix :].decode()] = time.monotonic()

    def close(self) -> None:
        self.stop_event.set()
        self.join(5)
        self.pubsub.close()
        self.client.config_set("notify-keyspace-events", "")
        self.client.close()
