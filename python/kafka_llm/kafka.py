"""Kafka helpers over the core's own librdkafka client: topics, a blocking producer and consumer
for tools, tests and notebooks (the pipeline itself never blocks).

Every client is a context manager (``with k.producer(...) as p:``); ``close()`` is idempotent and
any call after it raises KafkaError. ``Consumer.poll()`` returns a Record, an ErrorEvent (a
non-fatal error librdkafka recovers from by itself) or None, and raises KafkaError on a fatal
error; ``Consumer.consume()`` returns records only and logs the error events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping

from kafka_llm._core import (
    AdminClient,
    Consumer,
    DeliveryProducer,
    ErrorEvent,
    GroupDescription,
    GroupMember,
    Producer,
    Record,
    TransactionalProducer,
)
from kafka_llm._core import create_topics as _create_topics
from kafka_llm._core import partition_count as _partition_count

__all__ = [
    "AdminClient",
    "Consumer",
    "DeliveryProducer",
    "ErrorEvent",
    "GroupDescription",
    "GroupMember",
    "Producer",
    "Record",
    "TransactionalProducer",
    "admin",
    "consumer",
    "create_topics",
    "partition_count",
    "producer",
    "reader",
]


def _props(bootstrap_servers: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    props = {"bootstrap.servers": bootstrap_servers}
    props.update(extra or {})
    return props


def create_topics(
    bootstrap_servers: str,
    topics: Iterable[str] | Mapping[str, int],
    partitions: int = 3,
    timeout: float = 30.0,
    config: Mapping[str, str] | None = None,
    properties: Mapping[str, str] | None = None,
    replication_factor: int = 1,
) -> None:
    """Creates topics (a list, or a mapping of name to partition count) and waits until every
    partition has a leader. Existing topics are left as they are. ``replication_factor`` -1 takes
    the broker's ``default.replication.factor``."""
    spec = list(topics.items()) if isinstance(topics, Mapping) else [(t, partitions) for t in topics]
    _create_topics(
        _props(bootstrap_servers, properties),
        spec,
        int(timeout * 1000),
        dict(config or {}),
        replication_factor,
    )


def partition_count(bootstrap_servers: str, topic: str, properties: Mapping[str, str] | None = None) -> int:
    """The topic's partition count, or -1 when it does not exist."""
    return _partition_count(_props(bootstrap_servers, properties), topic)


def producer(bootstrap_servers: str, properties: Mapping[str, str] | None = None) -> Producer:
    return Producer(_props(bootstrap_servers, properties))


def consumer(
    bootstrap_servers: str,
    topics: Iterable[str],
    group: str,
    from_beginning: bool = True,
    properties: Mapping[str, str] | None = None,
) -> Consumer:
    """A group consumer with manual commits (auto-commit is always off in the core)."""
    props = _props(bootstrap_servers, properties)
    props.setdefault("group.id", group)
    props.setdefault("auto.offset.reset", "earliest" if from_beginning else "latest")
    return Consumer(props, list(topics))


def reader(bootstrap_servers: str, properties: Mapping[str, str] | None = None) -> Consumer:
    """A consumer to ``assign()`` partitions to and read them (no consumer group): it gets a group id
    of its own, because librdkafka polls only with one, but it never subscribes or commits, so the
    group never appears on the broker."""
    props = _props(bootstrap_servers, properties)
    props["group.id"] = f"kafka-llm-reader-{uuid.uuid4().hex}"
    return Consumer(props)


def admin(bootstrap_servers: str, properties: Mapping[str, str] | None = None) -> AdminClient:
    """An admin client (watermarks, offsets by time, consumer groups and their committed offsets).
    Use it as a context manager, or call ``close()``."""
    return AdminClient(_props(bootstrap_servers, properties))
