"""Dead-letter topics: inspect them and re-drive their records (DESIGN 3.4 and 8, ``kafka-llm dlq``).

A dead-letter record is the failed request byte for byte (key and value) with the original
headers plus the twelve ``x-*`` headers of DESIGN 3.4. Reading is bounded: every partition from
its beginning to the high watermark seen at the start, through an assigned consumer that never
joins or commits for a consumer group.

Re-driving produces the original record unchanged (same key, value and headers, without the
``x-*`` headers) to its source topic and partition, waits for the broker's acknowledgements, and
then records what it did in a ledger: the compacted topic ``<dlq>.redrive``, keyed
``<partition>:<offset>`` of the dead-letter record, with a JSON value ``{"request_id", "to_topic",
"to_partition", "to_offset", "at_ms", "host"}``. ``list_records`` reads the ledger to mark records
``redriven``, and ``redrive`` skips them unless asked not to. If the process dies between the
acknowledgement and the ledger write, a record may be re-driven twice; that is harmless because a
request whose result is ``done`` in Redis is not sent to the provider again.

A re-driven request is processed again by the workers: its result in Redis is ``error`` (not
``done``), which the pipeline's claim replaces with ``pending`` before calling the provider.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from kafka_llm import _cli_support as cli
from kafka_llm import kafka as k
from kafka_llm.errors import KafkaError

__all__ = [
    "DEAD_LETTER_HEADERS",
    "DEAD_LETTER_TAG_HEADERS",
    "ERROR_CLASSES",
    "DeadLetter",
    "RedriveEntry",
    "RedriveReport",
    "ledger_topic",
    "list_records",
    "read_record",
    "redrive",
]

#: The headers the pipeline adds to a dead-letter record (cpp/src/format/dead_letter.cpp), in order.
DEAD_LETTER_HEADERS: tuple[str, ...] = (
    "x-error-class", "x-error", "x-http-status", "x-attempts", "x-request-id", "x-provider", "x-model",
    "x-source-topic", "x-source-partition", "x-source-offset", "x-first-attempt-ms", "x-failed-at-ms",
)  # fmt: skip

#: The values of ``x-error-class``.
ERROR_CLASSES: tuple[str, ...] = (
    "retries_exhausted",
    "non_retryable",
    "poison",
    "schema_violation",
    "timeout",
)

#: Headers added after those when they apply (kDeadLetterTagHeaderNames): the failed request's output
#: tags and, for a schema violation, the rejected model output. Re-drive strips them as well.
DEAD_LETTER_TAG_HEADERS: tuple[str, ...] = (
    "x-model-version",
    "x-prompt-hash",
    "x-prompt-version",
    "x-model-output",
    "x-model-output-truncated",
)

_DEAD_LETTER_HEADER_SET = frozenset(DEAD_LETTER_HEADERS + DEAD_LETTER_TAG_HEADERS)
_LEDGER_SUFFIX = ".redrive"
_DEFAULT_TIMEOUT = 60.0


def ledger_topic(dlq_topic: str) -> str:
    """The compacted topic recording the re-drives of ``dlq_topic``."""
    return dlq_topic + _LEDGER_SUFFIX


@dataclass(frozen=True)
class RedriveEntry:
    """Where a dead-letter record was re-driven to, from the ledger."""

    request_id: str | None
    to_topic: str
    to_partition: int
    to_offset: int
    at: datetime
    host: str


@dataclass(frozen=True)
class DeadLetter:
    """One dead-letter record and what its ``x-*`` headers say. Fields of headers that are absent
    or empty are None (a record written by something else than kafka-llm may lack them)."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    error_class: str | None
    error: str | None
    http_status: int | None
    attempts: int | None
    request_id: str | None
    provider: str | None
    model: str | None
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    first_attempt_ms: int | None
    failed_at: datetime | None
    redriven: bool = False
    redrive: RedriveEntry | None = None

    @classmethod
    def from_record(cls, record: k.Record, redrive: RedriveEntry | None = None) -> DeadLetter:
        values: dict[str, str] = {}
        for name, raw in record.headers:
            lowered = name.lower()
            if lowered in _DEAD_LETTER_HEADER_SET:
                values[lowered] = raw.decode("utf-8", errors="replace")

        def text(name: str) -> str | None:
            return values.get(name) or None

        def number(name: str) -> int | None:
            value = values.get(name, "").strip()
            try:
                return int(value) if value else None
            except ValueError:
                return None

        failed_at_ms = number("x-failed-at-ms")
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp=_from_ms(record.timestamp_ms),
            key=record.key,
            value=record.value,
            headers=list(record.headers),
            error_class=text("x-error-class"),
            error=text("x-error"),
            http_status=number("x-http-status"),
            attempts=number("x-attempts"),
            request_id=text("x-request-id"),
            provider=text("x-provider"),
            model=text("x-model"),
            source_topic=text("x-source-topic"),
            source_partition=number("x-source-partition"),
            source_offset=number("x-source-offset"),
            first_attempt_ms=number("x-first-attempt-ms"),
            failed_at=_from_ms(failed_at_ms) if failed_at_ms is not None else None,
            redriven=redrive is not None,
            redrive=redrive,
        )

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        """The failed record's own headers: every header but the dead-letter ``x-*`` ones, in order."""
        return [(name, value) for name, value in self.headers if name.lower() not in _DEAD_LETTER_HEADER_SET]

    @property
    def failed_or_written_at(self) -> datetime:
        """When it failed (``x-failed-at-ms``), else when the dead-letter record was written."""
        return self.failed_at or self.timestamp

    def to_row(self) -> dict[str, Any]:
        """A flat dict for a table (``pandas.DataFrame([d.to_row() for d in letters])``): every field,
        key and value as text (invalid UTF-8 replaced), the headers as a ``{name: text}`` dict."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "failed_at": self.failed_at,
            "error_class": self.error_class,
            "error": self.error,
            "http_status": self.http_status,
            "attempts": self.attempts,
            "request_id": self.request_id,
            "provider": self.provider,
            "model": self.model,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "first_attempt_ms": self.first_attempt_ms,
            "redriven": self.redriven,
            "redriven_to": (
                f"{self.redrive.to_topic}[{self.redrive.to_partition}]@{self.redrive.to_offset}"
                if self.redrive
                else None
            ),
            "key": self.key.decode("utf-8", errors="replace") if self.key is not None else None,
            "value": self.value.decode("utf-8", errors="replace"),
            "headers": {name: value.decode("utf-8", errors="replace") for name, value in self.headers},
        }


@dataclass
class RedriveReport:
    """What ``redrive`` did: the records it re-drove (with their ``redrive`` entries; on a dry run
    the records it would re-drive, without entries), how many matching records it skipped because
    they had been re-driven before, and the records whose production failed, with the reason."""

    redriven: list[DeadLetter]
    skipped: int
    failed: list[tuple[DeadLetter, str]]
    dry_run: bool = False


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _aware(moment: datetime) -> datetime:
    # A naive datetime is local time, as datetime.timestamp() reads it.
    return moment if moment.tzinfo is not None else moment.astimezone()


_SINCE_MARGIN_MS = 5 * 60 * 1000


def _read_all(
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


def _read_ledger(
    admin: k.AdminClient,
    bootstrap_servers: str,
    kafka_config: Mapping[str, str] | None,
    dlq_topic: str,
    timeout: float,
) -> dict[str, Any]:
    """The ledger's latest entry per ``<partition>:<offset>`` key (none when it does not exist)."""
    topic = ledger_topic(dlq_topic)
    if admin.partition_count(topic, max(1, int(timeout * 1000))) < 0:
        return {}
    entries: dict[str, Any] = {}
    for record in _read_all(admin, bootstrap_servers, kafka_config, topic, timeout):
        if record.key is None:
            continue
        key = record.key.decode("utf-8", errors="replace")
        if not record.value:
            entries.pop(key, None)  # a tombstone forgets the re-drive
            continue
        try:
            entries[key] = json.loads(record.value)
        except ValueError:
            continue
    return entries


