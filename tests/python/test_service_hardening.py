"""Service hardening (issue 17, point 5): API keys compared in constant time, request header limits
(the app's 431 and the server's bound on the raw request head), concurrent streams per API key
(429 too_many_streams, nothing produced, released however a stream ends) and CORS off unless
configured. Streams and headers run on the real stack with a slow mock provider."""

from __future__ import annotations

import contextlib
import json
import secrets
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pipeline_helpers import wait_for
from service_helpers import Service, free_port, high_watermarks, service_on_stack
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from kafka_llm.devstack import StackInfo
from kafka_llm.service import keystore
from kafka_llm.service.http_limits import uvicorn_http_options
from kafka_llm.service.keystore import KeyStore, make_engine
from kafka_llm.service.limits import raw_head_bytes
from kafka_llm.service.stream_limit import StreamLimiter

MAX_STREAMS = 2
ORIGIN = "https://app.example.com"


# --- API keys: constant-time comparisons, also from the cache -----------------------------------


def test_cached_keys_are_found_by_key_id_and_compared_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    try:
        store = KeyStore(engine, "pepper", cache_seconds=60)
        token, created = store.create("app")
        key_id, secret = token.split("_", 2)[1:]
        wrong = f"kllm_{key_id}_{secrets.token_urlsafe(32)}"
        assert store.verify(token) == created  # reads the database, fills the cache
        compared: list[tuple[bytes, bytes]] = []
        original = keystore.hmac.compare_digest

        def spy(a: Any, b: Any) -> bool:  # observes only: the real comparison decides
            compared.append((a, b))
            return original(a, b)

        monkeypatch.setattr(keystore.hmac, "compare_digest", spy)
        assert store.cached(token) == (True, created)
        assert len(compared) == 1, "a cached key must be checked with hmac.compare_digest"
        # A wrong secret with the right key id: refused from the cache, through the comparison.
        assert store.cached(wrong) == (True, None)
        assert store.verify(wrong) is None
        assert len(compared) == 3
        # Nothing secret is a cache key (a dict lookup on it would not be constant time).
        assert secret not in repr(list(store._cache)) and token not in repr(store._cache)
    finally:
        engine.dispose()


# --- concurrent streams per key: the accounting alone ---------------------------------------------


def test_stream_limiter_counts_per_key_and_releases_once() -> None:
    limiter = StreamLimiter(2)
    first, second = limiter.acquire("a"), limiter.acquire("a")
    assert first is not None and second is not None
    assert limiter.acquire("a") is None  # the third of key a
    other = limiter.acquire("b")  # another key has its own count
    assert other is not None and limiter.active("b") == 1
    first.release()
    first.release()  # a second release gives nothing back twice
    assert limiter.active("a") == 1
    third = limiter.acquire("a")
    assert third is not None and limiter.acquire("a") is None
    for lease in (second, third, other):
        lease.release()
    assert limiter.active("a") == 0 and limiter.active("b") == 0


def test_stream_limiter_zero_is_unlimited_and_no_key_shares_one_count() -> None:
    unlimited = StreamLimiter(0)
    assert all(unlimited.acquire("a") is not None for _ in range(1000))
    shared = StreamLimiter(1)
    assert shared.acquire(None) is not None and shared.acquire(None) is None
    with pytest.raises(ValueError):
        StreamLimiter(-1)


# --- the running service --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    name = f"t-svc-hard-{secrets.token_hex(4)}"
    with service_on_stack(
        stack, name, tmp_path_factory.mktemp("svc-hard"), max_streams_per_key=MAX_STREAMS, cache_ttl_seconds=0
    ) as running:
        yield running


def _stream_body(tokens: int = 10, interval_ms: int = 100, **mock: Any) -> dict[str, Any]:
    return {
        "model": "mock-model",
        "messages": [{"role": "user", "content": f"h-{secrets.token_hex(6)}"}],
        "stream": True,
        "max_tokens": tokens,
        "mock": {"token_interval_ms": interval_ms, **mock},
    }


def _produced(stack: StackInfo, service: Service) -> int:
    return sum(high_watermarks(stack, service.topics.requests))


def _active(service: Service) -> int:
    key_id = service.api_key.split("_", 2)[1]
    return int(service.app.state.gateway.streams.active(key_id))


