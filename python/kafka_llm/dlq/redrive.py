"""Re-driving dead letters, and recording each re-drive in the compacted ledger ``<dlq>.redrive``.

Re-driving produces the original record unchanged (same key, value and headers, without the
``x-*`` headers) to its source topic and partition, waits for the broker's acknowledgements, and
then writes one ledger entry per delivered record. ``list_records`` reads the ledger to mark records
``redriven``, and ``redrive`` skips them unless asked not to. If the process dies between the
acknowledgement and the ledger write, a record may be re-driven twice; that is harmless because a
request whose result is ``done`` in Redis is not sent to the provider again.

A re-driven request is processed again by the workers: its result in Redis is ``error`` (not
``done``), which the pipeline's claim replaces with ``pending`` before calling the provider.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from kafka_llm import kafka as k
from kafka_llm.dlq.model import DeadLetter, RedriveEntry, RedriveReport, from_ms, ledger_key, ledger_topic
from kafka_llm.dlq.reader import DEFAULT_TIMEOUT, check_limit, select
from kafka_llm.errors import KafkaError

__all__ = ["redrive"]


def redrive(
    bootstrap_servers: str,
    topic: str,
    *,
    to_topic: str | None = None,
    error_class: str | Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    request_id: str | None = None,
    limit: int | None = None,
    include_redriven: bool = False,
    dry_run: bool = False,
    kafka_config: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> RedriveReport:
    """Re-drives the dead-letter records of ``topic`` that match the filters (as for
    ``list_records``): produces each original record unchanged (same key, value and headers, minus
    the dead-letter ``x-*`` headers) to ``to_topic`` (default: its ``x-source-topic``), on the
    partition it came from when re-driving to its source topic and that partition exists, waits for
    every acknowledgement, then writes one ledger entry per delivered record (see the module doc).

    Records re-driven before are skipped (counted in ``skipped``) unless ``include_redriven``;
    ``limit`` caps how many are re-driven. ``dry_run`` selects without producing. Destination topics
    must exist (they are never created here). Raises ValueError for bad filters or a record without
    a source topic when ``to_topic`` is not given, KafkaError when a topic is missing or the ledger
    cannot be written; records whose production failed are listed in ``failed`` (and not recorded).
    """
    check_limit(limit)
    letters = select(bootstrap_servers, topic, error_class, since, until, request_id, kafka_config, timeout)
    chosen = [d for d in letters if include_redriven or not d.redriven]
    skipped = len(letters) - len(chosen)
    if limit is not None:
        chosen = chosen[:limit]
    destinations = [_destination(letter, to_topic) for letter in chosen]
    if dry_run or not chosen:
        return RedriveReport(chosen, skipped, [], dry_run=dry_run)

    timeout_ms = max(1, int(timeout * 1000))
    counts = _prepare_topics(bootstrap_servers, kafka_config, topic, destinations, timeout_ms)
    idempotent = {**(kafka_config or {}), "enable.idempotence": "true"}
    producer = k.producer(bootstrap_servers, idempotent)
    sent: dict[int, tuple[DeadLetter, str]] = {}
    for letter, destination in zip(chosen, destinations, strict=True):
        source = letter.source_partition
        back_home = destination == letter.source_topic and source is not None and source < counts[destination]
        partition = source if back_home and source is not None else -1
        delivery = producer.produce(
            destination,
            letter.value,
            key=letter.key,
            headers=letter.original_headers,
            partition=partition,
            track=True,
        )
        sent[delivery] = (letter, destination)
    producer.flush(timeout_ms)
    redriven, failed = _record(
        bootstrap_servers, idempotent, topic, sent, producer.take_deliveries(), timeout_ms
    )
    return RedriveReport(redriven, skipped, failed)


def _destination(letter: DeadLetter, to_topic: str | None) -> str:
    destination = to_topic or letter.source_topic
    if not destination:
        raise ValueError(
            f"{letter.topic}[{letter.partition}]@{letter.offset} has no x-source-topic header; "
            "pass to_topic (--to-topic) to say where it goes"
        )
    return destination


def _prepare_topics(
    bootstrap_servers: str,
    kafka_config: Mapping[str, str] | None,
    topic: str,
    destinations: list[str],
    timeout_ms: int,
) -> dict[str, int]:
    """The partition count of each destination (KafkaError when one does not exist), after making
    sure the ledger of ``topic`` exists, so every delivered record can be recorded."""
    with k.admin(bootstrap_servers, kafka_config) as admin:
        counts: dict[str, int] = {}
        for destination in destinations:
            if destination not in counts:
                counts[destination] = admin.partition_count(destination, timeout_ms)
                if counts[destination] <= 0:
                    raise KafkaError(
                        f"topic {destination!r} (where records would be re-driven) does not exist"
                    )
        admin.create_topics([(ledger_topic(topic), 1)], timeout_ms, {"cleanup.policy": "compact"})
    return counts


def _record(
    bootstrap_servers: str,
    producer_config: Mapping[str, str],
    topic: str,
    sent: dict[int, tuple[DeadLetter, str]],
    deliveries: list[tuple[int, int, int, str | None]],
    timeout_ms: int,
) -> tuple[list[DeadLetter], list[tuple[DeadLetter, str]]]:
    """Writes a ledger entry for each delivered record; returns the re-driven records (with their
    entries) and the failed ones with the reason. Raises KafkaError when the ledger cannot be written."""
    host = socket.gethostname()
    redriven: list[DeadLetter] = []
    failed: list[tuple[DeadLetter, str]] = []
    ledger = k.producer(bootstrap_servers, producer_config)
    for delivery, partition, offset, error in sorted(deliveries):
        letter, destination = sent[delivery]
        if error is not None:
            failed.append((letter, error))
            continue
        at_ms = int(time.time() * 1000)
        entry = {
            "request_id": letter.request_id,
            "to_topic": destination,
            "to_partition": partition,
            "to_offset": offset,
            "at_ms": at_ms,
            "host": host,
        }
        ledger.produce(
            ledger_topic(topic),
            json.dumps(entry).encode(),
            key=ledger_key(letter.partition, letter.offset).encode(),
        )
        redriven.append(
            replace(
                letter,
                redriven=True,
                redrive=RedriveEntry(letter.request_id, destination, partition, offset, from_ms(at_ms), host),
            )
        )
    ledger_failures = ledger.flush(timeout_ms)
    if ledger_failures:
        raise KafkaError(
            f"re-drove {len(redriven)} record(s) but could not record it in {ledger_topic(topic)!r}: "
            f"{ledger_failures[0]} (a later redrive would re-drive them again)"
        )
    return redriven, failed