def _entry(value: Any) -> RedriveEntry | None:
    if not isinstance(value, dict):
        return None
    try:
        return RedriveEntry(
            request_id=value.get("request_id"),
            to_topic=str(value["to_topic"]),
            to_partition=int(value["to_partition"]),
            to_offset=int(value["to_offset"]),
            at=_from_ms(int(value["at_ms"])),
            host=str(value.get("host", "")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _error_classes(error_class: str | Iterable[str] | None) -> set[str] | None:
    if error_class is None:
        return None
    wanted = {error_class} if isinstance(error_class, str) else set(error_class)
    unknown = sorted(wanted - set(ERROR_CLASSES))
    if unknown:
        raise ValueError(f"error_class: unknown class {unknown[0]!r} (known: {', '.join(ERROR_CLASSES)})")
    return wanted


def _load(
    bootstrap_servers: str,
    topic: str,
    error_class: str | Iterable[str] | None,
    since: datetime | None,
    until: datetime | None,
    request_id: str | None,
    kafka_config: Mapping[str, str] | None,
    timeout: float,
) -> list[DeadLetter]:
    classes = _error_classes(error_class)
    since_aware = _aware(since) if since is not None else None
    until_aware = _aware(until) if until is not None else None
    if since_aware is not None and until_aware is not None and since_aware >= until_aware:
        raise ValueError(f"since ({since}) must be before until ({until})")
    # A dead letter is written after its failure, so its record timestamp is not before
    # x-failed-at-ms; the margin covers a producer whose clock differs from the failing worker's.
    start_ms = int(since_aware.timestamp() * 1000) - _SINCE_MARGIN_MS if since_aware is not None else None
    with k.admin(bootstrap_servers, kafka_config) as admin:
        records = _read_all(admin, bootstrap_servers, kafka_config, topic, timeout, since_ms=start_ms)
        ledger = _read_ledger(admin, bootstrap_servers, kafka_config, topic, timeout) if records else {}
    out: list[DeadLetter] = []
    for record in records:
        letter = DeadLetter.from_record(record, _entry(ledger.get(f"{record.partition}:{record.offset}")))
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
    timeout: float = _DEFAULT_TIMEOUT,
) -> list[DeadLetter]:
    """The dead-letter records of ``topic`` that match every filter given, oldest failure first.

    ``error_class`` is one class or several (see ERROR_CLASSES); ``since`` (inclusive) and ``until``
    (exclusive) compare with the failure time (``x-failed-at-ms``, else the record's timestamp); a
    naive datetime is local time. ``request_id`` matches ``x-request-id``. ``limit`` keeps the first
    N matches. The topic is read from the beginning to its end at the call (no consumer group, no
    commits); ``timeout`` bounds the read. Raises ValueError for bad filters and KafkaError when the
    topic does not exist or cannot be read.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit: must not be negative, got {limit}")
    letters = _load(bootstrap_servers, topic, error_class, since, until, request_id, kafka_config, timeout)
    return letters if limit is None else letters[:limit]


def read_record(
    bootstrap_servers: str,
    topic: str,
    partition: int,
    offset: int,
    *,
    kafka_config: Mapping[str, str] | None = None,
    timeout: float = _DEFAULT_TIMEOUT,
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
        ledger = _read_ledger(admin, bootstrap_servers, kafka_config, topic, timeout)
    return DeadLetter.from_record(found, _entry(ledger.get(f"{partition}:{offset}")))


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
    timeout: float = _DEFAULT_TIMEOUT,
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
    if limit is not None and limit < 0:
        raise ValueError(f"limit: must not be negative, got {limit}")
    letters = _load(bootstrap_servers, topic, error_class, since, until, request_id, kafka_config, timeout)
    chosen = [d for d in letters if include_redriven or not d.redriven]
    skipped = len(letters) - len(chosen)
    if limit is not None:
        chosen = chosen[:limit]
    destinations: list[str] = []
    for letter in chosen:
        destination = to_topic or letter.source_topic
        if not destination:
            raise ValueError(
                f"{letter.topic}[{letter.partition}]@{letter.offset} has no x-source-topic header; "
                "pass to_topic (--to-topic) to say where it goes"
            )
        destinations.append(destination)
    if dry_run or not chosen:
        return RedriveReport(chosen, skipped, [], dry_run=dry_run)

    timeout_ms = max(1, int(timeout * 1000))
    with k.admin(bootstrap_servers, kafka_config) as admin:
        counts: dict[str, int] = {}
        for destination in destinations:
            if destination not in counts:
                counts[destination] = admin.partition_count(destination, timeout_ms)
                if counts[destination] <= 0:
                    raise KafkaError(
                        f"topic {destination!r} (where records would be re-driven) does not exist"
                    )
        # The ledger exists before anything is re-driven, so every delivered record can be recorded.
        admin.create_topics([(ledger_topic(topic), 1)], timeout_ms, {"cleanup.policy": "compact"})

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
    host = socket.gethostname()
    redriven: list[DeadLetter] = []
    failed: list[tuple[DeadLetter, str]] = []
    ledger = k.producer(bootstrap_servers, idempotent)
    for delivery, partition, offset, error in sorted(producer.take_deliveries()):
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
            key=f"{letter.partition}:{letter.offset}".encode(),
        )
        redriven.append(
            replace(
                letter,
                redriven=True,
                redrive=RedriveEntry(
                    letter.request_id, destination, partition, offset, _from_ms(at_ms), host
                ),
            )
        )
    ledger_failures = ledger.flush(timeout_ms)
    if ledger_failures:
        raise KafkaError(
            f"re-drove {len(redriven)} record(s) but could not record it in {ledger_topic(topic)!r}: "
            f"{ledger_failures[0]} (a later redrive would re-drive them again)"
        )
    return RedriveReport(redriven, skipped, failed)


# --- CLI ----------------------------------------------------------------------------------------


def register_cli(sub: Any) -> None:
    parser = sub.add_parser(
        "dlq",
        help="inspect and re-drive dead-letter records",
        description="Reads a dead-letter topic (from the beginning to its current end, without a consumer "
        "group) and lists, shows or re-drives its records.",
    )
    commands = parser.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "list",
        help="one line per dead-letter record",
        description="Lists dead-letter records, oldest failure first, with the filters given.",
    )
    _add_common(listing)
    _add_filters(listing)
    listing.set_defaults(func=lambda args: cli.run_command("dlq list", lambda: _run_list(args)))

    show = commands.add_parser(
        "show",
        help="one record in full: every field, the headers and the value",
        description="Prints one dead-letter record in full, found by --request-id (every record of that "
        "request) or by --partition and --offset.",
    )
    _add_common(show)
    show.add_argument("--request-id", help="the request id (x-request-id)")
    show.add_argument("--partition", type=int, help="the dead-letter record's partition (with --offset)")
    show.add_argument("--offset", type=int, help="the dead-letter record's offset (with --partition)")
    show.set_defaults(func=lambda args: cli.run_command("dlq show", lambda: _run_show(args)))

    again = commands.add_parser(
        "redrive",
        help="produce the original records again to their source topic",
        description="Produces each matching record's original key, value and headers (without the x-* "
        "headers) to its source topic and partition, waits for the acknowledgements, and records the "
        "re-drive in the compacted topic <dlq>.redrive; records re-driven before are skipped unless "
        "--include-redriven.",
    )
    _add_common(again)
    _add_filters(again)
    again.add_argument("--to-topic", help="produce here instead of each record's x-source-topic")
    again.add_argument(
        "--include-redriven", action="store_true", help="re-drive records re-driven before, too"
    )
    again.add_argument(
        "--dry-run", action="store_true", help="show what would be re-driven without producing"
    )
    again.set_defaults(func=lambda args: cli.run_command("dlq redrive", lambda: _run_redrive(args)))


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topic", "-t", help="the dead-letter topic (default: the config's first stream's dlqURL)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON (one object per line) instead of a table"
    )
    cli.add_connection_args(parser)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--error-class", action="append", choices=ERROR_CLASSES, help="only this class (repeatable)"
    )
    parser.add_argument(
        "--since",
        type=cli.time_arg("--since"),
        metavar="TIME",
        help="failed at or after: ISO 8601 (e.g. 2024-05-01T12:00:00Z) or a duration ago (e.g. 1h)",
    )
    parser.add_argument(
        "--until", type=cli.time_arg("--until"), metavar="TIME", help="failed before (same forms as --since)"
    )
    parser.add_argument("--request-id", help="only this request id (x-request-id)")
    parser.add_argument("--limit", type=int, help="at most this many records")


def _topic(args: argparse.Namespace, connection: cli.Connection) -> str:
    if args.topic:
        return str(args.topic)
    if connection.config is not None:
        return connection.config.streams[0].dlq_topic
    raise ValueError("--topic: is required (or give --config with a stream)")


def _json_row(letter: DeadLetter) -> str:
    row = letter.to_row()
    for name in ("timestamp", "failed_at"):
        row[name] = cli.format_time(row[name]) if row[name] is not None else None
    return json.dumps(row, ensure_ascii=False)


def _shorten(text: str | None, width: int) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 3] + "..."


def _print_letters(letters: list[DeadLetter], as_json: bool) -> None:
    if as_json:
        for letter in letters:
            print(_json_row(letter))
        return
    cli.print_table(
        [
            "partition",
            "offset",
            "failed_at",
            "class",
            "status",
            "attempts",
            "request_id",
            "source",
            "redriven",
            "error",
        ],
        [
            (
                d.partition,
                d.offset,
                cli.format_time(d.failed_or_written_at),
                d.error_class,
                d.http_status,
                d.attempts,
                d.request_id,
                f"{d.source_topic}[{d.source_partition}]@{d.source_offset}" if d.source_topic else None,
                "yes" if d.redriven else "no",
                _shorten(d.error, 60),
            )
            for d in letters
        ],
    )


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "error_class": args.error_class,
        "since": args.since,
        "until": args.until,
        "request_id": args.request_id,
        "limit": args.limit,
    }


def _run_list(args: argparse.Namespace) -> int:
    connection = cli.resolve_connection(args)
    topic = _topic(args, connection)
    letters = list_records(
        connection.bootstrap_servers, topic, kafka_config=connection.properties, **_filters(args)
    )
    _print_letters(letters, args.json)
    if not args.json:
        print(f"kafka-llm dlq: {len(letters)} record(s) in {topic!r}", file=sys.stderr)
    return 0


def _print_full(letter: DeadLetter) -> None:
    row = letter.to_row()
    print(f"{letter.topic}[{letter.partition}]@{letter.offset}")
    for name in (
        "timestamp", "failed_at", "error_class", "error", "http_status", "attempts", "request_id",
        "provider", "model", "source_topic", "source_partition", "source_offset", "first_attempt_ms",
        "redriven", "redriven_to", "key",
    ):  # fmt: skip
        value = row[name]
        if isinstance(value, datetime):
            value = cli.format_time(value)
        print(f"  {name}: {'-' if value is None else value}")
    print("  headers:")
    for name, value in letter.headers:
        print(f"    {name}: {value.decode('utf-8', errors='replace')}")
    print("  value:")
    try:
        text = json.dumps(json.loads(letter.value), indent=2, ensure_ascii=False)
    except ValueError:
        text = letter.value.decode("utf-8", errors="replace")
    for line in text.splitlines() or [""]:
        print(f"    {line}")


def _run_show(args: argparse.Namespace) -> int:
    connection = cli.resolve_connection(args)
    topic = _topic(args, connection)
    by_position = args.partition is not None or args.offset is not None
    if by_position and (args.partition is None or args.offset is None):
        raise ValueError("--partition and --offset go together")
    if by_position == (args.request_id is not None):
        raise ValueError("give either --request-id or --partition with --offset")
    if by_position:
        letters = [
            read_record(
                connection.bootstrap_servers,
                topic,
                args.partition,
                args.offset,
                kafka_config=connection.properties,
            )
        ]
    else:
        letters = list_records(
            connection.bootstrap_servers,
            topic,
            request_id=args.request_id,
            kafka_config=connection.properties,
        )
        if not letters:
            raise ValueError(f"--request-id: no record of request {args.request_id!r} in {topic!r}")
    for i, letter in enumerate(letters):
        if args.json:
            print(_json_row(letter))
            continue
        if i:
            print()
        _print_full(letter)
    return 0


def _run_redrive(args: argparse.Namespace) -> int:
    connection = cli.resolve_connection(args)
    topic = _topic(args, connection)
    report = redrive(
        connection.bootstrap_servers,
        topic,
        to_topic=args.to_topic,
        include_redriven=args.include_redriven,
        dry_run=args.dry_run,
        kafka_config=connection.properties,
        **_filters(args),
    )
    if args.json:
        for letter in report.redriven:
            print(_json_row(letter))
    else:
        cli.print_table(
            ["partition", "offset", "request_id", "to"],
            [
                (
                    d.partition,
                    d.offset,
                    d.request_id,
                    f"{d.redrive.to_topic}[{d.redrive.to_partition}]@{d.redrive.to_offset}"
                    if d.redrive
                    else (args.to_topic or d.source_topic),
                )
                for d in report.redriven
            ],
        )
    verb = "would re-drive" if report.dry_run else "re-drove"
    print(
        f"kafka-llm dlq: {verb} {len(report.redriven)} record(s) from {topic!r}; skipped {report.skipped} "
        f"re-driven before; {len(report.failed)} failed",
        file=sys.stderr,
    )
    for letter, error in report.failed:
        print(
            f"kafka-llm dlq: {letter.partition}:{letter.offset} ({letter.request_id}) failed: {error}",
            file=sys.stderr,
        )
    return 1 if report.failed else 0
