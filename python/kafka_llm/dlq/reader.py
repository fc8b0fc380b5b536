"""Bounded reads of a dead-letter topic and of its re-drive ledger, and the filters of
``list_records``.

Reading is bounded: every partition from its beginning (or, with a ``since`` filter, from the
broker's time index) to the high watermark seen at the start, through an assigned consumer that
never joins or commits for a consumer group.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kafka_llm import kafka as k
from kafka_llm.dlq.model import ERROR_CLASSES, DeadLetter, RedriveEntry, ledger_key, ledger_topic
from kafka_llm.errors import KafkaError

__all__ = [
    "DEFAULT_TIMEOUT",
    "check_limit",
    "list_records",
    "read_all",
    "read_ledger",
    "read_record",
    "select",
]

#: Seconds a call may take to read what it needs, unless told otherwise.
DEFAULT_TIMEOUT = 60.0
# A dead letter is written after its failure, so its record timestamp is not before
# x-failed-at-ms; the margin covers a producer whose clock differs from the failing worker's.
_SINCE_MARGIN_MS = 5 * 60 * 1000


def _aware(moment: datetime) -> datetime:
    # A naive datetime is local time, as datetime.timestamp() reads it.
    return moment if moment.tzinfo is not None else moment.astimezone()


def read_all(
    admin: k.AdminClient,
    bootstrap_servers: str,
    kafka_config: Mapping[str, str] | None,
    topic: str,
    timeout: float,
    since_ms: int | None = None,
) -> list[k.Record]:
    """Every record of ``topic`` from each partition's beginning up to its high watermark at the
    start; with ``since_ms``, from the first record whose timestamp is at or after it (the broker's
    time index: the rest of the partition is not read). Raises KafkaError if the topic does not
    exist or the read does not finish in time."""
    timeout_ms = max(1, int(timeout * 1000))
    count = admin.partition_count(topic, timeout_ms)
    if count < 0:
        raise KafkaError(f"topic {topic!r} does not exist")
    bounds = {p: admin.watermarks(topic, p, timeout_ms) for p in range(count)}
    if since_ms is not None:
        found = admin.offsets_for_times([(topic, p, since_ms) for p in bounds], timeout_ms)
        for _, p, offset in found:
            low, end = bounds[p]
            bounds[p] = (end if offset < 0 else max(low, min(offset, end)), end)
    pending = {p: high for p, (low, high) in bounds.items() if high > low}
    if not pending:
        return []
    consumer = k.reader(bootstrap_servers, kafka_config)
    records: list[k.Record] = []
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([(topic, p, bounds[p][0]) for p in pending])
        left = sum(high - bounds[p][0] for p, high in pending.items())
        while pending:
            if time.monotonic() >= deadline:
                where = ", ".join(
                    f"{topic}[{p}] (high watermark {high})" for p, high in sorted(pending.items())
                )
                raise KafkaError(f"reading {topic!r} did not reach the end of {where} within {timeout:g} s")
            for record in consumer.consume(max(1, min(left, 5000)), 200):
                high = pending.get(record.partition)
                if high is None or record.offset >= high:
                    continue  # written after the read started
                records.append(record)
                left -= 1
                if record.offset >= high - 1:
                    del pending[record.partition]
            if pending:
                # Gaps (compaction, transaction markers) can end a partition before high - 1.
                for _, p, position in consumer.position([(topic, p) for p in pending]):
                    if position >= pending[p]:
                        del pending[p]
    finally:
        consumer.close()
    records.sort(key=lambda r: (r.partition, r.offset))
    return records


def read_ledger(
    admin: k.AdminClient,
    bootstrap_servers: str,
    kafka_config: Mapping[str, str] | None,
    dlq_topic: str,
    timeout: float,
) -> dict[str, RedriveEntry]:
    """The ledger's latest entry per ``<partition>:<offset>`` key (none when it does not exist)."""
    topic = ledger_topic(dlq_topic)
    if admin.partition_count(topic, max(1, int(timeout * 1000))) < 0:
        return {}
    values: dict[str, Any] = {}
    for record in read_all(admin, bootstrap_servers, kafka_config, topic, timeout):
        if record.key is None:
            continue
        key = record.key.decode("utf-8", errors="replace")
        if not record.value:
            values.pop(key, None)  # a tombstone forgets the re-drive
            continue
        try:
            values[key] = json.loads(record.value)
        except ValueError:
            continue
    entries = {key: RedriveEntry.from_ledger(value) for key, value in values.items()}
    return {key: entry for key, entry in entries.items() if entry is not None}


