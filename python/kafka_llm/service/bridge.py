"""The service's side of Kafka: one producer and one response reader per service process.

Threads and ownership: :class:`KafkaBridge` owns two threads, started by ``start()`` and joined by
``close()``. The delivery thread polls the core's producer for delivery reports (GIL released while
it waits) and resolves the asyncio futures of ``produce()``. The response thread reads every
partition of the response topics and hands the records of requests someone waits for to their
:class:`ResponseSubscription` on the event loop (``loop.call_soon_threadsafe``).

Why no consumer group: every service process must see every response, because the process that
produced a request is the one holding the HTTP connection waiting for it. A group would split
the partitions between processes. So the reader assigns all partitions itself, starting at each
partition's end offset asked of the broker at start-up (explicit offsets: a response produced after
``start()`` returns is never skipped), and commits nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from kafka_llm import _core
from kafka_llm.config import Config
from kafka_llm.errors import KafkaError

__all__ = ["KafkaBridge", "NotProduced", "ProduceUncertain", "ResponseSubscription"]

Headers = list[tuple[str, bytes]]

_POLL_MS = 100
logger = logging.getLogger("kafka_llm.service")
_MAX_BATCH = 1000
#: How long produce() waits past the producer's message timeout for the delivery report that
#: librdkafka owes (its timeout scan runs about once a second).
_REPORT_SLACK_SECONDS = 5.0


class NotProduced(KafkaError):
    """The record is certainly not on the broker (never enqueued, or failed before any broker
    could have written it): producing it again is safe."""


class ProduceUncertain(KafkaError):
    """The record failed after it was sent, or its delivery report did not come: it may be on the
    broker, and a worker may answer it."""


def _end_offset(consumer: _core.Consumer, topic: str, partition: int, timeout: float = 15.0) -> int:
    """The partition's end offset, asked of its leader. Retries while the cluster settles (a topic
    just created answers "not leader" for a moment); raises KafkaError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.query_watermark_offsets(topic, partition, 5_000)[1]
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class ResponseSubscription:
    """The response records of one request id, in order, as they arrive. Token stream frames seen
    twice (a worker re-publishing after a crash) are dropped by their ``seq``."""

    def __init__(self, bridge: KafkaBridge, request_id: str) -> None:
        self.request_id = request_id
        self._bridge = bridge
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._next_seq = 0

    def _deliver(self, message: dict[str, Any]) -> None:
        self._queue.put_nowait(message)

    async def next(self, timeout: float) -> dict[str, Any]:
        """The next response envelope or stream frame; raises TimeoutError after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self._queue.get()
                seq = message.get("seq")
                if isinstance(seq, int) and "chunk" in message:
                    if seq < self._next_seq:
                        continue
                    self._next_seq = seq + 1
                return message

    def close(self) -> None:
        self._bridge._unsubscribe(self)

    def __enter__(self) -> ResponseSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class KafkaBridge:
    """Produces request envelopes and routes responses back to waiting requests."""

    def __init__(
        self, config: Config, loop: asyncio.AbstractEventLoop, produce_timeout: float = 10.0
    ) -> None:
        self._config = config
        self._loop = loop
        self._properties = dict(config.kafka)
        self.produce_timeout = produce_timeout
        self._response_topics = sorted({s.responses_topic for s in config.streams})
        self._producer: _core.DeliveryProducer | None = None
        self._consumer: _core.Consumer | None = None
        self._deliveries: dict[int, asyncio.Future[tuple[str | None, str]]] = {}
        self._subscriptions: dict[str, list[ResponseSubscription]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.assignment: list[tuple[str, int, int]] = []
        self.last_error: str | None = None

    # --- lifecycle (blocking: call from a worker thread, not the event loop) -------------------

    def start(self) -> None:
        """Connects, positions the response reader at the end of every response partition and
        starts both threads. Raises KafkaError when the broker or a response topic is missing."""
        consumer_props = {
            **self._properties,
            "client.id": "kafka-llm-api-responses",
            "enable.partition.eof": "false",
            "fetch.wait.max.ms": "50",
            # librdkafka's assign() needs a group id; this one never joins (no subscribe) and never
            # commits, so it is unique per process and leaves nothing on the broker.
            "group.id": f"kafka-llm-api-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        }
        consumer = _core.Consumer(consumer_props)
        try:
            assignment: list[tuple[str, int, int]] = []
            for topic in self._response_topics:
                count = _core.partition_count(self._properties, topic, 10_000)
                deadline = time.monotonic() + 5
                while count <= 0 and time.monotonic() < deadline:  # a topic just created elsewhere
                    time.sleep(0.2)
                    count = _core.partition_count(self._properties, topic, 10_000)
                if count <= 0:
                    raise KafkaError(
                        f"response topic {topic!r} does not exist: create it (kafka-llm's request, "
                        "response and DLQ topics) before starting the service"
                    )
                for partition in range(count):
                    assignment.append((topic, partition, _end_offset(consumer, topic, partition)))
            cancel_topic = self._config.streams[0].cancel_topic
            if cancel_topic and _core.partition_count(self._properties, cancel_topic, 10_000) <= 0:
                logger.warning(
                    "the control topic %r (messaging.streams[0].cancelURL) does not exist: cancelling "
                    "requests (DELETE /result/{request_id}, clients leaving streams) fails until it "
                    "is created",
                    cancel_topic,
                )
            consumer.assign(assignment)
            # librdkafka gives up on a record (and reports it) after message.timeout.ms: the same
            # bound as produce() waits, so a request the client was told failed is never written
            # later, and every record gets its delivery report while someone still waits for it.
            producer_props = {
                k: v
                for k, v in self._properties.items()
                if k not in ("message.timeout.ms", "delivery.timeout.ms")
            }
            producer = _core.DeliveryProducer(
                {
                    "enable.idempotence": "true",
                    "linger.ms": "0",
                    **producer_props,
                    "client.id": "kafka-llm-api",
                    "message.timeout.ms": str(max(int(self.produce_timeout * 1000), 1)),
                }
            )
        except BaseException:
            consumer.close()
            raise
        self._consumer, self._producer, self.assignment = consumer, producer, assignment
        self._threads = [
            threading.Thread(target=self._deliveries_loop, name="kafka-llm-api-deliveries", daemon=True),
            threading.Thread(target=self._responses_loop, name="kafka-llm-api-responses", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def close(self, flush_timeout: float = 10.0) -> None:
        """Stops both threads, waits for outstanding deliveries (up to ``flush_timeout``) and
        closes the clients. Idempotent."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []
        if self._producer is not None:
            reports = self._producer.flush(int(flush_timeout * 1000))
            self._loop.call_soon_threadsafe(self._resolve, reports)
            self._producer = None
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    # --- producing ------------------------------------------------------------------------------

    async def produce(self, topic: str, value: bytes, key: str | bytes, headers: Headers) -> None:
        """Enqueues a record and waits for its delivery report (the producer's message timeout is
        ``produce_timeout``). Raises NotProduced when the record is certainly not on the broker,
        ProduceUncertain when it failed after it may have been written (or no report came)."""
        producer = self._producer
        if producer is None:
            raise NotProduced("the service is not connected to Kafka")
        timeout = self.produce_timeout
        deadline = time.monotonic() + timeout
        while True:
            try:
                delivery_id = producer.produce(topic, value, key, headers)
                break
            except KafkaError as e:
                # A full local queue is backpressure, not failure: wait (never blocking the loop).
                if "Queue full" not in str(e) or time.monotonic() > deadline:
                    raise NotProduced(f"the request could not be queued for Kafka: {e}") from None
                await asyncio.sleep(0.005)
        future: asyncio.Future[tuple[str | None, str]] = self._loop.create_future()
        self._deliveries[delivery_id] = future
        try:
            async with asyncio.timeout(timeout + _REPORT_SLACK_SECONDS):
                error, persistence = await future
        except TimeoutError:
            raise ProduceUncertain(f"no delivery report from Kafka within {timeout:g} s") from None
        finally:
            self._deliveries.pop(delivery_id, None)
        if error is None or persistence == "persisted":
            return
        if persistence == "not_persisted":
            raise NotProduced(f"the request was not written to Kafka: {error}")
        raise ProduceUncertain(f"the request may or may not have been written to Kafka: {error}")

    def _resolve(self, reports: list[tuple[int, str | None, str]]) -> None:
        for delivery_id, error, persistence in reports:
            future = self._deliveries.pop(delivery_id, None)
            if future is not None and not future.done():
                future.set_result((error, persistence))

    def _deliveries_loop(self) -> None:
        producer = self._producer
        assert producer is not None
        while not self._stop.is_set():
            reports = producer.poll(_POLL_MS)  # the GIL is released while it waits
            if reports:
                self._loop.call_soon_threadsafe(self._resolve, reports)

    # --- responses ------------------------------------------------------------------------------

    def subscribe(self, request_id: str) -> ResponseSubscription:
        """Collects the responses of ``request_id`` from now on, until the subscription's
        ``close()`` (call on the event loop, before producing the request).
        Several subscriptions may follow one id (a retried call joining its first attempt)."""
        subscription = ResponseSubscription(self, request_id)
        self._subscriptions.setdefault(request_id, []).append(subscription)
        return subscription

    def _unsubscribe(self, subscription: ResponseSubscription) -> None:
        subscriptions = self._subscriptions.get(subscription.request_id)
        if subscriptions is None:
            return
        with contextlib.suppress(ValueError):
            subscriptions.remove(subscription)
        if not subscriptions:
            del self._subscriptions[subscription.request_id]

    @property
    def waiting(self) -> int:
        return len(self._subscriptions)

    def _dispatch(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        for request_id, message in batch:
            for subscription in self._subscriptions.get(request_id, ()):
                subscription._deliver(message)

    def _responses_loop(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while not self._stop.is_set():
            record = consumer.poll(_POLL_MS)  # the GIL is released while it waits
            batch: list[tuple[str, dict[str, Any]]] = []
            seen = 0
            while record is not None:
                if isinstance(record, _core.ErrorEvent):
                    # librdkafka recovers by itself (reconnects, waits for the topic).
                    logger.warning("response consumer: %s: %s", record.name, record.reason)
                else:
                    self._collect(record, batch)
                seen += 1
                record = consumer.poll(0) if seen < _MAX_BATCH else None
            if batch:
                self._loop.call_soon_threadsafe(self._dispatch, batch)

    def _collect(self, record: _core.Record, batch: list[tuple[str, dict[str, Any]]]) -> None:
        key = record.key
        if key is None:
            return
        request_id = key.decode("utf-8", "replace")
        # Membership only (atomic under the GIL): responses for other processes are skipped unparsed.
        if request_id not in self._subscriptions:
            return
        try:
            message = json.loads(record.value)
        except ValueError:
            return
        if isinstance(message, dict):
            batch.append((request_id, message))

    # --- health ---------------------------------------------------------------------------------

    def check(self, timeout: float = 2.0) -> Mapping[str, Any]:
        """Asks the broker for one response partition's offsets (blocking: run in a thread)."""
        consumer = self._consumer
        if consumer is None or not self.assignment:
            raise KafkaError("not connected")
        topic, partition, _ = self.assignment[0]
        consumer.query_watermark_offsets(topic, partition, int(timeout * 1000))
        return {"response_partitions": len(self.assignment), "waiting": self.waiting}