def _assert_too_many_streams(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "too_many_streams" and error["type"] == "rate_limit_error"
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.stack
def test_one_stream_beyond_the_limit_is_a_429_that_produces_nothing(
    stack: StackInfo, service: Service
) -> None:
    ws_url = service.url.replace("http://", "ws://") + "/v1/completions"
    with (
        httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client,
        contextlib.ExitStack() as streams,
    ):
        opened = [
            streams.enter_context(client.stream("POST", "/v1/chat/completions", json=_stream_body()))
            for _ in range(MAX_STREAMS)
        ]
        assert [r.status_code for r in opened] == [200] * MAX_STREAMS
        before = _produced(stack, service)
        _assert_too_many_streams(client.post("/v1/chat/completions", json=_stream_body()))
        _assert_too_many_streams(
            client.post("/v1/completions", json={"model": "mock-model", "prompt": "p", "stream": True})
        )
        # A WebSocket connection is a stream too: an error message, then a close with 1013.
        with connect(ws_url, additional_headers=service.headers(), open_timeout=10) as ws:
            error = json.loads(ws.recv(timeout=10))["error"]
            assert error["code"] == "too_many_streams" and error["type"] == "rate_limit_error"
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        # Non-streamed calls are not streams.
        plain = client.post("/v1/chat/completions", json={**_stream_body(tokens=2), "stream": False})
        assert plain.status_code == 200, plain.text
        assert _produced(stack, service) == before + 1  # the plain call only
        for response in opened:  # the streams end normally: their places are given back
            assert "data: [DONE]" in list(response.iter_lines())
    wait_for(lambda: _active(service) == 0, 10, "the ended streams to be released")
    again = [client_stream_status(service) for _ in range(MAX_STREAMS + 1)]
    assert again == [200] * (MAX_STREAMS + 1)  # one after the other: never more than one at once


def client_stream_status(service: Service) -> int:
    with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client:
        response = client.post("/v1/chat/completions", json=_stream_body(tokens=2, interval_ms=10))
        return response.status_code


@pytest.mark.stack
def test_streams_are_released_when_clients_leave_or_fail_and_sockets_close(service: Service) -> None:
    ws_url = service.url.replace("http://", "ws://") + "/v1/completions"
    with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client:
        # Streams that fail before their first token are answered (404) and hold nothing.
        for _ in range(MAX_STREAMS + 1):
            failed = client.post("/v1/chat/completions", json=_stream_body(fault="404"))
            assert failed.status_code == 404, failed.text
        assert _active(service) == 0
        # A client leaving mid-stream gives its place back.
        with client.stream("POST", "/v1/chat/completions", json=_stream_body(tokens=50)) as response:
            assert response.status_code == 200
            assert _active(service) == 1
        wait_for(lambda: _active(service) == 0, 10, "the abandoned stream to be released")
        # An open WebSocket holds a place until it closes.
        with connect(ws_url, additional_headers=service.headers(), open_timeout=10) as ws:
            ws.send(json.dumps({"model": "mock-model", "prompt": "p", "max_tokens": 2}))
            while not json.loads(ws.recv(timeout=20)).get("done"):
                pass
            assert _active(service) == 1
        wait_for(lambda: _active(service) == 0, 10, "the closed WebSocket to be released")


# --- header limits ----------------------------------------------------------------------------------


@pytest.mark.stack
@pytest.mark.parametrize(
    "headers",
    [
        {"x-big": "a" * 16_400},
        {f"x-h{i}": "v" for i in range(101)},
    ],
    ids=["bytes", "count"],
)
def test_headers_beyond_the_limits_are_431(service: Service, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        response = client.post(
            "/v1/chat/completions", json=_stream_body(), headers={**service.headers(), **headers}
        )
        assert response.status_code == 431, response.text
        error = response.json()["error"]
        assert error["code"] == "request_header_fields_too_large" and error["type"] == "invalid_request_error"
        # Within the limits (a tracestate at its largest, 8,192 characters): served.
        ok = client.get("/v1/models", headers={**service.headers(), "tracestate": "k=" + "v" * 8190})
        assert ok.status_code == 200, ok.text
    ws_url = service.url.replace("http://", "ws://") + "/v1/completions"
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, additional_headers={**service.headers(), **headers}, open_timeout=10)
    assert refused.value.response.status_code == 431


@contextlib.contextmanager
def _plain_server(**options: Any) -> Iterator[int]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _endless_head(port: int) -> bytes:
    """Sends a request head that never ends, 2 KiB at a time, until the server answers (at most
    1 MiB); returns the answer's first bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(512):
            conn.sendall(b"a" * 2048)
            if select.select([conn], [], [], 0.02)[0]:
                return conn.recv(200)
        return b""


@pytest.mark.parametrize("protocol", ["default", "h11"])
def test_the_server_bounds_a_raw_request_head(protocol: str) -> None:
    options = uvicorn_http_options(1024)
    assert options["h11_max_incomplete_event_size"] == raw_head_bytes(1024)
    if protocol == "h11":
        options["http"] = "h11"
    with _plain_server(**options) as port:
        answer = _endless_head(port)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:  # still serving
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert conn.recv(100).startswith(b"HTTP/1.1 200")
    expected = b"HTTP/1.1 431" if protocol == "default" else b"HTTP/1.1 400"
    assert answer.startswith(expected), answer


# --- CORS -------------------------------------------------------------------------------------------


def _preflight(client: httpx.Client, origin: str) -> httpx.Response:
    return client.options(
        "/v1/chat/completions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


@pytest.mark.stack
def test_without_cors_origins_no_cors_headers_are_sent(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        response = client.get("/v1/models", headers={**service.headers(), "Origin": ORIGIN})
        assert response.status_code == 200
        assert not any(h.startswith("access-control-") for h in response.headers)
        preflight = _preflight(client, ORIGIN)
        assert preflight.status_code == 405
        assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.stack
def test_cors_origins_allow_exactly_those_origins(stack: StackInfo, tmp_path: Path) -> None:
    name = f"t-svc-cors-{secrets.token_hex(4)}"
    with (
        service_on_stack(stack, name, tmp_path, worker=False, cors_origins=f" {ORIGIN} ,") as service,
        httpx.Client(base_url=service.url, timeout=30) as client,
    ):
        preflight = _preflight(client, ORIGIN)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        response = client.get("/v1/models", headers={**service.headers(), "Origin": ORIGIN})
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
        other = "https://evil.example.com"
        refused = _preflight(client, other)
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        response = client.get("/v1/models", headers={**service.headers(), "Origin": other})
        assert "access-control-allow-origin" not in response.headers
