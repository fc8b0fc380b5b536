"""The native pipeline on the real stack: Kafka broker, Redis and the mock provider (issue 3)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pipeline_helpers import (
    by_key,
    envelope,
    headers,
    make_config,
    make_topics,
    mock_calls,
    produce,
    read_until,
    result_record,
    wait_for,
    worker_env,
)

from kafka_llm import ConfigError, Pipeline
from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo
from kafka_llm.mock_provider import binary_path

DLQ_HEADERS = [
    "x-error-class", "x-error", "x-http-status", "x-attempts", "x-request-id", "x-provider", "x-model",
    "x-source-topic", "x-source-partition", "x-source-offset", "x-first-attempt-ms", "x-failed-at-ms",
]  # fmt: skip


def test_kubeai_request_is_answered_with_its_metadata_echoed(stack: StackInfo, unique_name: str) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    kubeai = {
        "metadata": {"trace": "abc", "nested": {"n": [1, 2]}},
        "path": "/v1/completions",
        "body": {"model": "mock-model", "prompt": "Say hello"},
    }
    with Pipeline(make_config(stack, topics)):
        produce(stack, topics.requests, [json.dumps(kubeai).encode()])
        records = read_until(stack, topics.responses, lambda r: len(r) >= 1)
    assert len(records) == 1
    response = json.loads(records[0].value)
    request_id = f"{topics.requests}-0-0"  # no key, no request_id: <topic>-<partition>-<offset>
    assert response["metadata"] == kubeai["metadata"]
    assert response["status_code"] == 200
    assert response["request_id"] == request_id
    assert response["body"]["choices"][0]["text"].startswith("mock reply: Say hello")
    assert response["provider"] == "mock" and response["model"] == "mock-model" and response["attempts"] == 1
    assert headers(records[0])["request_message_id"] == request_id
    assert len(headers(records[0])["prompt_hash"]) == 64
    stored = result_record(stack, request_id)
    assert stored is not None and stored["status"] == "done"
    assert stored["output"] == response["body"]["choices"][0]["text"]
    assert stored["usage"]["completion_tokens"] > 0


def test_end_to_end_latency_counts_from_the_record_timestamp(stack: StackInfo, unique_name: str) -> None:
    """docs/operations.md (Metrics): end_to_end_seconds runs from the record's timestamp, so time
    spent waiting in Kafka (here: produced 1.5 s before any worker ran) shows up, not only the time
    after consumption."""
    topics = make_topics(stack, unique_name, partitions=1)
    produce(stack, topics.requests, [json.dumps(envelope(f"{unique_name}-{i}")).encode() for i in range(3)])
    time.sleep(1.5)
    with Pipeline(make_config(stack, topics)) as pipeline:
        read_until(stack, topics.responses, lambda r: len(r) >= 3)
        wait_for(lambda: pipeline.stats()["latency"]["end_to_end"]["count"] >= 3, 10, "three finished")
        latency = pipeline.stats()["latency"]
    assert latency["end_to_end"]["p50_ms"] >= 1500, latency
    assert latency["provider"]["p50_ms"] < 1500, latency


def test_provider_404_is_answered_with_an_error_envelope_and_dead_lettered(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    request = envelope("missing", request_id=f"{unique_name}-404", body_extra={"mock": {"fault": "404"}})
    with Pipeline(make_config(stack, topics)):
        produce(stack, topics.requests, [json.dumps(request).encode()])
        responses = read_until(stack, topics.responses, lambda r: len(r) >= 1)
        dead = read_until(stack, topics.dlq, lambda r: len(r) >= 1)
    response = json.loads(responses[0].value)
    assert response["status_code"] == 404
    assert response["body"]["error"]["code"] == "not_found"
    assert "404" in response["body"]["error"]["message"]
    assert response["attempts"] == 1
    assert headers(dead[0])["x-error-class"] == "non_retryable"
    assert mock_calls(stack, f"{unique_name}-404") == 1
    stored = result_record(stack, f"{unique_name}-404")
    assert stored is not None and stored["status"] == "error" and stored["status_code"] == 404


def test_an_unknown_provider_is_a_400_and_its_dead_letter_names_the_provider_asked_for(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    request = envelope("hi", request_id=f"{unique_name}-x", provider="sidecar")
    with Pipeline(make_config(stack, topics)):
        produce(stack, topics.requests, [json.dumps(request).encode()])
        responses = read_until(stack, topics.responses, lambda r: len(r) >= 1)
        dead = read_until(stack, topics.dlq, lambda r: len(r) >= 1)
    response = json.loads(responses[0].value)
    assert (
        response["status_code"] == 400
        and 'unknown provider "sidecar"' in response["body"]["error"]["message"]
    )
    assert headers(dead[0])["x-error-class"] == "non_retryable"
    assert headers(dead[0])["x-provider"] == "sidecar"
    assert mock_calls(stack, f"{unique_name}-x") == 0


def test_429_with_retry_after_is_retried_after_the_hint_and_then_succeeds(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    request_id = f"{unique_name}-429"
    request = envelope(
        "busy",
        request_id=request_id,
        body_extra={"mock": {"fault": "429", "fault_times": 2, "retry_after": 1}},
    )
    with Pipeline(make_config(stack, topics)) as pipeline:
        started = time.monotonic()
        produce(stack, topics.requests, [json.dumps(request).encode()])
        records = read_until(stack, topics.responses, lambda r: len(r) >= 1)
        elapsed = time.monotonic() - started
        stats = pipeline.stats()
    response = json.loads(records[0].value)
    assert response["status_code"] == 200
    assert response["attempts"] == 3
    assert mock_calls(stack, request_id) == 3
    assert elapsed >= 2.0, f"two Retry-After: 1 waits must take >= 2 s, took {elapsed:.2f} s"
    assert stats["retries"] == {"http_429": 2}


def test_the_circuit_opens_on_the_failure_ratio_and_reports_it(stack: StackInfo, unique_name: str) -> None:
    """Ten requests whose first call fails (503), the consecutive-failure rule out of reach: with
    ``failureRatio: 0.5`` over ten outcomes the breaker trips (stats and Prometheus say so) and every
    request still succeeds after the cool-down; with ``failureRatio: 0`` the same traffic never trips it."""
    circuit = {"failureThreshold": 1000, "minimumOutcomes": 10, "window": "30s", "cooldown": "200ms"}
    for ratio, tripped in ((0.5, True), (0, False)):
        topics = make_topics(stack, f"{unique_name}-{ratio}", partitions=1)
        ids = [f"{unique_name}-{ratio}-{i}" for i in range(10)]
        values = [
            json.dumps(
                envelope(i, request_id=i, body_extra={"mock": {"fault": "503", "fault_times": 1}})
            ).encode()
            for i in ids
        ]
        config = make_config(
            stack,
            topics,
            retry={"maxAttempts": 5},
            circuit={**circuit, "failureRatio": ratio, "maxCooldown": "1s"},
        )
        with Pipeline(config) as pipeline:
            produce(stack, topics.requests, values)
            records = read_until(stack, topics.responses, lambda r: len(r) >= 10)
            stats = pipeline.stats()
            text = pipeline.metrics_text()
        assert sorted(json.loads(r.value)["status_code"] for r in records) == [200] * len(ids)
        assert all(mock_calls(stack, i) == 2 for i in ids)
        trips = stats["circuits"]["mock"]["trips"]
        assert (trips >= 1) if tripped else (trips == 0), (ratio, stats["circuits"])
        assert stats["circuits"]["mock"]["state"] == "closed"  # the probes succeeded
        assert f'kafka_llm_circuit_trips_total{{provider="mock"}} {trips}' in text
        assert 'kafka_llm_circuit_open{provider="mock"} 0' in text


def test_retries_exhausted_go_to_the_dlq_with_every_header_and_the_record_unchanged(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    request_id = f"{unique_name}-503"
    value = json.dumps(
        envelope("down", request_id=request_id, body_extra={"mock": {"fault": "503"}})
    ).encode()
    producer = k.producer(stack.bootstrap_servers)
    producer.produce(topics.requests, value, key=b"the-key", headers=[("traceparent", b"00-abc-def-01")])
    assert producer.flush(30_000) == []
    with Pipeline(make_config(stack, topics, retry={"maxAttempts": 3})):
        dead = read_until(stack, topics.dlq, lambda r: len(r) >= 1)
        responses = read_until(stack, topics.responses, lambda r: len(r) >= 1)
    record = dead[0]
    assert record.value == value and record.key == b"the-key"
    h = headers(record)
    assert next(iter(h)) == "traceparent" and h["traceparent"] == "00-abc-def-01"
    # the twelve of docs/formats.md (Dead-letter record), then the failed request's output tags
    assert [name for name in h if name.startswith("x-")] == [*DLQ_HEADERS, "x-model-version", "x-prompt-hash"]
    assert h["x-error-class"] == "retries_exhausted"
    assert h["x-http-status"] == "503" and h["x-attempts"] == "3"
    assert h["x-request-id"] == request_id and h["x-provider"] == "mock" and h["x-model"] == "mock-model"
    assert h["x-source-topic"] == topics.requests and h["x-source-partition"] == "0"
    assert h["x-source-offset"] == "0"
    assert int(h["x-first-attempt-ms"]) <= int(h["x-failed-at-ms"])
    assert abs(int(h["x-failed-at-ms"]) / 1000 - time.time()) < 120
    assert json.loads(responses[0].value)["status_code"] == 503
    assert mock_calls(stack, request_id) == 3


def test_poison_records_go_to_the_dlq_at_once_without_stalling_the_records_behind(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    good = [json.dumps(envelope(f"good {i}", request_id=f"{unique_name}-g{i}")).encode() for i in range(6)]
    poison = [
        b"not json at all",
        json.dumps(
            {"path": "/v1/chat/completions", "body": {"messages": []}, "request_id": "no-model"}
        ).encode(),
        json.dumps({"path": "/v1/nope", "body": {"model": "m"}, "request_id": "bad-path"}).encode(),
        b"\xff\xfe invalid utf-8",
    ]
    values = [
        good[0],
        poison[0],
        good[1],
        poison[1],
        good[2],
        poison[2],
        good[3],
        poison[3],
        good[4],
        good[5],
    ]
    with Pipeline(make_config(stack, topics)):
        produce(stack, topics.requests, values)
        dead = read_until(stack, topics.dlq, lambda r: len(r) >= 4)
        answered = read_until(
            stack,
            topics.responses,
            lambda r: {f"{unique_name}-g{i}" for i in range(6)} <= set(by_key(r)),
        )
        wait_for(
            lambda: _committed(stack, topics) == len(values),
            15,
            "the committed offset to reach the end",
        )
    assert sorted(r.value for r in dead) == sorted(poison)
    assert {headers(r)["x-error-class"] for r in dead} == {"poison"}
    reasons = {r.value: headers(r)["x-error"] for r in dead}
    assert "body.model" in reasons[poison[1]]
    assert "/v1/nope" in reasons[poison[2]]
    assert "UTF-8" in reasons[poison[3]]
    responses = by_key(answered)
    for i in range(6):
        assert responses[f"{unique_name}-g{i}"][0]["status_code"] == 200
    # Poison records with a request id are answered with a 400 error envelope too.
    assert responses["no-model"][0]["status_code"] == 400
    assert responses["bad-path"][0]["status_code"] == 400


def _committed(stack: StackInfo, topics: Any) -> int:
    """The group's committed offset of partition 0, read without joining the group."""
    consumer = k.Consumer({"bootstrap.servers": stack.bootstrap_servers, "group.id": topics.group})
    try:
        return consumer.committed([(topics.requests, 0)], 5000)[0][2]
    finally:
        consumer.close()


