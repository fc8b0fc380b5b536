"""Dead-letter tools (``kafka_llm.dlq``, ``kafka-llm dlq``) on a DLQ filled by a real worker whose
provider calls fail through the mock provider's fault injection."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import run_cli
from pipeline_helpers import (
    Topics,
    envelope,
    make_config,
    make_topics,
    mock_calls,
    read_until,
    result_record,
    wait_for,
    write_worker_config,
)

from kafka_llm import Pipeline
from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo
from kafka_llm.dlq import DEAD_LETTER_HEADERS, DeadLetter, ledger_topic, list_records, read_record, redrive
from kafka_llm.dlq.reader import read_all
from kafka_llm.errors import KafkaError

ORIGINAL_HEADERS = [
    ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("bin", b"\x00\xff"),
]


def _request(request_id: str, fault: str | None = None, times: int | None = None) -> bytes:
    mock: dict[str, object] = {}
    if fault is not None:
        mock["fault"] = fault
    if times is not None:
        mock["fault_times"] = times
    extra = {"body_extra": {"mock": mock}} if mock else {}
    return json.dumps(envelope(f"dlq {request_id}", request_id=request_id, **extra)).encode()


def _produce(stack: StackInfo, topic: str, items: list[tuple[str, bytes, int]]) -> None:
    """(key, value, partition) records, each with ORIGINAL_HEADERS."""
    producer = k.producer(stack.bootstrap_servers)
    for key, value, partition in items:
        producer.produce(topic, value, key=key, headers=ORIGINAL_HEADERS, partition=partition)
    assert producer.flush(30_000) == []


def _count(stack: StackInfo, topic: str) -> int:
    with k.admin(stack.bootstrap_servers) as admin:
        return sum(admin.watermarks(topic, p)[1] for p in range(admin.partition_count(topic)))


@dataclass(frozen=True)
class FilledDlq:
    topics: Topics
    early: list[str]  # request ids that failed before `between`
    late: list[str]  # and after it
    between: datetime
    poison_id: str


@pytest.fixture(scope="module")
def filled(stack: StackInfo) -> FilledDlq:
    """A DLQ written by a worker: two non-retryable 404s and one exhausted 503 (early), then one
    400 and one poison record (late); good requests in between are answered and not dead-lettered."""
    name = f"t-dlq-{secrets.token_hex(4)}"
    topics = make_topics(stack, name, partitions=2)
    early = [f"{name}-404a", f"{name}-404b", f"{name}-503"]
    late = [f"{name}-400"]
    with Pipeline(make_config(stack, topics, retry={"maxAttempts": 2})):
        _produce(
            stack,
            topics.requests,
            [
                (early[0], _request(early[0], "404"), 0),
                (f"{name}-ok1", _request(f"{name}-ok1"), 1),
                (early[1], _request(early[1], "404"), 1),
                (early[2], _request(early[2], "503"), 0),
            ],
        )
        wait_for(lambda: _count(stack, topics.dlq) == 3, 60, "three dead letters")
        time.sleep(0.3)
        between = datetime.now(UTC)
        time.sleep(0.3)
        _produce(
            stack,
            topics.requests,
            [
                (late[0], _request(late[0], "400"), 1),
                (f"{name}-ok2", _request(f"{name}-ok2"), 0),
                ("poison-key", b"{not json", 1),
            ],
        )
        wait_for(lambda: _count(stack, topics.dlq) == 5, 60, "five dead letters")
    poison = [r for r in read_until(stack, topics.dlq, lambda r: len(r) >= 5) if r.key == b"poison-key"]
    poison_id = dict(poison[0].headers)["x-request-id"].decode()
    return FilledDlq(topics, early, late, between, poison_id)


def test_list_reads_every_record_with_its_headers_parsed(stack: StackInfo, filled: FilledDlq) -> None:
    letters = list_records(stack.bootstrap_servers, filled.topics.dlq)
    assert len(letters) == 5
    assert [d.failed_at for d in letters] == sorted(d.failed_at for d in letters if d.failed_at)
    by_id = {d.request_id: d for d in letters}
    assert set(by_id) == {*filled.early, *filled.late, filled.poison_id}

    exhausted = by_id[filled.early[2]]
    assert exhausted.error_class == "retries_exhausted"
    assert exhausted.http_status == 503 and exhausted.attempts == 2
    assert exhausted.provider == "mock" and exhausted.model == "mock-model"
    assert exhausted.source_topic == filled.topics.requests
    assert (exhausted.source_partition, exhausted.source_offset) == (0, 1)
    assert exhausted.key == filled.early[2].encode()
    assert exhausted.value == _request(filled.early[2], "503")
    assert exhausted.original_headers == ORIGINAL_HEADERS
    assert [name for name, _ in exhausted.headers] == [n for n, _ in ORIGINAL_HEADERS] + [
        *DEAD_LETTER_HEADERS,
        "x-model-version",
        "x-prompt-hash",
    ]
    assert exhausted.first_attempt_ms is not None and exhausted.failed_at is not None
    assert exhausted.first_attempt_ms <= exhausted.failed_at.timestamp() * 1000
    assert "503" in (exhausted.error or "")
    assert not exhausted.redriven and exhausted.redrive is None

    poison = by_id[filled.poison_id]
    assert poison.error_class == "poison" and poison.attempts == 0 and poison.http_status == 400
    assert poison.first_attempt_ms is None and poison.value == b"{not json"

    row = by_id[filled.late[0]].to_row()
    assert row["error_class"] == "non_retryable" and row["http_status"] == 400
    assert row["headers"]["traceparent"] == ORIGINAL_HEADERS[0][1].decode()
    assert json.loads(row["value"])["request_id"] == filled.late[0]
    assert row["redriven"] is False and isinstance(row["failed_at"], datetime)


def test_list_filters_by_class_time_request_id_and_limit(stack: StackInfo, filled: FilledDlq) -> None:
    bs, dlq = stack.bootstrap_servers, filled.topics.dlq

    def ids(letters: list[DeadLetter]) -> set[str | None]:
        return {d.request_id for d in letters}

    assert ids(list_records(bs, dlq, error_class="non_retryable")) == {*filled.early[:2], *filled.late}
    assert ids(list_records(bs, dlq, error_class=["poison", "retries_exhausted"])) == {
        filled.poison_id,
        filled.early[2],
    }
    assert list_records(bs, dlq, error_class="timeout") == []
    assert ids(list_records(bs, dlq, since=filled.between)) == {*filled.late, filled.poison_id}
    assert ids(list_records(bs, dlq, until=filled.between)) == set(filled.early)
    assert ids(list_records(bs, dlq, since=filled.between, error_class="non_retryable")) == set(filled.late)
    assert ids(list_records(bs, dlq, request_id=filled.early[1])) == {filled.early[1]}
    assert list_records(bs, dlq, request_id="no-such-request") == []
    assert len(list_records(bs, dlq, limit=2)) == 2

    # `since` seeks with the broker's time index instead of reading the partitions from the start.
    with k.admin(bs) as admin:
        everything = read_all(admin, bs, None, dlq, 30)
        late_ms = int(filled.between.timestamp() * 1000)
        from_between = read_all(admin, bs, None, dlq, 30, since_ms=late_ms)
        future = read_all(admin, bs, None, dlq, 30, since_ms=int(time.time() * 1000) + 3_600_000)
    assert len(everything) == 5 and future == []
    assert {r.timestamp_ms >= late_ms for r in from_between} == {True}
    assert len(from_between) == 2  # the late 400 and the poison record

    with pytest.raises(ValueError, match="error_class: unknown class 'timeouts'"):
        list_records(bs, dlq, error_class="timeouts")
    with pytest.raises(ValueError, match=r"since .* must be before until"):
        list_records(bs, dlq, since=filled.between, until=filled.between)
    with pytest.raises(KafkaError, match="topic 'no-such-dlq-topic' does not exist"):
        list_records(bs, "no-such-dlq-topic")


def test_read_record_by_partition_and_offset(stack: StackInfo, filled: FilledDlq) -> None:
    first = list_records(stack.bootstrap_servers, filled.topics.dlq)[0]
    again = read_record(stack.bootstrap_servers, filled.topics.dlq, first.partition, first.offset)
    assert again == first
    with pytest.raises(KafkaError, match=r"has offsets 0\.\.\d+, not 99"):
        read_record(stack.bootstrap_servers, filled.topics.dlq, first.partition, 99)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args)


def test_cli_list_and_show(stack: StackInfo, filled: FilledDlq, tmp_path: Path) -> None:
    for command in (
        ["dlq", "--help"],
        ["dlq", "list", "--help"],
        ["dlq", "show", "--help"],
        ["dlq", "redrive", "--help"],
    ):
        shown = _cli(*command)
        assert shown.returncode == 0 and "usage: kafka-llm dlq" in shown.stdout, shown.stderr
    config = write_worker_config(tmp_path / "worker.yaml", stack, filled.topics)

    table = _cli("dlq", "list", "--config", str(config), "--error-class", "non_retryable")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["partition", "offset", "failed_at", "class"]
    assert len(rows) == 3 and all("non_retryable" in row for row in rows)
    assert "3 record(s)" in table.stderr

    lines = _cli(
        "dlq", "list", "--bootstrap-servers", stack.bootstrap_servers, "--topic", filled.topics.dlq,
        "--since", filled.between.isoformat(), "--json",
    )  # fmt: skip
    assert lines.returncode == 0, lines.stderr
    rows_json = [json.loads(line) for line in lines.stdout.splitlines()]
    assert {row["request_id"] for row in rows_json} == {*filled.late, filled.poison_id}
    assert all(row["failed_at"].endswith("Z") for row in rows_json)

    recent = _cli("dlq", "list", "--config", str(config), "--since", "1h", "--until", "0s", "--json")
    assert recent.returncode == 0 and len(recent.stdout.splitlines()) == 5, recent.stderr

    show = _cli("dlq", "show", "--config", str(config), "--request-id", filled.early[2])
    assert show.returncode == 0, show.stderr
    assert "error_class: retries_exhausted" in show.stdout and "http_status: 503" in show.stdout
    assert "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" in show.stdout
    assert "x-source-topic: " + filled.topics.requests in show.stdout
    assert f'"request_id": "{filled.early[2]}"' in show.stdout  # the value, pretty-printed

    letter = list_records(stack.bootstrap_servers, filled.topics.dlq, request_id=filled.poison_id)[0]
    by_position = _cli(
        "dlq", "show", "--config", str(config), "--partition", str(letter.partition), "--offset",
        str(letter.offset), "--json",
    )  # fmt: skip
    assert by_position.returncode == 0, by_position.stderr
    assert json.loads(by_position.stdout)["value"] == "{not json"

    missing = _cli("dlq", "show", "--config", str(config), "--request-id", "nope")
    assert missing.returncode == 2 and "no record of request 'nope'" in missing.stderr
    both = _cli(
        "dlq", "show", "--config", str(config), "--request-id", "x", "--partition", "0", "--offset", "0"
    )
    assert both.returncode == 2 and "give either --request-id or --partition with --offset" in both.stderr
    bad_class = _cli("dlq", "list", "--config", str(config), "--error-class", "oops")
    assert bad_class.returncode == 2 and "invalid choice: 'oops'" in bad_class.stderr
    bad_time = _cli("dlq", "list", "--config", str(config), "--since", "yesterday")
    assert bad_time.returncode == 2 and "--since: must be an ISO 8601 time" in bad_time.stderr


def test_redrive_restores_the_original_records_and_they_complete_once_the_fault_is_gone(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    topics = make_topics(stack, unique_name, partitions=2)
    ids = [f"{unique_name}-{i}" for i in range(3)]
    # Each request fails on its first provider call only: "the fault is fixed" by the time of the re-drive.
    originals = [
        (request_id, _request(request_id, "400", times=1), i % 2) for i, request_id in enumerate(ids)
    ]
    config = make_config(stack, topics)
    with Pipeline(config):
        _produce(stack, topics.requests, originals)
        wait_for(lambda: _count(stack, topics.dlq) == 3, 60, "three dead letters")
    for request_id in ids:
        stored = result_record(stack, request_id)
        assert stored is not None and stored["status"] == "error" and stored["status_code"] == 400
        assert mock_calls(stack, request_id) == 1

    planned = redrive(stack.bootstrap_servers, topics.dlq, dry_run=True)
    assert planned.dry_run and len(planned.redriven) == 3 and planned.skipped == 0
    assert _count(stack, topics.requests) == 3, "a dry run produced"

    report = redrive(stack.bootstrap_servers, topics.dlq)
    assert report.failed == [] and report.skipped == 0
    assert sorted(d.request_id or "" for d in report.redriven) == ids
    copies = read_until(stack, topics.requests, lambda r: len(r) >= 6)
    by_position = {(r.partition, r.offset): r for r in copies}
    for letter in report.redriven:
        assert letter.redrive is not None and letter.redrive.to_topic == topics.requests
        copy = by_position[(letter.redrive.to_partition, letter.redrive.to_offset)]
        key, value, partition = next(o for o in originals if o[0] == letter.request_id)
        assert copy.key == key.encode() and copy.value == value
        assert copy.headers == ORIGINAL_HEADERS, "the x-* headers must be stripped, the original kept"
        assert copy.partition == partition == letter.source_partition

    # A re-driven request whose result is `error` is processed again (the claim replaces only
    # results that are not `done`), and this time the provider answers.
    with Pipeline(config):
        wait_for(
            lambda: all((result_record(stack, i) or {}).get("status") == "done" for i in ids),
            60,
            "the re-driven requests to complete",
        )
    assert all(mock_calls(stack, request_id) == 2 for request_id in ids)
    responses = read_until(stack, topics.responses, lambda r: len(r) >= 6)
    assert sorted(json.loads(r.value)["status_code"] for r in responses) == [200] * 3 + [400] * 3
    assert _count(stack, topics.dlq) == 3, "the re-driven requests failed again"

    listed = list_records(stack.bootstrap_servers, topics.dlq)
    assert all(d.redriven and d.redrive is not None for d in listed)
    assert {d.redrive.to_offset for d in listed if d.redrive} == {
        r.redrive.to_offset for r in report.redriven if r.redrive
    }
    assert _count(stack, ledger_topic(topics.dlq)) == 3

    second = redrive(stack.bootstrap_servers, topics.dlq)
    assert second.redriven == [] and second.skipped == 3
    assert _count(stack, topics.requests) == 6

    # The CLI: a dry run that includes the re-driven records, then a refusal for a missing destination.
    worker_yaml = write_worker_config(tmp_path / "worker.yaml", stack, topics)
    dry = _cli("dlq", "redrive", "--config", str(worker_yaml), "--include-redriven", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would re-drive 3 record(s)" in dry.stderr and len(dry.stdout.splitlines()) == 4
    skip = _cli("dlq", "redrive", "--config", str(worker_yaml))
    assert skip.returncode == 0 and "re-drove 0 record(s)" in skip.stderr and "skipped 3" in skip.stderr
    elsewhere = _cli(
        "dlq",
        "redrive",
        "--config",
        str(worker_yaml),
        "--include-redriven",
        "--to-topic",
        f"{unique_name}-nowhere",
    )
    assert elsewhere.returncode == 1 and f"topic '{unique_name}-nowhere'" in elsewhere.stderr
    assert _count(stack, topics.requests) == 6
