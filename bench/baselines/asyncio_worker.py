"""The benchmark's peer: a straightforward, well-written Python asyncio worker doing the pipeline's job.

It reads the same YAML configuration as ``kafka-llm worker`` and does the same work per record
(docs/formats.md and docs/guarantees.md, minus the parts a hand-written worker would typically
leave out: rate limits, circuit breaking, the idempotency claim in Redis):

- consumes the request topic with aiokafka, auto-commit off, committing every ``commitInterval``
  only up to the lowest unfinished offset of each partition (contiguous finished work);
- bounds the records in flight to ``maxHandlers`` by pausing the assigned partitions;
- calls the provider with one pooled ``httpx.AsyncClient`` (a semaphore of ``maxHandlers`` calls,
  as many keep-alive connections), retrying 408/425/429/5xx and transport errors with
  ``Retry-After`` or full-jitter exponential backoff on timers (``asyncio.sleep``);
- writes the result record (docs/formats.md, "Redis result record") with its TTL through a
  batching writer: one pipelined round trip of SETs per loop turn;
- produces the response envelope, the token frames of streamed requests and dead letters
  (docs/formats.md) with aiokafka (idempotent producer, linger 2 ms, as the core);
- a record counts as finished when its result is in Redis and its output is acknowledged.

uvloop and orjson are used when installed (they are in the ``bench`` extra). ``--stats-port``
serves ``GET /stats`` (in flight, finished, retries, rebalances, assignment) as JSON.

Run: ``python bench/baselines/asyncio_worker.py --config worker.yaml [--stats-port N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import random
import re
import signal
import ssl
import sys
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import orjson
import redis.asyncio as aioredis
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata

POOL_SHARD = 32
"""Connections per httpx client (see Worker.__init__)."""
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 529})
ENDPOINTS = frozenset({"/v1/completions", "/v1/chat/completions", "/v1/embeddings"})
_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(value: Any, default: float) -> float:
    """A Go-style duration ("30s", "500ms", "5m") or a bare number of seconds."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION.findall(str(value)))


@dataclass(frozen=True)
class Settings:
    bootstrap: str
    group: str
    requests_topic: str
    responses_topic: str
    dlq_topic: str
    max_handlers: int
    redis_url: str
    key_prefix: str
    result_ttl_ms: int
    provider: str
    base_url: str
    api_key: str
    max_attempts: int
    initial_backoff: float
    max_backoff: float
    error_max_backoff: float
    request_timeout: float
    commit_interval: float

    @classmethod
    def load(cls, path: str) -> Settings:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        messaging = doc.get("messaging", {})
        stream = messaging["streams"][0]
        requests_url = urlparse(stream["requestsURL"])
        provider = doc["providers"][0]
        retry = doc.get("retry", {})
        redis = doc.get("redis", {})
        return cls(
            bootstrap=doc["kafka"]["bootstrap.servers"],
            group=requests_url.netloc,
            requests_topic=parse_qs(requests_url.query)["topic"][0],
            responses_topic=urlparse(stream["responsesURL"]).netloc,
            dlq_topic=urlparse(stream["dlqURL"]).netloc,
            max_handlers=int(stream.get("maxHandlers", 5000)),
            redis_url=redis.get("url", "redis://127.0.0.1:6379/0"),
            key_prefix=redis.get("keyPrefix", "kafka-llm"),
            result_ttl_ms=int(seconds(redis.get("resultTTL"), 300.0) * 1000),
            provider=provider["name"],
            base_url=provider["baseURL"].rstrip("/"),
            api_key=provider.get("apiKey", ""),
            max_attempts=int(retry.get("maxAttempts", 6)),
            initial_backoff=seconds(retry.get("initialBackoff"), 0.5),
            max_backoff=seconds(retry.get("maxBackoff"), 30.0),
            error_max_backoff=seconds(messaging.get("errorMaxBackoff"), 30.0),
            request_timeout=seconds(retry.get("requestTimeout"), 120.0),
            commit_interval=seconds(doc.get("commitInterval"), 0.2),
        )


class PartitionOffsets:
    """Offsets of one partition in arrival order; the committable position is the first unfinished."""

    def __init__(self) -> None:
        self.order: deque[int] = deque()
        self.finished: set[int] = set()
        self.committed = -1

    def begin(self, offset: int) -> None:
        self.order.append(offset)

    def finish(self, offset: int) -> None:
        self.finished.add(offset)

    def committable(self) -> int | None:
        position = None
        while self.order and self.order[0] in self.finished:
            offset = self.order.popleft()
            self.finished.discard(offset)
            position = offset + 1
        if position is None or position <= self.committed:
            return None
        return position