def _error_classes(error_class: str | Iterable[str] | None) -> set[str] | None:
    if error_class is None:
        return None
    wanted = {error_class} if isinstance(error_class, str) else set(error_class)
    unknown = sorted(wanted - set(ERROR_CLASSES))
    if unknown:
        raise ValueError(f"error_class: unknown class {unknown[0]!r} (known: {', '.join(ERROR_CLASSES)})")
    return wanted


def check_limit(limit: int | None) -> None:
    """Raises ValueError for a negative ``limit``."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit: must not be negative, got {limit}")


def select(
    bootstrap_servers: str,
    topic: str,
    error_class: str | Iterable[str] | None,
    since: datetime | None,
    until: datetime | None,
    request_id: str | None,
    kafka_config: Mapping[str, str] | None,
    timeout: float,
) -> list[DeadLetter]:
    """The records of ``topic`` that match the filters (see ``list_records``), marked with their
    ledger entries, oldest failure first."""
    classes = _error_classes(error_class)
    since_aware = _aware(since) if since is not None else None
    until_aware = _aware(until) if until is not None else None
    if since_aware is not None and until_aware is not None and since_aware >= until_aware:
        raise ValueError(f"since ({since}) must be before until ({until})")
    start_ms = int(since_aware.timestamp() * 1000) - _SINCE_MARGIN_MS if since_aware is not None else None
    with k.admin(bootstrap_servers, kafka_config) as admin:
        records = read_all(admin, bootstrap_servers, kafka_config, topic, timeout, since_ms=start_ms)
        ledger = read_ledger(admin, bootstrap_servers, kafka_config, topic, timeout) if records else {}
    out: list[DeadLetter] = []
    for record in records:
        letter = DeadLetter.from_record(record, ledger.get(ledger_key(record.partition, record.offset)))
        if classes is not None and letter.error_class not in classes:
            continue
        if request_id is not None and letter.request_id != request_id:
            continue
        moment = letter.failed_or_written_at
        if since_aware is not None and moment < since_aware:
            continue
        if until_aware is not None and moment >= until_aware:
            continue
        out.append(letter)
    out.sort(key=lambda d: (d.failed_or_written_at, d.partition, d.offset))
    return out


def list_records(
    bootstrap_servers: str,
    topic: str,
    *,
    error_class: str | Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    request_id: str | None = None,
    limit: int | None = None,
    kafka_config: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[DeadLetter]:
    """The dead-letter records of ``topic`` that match every filter given, oldest failure first.

    ``error_class`` is one class or several (see ERROR_CLASSES); ``since`` (inclusive) and ``until``
    (exclusive) compare with the failure time (``x-failed-at-ms``, else the record's timestamp); a
    naive datetime is local time. ``request_id`` matches ``x-request-id``. ``limit`` keeps the first
    N matches. The topic is read from the beginning to its end at the call (no consumer group, no
    commits); ``timeout`` bounds the read. Raises ValueError for bad filters and KafkaError when the
    topic does not exist or cannot be read.
    """
    check_limit(limit)
    letters = select(bootstrap_servers, topic, error_class, since, until, request_id, kafka_config, timeout)
    return letters if limit is None else letters[:limit]


def read_record(
    bootstrap_servers: str,
    topic: str,
    partition: int,
    offset: int,
    *,
    kafka_config: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> DeadLetter:
    """The dead-letter record at ``topic[partition]@offset``. Raises KafkaError when there is none."""
    with k.admin(bootstrap_servers, kafka_config) as admin:
        timeout_ms = max(1, int(timeout * 1000))
        count = admin.partition_count(topic, timeout_ms)
        if count < 0:
            raise KafkaError(f"topic {topic!r} does not exist")
        if not 0 <= partition < count:
            raise KafkaError(f"topic {topic!r} has partitions 0..{count - 1}, not {partition}")
        low, high = admin.watermarks(topic, partition, timeout_ms)
        if not low <= offset < high:
            raise KafkaError(f"{topic}[{partition}] has offsets {low}..{high - 1}, not {offset}")
        consumer = k.reader(bootstrap_servers, kafka_config)
        found: k.Record | None = None
        try:
            consumer.assign([(topic, partition, offset)])
            deadline = time.monotonic() + timeout
            while found is None and time.monotonic() < deadline:
                record = consumer.poll(200)
                if isinstance(record, k.Record) and record.partition == partition and record.offset >= offset:
                    found = record
        finally:
            consumer.close()
        if found is None or found.offset != offset:
            raise KafkaError(f"{topic}[{partition}]@{offset} could not be read (compacted away?)")
        ledger = read_ledger(admin, bootstrap_servers, kafka_config, topic, timeout)
    return DeadLetter.from_record(found, ledger.get(ledger_key(partition, offset)))
