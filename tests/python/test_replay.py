"""Replay (``kafka_llm.replay``, ``kafka-llm replay``) on the real stack: committed offsets move to
a time, an offset or a duration ago, and a worker then processes exactly the records after them."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import run_cli
from pipeline_helpers import (
    Topics,
    envelope,
    make_config,
    make_topics,
    mock_calls,
    wait_for,
    write_worker_config,
)

from kafka_llm import Pipeline
from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo
from kafka_llm.errors import GroupActiveError, KafkaError
from kafka_llm.replay import OffsetReset, reset_offsets

PARTITIONS = 2


def _produce(stack: StackInfo, topics: Topics, ids: list[str]) -> None:
    """One request per id, alternating between the partitions (explicitly, so each gets some)."""
    producer = k.producer(stack.bootstrap_servers)
    for i, request_id in enumerate(ids):
        value = json.dumps(envelope(f"replay {request_id}", request_id=request_id)).encode()
        producer.produce(topics.requests, value, key=request_id, partition=i % PARTITIONS)
    assert producer.flush(30_000) == []


def _ends(stack: StackInfo, topic: str) -> dict[int, int]:
    with k.admin(stack.bootstrap_servers) as admin:
        return {p: admin.watermarks(topic, p)[1] for p in range(admin.partition_count(topic))}


def _committed(stack: StackInfo, topics: Topics) -> dict[int, int]:
    with k.admin(stack.bootstrap_servers) as admin:
        offsets = admin.committed_offsets(topics.group, [(topics.requests, p) for p in range(PARTITIONS)])
    return {p: o for _, p, o in offsets}


def _read_from(stack: StackInfo, topic: str, start: dict[int, int]) -> list[k.Record]:
    """The records of ``topic`` between ``start`` and the current end of each partition."""
    end = _ends(stack, topic)
    todo = {p: end[p] for p in end if end[p] > start.get(p, 0)}
    records: list[k.Record] = []
    if not todo:
        return records
    consumer = k.Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": f"r-{uuid.uuid4().hex}"})
    consumer.assign([(topic, p, start.get(p, 0)) for p in todo])
    deadline = time.monotonic() + 30
    try:
        while todo:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for record in consumer.consume(1000, 100):
                if record.offset < todo.get(record.partition, -1):
                    records.append(record)
                if record.offset >= todo.get(record.partition, 0) - 1:
                    todo.pop(record.partition, None)
    finally:
        consumer.close()
    return records


def _work_until_committed(stack: StackInfo, topics: Topics) -> list[str]:
    """Runs a worker until the group's commits reach the end of the request topic; returns the
    request ids of the responses it published meanwhile."""
    responses_before = _ends(stack, topics.responses)
    end = _ends(stack, topics.requests)
    with Pipeline(make_config(stack, topics)):
        wait_for(lambda: _committed(stack, topics) == end, 60, "the worker to commit every request")
    return sorted(
        json.loads(r.value)["request_id"] for r in _read_from(stack, topics.responses, responses_before)
    )


@pytest.fixture
def processed(stack: StackInfo, unique_name: str) -> tuple[Topics, list[str], list[str], datetime]:
    """Requests ``a*`` then, 1.5 s later, ``b*``, all processed and committed by a worker; the time
    between the two."""
    topics = make_topics(stack, unique_name, partitions=PARTITIONS)
    first = [f"{unique_name}-a{i}" for i in range(4)]
    second = [f"{unique_name}-b{i}" for i in range(4)]
    _produce(stack, topics, first)
    time.sleep(0.75)
    between = datetime.now(UTC)
    time.sleep(0.75)
    _produce(stack, topics, second)
    assert _work_until_committed(stack, topics) == sorted(first + second)
    return topics, first, second, between


def test_replay_to_a_datetime_moves_the_offsets_and_a_worker_reprocesses_exactly_the_later_records(
    stack: StackInfo, processed: tuple[Topics, list[str], list[str], datetime]
) -> None:
    topics, first, second, between = processed
    resets = reset_offsets(stack.bootstrap_servers, topics.group, topics.requests, to_datetime=between)
    assert resets == [OffsetReset(topics.requests, p, 4, 2) for p in range(PARTITIONS)]
    assert _committed(stack, topics) == {0: 2, 1: 2}
    assert _work_until_committed(stack, topics) == sorted(second)
    # Their results were done: the stored responses were re-published, the provider not called again.
    assert all(mock_calls(stack, request_id) == 1 for request_id in first + second)


def test_replay_by_duration_replays_the_last_minutes_only(
    stack: StackInfo, processed: tuple[Topics, list[str], list[str], datetime]
) -> None:
    topics, _, second, between = processed
    # The cut is the moment between the two batches, 0.75 s from either: far from any record.
    resets = reset_offsets(
        stack.bootstrap_servers, topics.group, topics.requests, by_duration=datetime.now(UTC) - between
    )
    assert [(r.old_offset, r.new_offset) for r in resets] == [(4, 2), (4, 2)]
    assert _work_until_committed(stack, topics) == sorted(second)


def test_replay_to_an_offset_on_chosen_partitions_reprocesses_those_records_only(
    stack: StackInfo, processed: tuple[Topics, list[str], list[str], datetime]
) -> None:
    topics, first, second, _ = processed
    resets = reset_offsets(
        stack.bootstrap_servers, topics.group, topics.requests, to_offset=1, partitions=[1]
    )
    assert resets == [OffsetReset(topics.requests, 1, 4, 1)]
    assert _committed(stack, topics) == {0: 4, 1: 1}
    # Partition 1 holds every second request of each batch: a1, a3, then b1, b3.
    assert _work_until_committed(stack, topics) == sorted([first[3], second[1], second[3]])


def test_earliest_latest_clamping_and_dry_run(stack: StackInfo, unique_name: str) -> None:
    topics = make_topics(stack, unique_name, partitions=PARTITIONS)
    _produce(stack, topics, [f"{unique_name}-{i}" for i in range(6)])
    bs, group, topic = stack.bootstrap_servers, topics.group, topics.requests

    planned = reset_offsets(bs, group, topic, to_offset="latest", dry_run=True)
    assert planned == [OffsetReset(topic, p, None, 3) for p in range(PARTITIONS)]
    assert _committed(stack, topics) == {0: -1001, 1: -1001}, "a dry run wrote offsets"

    assert reset_offsets(bs, group, topic, to_offset="latest") == planned
    assert reset_offsets(bs, group, topic, to_offset=99) == [OffsetReset(topic, p, 3, 3) for p in range(2)]
    assert reset_offsets(bs, group, topic, to_offset="earliest") == [
        OffsetReset(topic, p, 3, 0) for p in range(PARTITIONS)
    ]
    # A time after the last record: the end; a time before the first: the beginning.
    future = datetime.now(UTC) + timedelta(hours=1)
    assert [r.new_offset for r in reset_offsets(bs, group, topic, to_datetime=future)] == [3, 3]
    assert [r.new_offset for r in reset_offsets(bs, group, topic, by_duration=timedelta(days=1))] == [0, 0]
    assert _committed(stack, topics) == {0: 0, 1: 0}


def _join(stack: StackInfo, topics: Topics, client_id: str) -> k.Consumer:
    consumer = k.consumer(
        stack.bootstrap_servers, [topics.requests], topics.group, properties={"client.id": client_id}
    )
    wait_for(
        lambda: isinstance(consumer.poll(100), k.Record) or bool(consumer.assignment()),
        30,
        "the member to get partitions",
    )
    return consumer


def test_a_group_with_an_active_member_is_refused_naming_the_member(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=PARTITIONS)
    _produce(stack, topics, [f"{unique_name}-{i}" for i in range(4)])
    member = _join(stack, topics, "replay-test-member")
    try:
        with pytest.raises(GroupActiveError) as refused:
            reset_offsets(stack.bootstrap_servers, topics.group, topics.requests, to_offset="earliest")
        assert "1 active member" in str(refused.value)
        assert "replay-test-member@" in str(refused.value)
        assert refused.value.members and refused.value.members[0].startswith("replay-test-member@")
        # allow_active waits for the group to empty; a member that stays fails it after the timeout.
        started = time.monotonic()
        with pytest.raises(GroupActiveError, match=r"after waiting [\d.]+ s .*replay-test-member"):
            reset_offsets(
                stack.bootstrap_servers,
                topics.group,
                topics.requests,
                to_offset="earliest",
                allow_active=True,
                active_timeout=1.0,
            )
        assert time.monotonic() - started >= 1.0
        # A dry run with allow_active does not wait: it shows what would be set.
        plan = reset_offsets(
            stack.bootstrap_servers,
            topics.group,
            topics.requests,
            to_offset=1,
            allow_active=True,
            dry_run=True,
        )
        assert [r.new_offset for r in plan] == [1, 1]
    finally:
        member.close()
    assert _committed(stack, topics) == {0: -1001, 1: -1001}


def test_allow_active_resets_once_the_members_have_left(stack: StackInfo, unique_name: str) -> None:
    topics = make_topics(stack, unique_name, partitions=PARTITIONS)
    _produce(stack, topics, [f"{unique_name}-{i}" for i in range(4)])
    member = _join(stack, topics, "leaving-member")
    member.commit([(topics.requests, 0, 2), (topics.requests, 1, 2)])
    leaving = threading.Timer(1.0, member.close)
    leaving.start()
    try:
        started = time.monotonic()
        resets = reset_offsets(
            stack.bootstrap_servers,
            topics.group,
            topics.requests,
            to_offset="earliest",
            allow_active=True,
            active_timeout=30,
        )
        waited = time.monotonic() - started
    finally:
        leaving.join()
    assert waited >= 0.9, "reset before the member left"
    assert resets == [OffsetReset(topics.requests, p, 2, 0) for p in range(PARTITIONS)]
    assert _committed(stack, topics) == {0: 0, 1: 0}


def test_bad_arguments_are_named(stack: StackInfo, unique_name: str) -> None:
    topics = make_topics(stack, unique_name, partitions=PARTITIONS)
    bs = stack.bootstrap_servers
    with pytest.raises(ValueError, match="exactly one of to_datetime, to_offset and by_duration"):
        reset_offsets(bs, topics.group, topics.requests)
    with pytest.raises(ValueError, match="exactly one"):
        reset_offsets(bs, topics.group, topics.requests, to_offset=0, by_duration=timedelta(minutes=1))
    with pytest.raises(ValueError, match="to_offset: must be an offset, 'earliest' or 'latest', got 'first'"):
        reset_offsets(bs, topics.group, topics.requests, to_offset="first")
    with pytest.raises(ValueError, match="by_duration: must be positive"):
        reset_offsets(bs, topics.group, topics.requests, by_duration=timedelta(0))
    with pytest.raises(ValueError, match=r"partitions: topic .* has partitions 0\.\.1, not \[5\]"):
        reset_offsets(bs, topics.group, topics.requests, to_offset=0, partitions=[0, 5])
    with pytest.raises(KafkaError, match=f"topic '{unique_name}-absent' does not exist"):
        reset_offsets(bs, topics.group, f"{unique_name}-absent", to_offset=0)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=env or None)


def test_cli_help_dry_run_reset_and_refusal(stack: StackInfo, unique_name: str, tmp_path: Path) -> None:
    help_text = _cli("replay", "--help")
    assert help_text.returncode == 0
    for option in (
        "--to-datetime",
        "--to-offset",
        "--by-duration",
        "--allow-active",
        "--dry-run",
        "--partitions",
    ):
        assert option in help_text.stdout
    assert "active members" in help_text.stdout

    topics = make_topics(stack, unique_name, partitions=PARTITIONS)
    _produce(stack, topics, [f"{unique_name}-{i}" for i in range(6)])
    config = write_worker_config(tmp_path / "worker.yaml", stack, topics)
    # The group and topic come from the config's first stream.
    dry = _cli("replay", "--config", str(config), "--to-offset", "latest", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0].split() == ["partition", "old", "new"]
    assert [line.split() for line in lines[1:3]] == [["0", "-", "3"], ["1", "-", "3"]]
    assert "would set" in dry.stdout

    done = _cli(
        "replay",
        "--bootstrap-servers",
        stack.bootstrap_servers,
        "--group",
        topics.group,
        "--topic",
        topics.requests,
        "--to-offset",
        "2",
        "--partitions",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert [line.split() for line in done.stdout.splitlines()[1:2]] == [["1", "-", "2"]]
    assert _committed(stack, topics) == {0: -1001, 1: 2}

    member = _join(stack, topics, "cli-member")
    try:
        refused = _cli("replay", "--config", str(config), "--by-duration", "15m")
    finally:
        member.close()
    assert refused.returncode == 1
    assert "kafka-llm replay: error: consumer group" in refused.stderr and "cli-member@" in refused.stderr

    bad = _cli("replay", "--config", str(config), "--by-duration", "soon")
    assert bad.returncode == 2 and "--by-duration: must be a duration like 15m" in bad.stderr


def test_replay_under_a_new_prompt_version_calls_the_provider_again_and_the_same_version_does_not(
    stack: StackInfo, unique_name: str
) -> None:
    """A done result answers a replayed request only for the prompt it was made for: the same
    template version is served from Redis, a new version (another prompt hash) runs again."""
    topics = make_topics(stack, unique_name, partitions=PARTITIONS)
    ids = [f"{unique_name}-{i}" for i in range(4)]
    _produce(stack, topics, ids)

    def run(version: str) -> dict[str, dict[str, str]]:
        """Runs a worker with prompt ``version`` over the whole topic; the headers of its responses."""
        start = _ends(stack, topics.responses)
        end = _ends(stack, topics.requests)
        prompt = {"version": version, "template": f"({version}) {{{{input}}}}"}
        with Pipeline(make_config(stack, topics, stream_extra={"prompt": prompt})):
            wait_for(lambda: _committed(stack, topics) == end, 60, f"the {version} worker to commit")
        return {
            json.loads(r.value)["request_id"]: {name: value.decode() for name, value in r.headers}
            for r in _read_from(stack, topics.responses, start)
        }

    first = run("v1")
    assert sorted(first) == ids and all(mock_calls(stack, i) == 1 for i in ids)
    reset_offsets(stack.bootstrap_servers, topics.group, topics.requests, to_offset="earliest")
    same = run("v1")
    assert sorted(same) == ids
    assert all(mock_calls(stack, i) == 1 for i in ids), "the same prompt is answered from Redis"
    reset_offsets(stack.bootstrap_servers, topics.group, topics.requests, to_offset="earliest")
    second = run("v2")
    assert sorted(second) == ids
    assert all(mock_calls(stack, i) == 2 for i in ids), "a new prompt version is sent to the provider"
    for i in ids:
        assert first[i]["prompt_version"] == same[i]["prompt_version"] == "v1"
        assert second[i]["prompt_version"] == "v2"
        assert second[i]["prompt_hash"] != first[i]["prompt_hash"] == same[i]["prompt_hash"]
