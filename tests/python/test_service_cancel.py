"""Cancellation from the HTTP service and the CLI, on the real stack with real workers: ``DELETE
/result/{request_id}``, clients leaving an SSE stream, a WebSocket or a pending call, and
``kafka-llm cancel``. The workers read the stream's control topic (``cancelURL``): a queued request
is never sent to the provider, one in flight is aborted, and the result becomes ``cancelled``."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import run_cli
from pipeline_helpers import mock_calls, read_until, result_record, wait_for
from service_helpers import Service, high_watermarks, service_on_stack
from websockets.sync.client import connect

from kafka_llm import Pipeline, load_config
from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo

pytestmark = pytest.mark.stack

# Far longer than any wait below: a call that ends before it was cut short.
SLOW_MS = 30_000


def _cancel_topic(stack: StackInfo, name: str) -> dict[str, Any]:
    """The stream keys of a control topic of its own (created, one partition)."""
    topic = f"{name}-cancel"
    k.create_topics(stack.bootstrap_servers, [topic], 1)
    return {"cancelURL": f"kafka://{topic}"}


@contextlib.contextmanager
def _cancellable(stack: StackInfo, name: str, tmp: Path, **options: Any) -> Iterator[tuple[Service, str]]:
    extra = {**_cancel_topic(stack, name), **options.pop("stream_extra", {})}
    with service_on_stack(stack, name, tmp, stream_extra=extra, **options) as service:
        yield service, extra["cancelURL"].removeprefix("kafka://")


@pytest.fixture(scope="module")
def cancellable(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    name = f"t-svc-cancel-{secrets.token_hex(4)}"
    with _cancellable(stack, name, tmp_path_factory.mktemp("svc-cancel")) as running:
        yield running


@pytest.fixture
def service(cancellable: tuple[Service, str]) -> Service:
    return cancellable[0]


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as c:
        yield c


def _unique() -> str:
    return f"c-{secrets.token_hex(6)}"


def _process(client: httpx.Client, prompt: str, **mock: Any) -> str:
    body: dict[str, Any] = {"model": "mock-model", "prompt": prompt}
    if mock:
        body["mock"] = mock
    response = client.post("/process", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["request_id"])


def _wait_result(stack: StackInfo, request_id: str, timeout: float, what: str) -> dict[str, Any]:
    """The Redis result record once it is final."""
    records: list[dict[str, Any]] = []

    def final() -> bool:
        record = result_record(stack, request_id)
        if record is not None and record["status"] in ("done", "error", "cancelled"):
            records.append(record)
            return True
        return False

    wait_for(final, timeout, what)
    return records[0]


def _cancel_records(stack: StackInfo, topic: str) -> list[tuple[str, dict[str, Any]]]:
    """Every record of the control topic (one partition), as (key, value)."""
    count = sum(high_watermarks(stack, topic))
    records = read_until(stack, topic, lambda rs: len(rs) >= count, timeout=20)
    assert len(records) == count, f"{len(records)} record(s) read from {topic}, expected {count}"
    return [((r.key or b"").decode(), json.loads(r.value)) for r in records]


def _frames(stack: StackInfo, topic: str, request_id: str, timeout: float = 20) -> list[dict[str, Any]]:
    """The response records of ``request_id`` up to its final one (a stream's done frame or a
    response envelope)."""

    def mine(records: list[k.Record]) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in records if r.key == request_id.encode()]

    records = read_until(
        stack, topic, lambda rs: any(f.get("done") or "body" in f for f in mine(rs)), timeout=timeout
    )
    return mine(records)


def _request_id_of(stack: StackInfo, topic: str, content: str) -> str:
    """The id of the request whose envelope carries ``content`` (a client that left never got it)."""
    records = read_until(stack, topic, lambda rs: any(content.encode() in r.value for r in rs), timeout=20)
    for record in records:
        if content.encode() in record.value:
            return str(json.loads(record.value)["request_id"])
    raise AssertionError(f"no request with {content!r} on {topic}")


def _metric(service: Service, stream: str, outcome: str) -> float:
    text = httpx.get(f"{service.url}/metrics", timeout=10).text
    # mock serves any model (no models list): counted as "other"
    labels = f'model="other",outcome="{outcome}",provider="mock",stream="{stream}"'
    line = f"kafka_llm_requests_total{{{labels}}}"
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.split()[-1])
    return 0.0


# --- queued requests: never sent to the provider -------------------------------------------------


def test_queued_requests_cancelled_by_delete_and_by_the_cli_never_reach_the_provider(
    stack: StackInfo, tmp_path: Path, unique_name: str
) -> None:
    """No worker runs while the cancellations are written; the worker started afterwards reads
    the control topic and skips all three requests."""
    with _cancellable(stack, unique_name, tmp_path, worker=False) as (service, topic):
        with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client:
            by_delete = _process(client, _unique())
            by_cli = [_process(client, _unique()), _process(client, _unique())]
            kept = _process(client, _unique())
            response = client.delete(f"/result/{by_delete}", params={"reason": "changed my mind"})
            assert response.status_code == 202, response.text
            assert response.json() == {"request_id": by_delete, "status": "cancelling"}
            assert client.get(f"/result/{by_delete}").json() == {"status": "pending"}  # until a worker

        typed = run_cli("cancel", *by_cli, "--config", str(service.config_path), "--reason", "operator")
        assert typed.returncode == 0, typed.stderr
        assert typed.stdout.split() == by_cli
        assert f"2 cancel record(s) acknowledged on {topic!r}" in typed.stderr

        # The records: keyed by the request id, {"request_id", "reason"} (one way to build them).
        assert _cancel_records(stack, topic) == [
            (by_delete, {"request_id": by_delete, "reason": "changed my mind"}),
            (by_cli[0], {"request_id": by_cli[0], "reason": "operator"}),
            (by_cli[1], {"request_id": by_cli[1], "reason": "operator"}),
        ]

        with Pipeline(load_config(str(service.config_path), env={})):
            done = _wait_result(stack, kept, 30, "the request nobody cancelled")
            assert done["status"] == "done"
            for request_id, reason in [(by_delete, "changed my mind"), *((i, "operator") for i in by_cli)]:
                record = _wait_result(stack, request_id, 30, f"the cancellation of {request_id}")
                assert record["status"] == "cancelled", record
                assert record["status_code"] == 499 and record["error"] == f"cancelled: {reason}"
                assert mock_calls(stack, request_id) == 0, "a cancelled queued request reached the provider"
        with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client:
            assert client.get(f"/result/{by_delete}").json() == {
                "status": "cancelled",
                "error": "cancelled: changed my mind",
            }


def test_delete_of_a_request_waiting_behind_another_in_a_running_worker(
    stack: StackInfo, tmp_path: Path, unique_name: str
) -> None:
    """One request in flight at a time: the second waits in the worker until it is cancelled."""
    with (
        _cancellable(stack, unique_name, tmp_path, stream_extra={"maxHandlers": 1}) as (service, _),
        httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client,
    ):
        blocker = _process(client, _unique(), latency_ms=3000)
        wait_for(lambda: mock_calls(stack, blocker) == 1, 20, "the first request at the provider")
        waiting = _process(client, _unique())
        assert client.delete(f"/result/{waiting}").status_code == 202
        record = _wait_result(stack, waiting, 30, "the cancellation of the waiting request")
        assert record["status"] == "cancelled" and record["error"] == "cancelled: requested by the user"
        assert _wait_result(stack, blocker, 30, "the first request")["status"] == "done"
        assert mock_calls(stack, waiting) == 0


# --- requests in flight: the provider call is aborted --------------------------------------------


def test_delete_of_a_request_in_flight_ends_it_long_before_the_provider_would(
    stack: StackInfo, cancellable: tuple[Service, str], client: httpx.Client
) -> None:
    service, _ = cancellable
    request_id = _process(client, _unique(), latency_ms=SLOW_MS)
    wait_for(lambda: mock_calls(stack, request_id) == 1, 20, "the request at the provider")
    started = time.monotonic()
    response = client.delete(f"/result/{request_id}", params={"reason": "too slow"})
    assert response.status_code == 202, response.text
    wait_for(
        lambda: client.get(f"/result/{request_id}").json().get("status") == "cancelled",
        15,
        "GET /result to say cancelled",
    )
    elapsed = time.monotonic() - started
    assert elapsed < 15 < SLOW_MS / 1000
    assert client.get(f"/result/{request_id}").json() == {
        "status": "cancelled",
        "error": "cancelled: too slow",
    }
    # The response topic says so too: a 499 envelope of type "cancelled".
    envelope = _frames(stack, service.topics.responses, request_id)[-1]
    assert envelope["status_code"] == 499
    assert envelope["body"]["error"] == {
        "message": "cancelled: too slow",
        "type": "cancelled",
        "code": "cancelled",
    }
    assert mock_calls(stack, request_id) == 1  # aborted, not retried
    # A cancelled request is final: a second DELETE is refused.
    again = client.delete(f"/result/{request_id}")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["error"]["message"]


def test_an_sse_client_leaving_mid_stream_stops_the_provider_call(
    stack: StackInfo, cancellable: tuple[Service, str]
) -> None:
    service, topic = cancellable
    tokens = 60  # 12 s of tokens
    body = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": _unique()}],
        "stream": True,
        "max_tokens": tokens,
        "mock": {"token_interval_ms": 200},
    }
    cancelled_before = _metric(service, "true", "cancelled")
    with (
        httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        received = 0
        for line in response.iter_lines():
            received += line.startswith("data: ")
            if received == 2:
                break
    left = time.monotonic()  # the connection is closed here

    record = _wait_result(stack, request_id, 15, "the worker to cancel the stream")
    assert record["status"] == "cancelled" and record["error"] == "cancelled: client disconnected"
    assert time.monotonic() - left < 10
    frames = _frames(stack, service.topics.responses, request_id)
    chunks = [f for f in frames if "chunk" in f]
    assert len(chunks) < tokens // 2, f"{len(chunks)} chunks: the stream was not cut short"
    assert frames[-1]["done"] is True and frames[-1]["status_code"] == 499
    assert (request_id, {"request_id": request_id, "reason": "client disconnected"}) in _cancel_records(
        stack, topic
    )
    assert _metric(service, "true", "cancelled") == cancelled_before + 1


def test_a_websocket_client_leaving_mid_stream_stops_the_provider_call(
    stack: StackInfo, service: Service
) -> None:
    content = _unique()
    url = service.url.replace("http://", "ws://") + "/v1/completions"
    with connect(url, additional_headers=service.headers(), open_timeout=10) as ws:
        ws.send(
            json.dumps(
                {
                    "model": "mock-model",
                    "prompt": content,
                    "max_tokens": 60,
                    "mock": {"token_interval_ms": 200},
                }
            )
        )
        first = json.loads(ws.recv(timeout=20))
        assert first["object"] == "text_completion"
    request_id = _request_id_of(stack, service.topics.requests, content)
    record = _wait_result(stack, request_id, 15, "the worker to cancel the stream")
    assert record["status"] == "cancelled" and record["error"] == "cancelled: client disconnected"
    chunks = [f for f in _frames(stack, service.topics.responses, request_id) if "chunk" in f]
    assert len(chunks) < 30


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_a_client_leaving_before_the_answer_starts_cancels_the_call(
    stack: StackInfo, service: Service, stream: bool
) -> None:
    """The client gives up while the provider has not answered: no first token, no body yet."""
    content = _unique()
    body = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
        "mock": {"latency_ms": SLOW_MS},
    }
    label = str(stream).lower()
    cancelled_before = _metric(service, label, "cancelled")
    with (
        httpx.Client(base_url=service.url, headers=service.headers(), timeout=2) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.post("/v1/chat/completions", json=body)
    wait_for(
        lambda: _metric(service, label, "cancelled") == cancelled_before + 1,
        10,
        "the service to count the call as cancelled",
    )
    request_id = _request_id_of(stack, service.topics.requests, content)
    record = _wait_result(stack, request_id, 15, "the worker to cancel the call")
    assert record["status"] == "cancelled" and record["error"] == "cancelled: client disconnected"
    assert mock_calls(stack, request_id) == 1


# --- what cannot be cancelled ---------------------------------------------------------------------


def test_finished_and_unknown_requests_are_not_cancelled(
    stack: StackInfo, cancellable: tuple[Service, str], client: httpx.Client
) -> None:
    _, topic = cancellable
    done = _process(client, _unique())
    failed = _process(client, _unique(), fault="404")
    assert _wait_result(stack, done, 20, "the answer")["status"] == "done"
    assert _wait_result(stack, failed, 20, "the failure")["status"] == "error"
    for request_id, status in [(done, "done"), (failed, "error")]:
        response = client.delete(f"/result/{request_id}")
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "request_finished" and error["type"] == "conflict_error"
        assert f"is already {status}" in error["message"]
        assert result_record(stack, request_id)["status"] == status  # type: ignore[index]

    unknown = secrets.token_hex(16)
    gone = client.delete(f"/result/{unknown}")
    assert gone.status_code == 404
    assert gone.json() == client.get(f"/result/{unknown}").json()  # GET's 404, word for word
    assert client.delete(f"/result/{unknown}", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.delete(f"/result/{done}", params={"reason": ""}).status_code == 422
    # Nothing of the above reached the control topic.
    assert all(key not in (done, failed, unknown) for key, _ in _cancel_records(stack, topic))


def test_without_a_cancel_topic_cancelling_is_refused_naming_the_key(
    stack: StackInfo, tmp_path: Path, unique_name: str
) -> None:
    with (
        service_on_stack(stack, unique_name, tmp_path, worker=False) as service,
        httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client,
    ):
        request_id = _process(client, _unique())
        refused = client.delete(f"/result/{request_id}")
        assert refused.status_code == 501, refused.text
        error = refused.json()["error"]
        assert error["code"] == "cancel_not_configured"
        assert error["message"].startswith("messaging.streams[0].cancelURL is not set")
        typed = run_cli("cancel", request_id, "--config", str(service.config_path))
        assert typed.returncode == 2 and typed.stdout == ""
        assert typed.stderr.startswith("kafka-llm cancel: error: messaging.streams[0].cancelURL is not set")
        other = run_cli("cancel", request_id, "--config", str(service.config_path), "--stream", "1")
        assert other.returncode == 2 and "messaging.streams[1]: no such stream" in other.stderr
        assert client.get(f"/result/{request_id}").json() == {"status": "pending"}


def test_openapi_describes_the_delete_route(client: httpx.Client) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/result/{request_id}"]["delete"]
    assert set(operation["responses"]) >= {"202", "401", "404", "409", "501", "503"}
    assert [p["name"] for p in operation["parameters"]] == ["request_id", "reason"]