def test_streamed_request_gives_ordered_token_frames_and_a_final_frame_with_usage(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    request_id = f"{unique_name}-s"
    request = envelope("stream please", request_id=request_id, stream=True, body_extra={"max_tokens": 8})
    with Pipeline(make_config(stack, topics)) as pipeline:
        produce(stack, topics.requests, [json.dumps(request).encode()])
        records = read_until(stack, topics.responses, lambda r: any(b'"done":true' in x.value for x in r))
        stats = pipeline.stats()
    frames = [json.loads(r.value) for r in records]
    assert all(r.key == request_id.encode() for r in records)
    chunks, final = frames[:-1], frames[-1]
    assert [f["seq"] for f in frames] == list(range(len(frames)))
    assert len(chunks) >= 8
    assert all(f["chunk"]["object"] == "chat.completion.chunk" for f in chunks)
    text = "".join(
        f["chunk"]["choices"][0]["delta"].get("content", "") for f in chunks if f["chunk"]["choices"]
    )
    last_reason = next(
        f["chunk"]["choices"][0]["finish_reason"] for f in reversed(chunks) if f["chunk"]["choices"]
    )
    assert final["done"] is True and final["status_code"] == 200 and final["finish_reason"] == last_reason
    assert final["usage"]["completion_tokens"] == 8
    stored = result_record(stack, request_id)
    assert stored is not None and stored["status"] == "done" and stored["output"] == text
    assert stats["latency"]["time_to_first_token"]["count"] == 1


def test_three_workers_in_one_group_share_the_load(stack: StackInfo, unique_name: str) -> None:
    topics = make_topics(stack, unique_name, partitions=6)
    config = make_config(stack, topics)
    workers = [Pipeline(config).start() for _ in range(3)]
    try:
        wait_for(
            lambda: (
                sorted(p for w in workers for p in w.stats()["assignment"])
                == sorted(f"{topics.requests}/{p}" for p in range(6))
                and all(w.stats()["assignment"] for w in workers)
            ),
            60,
            "the six partitions to be spread over the three workers",
        )
        ids = [f"{unique_name}-{i}" for i in range(300)]
        produce(
            stack,
            topics.requests,
            [json.dumps(envelope(i, request_id=i)).encode() for i in ids],
            spread_over=6,
        )
        records = read_until(stack, topics.responses, lambda r: len(by_key(r)) >= len(ids))
        done = [w.stats()["requests_total"] for w in workers]
    finally:
        for w in workers:
            w.stop()
    answered = by_key(records)
    assert set(answered) == set(ids)
    assert sum(done) == len(ids), done
    assert all(n > 0 for n in done), done
    assert all(mock_calls(stack, i) == 1 for i in ids)


def test_a_redelivered_request_already_done_is_not_sent_to_the_provider_again(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    request_id = f"{unique_name}-once"
    value = json.dumps(envelope("only once", request_id=request_id)).encode()
    with Pipeline(make_config(stack, topics)):
        produce(stack, topics.requests, [value])
        read_until(stack, topics.responses, lambda r: len(r) >= 1)
    # The same request again (as after a crash before the commit): replayed from Redis.
    with Pipeline(make_config(stack, topics)) as pipeline:
        produce(stack, topics.requests, [value])
        records = read_until(stack, topics.responses, lambda r: len(r) >= 2)
        stats = pipeline.stats()
    assert mock_calls(stack, request_id) == 1
    assert stats["cache_hits"] == 1
    first, second = (json.loads(r.value) for r in records)
    assert first["body"] == second["body"] and second["status_code"] == 200


def test_embedded_python_provider(stack: StackInfo, unique_name: str) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    seen: list[tuple[str, str]] = []

    def model(path: str, body: dict[str, Any]) -> dict[str, Any]:
        seen.append((path, body["messages"][0]["content"]))
        if body["messages"][0]["content"] == "raise":
            raise ValueError("the model refused")
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "embedded!"}}]}

    config = make_config(stack, topics, providers=[{"name": "local", "kind": "python"}])
    pipeline = Pipeline(config)
    pipeline.register_provider("local", model)
    with pipeline:
        produce(
            stack,
            topics.requests,
            [json.dumps(envelope(c, request_id=f"{unique_name}-{c}")).encode() for c in ("hi", "raise")],
        )
        records = by_key(read_until(stack, topics.responses, lambda r: len(r) >= 2))
    assert sorted(seen) == [("/v1/chat/completions", "hi"), ("/v1/chat/completions", "raise")]
    assert records[f"{unique_name}-hi"][0]["body"]["choices"][0]["message"]["content"] == "embedded!"
    failed = records[f"{unique_name}-raise"][0]
    assert failed["status_code"] == 500 and "the model refused" in failed["body"]["error"]["message"]


