"""OpenAI Batch JSONL through Kafka (``kafka_llm.batch``, ``kafka-llm batch``) on the real stack."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli
from pipeline_helpers import make_config, make_topics, mock_calls, write_worker_config

from kafka_llm import Pipeline
from kafka_llm import kafka as k
from kafka_llm.batch import BatchInputError, run_batch
from kafka_llm.devstack import StackInfo


def _chat(custom_id: str, content: str, **mock: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "mock-model", "messages": [{"role": "user", "content": content}]}
    if mock:
        body["mock"] = mock
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _count(stack: StackInfo, topic: str) -> int:
    with k.admin(stack.bootstrap_servers) as admin:
        return sum(admin.watermarks(topic, p)[1] for p in range(admin.partition_count(topic)))


def test_mixed_endpoints_come_back_in_input_order_with_per_line_errors(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    topics = make_topics(stack, unique_name, partitions=3)
    lines = [
        # Earlier lines answer later (longer mock latency), so arrival order differs from input order.
        _chat("chat-slow", "first line", latency_ms=600),
        {"custom_id": "completion", "method": "POST", "url": "/v1/completions",
         "body": {"model": "mock-model", "prompt": "second line", "mock": {"latency_ms": 300}}},
        {"custom_id": "embedding", "method": "POST", "url": "/v1/embeddings",
         "body": {"model": "mock-model", "input": "third line"}},
        _chat("not-found", "fourth line", fault="404"),
        _chat("bad-request", "fifth line", fault="400"),
        _chat("chat-fast", "sixth line"),
    ]  # fmt: skip
    source = _write(tmp_path / "in.jsonl", lines)
    target = tmp_path / "out.jsonl"
    report = run_batch(
        make_config(stack, topics), source, target, with_worker=True, timeout=60, progress=False
    )

    assert (report.total, report.completed, report.failed, report.expired) == (6, 4, 2, 0)
    out = _read(target)
    assert [line["custom_id"] for line in out] == [line["custom_id"] for line in lines]
    assert len({line["id"] for line in out}) == 6 and all(line["id"].startswith("batch_req_") for line in out)
    by_id = {line["custom_id"]: line for line in out}
    for custom_id in ("chat-slow", "completion", "embedding", "chat-fast"):
        assert by_id[custom_id]["error"] is None and by_id[custom_id]["response"]["status_code"] == 200
        assert by_id[custom_id]["response"]["request_id"] == f"{report.batch_id}:{custom_id}"
    assert by_id["chat-slow"]["response"]["body"]["choices"][0]["message"]["content"].startswith(
        "mock reply: first line"
    )
    assert by_id["completion"]["response"]["body"]["choices"][0]["text"].startswith("mock reply: second line")
    assert by_id["embedding"]["response"]["body"]["object"] == "list"
    assert len(by_id["embedding"]["response"]["body"]["data"][0]["embedding"]) > 0
    # A request the provider refused is a per-line error as OpenAI writes it: the status and the
    # error body in `response`, `error` null.
    assert by_id["not-found"]["error"] is None
    assert by_id["not-found"]["response"]["status_code"] == 404
    assert by_id["not-found"]["response"]["body"]["error"]["code"] == "not_found"
    assert by_id["bad-request"]["response"]["status_code"] == 400

    # Re-running the batch under the same id re-publishes the stored results: no new provider calls.
    again = run_batch(
        make_config(stack, topics),
        source,
        tmp_path / "again.jsonl",
        with_worker=True,
        timeout=60,
        progress=False,
        batch_id=report.batch_id,
    )
    assert (again.completed, again.failed) == (4, 2)
    assert _read(tmp_path / "again.jsonl") == out
    assert mock_calls(stack, f"{report.batch_id}:chat-fast") == 1


def test_a_malformed_input_names_every_bad_line_and_sends_nothing(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    source = _write(
        tmp_path / "in.jsonl",
        [
            _chat("ok", "fine"),
            "{not json",
            {"method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}},
            {**_chat("get", "x"), "method": "GET"},
            {**_chat("images", "x"), "url": "/v1/images/generations"},
            _chat("ok", "duplicate"),
            {"custom_id": "no-model", "method": "POST", "url": "/v1/completions", "body": {"prompt": "x"}},
            {**_chat("streamed", "x"), "body": {"model": "m", "messages": [], "stream": True}},
            "",
            {**_chat("extra", "x"), "priority": 1},
        ],
    )
    with pytest.raises(BatchInputError) as raised:
        run_batch(
            make_config(stack, topics), source, tmp_path / "out.jsonl", with_worker=True, progress=False
        )
    message = str(raised.value)
    assert "8 invalid line(s), nothing was sent" in message
    assert [n for n, _ in raised.value.errors] == [2, 3, 4, 5, 6, 7, 8, 10]
    for expected in (
        "line 2: not valid JSON",
        "line 3: custom_id: is required",
        "line 4: method: must be POST, got 'GET'",
        "line 5: url: must be one of /v1/chat/completions, /v1/completions, /v1/embeddings, got "
        "'/v1/images/generations'",
        "line 6: custom_id 'ok' is already used on line 1",
        "line 7: body.model: is required",
        "line 8: body.stream: streaming is not supported in a batch",
        "line 10: unknown key 'priority'",
    ):
        assert expected in message
    assert isinstance(raised.value, ValueError)
    assert _count(stack, topics.requests) == 0
    assert not (tmp_path / "out.jsonl").exists()
    with pytest.raises(BatchInputError, match="has no requests"):
        run_batch(make_config(stack, topics), _write(tmp_path / "empty.jsonl", [""]), tmp_path / "o.jsonl")


def test_with_a_separate_worker_and_a_timeout_unanswered_requests_expire(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    topics = make_topics(stack, unique_name, partitions=2)
    config = make_config(stack, topics)
    source = _write(tmp_path / "in.jsonl", [_chat(f"r{i}", f"line {i}") for i in range(5)])
    # A worker of the stream runs elsewhere (here: in a `with` block), not inside run_batch.
    with Pipeline(config):
        report = run_batch(config, source, tmp_path / "out.jsonl", timeout=60, progress=False)
    assert (report.completed, report.expired) == (5, 0)
    assert [line["custom_id"] for line in _read(tmp_path / "out.jsonl")] == [f"r{i}" for i in range(5)]

    # No worker: every request is produced, none is answered before the timeout.
    expired = run_batch(config, source, tmp_path / "expired.jsonl", timeout=1.0, progress=False)
    assert (expired.total, expired.completed, expired.expired) == (5, 0, 5)
    for line in _read(tmp_path / "expired.jsonl"):
        assert line["response"] is None
        assert line["error"]["code"] == "batch_expired" and "1 s" in line["error"]["message"]
    assert _count(stack, topics.requests) == 10


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=120)


def test_cli_runs_a_batch_with_an_in_process_worker(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    shown = _cli("batch", "--help")
    assert shown.returncode == 0
    for option in ("--config", "--with-worker", "--timeout", "--batch-id"):
        assert option in shown.stdout

    topics = make_topics(stack, unique_name, partitions=2)
    config = write_worker_config(tmp_path / "worker.yaml", stack, topics)
    source = _write(tmp_path / "in.jsonl", [_chat(f"c{i}", f"cli {i}") for i in range(4)])
    done = _cli("batch", str(source), str(tmp_path / "out.jsonl"), "--config", str(config), "--with-worker",
                "--timeout", "60s")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "4 request(s), 4 completed, 0 failed, 0 expired" in done.stderr
    assert "batch [" in done.stderr  # the progress bar
    out = _read(tmp_path / "out.jsonl")
    assert [line["custom_id"] for line in out] == ["c0", "c1", "c2", "c3"]
    assert all(line["response"]["status_code"] == 200 for line in out)

    bad = _write(tmp_path / "bad.jsonl", [_chat("x", "y"), {"custom_id": "x"}])
    refused = _cli("batch", str(bad), str(tmp_path / "bad-out.jsonl"), "--config", str(config))
    assert refused.returncode == 2 and "line 2: method: must be POST, got None" in refused.stderr
    missing = _cli("batch", str(tmp_path / "nope.jsonl"), str(tmp_path / "o.jsonl"), "--config", str(config))
    assert missing.returncode == 2 and "nope.jsonl: No such file or directory" in missing.stderr
