"""The dead-letter record as the tools read it: the ``x-*`` headers the pipeline adds, the error
classes, a parsed record (``DeadLetter``), and the entries of the re-drive ledger.

The ledger is the compacted topic ``<dlq>.redrive``, keyed ``<partition>:<offset>`` of the
dead-letter record, with a JSON value ``{"request_id", "to_topic", "to_partition", "to_offset",
"at_ms", "host"}`` (``docs/formats.md``, "Re-drive ledger").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka_llm import kafka as k

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
    "expired",
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


def ledger_topic(dlq_topic: str) -> str:
    """The compacted topic recording the re-drives of ``dlq_topic``."""
    return dlq_topic + _LEDGER_SUFFIX


def ledger_key(partition: int, offset: int) -> str:
    """The ledger's key for the dead-letter record at ``partition``/``offset`` of its topic."""
    return f"{partition}:{offset}"


def from_ms(ms: int) -> datetime:
    """An aware UTC datetime from milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True)
class RedriveEntry:
    """Where a dead-letter record was re-driven to, from the ledger."""

    request_id: str | None
    to_topic: str
    to_partition: int
    to_offset: int
    at: datetime
    host: str

    @classmethod
    def from_ledger(cls, value: Any) -> RedriveEntry | None:
        """The entry a ledger record's decoded JSON value describes; None when it is not one."""
        if not isinstance(value, dict):
            return None
        try:
            return cls(
                request_id=value.get("request_id"),
                to_topic=str(value["to_topic"]),
                to_partition=int(value["to_partition"]),
                to_offset=int(value["to_offset"]),
                at=from_ms(int(value["at_ms"])),
                host=str(value.get("host", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None


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
            timestamp=from_ms(record.timestamp_ms),
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
            failed_at=from_ms(failed_at_ms) if failed_at_ms is not None else None,
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

    @property
    def redriven_to(self) -> str | None:
        """``topic[partition]@offset`` it was re-driven to (from the ledger), None if it was not."""
        if self.redrive is None:
            return None
        return f"{self.redrive.to_topic}[{self.redrive.to_partition}]@{self.redrive.to_offset}"

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
            "redriven_to": self.redriven_to,
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
