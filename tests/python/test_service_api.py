"""The HTTP service on the real stack: /process and /result, rejected input (nothing produced),
health, metrics, OpenAPI docs and trace context in Kafka headers (issue 6)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from pipeline_helpers import headers, make_topics, read_until, wait_for
from service_helpers import Service, config_document, free_port, high_watermarks, service_on_stack

from kafka_llm import Pipeline, load_config
from kafka_llm.devstack import StackInfo
from kafka_llm.service.tracing import Tracing

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def service(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    name = f"t-svc-api-{secrets.token_hex(4)}"
    with service_on_stack(stack, name, tmp_path_factory.mktemp("svc-api")) as running:
        yield running


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as c:
        yield c


def _poll_result(client: httpx.Client, request_id: str, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, object] = client.get(f"/result/{request_id}").raise_for_status().json()
        if body.get("status") != "pending":
            return body
        assert time.monotonic() < deadline, f"{request_id} still pending after {timeout} s"
        time.sleep(0.05)


def test_process_is_accepted_then_pending_then_done(client: httpx.Client) -> None:
    response = client.post(
        "/process",
        json={"model": "mock-model", "prompt": "Say hello", "temperature": 0, "mock": {"latency_ms": 600}},
    )
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    assert set(response.json()) == {"request_id"}
    assert client.get(f"/result/{request_id}").json() == {"status": "pending"}
    result = _poll_result(client, request_id)
    assert set(result) == {"provider", "model", "output", "error", "usage"}
    assert result["provider"] == "mock" and result["model"] == "mock-model" and result["error"] is None
    assert isinstance(result["output"], str) and result["output"].startswith("mock reply: Say hello")
    assert isinstance(result["usage"], dict) and result["usage"]["completion_tokens"] > 0


def test_process_failure_is_an_error_result(client: httpx.Client) -> None:
    response = client.post("/process", json={"model": "mock-model", "prompt": "x", "mock": {"fault": "404"}})
    assert response.status_code == 202
    result = _poll_result(client, response.json()["request_id"])
    assert set(result) == {"error"}
    assert "404" in str(result["error"])


def test_unknown_or_expired_result_is_404(client: httpx.Client) -> None:
    response = client.get(f"/result/{secrets.token_hex(16)}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_no_answer_in_time_is_504_and_the_request_stays_queued(
    stack: StackInfo, tmp_path: Path, unique_name: str
) -> None:
    with service_on_stack(stack, unique_name, tmp_path, response_timeout_seconds=0.5) as service:
        slow = {
            "model": "mock-model",
            "messages": [{"role": "user", "content": "slow"}],
            "mock": {"latency_ms": 1500},
        }
        response = httpx.post(
            f"{service.url}/v1/chat/completions", json=slow, headers=service.headers(), timeout=30
        )
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "gateway_timeout"
        request_id = response.headers["x-request-id"]
        with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client:
            result = _poll_result(client, request_id)
        assert isinstance(result["output"], str) and result["output"].startswith("mock reply: slow")


def test_traces_are_exported_only_when_an_endpoint_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    quiet = Tracing("t", None)
    assert not quiet.exporting
    quiet.shutdown()
    exporting = Tracing("t", f"http://127.0.0.1:{free_port()}/v1/traces")
    assert exporting.exporting
    exporting.shutdown()  # no span was recorded: nothing to send, returns at once


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/process", {"model": "mock-model"}, 422, "prompt"),
        ("/process", {"prompt": "hi"}, 422, "model"),
        ("/process", {"model": "mock-model", "prompt": "   "}, 422, "prompt"),
        ("/process", {"model": "mock-model", "prompt": "hi", "stream": True}, 422, "stream"),
        ("/v1/chat/completions", {"model": "mock-model", "messages": []}, 422, "messages"),
        (
            "/v1/chat/completions",
            {"model": "mock-model", "messages": [{"content": "x"}]},
            422,
            "messages.0.role",
        ),
        ("/v1/embeddings", {"model": "mock-model", "input": "x", "stream": True}, 422, "stream"),
        ("/process", {"provider": "nope", "model": "mock-model", "prompt": "hi"}, 400, "provider"),
        (
            "/v1/chat/completions",
            {"provider": "restricted", "model": "big-model", "messages": [{"role": "user", "content": "x"}]},
            400,
            "model",
        ),
    ],
)
def test_rejected_requests_name_the_field_and_produce_nothing(
    stack: StackInfo,
    service: Service,
    client: httpx.Client,
    path: str,
    body: dict[str, object],
    status: int,
    param: str,
) -> None:
    before = high_watermarks(stack, service.topics.requests)
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert param.split(".")[0] in error["message"]
    assert high_watermarks(stack, service.topics.requests) == before


def test_bodies_above_the_limit_are_413_and_produce_nothing(
    stack: StackInfo, service: Service, client: httpx.Client
) -> None:
    before = high_watermarks(stack, service.topics.requests)
    big = {"model": "mock-model", "prompt": "x" * (2 << 20)}
    response = client.post("/process", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'{"model": "mock-model", "prompt": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    response = client.post("/v1/completions", content=chunked(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert high_watermarks(stack, service.topics.requests) == before


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok", "auth": "enabled"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert {name: c["ok"] for name, c in checks.items()} == {"kafka": True, "redis": True, "database": True}


def test_readiness_fails_when_redis_is_unreachable(
    stack: StackInfo, tmp_path: Path, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with service_on_stack(
        stack,
        unique_name,
        tmp_path,
        worker=False,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        auth_enabled=False,
    ) as service:
        ready = httpx.get(f"{service.url}/health/ready", timeout=10)
        health = httpx.get(f"{service.url}/health", timeout=10).json()
        accepted = httpx.post(f"{service.url}/process", json={"model": "m", "prompt": "p"}, timeout=10)
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert (
        checks["redis"]["ok"] is False and checks["kafka"]["ok"] is True and checks["database"]["ok"] is True
    )
    # Auth disabled: said loudly, at start-up and in /health.
    assert health["auth"] == "disabled" and "authentication is disabled" in health["warnings"][0]
    assert any("AUTHENTICATION IS DISABLED" in r.getMessage() for r in caplog.records)
    # A request that needs Redis is a 503 naming it, and nothing reaches Kafka.
    assert accepted.status_code == 503 and "result" in accepted.json()["error"]["message"]
    assert high_watermarks(stack, service.topics.requests) == [0, 0]


def test_metrics_have_http_and_design_names(client: httpx.Client) -> None:
    client.post(
        "/v1/chat/completions", json={"model": "mock-model", "messages": [{"role": "user", "content": "m"}]}
    )
    text = client.get("/metrics").text
    assert 'kafka_llm_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}' in text
    assert (
        'kafka_llm_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/chat/completions"}'
        in text
    )
    assert 'kafka_llm_requests_total{model="other",outcome="ok",provider="mock",stream="false"}' in text
    names = [
        "kafka_llm_inflight",
        "kafka_llm_end_to_end_seconds_count",
        "kafka_llm_cache_hits_total",
        "kafka_llm_time_to_first_token_seconds_count",
        'kafka_llm_tokens_total{direction="output"',
    ]
    for name in names:
        assert name in text, name
    assert "/result/" not in text.replace('route="/result/{request_id}"', "")  # route templates, not ids


def test_openapi_describes_every_endpoint_and_error(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    endpoints = ["/process", "/result/{request_id}", "/v1/chat/completions", "/v1/completions"]
    endpoints += ["/v1/embeddings", "/health", "/health/ready", "/metrics"]
    for path in endpoints:
        assert path in paths, path
    assert set(paths["/process"]["post"]["responses"]) >= {"202", "400", "401", "403", "413", "422", "503"}
    assert set(paths["/v1/chat/completions"]["post"]["responses"]) >= {
        "200",
        "400",
        "401",
        "413",
        "422",
        "504",
    }
    assert set(paths["/result/{request_id}"]["get"]["responses"]) >= {"200", "404"}
    assert client.get("/docs").status_code == 200


def test_trace_context_is_carried_in_kafka_headers_to_the_worker_and_dlq(
    stack: StackInfo, service: Service, client: httpx.Client
) -> None:
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": "mock-model",
            "messages": [{"role": "user", "content": "t"}],
            "mock": {"fault": "404"},
        },
        headers={"traceparent": traceparent},
    )
    assert response.status_code == 404  # the provider's status, relayed
    assert response.json()["error"]["code"] == "not_found"
    request_id = response.headers["x-request-id"]

    def of_request(records: list) -> list:  # type: ignore[type-arg]
        return [r for r in records if r.key == request_id.encode()]

    requests = of_request(
        read_until(stack, service.topics.requests, lambda rs: bool(of_request(rs)), timeout=20)
    )
    sent = headers(requests[0])
    assert sent["traceparent"].split("-")[1] == trace_id  # same trace, the service's producer span
    assert sent["traceparent"] != traceparent
    envelope = json.loads(requests[0].value)
    assert envelope["request_id"] == request_id and envelope["provider"] == "mock"
    assert envelope["path"] == "/v1/chat/completions"
    dead = of_request(read_until(stack, service.topics.dlq, lambda rs: bool(of_request(rs)), timeout=20))
    assert headers(dead[0])["traceparent"] == sent["traceparent"]


def test_kafka_llm_api_with_two_workers_answers_every_request(
    stack: StackInfo, tmp_path: Path, unique_name: str
) -> None:
    """Each uvicorn worker process reads every response partition, so whichever process holds the
    HTTP connection gets its answer."""
    topics = make_topics(stack, unique_name, partitions=2)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config_document(stack, topics)))
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_LLM_AUTH_ENABLED": "false",
        "KAFKA_LLM_DATABASE_URL": f"sqlite:///{tmp_path}/db",
    }
    command = [
        sys.executable,
        "-m",
        "kafka_llm.cli",
        "api",
        "--config",
        str(config_path),
        "--port",
        str(port),
    ]
    server = subprocess.Popen([*command, "--workers", "2", "--log-level", "warning"], env=env)
    try:
        with Pipeline(load_config(str(config_path), env={})), httpx.Client(timeout=30) as client:
            url = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                assert server.poll() is None, "kafka-llm api exited"
                try:
                    return client.get(f"{url}/health/ready").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, 30, "kafka-llm api to be ready")

            def ask(i: int) -> httpx.Response:
                body = {"model": "mock-model", "messages": [{"role": "user", "content": f"w{i}"}]}
                return client.post(f"{url}/v1/chat/completions", json=body)

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(ask, range(24)))
        assert [a.status_code for a in answers] == [200] * 24
        for i, a in enumerate(answers):
            assert a.json()["choices"][0]["message"]["content"].startswith(f"mock reply: w{i}")
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
