"""Per-key ordering on the real stack (issue 13, docs/guarantees.md "Per-key ordering"): records
with the same Kafka key are worked on one at a time in offset order, a retrying record holds back
only its own key, and the order survives a kill -9 of the worker."""

from __future__ import annotations

import itertools
import json
import signal
from pathlib import Path
from typing import Any

from pipeline_helpers import (
    Collector,
    all_mock_calls,
    envelope,
    make_config,
    make_topics,
    mock_calls,
    produce,
    read_until,
    start_worker,
    stop_process,
    write_worker_config,
)

from kafka_llm import Pipeline
from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo


def _in_order(records: list[k.Record]) -> list[k.Record]:
    return sorted(records, key=lambda r: (r.partition, r.offset))


def _sequences(records: list[k.Record], prefix: str) -> dict[str, list[int]]:
    """Per output key, the sequence numbers of the requests answered, in the order of the output
    topic (one partition per key, so offset order is the order a reader sees)."""
    out: dict[str, list[int]] = {}
    for r in _in_order(records):
        assert r.key is not None
        request_id = json.loads(r.value)["request_id"].removeprefix(prefix)
        _, _, seq = request_id.partition("/")
        if seq:  # keyed requests are named <key>/<seq>
            out.setdefault(r.key.decode(), []).append(int(seq))
    return out


def test_records_of_one_key_run_in_offset_order_and_a_retry_holds_back_only_its_key(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)  # every key in one request partition
    k.create_topics(stack.bootstrap_servers, [f"{unique_name}-out"], 3)
    keys, per_key = [f"k{i}" for i in range(4)], 6
    values: list[bytes] = []
    record_keys: list[bytes | None] = []
    for seq in range(per_key):
        for key in keys:
            # Later records are faster: run in parallel, a key's answers would come out reversed.
            mock: dict[str, Any] = {"latency_ms": (per_key - seq) * 40}
            if key == "k0" and seq == 0:
                mock |= {"fault": "429", "fault_times": 2, "retry_after_ms": 1500}
            request = envelope(
                f"{key}-{seq}", request_id=f"{unique_name}-{key}/{seq}", body_extra={"mock": mock}
            )
            values.append(json.dumps(request).encode())
            record_keys.append(key.encode())
    for i in range(3):  # records without a key are not ordered, and keep request-id keys
        values.append(json.dumps(envelope(f"free-{i}", request_id=f"{unique_name}-free{i}")).encode())
        record_keys.append(None)
    produce(stack, topics.requests, values, keys=record_keys)

    config = make_config(
        stack,
        topics,
        max_handlers=50,
        stream_extra={"ordering": "key", "responsesURL": f"kafka://{unique_name}-out"},
    )
    assert config.streams[0].features["ordering"] == "key"
    with Pipeline(config) as pipeline:
        responses = read_until(stack, f"{unique_name}-out", lambda r: len(r) >= len(values), timeout=60)
        stats = pipeline.stats()

    assert len(responses) == len(values)
    assert all(json.loads(r.value)["status_code"] == 200 for r in responses)
    sequences = _sequences(responses, f"{unique_name}-")
    assert sequences == {key: list(range(per_key)) for key in keys}, "each key's answers in offset order"
    free = {r.key.decode() for r in responses if b"free" in (r.key or b"")}
    assert free == {f"{unique_name}-free{i}" for i in range(3)}

    # k0's first record waited twice for Retry-After (1.5 s each); the other keys did not wait for it.
    assert mock_calls(stack, f"{unique_name}-k0/0") == 3
    finished_at = {
        json.loads(r.value)["request_id"].removeprefix(f"{unique_name}-"): r.timestamp_ms for r in responses
    }
    others_done = max(t for rid, t in finished_at.items() if rid.startswith(("k1/", "k2/", "k3/")))
    assert others_done < finished_at["k0/0"], "a retrying record held back other keys"
    assert finished_at["k0/0"] <= finished_at["k0/1"]
    assert stats["backlog"] == 0


def test_without_ordering_the_records_of_a_key_finish_in_any_order(
    stack: StackInfo, unique_name: str
) -> None:
    """The default, for contrast: the same shape of traffic without `ordering: key` is answered in
    the order the calls end, so the assertion of the test above can fail."""
    topics = make_topics(stack, unique_name, partitions=1)
    values = [
        json.dumps(
            envelope(
                f"k-{seq}",
                request_id=f"{unique_name}-k/{seq}",
                body_extra={"mock": {"latency_ms": (4 - seq) * 150}},
            )
        ).encode()
        for seq in range(4)
    ]
    produce(stack, topics.requests, values, keys=[b"k"] * 4)
    with Pipeline(make_config(stack, topics, max_handlers=50)):
        responses = read_until(stack, topics.responses, lambda r: len(r) >= 4, timeout=60)
    answered = [json.loads(r.value)["request_id"] for r in _in_order(responses)]
    assert answered == [f"{unique_name}-k/{seq}" for seq in (3, 2, 1, 0)]
    assert {r.key for r in responses} == {i.encode() for i in answered}  # keyed by request id


def test_per_key_order_survives_kill_9_of_the_worker(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    topics = make_topics(stack, unique_name, partitions=2)
    keys, per_key = [f"e{i}" for i in range(8)], 25
    config = write_worker_config(
        tmp_path / "worker.yaml", stack, topics, max_handlers=100, stream_extra={"ordering": "key"}
    )
    ids: list[str] = []
    values: list[bytes] = []
    record_keys: list[bytes | None] = []
    for seq in range(per_key):
        for key in keys:
            mock: dict[str, Any] = {"latency_ms": 30}
            if seq % 7 == 3:
                mock |= {"fault": "429", "fault_times": 1, "retry_after_ms": 100}
            request_id = f"{unique_name}-{key}/{seq}"
            ids.append(request_id)
            values.append(
                json.dumps(envelope(request_id, request_id=request_id, body_extra={"mock": mock})).encode()
            )
            record_keys.append(key.encode())
    responses = Collector(stack, topics.responses)
    worker = start_worker(config)
    try:
        produce(stack, topics.requests, values, keys=record_keys)
        responses.poll_until(lambda c: len(c.records) >= len(ids) // 3, 90, "a third of the answers")
        stop_process(worker, signal.SIGKILL)
        answered_before = len({json.loads(r.value)["request_id"] for r in responses.records})
        worker = start_worker(config)
        responses.poll_until(
            lambda c: {json.loads(r.value)["request_id"] for r in c.records} >= set(ids),
            120,
            "every answer after the restart",
        )
    finally:
        assert stop_process(worker) == 0
    assert answered_before < len(ids), "the kill came after everything was answered"

    sequences = _sequences(responses.records, f"{unique_name}-")
    assert sorted(sequences) == keys
    for key, seqs in sequences.items():
        assert seqs[0] == 0, (key, seqs)
        rewinds = 0
        for before, after in itertools.pairwise(seqs):
            if after <= before:
                rewinds += 1  # the restart went back to the committed offset, re-publishing in order
            else:
                assert after == before + 1, f"{key}: {after} answered right after {before}: {seqs}"
        assert rewinds <= 1, (key, seqs)
        assert set(seqs) == set(range(per_key)), (key, seqs)
    calls = all_mock_calls(stack)
    # A redelivered record whose result was done is re-published, not called again: at most the
    # records running at the kill (one per key) were called twice, plus the planned 429 retries.
    planned = sum(2 if int(i.rsplit("/", 1)[1]) % 7 == 3 else 1 for i in ids)
    assert sum(calls.get(i, 0) for i in ids) <= planned + len(keys)
    responses.close()