def test_anthropic_provider_is_called_through_the_messages_api(stack: StackInfo, unique_name: str) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    providers = [
        {
            "name": "claude",
            "kind": "anthropic",
            "baseURL": stack.provider_url,
            "apiKey": "sk-ant-test-1234",
        }
    ]
    with Pipeline(make_config(stack, topics, providers=providers)):
        produce(
            stack,
            topics.requests,
            [
                json.dumps(envelope("plain", request_id=f"{unique_name}-a")).encode(),
                json.dumps(envelope("streamed", request_id=f"{unique_name}-b", stream=True)).encode(),
            ],
        )
        records = by_key(
            read_until(
                stack,
                topics.responses,
                lambda r: any(b'"done":true' in x.value for x in r) and len(r) >= 3,
            )
        )
    plain = records[f"{unique_name}-a"][0]
    assert plain["status_code"] == 200
    assert plain["body"]["object"] == "chat.completion"  # mapped to OpenAI's shape
    assert plain["body"]["choices"][0]["message"]["content"].startswith("mock reply: plain")
    frames = records[f"{unique_name}-b"]
    assert frames[-1]["done"] is True and frames[-1]["usage"]["completion_tokens"] > 0
    assert any(f.get("chunk", {}).get("type") == "content_block_delta" for f in frames)
    stored = result_record(stack, f"{unique_name}-b")
    assert stored is not None and stored["output"].startswith("mock reply: streamed")


