"""Dead-letter topics: inspect them and re-drive their records (``kafka-llm dlq``; the record and
its headers: ``docs/formats.md``, "Dead-letter record"; the operations: ``docs/operations.md``,
"Replay, dead letters and batch").

A dead-letter record is the failed request byte for byte (key and value) with the original
headers plus the twelve ``x-*`` headers the pipeline adds. ``model`` holds the record as the tools
read it, ``reader`` the bounded reads and the filters of ``list_records``, ``redrive`` the re-drive
and its compacted ledger ``<dlq>.redrive``.
"""

from __future__ import annotations

from kafka_llm.dlq.model import (
    DEAD_LETTER_HEADERS,
    DEAD_LETTER_TAG_HEADERS,
    ERROR_CLASSES,
    DeadLetter,
    RedriveEntry,
    RedriveReport,
    ledger_topic,
)
from kafka_llm.dlq.reader import list_records, read_record
from kafka_llm.dlq.redrive import redrive

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