@dataclass
class Stats:
    inflight: int = 0
    requests_total: int = 0
    consumed: int = 0
    retries: int = 0
    rebalances: int = 0
    dlq: int = 0
    assignment: list[str] = field(default_factory=list)


class RedisBatcher:
    """Coalesces concurrent SETs into one pipelined round trip per loop turn."""

    def __init__(self, client: aioredis.Redis, ttl_ms: int) -> None:
        self.client = client
        self.ttl_ms = ttl_ms
        self.queue: asyncio.Queue[tuple[str, bytes, asyncio.Future[None]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    def set(self, key: str, value: bytes) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((key, value, done))
        return done

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < 1000 and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            while True:
                try:
                    pipe = self.client.pipeline(transaction=False)
                    for key, value, _ in batch:
                        pipe.set(key, value, px=self.ttl_ms)
                    await pipe.execute()
                    break
                except (aioredis.RedisError, OSError) as e:
                    print(f"asyncio-worker: redis write failed, retrying: {e}", file=sys.stderr)
                    await asyncio.sleep(0.2)
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.stats = Stats()
        self.offsets: dict[TopicPartition, PartitionOffsets] = {}
        self.paused = False
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap,
            group_id=settings.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1000,
        )
        # Batches of 256 KiB instead of 16: aiokafka keeps one request in flight per partition, so
        # the batch size bounds the response rate (with 16 KiB, sends time out under load).
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap,
            linger_ms=2,
            acks="all",
            enable_idempotence=True,
            max_batch_size=256 * 1024,
        )
        # httpcore's pool scans every connection for each queued request (O(queued x connections)),
        # which dominates the CPU profile at thousands of connections. So the connections are
        # sharded over small clients, each behind a semaphore of its pool size: no request ever
        # queues inside httpx.
        tls = ssl.create_default_context()  # one CA bundle load, not one per client
        shards = max(1, -(-settings.max_handlers // POOL_SHARD))
        per_shard = -(-settings.max_handlers // shards)
        self.shards = [
            (
                httpx.AsyncClient(
                    limits=httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard),
                    timeout=httpx.Timeout(settings.request_timeout, connect=10.0),
                    verify=tls,
                ),
                asyncio.Semaphore(per_shard),
            )
            for _ in range(shards)
        ]
        self.next_shard = 0
        self.redis = aioredis.from_url(settings.redis_url, max_connections=4)
        self.results = RedisBatcher(self.redis, settings.result_ttl_ms)
        self.headers = {"Content-Type": "application/json"}
        if settings.api_key:
            self.headers["Authorization"] = f"Bearer {settings.api_key}"

    # --- consumer group

    def listener(self) -> ConsumerRebalanceListener:
        worker = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                await worker.commit(only=set(revoked))
                for tp in revoked:
                    worker.offsets.pop(tp, None)

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                worker.stats.rebalances += 1
                for tp in assigned:
                    worker.offsets.setdefault(tp, PartitionOffsets())
                if worker.paused and assigned:
                    worker.consumer.pause(*assigned)
                worker.stats.assignment = sorted(f"{tp.topic}/{tp.partition}" for tp in worker.offsets)

        return Listener()

    async def commit(self, only: set[TopicPartition] | None = None) -> None:
        positions = {}
        for tp, tracker in self.offsets.items():
            if only is not None and tp not in only:
                continue
            position = tracker.committable()
            if position is not None:
                positions[tp] = OffsetAndMetadata(position, "")
        if not positions:
            return
        try:
            await self.consumer.commit(positions)
        except Exception as e:  # a failed commit is retried with the next position
            print(f"asyncio-worker: commit failed: {e}", file=sys.stderr)
            return
        for tp, meta in positions.items():
            if tp in self.offsets:
                self.offsets[tp].committed = meta.offset

    async def commit_loop(self) -> None:
        while not self.stopping.is_set():
            await asyncio.sleep(self.s.commit_interval)
            await self.commit()

    def update_flow(self) -> None:
        if self.stopping.is_set():
            return
        low = self.s.max_handlers - max(1, self.s.max_handlers // 10)
        if not self.paused and self.stats.inflight >= self.s.max_handlers:
            self.consumer.pause(*self.consumer.assignment())
            self.paused = True
        elif self.paused and self.stats.inflight <= low:
            self.consumer.resume(*self.consumer.assignment())
            self.paused = False

    async def consume_loop(self) -> None:
        while not self.stopping.is_set():
            batches = await self.consumer.getmany(timeout_ms=100, max_records=1000)
            for tp, records in batches.items():
                tracker = self.offsets.get(tp)
                if tracker is None:
                    continue
                for record in records:
                    tracker.begin(record.offset)
                    self.stats.consumed += 1
                    self.stats.inflight += 1
                    task = asyncio.create_task(self.handle(tp, record))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
            self.update_flow()

    # --- one record

    async def handle(self, tp: TopicPartition, record: Any) -> None:
        try:
            await self.process(record)
        except Exception as e:  # never lose the offset bookkeeping to a bug in one record
            print(f"asyncio-worker: record {tp.partition}@{record.offset} failed: {e!r}", file=sys.stderr)
        finally:
            tracker = self.offsets.get(tp)
            if tracker is not None:
                tracker.finish(record.offset)
            self.stats.inflight -= 1
            self.stats.requests_total += 1
            self.update_flow()

    async def process(self, record: Any) -> None:
        key = record.key.decode() if record.key else None
        try:
            envelope = orjson.loads(record.value)
            body = envelope["body"]
            model = body["model"]
            if not isinstance(body, dict) or not isinstance(model, str):
                raise ValueError("body.model must be a string")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            await self.dead_letter(
                record,
                key or f"{record.topic}-{record.partition}-{record.offset}",
                "poison",
                400,
                f"invalid request: {e}",
                0,
                "",
                "",
            )
            return
        request_id = envelope.get("request_id") or key or f"{record.topic}-{record.partition}-{record.offset}"
        path = envelope.get("path") or "/v1/completions"
        if not path.startswith("/"):
            path = "/" + path
        metadata = envelope.get("metadata")
        created_ms = int(time.time() * 1000)
        prompt = body.get("messages", body.get("prompt", body.get("input")))
        prompt_hash = hashlib.sha256(orjson.dumps(prompt, option=orjson.OPT_SORT_KEYS)).hexdigest()
        headers = [
            ("request_message_id", request_id.encode()),
            ("model_version", model.encode()),
            ("prompt_hash", prompt_hash.encode()),
        ]
        if path not in ENDPOINTS:
            await self.fail(
                record,
                request_id,
                metadata,
                model,
                headers,
                400,
                f"unsupported path {path}",
                0,
                0.0,
                created_ms,
                "non_retryable",
            )
            return
        stream = body.get("stream") is True
        if stream and "stream_options" not in body:
            body = {**body, "stream_options": {"include_usage": True}}
        payload = orjson.dumps(body)
        url = self.s.base_url + path[3:]
        call_headers = {**self.headers, "x-request-id": request_id}
        started = time.perf_counter()
        deadline = started + self.s.request_timeout
        attempts = 0
        while True:
            attempts += 1
            if stream:
                status, content, retry_after, error, frames = await self.call_stream(
                    url, payload, call_headers, request_id, headers
                )
            else:
                status, content, retry_after, error = await self.call(url, payload, call_headers)
                frames = 0
                if status is not None and 200 <= status < 300:
                    try:
                        parsed = orjson.loads(content)
                    except orjson.JSONDecodeError:
                        status, error = 502, "the provider's response is not JSON"
            if status is not None and 200 <= status < 300 and error is None:
                break
            retryable = frames == 0 and (status is None or status in RETRYABLE_STATUS)
            if retryable and status == 502 and error is not None and attempts > 1:
                retryable = False  # a malformed body is retried once, like the core
            if retryable and attempts < self.s.max_attempts:
                delay = (
                    min(retry_after, self.s.error_max_backoff)
                    if retry_after is not None
                    else random.uniform(
                        0, min(self.s.max_backoff, self.s.initial_backoff * 2 ** (attempts - 1))
                    )
                )
                if time.perf_counter() + delay < deadline:
                    self.stats.retries += 1
                    await asyncio.sleep(delay)
                    continue
            latency_ms = (time.perf_counter() - started) * 1000
            message = error or f"provider answered {status}"
            error_class = "retries_exhausted" if retryable else "non_retryable"
            await self.fail(
                record,
                request_id,
                metadata,
                model,
                headers,
                status or 502,
                message,
                attempts,
                latency_ms,
                created_ms,
                error_class,
                seq=frames,
                stream=stream,
            )
            return
        latency_ms = (time.perf_counter() - started) * 1000
        if stream:
            text, finish_reason, usage, frames = content
            result_body: Any = {
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": usage,
            }
            output = orjson.dumps(
                {
                    "request_id": request_id,
                    "seq": frames,
                    "done": True,
                    "status_code": 200,
                    "finish_reason": finish_reason,
                    "usage": usage,
                }
            )
        else:
            result_body = parsed
            text, usage = provider_output(result_body)
            output = orjson.dumps(
                {
                    "metadata": metadata,
                    "status_code": 200,
                    "body": orjson.Fragment(content),
                    "request_id": request_id,
                    "provider": self.s.provider,
                    "model": model,
                    "attempts": attempts,
                    "latency_ms": latency_ms,
                }
            )
        result = orjson.dumps(
            {
                "status": "done",
                "request_id": request_id,
                "provider": self.s.provider,
                "model": model,
                "output": text,
                "body": result_body if stream else orjson.Fragment(content),
                "error": None,
                "status_code": 200,
                "usage": usage,
                "attempts": attempts,
                "latency_ms": latency_ms,
                "created_ms": created_ms,
                "updated_ms": int(time.time() * 1000),
            }
        )
        await self.outputs(
            self.results.set(f"{self.s.key_prefix}:result:{request_id}", result),
            self.produce(self.s.responses_topic, output, request_id, headers),
        )

    def shard(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """The next client and its semaphore; a full one is skipped when another has room."""
        for _ in range(len(self.shards)):
            self.next_shard = (self.next_shard + 1) % len(self.shards)
            client, slots = self.shards[self.next_shard]
            if not slots.locked():
                break
        return client, slots

    async def call(
        self, url: str, payload: bytes, headers: dict[str, str]
    ) -> tuple[int | None, bytes, float | None, str | None]:
        client, slots = self.shard()
        async with slots:
            try:
                response = await client.post(url, content=payload, headers=headers)
            except httpx.HTTPError as e:
                return None, b"", None, f"{type(e).__name__}: {e}"
        return response.status_code, response.content, retry_after(response.headers), None

    async def call_stream(
        self,
        url: str,
        payload: bytes,
        headers: dict[str, str],
        request_id: str,
        out_headers: list[tuple[str, bytes]],
    ) -> tuple[int | None, Any, float | None, str | None, int]:
        """Relays each chunk as a token frame as it arrives; returns the text, finish reason and usage."""
        frames = 0
        deliveries: list[Awaitable[None]] = []
        text: list[str] = []
        finish_reason = None
        usage = None
        done = False
        client, slots = self.shard()
        async with slots:
            try:
                async with client.stream("POST", url, content=payload, headers=headers) as response:
                    if response.status_code != 200:
                        await response.aread()
                        return response.status_code, b"", retry_after(response.headers), None, 0
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            done = True
                            break
                        chunk = orjson.loads(data)
                        for choice in chunk.get("choices") or ():
                            text.append((choice.get("delta") or {}).get("content") or "")
                            finish_reason = choice.get("finish_reason") or finish_reason
                        usage = chunk.get("usage") or usage
                        frame = orjson.dumps(
                            {"request_id": request_id, "seq": frames, "chunk": orjson.Fragment(data)}
                        )
                        deliveries.append(
                            await self.producer.send(
                                self.s.responses_topic, frame, key=request_id.encode(), headers=out_headers
                            )
                        )
                        frames += 1
            except (httpx.HTTPError, orjson.JSONDecodeError) as e:
                return (None if frames == 0 else 502), b"", None, f"{type(e).__name__}: {e}", frames
        await asyncio.gather(*deliveries)
        if not done:
            return 502, b"", None, "the stream ended before [DONE]", frames
        return 200, ("".join(text), finish_reason, usage, frames), None, None, frames

    async def produce(
        self, topic: str, value: bytes, key: str | None, headers: list[tuple[str, bytes]]
    ) -> None:
        while True:
            try:
                delivery = await self.producer.send(
                    topic, value, key=key.encode() if key is not None else None, headers=headers
                )
                await delivery
                return
            except Exception as e:  # kafka errors: try again, the record stays unfinished meanwhile
                print(f"asyncio-worker: produce failed, retrying: {e}", file=sys.stderr)
                await asyncio.sleep(0.1)

    async def outputs(self, *pending: Awaitable[None]) -> None:
        await asyncio.gather(*pending)

    async def fail(
        self,
        record: Any,
        request_id: str,
        metadata: Any,
        model: str,
        headers: list[tuple[str, bytes]],
        status: int,
        message: str,
        attempts: int,
        latency_ms: float,
        created_ms: int,
        error_class: str,
        seq: int = 0,
        stream: bool = False,
    ) -> None:
        error = {"message": message, "type": "api_error", "code": f"http_{status}"}
        result = orjson.dumps(
            {
                "status": "error",
                "request_id": request_id,
                "provider": self.s.provider,
                "model": model,
                "output": None,
                "body": None,
                "error": message,
                "status_code": status,
                "usage": None,
                "attempts": attempts,
                "latency_ms": latency_ms,
                "created_ms": created_ms,
                "updated_ms": int(time.time() * 1000),
            }
        )
        if stream:
            output = orjson.dumps(
                {
                    "request_id": request_id,
                    "seq": seq,
                    "done": True,
                    "status_code": status,
                    "finish_reason": None,
                    "usage": None,
                    "error": error,
                }
            )
        else:
            output = orjson.dumps(
                {
                    "metadata": metadata,
                    "status_code": status,
                    "body": {"error": error},
                    "request_id": request_id,
                    "provider": self.s.provider,
                    "model": model,
                    "attempts": attempts,
                    "latency_ms": latency_ms,
                }
            )
        await self.outputs(
            self.results.set(f"{self.s.key_prefix}:result:{request_id}", result),
            self.produce(self.s.responses_topic, output, request_id, headers),
            self.dead_letter(
                record, request_id, error_class, status, message, attempts, self.s.provider, model
            ),
        )

    async def dead_letter(
        self,
        record: Any,
        request_id: str,
        error_class: str,
        status: int,
        message: str,
        attempts: int,
        provider: str,
        model: str,
    ) -> None:
        self.stats.dlq += 1
        headers = [
            *list(record.headers or ()),
            ("x-error-class", error_class.encode()),
            ("x-error", message.encode()),
            ("x-http-status", str(status).encode()),
            ("x-attempts", str(attempts).encode()),
            ("x-request-id", request_id.encode()),
            ("x-provider", provider.encode()),
            ("x-model", model.encode()),
            ("x-source-topic", record.topic.encode()),
            ("x-source-partition", str(record.partition).encode()),
            ("x-source-offset", str(record.offset).encode()),
            ("x-failed-at-ms", str(int(time.time() * 1000)).encode()),
        ]
        key = record.key.decode() if record.key else None
        await self.produce(self.s.dlq_topic, record.value, key, headers)

    # --- lifecycle

    async def serve_stats(self, port: int) -> asyncio.Server:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                await reader.readuntil(b"\r\n\r\n")
                body = orjson.dumps(vars(self.stats))
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
                await writer.drain()
            writer.close()

        return await asyncio.start_server(answer, "127.0.0.1", port)

    async def run(self, stats_port: int | None) -> None:
        server = await self.serve_stats(stats_port) if stats_port else None
        await self.producer.start()
        self.results.start()
        self.consumer.subscribe([self.s.requests_topic], listener=self.listener())
        await self.consumer.start()
        print(f"asyncio-worker: consuming {self.s.requests_topic} (group {self.s.group})", file=sys.stderr)
        committer = asyncio.create_task(self.commit_loop())
        consumer = asyncio.create_task(self.consume_loop())
        await self.stopping.wait()
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        deadline = time.monotonic() + 10.0
        while self.tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        committer.cancel()
        await self.commit()
        await self.consumer.stop()
        await self.producer.stop()
        for client, _ in self.shards:
            await client.aclose()
        await self.redis.aclose()
        if server is not None:
            server.close()


def provider_output(body: Any) -> tuple[str | None, Any]:
    """choices[0] message content or text, and the usage object (``output`` of the result record in
    docs/formats.md)."""
    choices = body.get("choices") if isinstance(body, dict) else None
    text = None
    if choices:
        first = choices[0]
        text = (first.get("message") or {}).get("content") or first.get("text")
    return text, body.get("usage") if isinstance(body, dict) else None


def retry_after(headers: httpx.Headers) -> float | None:
    if (ms := headers.get("retry-after-ms")) is not None:
        with contextlib.suppress(ValueError):
            return float(ms) / 1000.0
    if (value := headers.get("retry-after")) is not None:
        with contextlib.suppress(ValueError):
            return float(value)
    return None


async def main_async(args: argparse.Namespace) -> int:
    worker = Worker(Settings.load(args.config))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stopping.set)
    await worker.run(args.stats_port)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", "-c", required=True, help="the kafka-llm worker YAML file")
    parser.add_argument("--stats-port", type=int, help="serve GET /stats on 127.0.0.1:PORT")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_async(args))
    return uvloop.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