def test_sidecar_provider_over_a_unix_socket(stack: StackInfo, unique_name: str, tmp_path: Path) -> None:
    socket_path = tmp_path / "provider.sock"
    command = [binary_path(), "--port", "0", "--unix-socket", str(socket_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as mock:
        try:
            assert mock.stdout is not None
            assert json.loads(mock.stdout.readline())["unix_socket"] == str(socket_path)
            topics = make_topics(stack, unique_name, partitions=1)
            providers = [
                {
                    "name": "sidecar",
                    "baseURL": "http://localhost/v1",
                    "unixSocket": str(socket_path),
                }
            ]
            with Pipeline(make_config(stack, topics, providers=providers)):
                produce(
                    stack,
                    topics.requests,
                    [json.dumps(envelope("over uds", request_id="uds-1")).encode()],
                )
                records = read_until(stack, topics.responses, lambda r: len(r) >= 1)
            response = json.loads(records[0].value)
            assert response["status_code"] == 200 and response["provider"] == "sidecar"
        finally:
            mock.send_signal(signal.SIGTERM)
            mock.wait(10)


def test_a_bad_config_fails_at_start_naming_the_key(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as error:
        make_config(stack, make_topics(stack, unique_name), retry={"maxAttempts": 0})
    assert error.value.key == "retry.maxAttempts"
    # The pipeline's own producer defaults (linger.ms) give way to the user's librdkafka
    # properties, so a bad one is reported, not silently replaced.
    for name in ("linger.ms", "queue.buffering.max.ms"):
        with pytest.raises(ConfigError) as error:
            Pipeline(
                make_config(
                    stack,
                    make_topics(stack, f"{unique_name}-{name}"),
                    kafka={"bootstrap.servers": stack.bootstrap_servers, name: "soon"},
                )
            )
        assert error.value.key == f"kafka.{name}"
    for circuit, key in (
        ({"failureRatio": 1.5}, "circuit.failureRatio"),
        ({"window": "5ms"}, "circuit.window"),
    ):
        with pytest.raises(ConfigError) as error:
            make_config(stack, make_topics(stack, f"{unique_name}-{key}"), circuit=circuit)
        assert error.value.key == key
    config = tmp_path / "worker.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kafka": {
                    "bootstrap.servers": stack.bootstrap_servers,
                    "sasl.password": "hunter2-secret",
                },
                "providers": [{"name": "p", "baseURL": stack.provider_url}],
                "redis": {"url": stack.redis_url, "resultTTL": "five minutes"},
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "kafka_llm.cli", "worker", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=worker_env(),
    )
    assert result.returncode == 2
    assert "redis.resultTTL" in result.stderr
    assert "hunter2-secret" not in result.stderr + result.stdout


def test_worker_command_processes_requests_and_stops_cleanly_on_sigterm(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    topics = make_topics(stack, unique_name, partitions=2)
    config = tmp_path / "worker.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "messaging": {
                    "streams": [
                        {
                            "requestsURL": f"kafka://{topics.group}?topic={topics.requests}",
                            "responsesURL": f"kafka://{topics.responses}",
                            "dlqURL": f"kafka://{topics.dlq}",
                        }
                    ]
                },
                "kafka": {"bootstrap.servers": stack.bootstrap_servers},
                "redis": {"url": stack.redis_url_with_password()},
                "providers": [{"name": "mock", "baseURL": stack.provider_url}],
            }
        )
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kafka_llm.cli",
            "worker",
            "--config",
            str(config),
            "--stats-interval",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(),
    )
    try:
        ids = [f"{unique_name}-{i}" for i in range(20)]
        produce(stack, topics.requests, [json.dumps(envelope(i, request_id=i)).encode() for i in ids])
        records = read_until(stack, topics.responses, lambda r: len(by_key(r)) >= len(ids))
        assert set(by_key(records)) == set(ids)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "stopping" in err


def test_a_shared_rate_limit_holds_across_workers(stack: StackInfo, unique_name: str) -> None:
    """rpm 30 shared by two workers: 30 requests go at once, then one every 2 s for all of them
    together (with per-worker buckets each worker would have its own 30 and nothing would wait)."""
    topics = make_topics(stack, unique_name, partitions=2)
    providers = [{"name": unique_name, "baseURL": stack.provider_url, "rpm": 30, "shared": True}]
    config = make_config(stack, topics, providers=providers)
    workers = [Pipeline(config).start() for _ in range(2)]
    try:
        wait_for(lambda: all(w.stats()["assignment"] for w in workers), 60, "both workers to own a partition")
        ids = [f"{unique_name}-{i}" for i in range(32)]
        started = time.monotonic()
        produce(
            stack,
            topics.requests,
            [json.dumps(envelope(i, request_id=i)).encode() for i in ids],
            spread_over=2,
        )
        records = read_until(stack, topics.responses, lambda r: len(by_key(r)) >= len(ids))
        elapsed = time.monotonic() - started
        limited = sum(w.stats()["rate_limited"] for w in workers)
        per_worker = [w.stats()["requests_total"] for w in workers]
    finally:
        for w in workers:
            w.stop()
    assert set(by_key(records)) == set(ids)
    assert all(n > 0 for n in per_worker), per_worker
    assert limited >= 2
    assert elapsed >= 3.5, (
        f"the 31st and 32nd requests must wait for refills (2 s each); took {elapsed:.2f} s"
    )


def test_trace_context_travels_from_the_request_to_every_output(stack: StackInfo, unique_name: str) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    traceparent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    producer = k.producer(stack.bootstrap_servers)
    for name, stream in (("plain", False), ("streamed", True)):
        value = json.dumps(envelope(name, request_id=f"{unique_name}-{name}", stream=stream)).encode()
        producer.produce(
            topics.requests, value, headers=[("traceparent", traceparent), ("tracestate", b"k=v")]
        )
    assert producer.flush(30_000) == []
    with Pipeline(make_config(stack, topics)):
        records = read_until(
            stack,
            topics.responses,
            lambda r: sum(b'"done":true' in x.value for x in r) >= 1 and len(by_key(r)) >= 2,
        )
    assert len(records) >= 3
    for record in records:
        h = headers(record)
        assert h["traceparent"] == traceparent.decode() and h["tracestate"] == "k=v", h
