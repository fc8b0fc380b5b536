"""The native mock provider (``kafka-llm-mock-provider``) against its HTTP and CLI contract.

Each test starts the binary itself with ``--port 0``, talks to it over loopback with the
standard library only, and stops it by PID. The binary comes from ``KAFKA_LLM_BIN_DIR`` when set
(a C++ dev build), else from the installed package.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import math
import os
import resource
import select
import selectors
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

BINARY = "kafka-llm-mock-provider"
START_TIMEOUT = 10.0
LOOPBACK = "127.0.0.1"


def _binary() -> Path:
    bin_dir = os.environ.get("KAFKA_LLM_BIN_DIR")
    if bin_dir:
        path = Path(bin_dir) / BINARY
        if not path.is_file():
            pytest.fail(f"{path} not found (KAFKA_LLM_BIN_DIR={bin_dir})")
        return path
    from kafka_llm._paths import native_tool

    return native_tool(BINARY)


class MockProvider:
    """One running mock provider process, stopped by PID."""

    def __init__(self, *args: str) -> None:
        # Kept open for the life of the process and closed in stop().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(_binary()), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            pytest.fail(f"mock provider did not print its listening line: {self.stderr()}")
        self.listening: dict[str, Any] = json.loads(line)
        self.port: int = self.listening["port"]

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        return code


@pytest.fixture
def start_mock() -> Iterator[Any]:
    """Starts mock providers with the given options; stops them all at the end of the test."""
    started: list[MockProvider] = []

    def start(*args: str) -> MockProvider:
        provider = MockProvider(*args)
        started.append(provider)
        return provider

    yield start
    for provider in started:
        provider.stop()


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProvider]:
    """A shared provider with default options, for tests that only read."""
    provider = MockProvider("--threads", "2")
    yield provider
    provider.stop()


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    raw: bytes | None = None,
) -> Response:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=payload, headers=all_headers)
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def chat_body(content: str = "hello world", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-model", "messages": [{"role": "user", "content": content}], **extra}


def raw_exchange(port: int, request: bytes, timeout: float = 5.0) -> tuple[bytes, BaseException | None]:
    """Sends `request` on a fresh connection and reads until EOF; returns the bytes and the
    error that ended the read (None for a clean EOF)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError as exc:
                return data, exc
            if not chunk:
                return data, None
            data += chunk


def post_bytes(path: str, body: dict[str, Any], extra_headers: str = "") -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n{extra_headers}\r\n"
    )
    return head.encode() + payload


def sse_data(body: bytes) -> list[str]:
    return [line[len("data: ") :] for line in body.decode().split("\n") if line.startswith("data: ")]


# --- process and CLI -----------------------------------------------------------------------------


def test_listening_line_port_file_and_health(start_mock: Any, tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    provider = start_mock("--port-file", str(port_file))
    assert provider.listening == {"event": "listening", "host": LOOPBACK, "port": provider.port}
    assert provider.port > 0
    assert int(port_file.read_text()) == provider.port
    resp = call(provider.port, "GET", "/health")
    assert resp.status == 200
    assert resp.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--bogus"], "--bogus"),
        (["--port", "x"], "--port"),
        (["--fault-429", "2"], "--fault-429"),
        (["--latency-dist", "uniform"], "--latency-dist"),
        (["--threads", "0"], "--threads"),
        (["--latency-ms"], "--latency-ms"),
    ],
)
def test_bad_option_exits_2_naming_it(args: list[str], named: str) -> None:
    result = subprocess.run([str(_binary()), *args], capture_output=True, timeout=10, check=False)
    assert result.returncode == 2
    assert named in result.stderr.decode()
    assert result.stdout == b""


def test_help_lists_options() -> None:
    result = subprocess.run([str(_binary()), "--help"], capture_output=True, timeout=10, check=False)
    assert result.returncode == 0
    for option in ("--unix-socket", "--latency-dist", "--fault-hang", "--retry-after", "--seed"):
        assert option in result.stdout.decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(start_mock: Any, sig: int) -> None:
    provider = start_mock()
    # An open keep-alive connection and a request waiting on its latency must not delay the stop.
    with socket.create_connection((LOOPBACK, provider.port)) as idle:
        idle.sendall(post_bytes("/v1/chat/completions", chat_body(), "x-mock-latency-ms: 60000\r\n"))
        time.sleep(0.1)
        started = time.monotonic()
        assert provider.stop(sig) == 0
        assert time.monotonic() - started < 5.0


# --- endpoint shapes -----------------------------------------------------------------------------


def test_chat_completion_shape_and_usage(mock: MockProvider) -> None:
    body = {
        "model": "gpt-test",
        "max_tokens": 10,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": [{"type": "text", "text": "hello world"}]},
        ],
    }
    before = int(time.time())
    resp = call(mock.port, "POST", "/v1/chat/completions", body)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    doc = resp.json()
    assert doc["id"].startswith("chatcmpl-")
    assert doc["object"] == "chat.completion"
    assert before - 1 <= doc["created"] <= time.time() + 1
    assert doc["model"] == "gpt-test"
    choice = doc["choices"][0]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert content.startswith("mock reply: hello world ")
    assert len(content.split()) == 10
    assert choice["finish_reason"] == "stop"
    # system 2 + user 2 + assistant 2 + user 2 words
    assert doc["usage"] == {"prompt_tokens": 8, "completion_tokens": 10, "total_tokens": 18}
    again = call(mock.port, "POST", "/v1/chat/completions", body).json()
    assert again["choices"][0]["message"]["content"] == content
    assert again["id"] != doc["id"]


def test_reply_echo_is_cut_to_64_characters(mock: MockProvider) -> None:
    message = " ".join(f"word{i:02d}" for i in range(30))  # 209 characters
    doc = call(mock.port, "POST", "/v1/chat/completions", chat_body(message, max_tokens=40)).json()
    words = doc["choices"][0]["message"]["content"].split()
    echoed = message[:64].split()
    assert words[:2] == ["mock", "reply:"]
    assert words[2 : 2 + len(echoed)] == echoed
    assert "word10" not in words
    assert len(words) == 40


def test_default_max_tokens_and_length_finish(mock: MockProvider) -> None:
    doc = call(mock.port, "POST", "/v1/chat/completions", chat_body("hi")).json()
    assert doc["usage"]["completion_tokens"] == 16
    assert len(doc["choices"][0]["message"]["content"].split()) == 16
    cut = call(mock.port, "POST", "/v1/chat/completions", chat_body("hello world", max_tokens=3)).json()
    assert cut["choices"][0]["message"]["content"] == "mock reply: hello"
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["usage"]["completion_tokens"] == 3


def test_mock_content_replaces_the_echo_in_every_api(mock: MockProvider) -> None:
    text = '{"label": "pos", "score": 0.9}'
    chat = call(mock.port, "POST", "/v1/chat/completions", chat_body("x", mock={"content": text})).json()
    assert chat["choices"][0]["message"]["content"] == text
    assert chat["usage"]["completion_tokens"] == 4
    completion = call(
        mock.port, "POST", "/v1/completions", {"model": "m", "prompt": "p", "mock": {"content": "a  b"}}
    ).json()
    assert completion["choices"][0]["text"] == "a b"  # words joined by single spaces
    stream = call(
        mock.port, "POST", "/v1/chat/completions", chat_body("x", stream=True, mock={"content": text})
    )
    chunks = [json.loads(e) for e in sse_data(stream.body)[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == text
    messages = call(
        mock.port,
        "POST",
        "/v1/messages",
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
            "mock": {"content": "ok"},
        },
    ).json()
    assert messages["content"][0]["text"] == "ok"
    bad = call(mock.port, "POST", "/v1/chat/completions", chat_body("x", mock={"content": 5}))
    assert bad.status == 400 and "mock.content" in bad.json()["error"]["message"]


def test_record_body_keeps_what_the_provider_received(start_mock: Any) -> None:
    port = start_mock().port
    first = chat_body("secret", mock={"record_body": True})
    call(port, "POST", "/v1/chat/completions", first, {"x-request-id": "r1"})
    call(
        port,
        "POST",
        "/v1/chat/completions",
        chat_body("again", mock={"record_body": True}),
        {"x-request-id": "r1"},
    )
    call(port, "POST", "/v1/chat/completions", chat_body("not kept"), {"x-request-id": "r2"})
    one = call(port, "GET", "/stats?request_id=r1").json()
    assert one["count"] == 2
    assert [json.loads(b)["messages"][0]["content"] for b in one["bodies"]] == ["secret", "again"]
    assert call(port, "GET", "/stats?request_id=r2").json()["bodies"] == []
    bad = call(port, "POST", "/v1/chat/completions", chat_body("x", mock={"record_body": "yes"}))
    assert bad.status == 400 and "mock.record_body" in bad.json()["error"]["message"]
    call(port, "POST", "/stats/reset")
    assert call(port, "GET", "/stats?request_id=r1").json() == {"request_id": "r1", "count": 0, "bodies": []}


def test_completion_shape(mock: MockProvider) -> None:
    resp = call(
        mock.port,
        "POST",
        "/v1/completions",
        {"model": "m1", "prompt": "tell me a story", "max_tokens": 7},
    )
    assert resp.status == 200
    doc = resp.json()
    assert doc["object"] == "text_completion"
    assert doc["id"].startswith("cmpl-")
    assert doc["model"] == "m1"
    assert doc["choices"][0]["text"].startswith("mock reply: tell me a story")
    assert len(doc["choices"][0]["text"].split()) == 7
    assert doc["choices"][0]["finish_reason"] == "stop"
    assert doc["usage"] == {"prompt_tokens": 4, "completion_tokens": 7, "total_tokens": 11}
    several = call(
        mock.port,
        "POST",
        "/v1/completions",
        {"model": "m1", "prompt": ["a b", "c"], "max_tokens": 4},
    )
    choices = several.json()["choices"]
    assert [c["index"] for c in choices] == [0, 1]
    assert choices[1]["text"].startswith("mock reply: c")
    assert several.json()["usage"]["prompt_tokens"] == 3


def test_embeddings_are_deterministic_unit_vectors(mock: MockProvider) -> None:
    one = call(mock.port, "POST", "/v1/embeddings", {"model": "emb", "input": "hello world"}).json()
    assert one["object"] == "list"
    assert one["model"] == "emb"
    assert len(one["data"]) == 1
    item = one["data"][0]
    assert item["object"] == "embedding"
    assert item["index"] == 0
    assert len(item["embedding"]) == 8
    assert math.isclose(math.fsum(v * v for v in item["embedding"]), 1.0, rel_tol=1e-4)
    assert one["usage"] == {"prompt_tokens": 2, "total_tokens": 2}

    many = call(
        mock.port,
        "POST",
        "/v1/embeddings",
        {"model": "emb", "input": ["hello world", "other text here"]},
    )
    data = many.json()["data"]
    assert [d["index"] for d in data] == [0, 1]
    assert data[0]["embedding"] == item["embedding"]
    assert data[1]["embedding"] != item["embedding"]
    assert many.json()["usage"]["prompt_tokens"] == 5

    wide = call(mock.port, "POST", "/v1/embeddings", {"model": "emb", "input": "x", "dimensions": 32}).json()
    assert len(wide["data"][0]["embedding"]) == 32


def test_anthropic_messages_shape(mock: MockProvider) -> None:
    body = {
        "model": "claude-test",
        "max_tokens": 6,
        "system": "you are terse",
        "messages": [{"role": "user", "content": "hello there"}],
    }
    resp = call(mock.port, "POST", "/v1/messages", body)
    assert resp.status == 200
    doc = resp.json()
    assert doc["type"] == "message"
    assert doc["role"] == "assistant"
    assert doc["model"] == "claude-test"
    assert doc["id"].startswith("msg_")
    assert doc["content"][0]["type"] == "text"
    assert doc["content"][0]["text"].startswith("mock reply: hello there")
    assert len(doc["content"][0]["text"].split()) == 6
    assert doc["stop_reason"] == "end_turn"
    assert doc["usage"] == {"input_tokens": 5, "output_tokens": 6}


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"])
@pytest.mark.parametrize("model", [None, 42])
def test_missing_or_non_string_model_is_400(mock: MockProvider, path: str, model: Any) -> None:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "x"}],
        "prompt": "x",
        "input": "x",
    }
    if model is not None:
        body["model"] = model
    resp = call(mock.port, "POST", path, body)
    assert resp.status == 400
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "model" in error["message"]
    assert error["code"]


def test_invalid_json_is_400(mock: MockProvider) -> None:
    resp = call(mock.port, "POST", "/v1/chat/completions", raw=b'{"model": "m", "messages": [')
    assert resp.status == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("path", ["/v1/nothing", "/nothing"])
def test_unknown_path_is_404_with_error_json(mock: MockProvider, path: str) -> None:
    resp = call(mock.port, "POST", path, chat_body())
    assert resp.status == 404
    error = resp.json()["error"]
    assert path in error["message"]
    assert error["type"] == "invalid_request_error"


def test_keep_alive_reuses_the_connection(mock: MockProvider) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, mock.port, timeout=5)
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps(chat_body()))
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        conn.request("POST", "/v1/chat/completions", body=json.dumps(chat_body()))
        second = conn.getresponse()
        second.read()
        assert (first.status, second.status) == (200, 200)
        assert conn.sock is sock and sock is not None
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(mock: MockProvider) -> None:
    first = post_bytes("/v1/completions", {"model": "m", "prompt": "first"})
    second = post_bytes("/v1/completions", {"model": "m", "prompt": "second"}, "Connection: close\r\n")
    data, error = raw_exchange(mock.port, first + second)
    assert error is None
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.index(b"mock reply: first") < data.index(b"mock reply: second")


def test_expect_100_continue_is_answered_at_once(mock: MockProvider) -> None:
    payload = json.dumps(chat_body("x" * 2000)).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((LOOPBACK, mock.port), timeout=0.5) as sock:
        sock.sendall(head)
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(payload)
        sock.settimeout(5)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")


# --- streaming -----------------------------------------------------------------------------------


def test_chat_stream_chunks_usage_and_done(mock: MockProvider) -> None:
    body = chat_body("hello world", max_tokens=6, stream=True, stream_options={"include_usage": True})
    resp = call(mock.port, "POST", "/v1/chat/completions", body)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    events = sse_data(resp.body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    content_chunks, usage_chunk = chunks[:-1], chunks[-1]
    assert len(content_chunks) == 6
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "mock-model" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert content_chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in content_chunks[1:])
    assert [c["choices"][0]["finish_reason"] for c in content_chunks] == [None] * 5 + ["stop"]
    text = "".join(c["choices"][0]["delta"]["content"] for c in content_chunks)
    plain = call(mock.port, "POST", "/v1/chat/completions", chat_body("hello world", max_tokens=6)).json()
    assert text == plain["choices"][0]["message"]["content"]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 2, "completion_tokens": 6, "total_tokens": 8}
    assert all(c["usage"] is None for c in content_chunks)


def test_chat_stream_without_usage_option(mock: MockProvider) -> None:
    resp = call(mock.port, "POST", "/v1/chat/completions", chat_body("hi", max_tokens=4, stream=True))
    events = sse_data(resp.body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) == 4
    assert all(c["choices"] and "usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_completion_stream(mock: MockProvider) -> None:
    body = {"model": "m", "prompt": "abc", "max_tokens": 4, "stream": True}
    events = sse_data(call(mock.port, "POST", "/v1/completions", body).body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks).startswith("mock reply: abc")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_events_are_flushed_one_by_one_at_the_token_interval(mock: MockProvider) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, mock.port, timeout=10)
    try:
        body = chat_body(max_tokens=5, stream=True, mock={"token_interval_ms": 150})
        started = time.monotonic()
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body))
        resp = conn.getresponse()
        arrivals = []
        while line := resp.readline():
            if line.startswith(b"data: "):
                arrivals.append(time.monotonic() - started)
    finally:
        conn.close()
    assert len(arrivals) == 6  # 5 tokens and [DONE]
    assert arrivals[0] < 0.5
    assert arrivals[-1] >= 5 * 0.15 - 0.01
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) > 0.1


def test_anthropic_stream_events(mock: MockProvider) -> None:
    body = {
        "model": "claude-test",
        "max_tokens": 4,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    resp = call(mock.port, "POST", "/v1/messages", body)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    blocks = [b for b in resp.body.decode().split("\n\n") if b.strip()]
    names = []
    payloads = []
    for block in blocks:
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        names.append(lines["event"])
        payloads.append(json.loads(lines["data"]))
        assert payloads[-1]["type"] == lines["event"]
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert payloads[0]["message"]["model"] == "claude-test"
    assert payloads[0]["message"]["usage"]["input_tokens"] == 1
    text = "".join(p["delta"]["text"] for p in payloads if p["type"] == "content_block_delta")
    assert text == "mock reply: hi lorem"
    assert payloads[-2]["delta"]["stop_reason"] == "end_turn"
    assert payloads[-2]["usage"]["output_tokens"] == 4


# --- faults --------------------------------------------------------------------------------------


def test_forced_429_carries_retry_after(mock: MockProvider) -> None:
    resp = call(mock.port, "POST", "/v1/chat/completions", chat_body(), {"x-mock-fault": "429"})
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "1"
    assert resp.headers["retry-after-ms"] is None
    error = resp.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"]

    body = chat_body(mock={"fault": "429", "retry_after": 3, "retry_after_ms": 1500})
    custom = call(mock.port, "POST", "/v1/chat/completions", body)
    assert custom.status == 429
    assert custom.headers["Retry-After"] == "3"
    assert custom.headers["retry-after-ms"] == "1500"


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [("500", "server_error"), ("503", "server_error"), ("404", "invalid_request_error")],
)
def test_forced_error_status(mock: MockProvider, fault: str, error_type: str) -> None:
    by_header = call(mock.port, "POST", "/v1/chat/completions", chat_body(), {"x-mock-fault": fault})
    by_body = call(
        mock.port,
        "POST",
        "/v1/completions",
        {"model": "m", "prompt": "p", "mock": {"fault": fault}},
    )
    for resp in (by_header, by_body):
        assert resp.status == int(fault)
        error = resp.json()["error"]
        assert error["type"] == error_type
        assert error["message"] and error["code"]


def test_anthropic_faults_use_anthropic_error_bodies(mock: MockProvider) -> None:
    body = {"model": "c", "messages": [{"role": "user", "content": "x"}]}
    resp = call(mock.port, "POST", "/v1/messages", body, {"x-mock-fault": "429"})
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "1"
    assert resp.json()["type"] == "error"
    assert resp.json()["error"]["type"] == "rate_limit_error"


def test_unknown_fault_name_is_400(mock: MockProvider) -> None:
    resp = call(mock.port, "POST", "/v1/chat/completions", chat_body(), {"x-mock-fault": "explode"})
    assert resp.status == 400
    assert "x-mock-fault" in resp.json()["error"]["message"]


def test_hang_never_answers_and_blocks_nothing_else(mock: MockProvider) -> None:
    hung = http.client.HTTPConnection(LOOPBACK, mock.port, timeout=1.0)
    try:
        hung.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps(chat_body()),
            headers={"x-mock-fault": "hang"},
        )
        started = time.monotonic()
        # Other requests keep flowing while the hung one is open.
        for _ in range(20):
            assert call(mock.port, "POST", "/v1/chat/completions", chat_body(), timeout=1.0).status == 200
        with pytest.raises(TimeoutError):
            hung.getresponse()
        assert time.monotonic() - started >= 0.9
    finally:
        hung.close()


def test_reset_closes_with_rst(mock: MockProvider) -> None:
    data, error = raw_exchange(
        mock.port, post_bytes("/v1/chat/completions", chat_body(), "x-mock-fault: reset\r\n")
    )
    assert data == b""
    assert isinstance(error, ConnectionResetError)


def test_malformed_is_200_json_that_does_not_parse(mock: MockProvider) -> None:
    resp = call(mock.port, "POST", "/v1/chat/completions", chat_body(), {"x-mock-fault": "malformed"})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        resp.json()


def test_truncated_stream_has_chunks_but_no_done(mock: MockProvider) -> None:
    body = chat_body(max_tokens=10, stream=True)
    data, _ = raw_exchange(mock.port, post_bytes("/v1/chat/completions", body, "x-mock-fault: truncate\r\n"))
    assert data.startswith(b"HTTP/1.1 200")
    assert b"chat.completion.chunk" in data
    assert b"[DONE]" not in data
    assert not data.endswith(b"0\r\n\r\n")
    # http.client sees the stream end early.
    conn = http.client.HTTPConnection(LOOPBACK, mock.port, timeout=5)
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps(body),
            headers={"x-mock-fault": "truncate"},
        )
        with pytest.raises(http.client.IncompleteRead):
            conn.getresponse().read()
    finally:
        conn.close()


def test_truncated_plain_response_is_short_of_its_content_length(mock: MockProvider) -> None:
    conn = http.client.HTTPConnection(LOOPBACK, mock.port, timeout=5)
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps(chat_body()),
            headers={"x-mock-fault": "truncate"},
        )
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
    finally:
        conn.close()


def test_wrong_content_type_is_html(mock: MockProvider) -> None:
    resp = call(
        mock.port,
        "POST",
        "/v1/chat/completions",
        chat_body(),
        {"x-mock-fault": "wrong-content-type"},
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.body.lstrip().startswith(b"<")


def test_fault_times_then_success_per_request_id(mock: MockProvider) -> None:
    rid = f"rid-{uuid.uuid4()}"
    body = chat_body(mock={"fault": "429", "fault_times": 2})
    statuses = [
        call(mock.port, "POST", "/v1/chat/completions", body, {"x-request-id": rid}).status for _ in range(4)
    ]
    assert statuses == [429, 429, 200, 200]
    other = call(mock.port, "POST", "/v1/chat/completions", body, {"x-request-id": f"other-{uuid.uuid4()}"})
    assert other.status == 429
    assert other.headers["x-request-id"].startswith("other-")
    rid2 = f"rid-{uuid.uuid4()}"
    by_header = [
        call(
            mock.port,
            "POST",
            "/v1/chat/completions",
            chat_body(),
            {"x-request-id": rid2, "x-mock-fault": "503", "x-mock-fault-times": "1"},
        ).status
        for _ in range(2)
    ]
    assert by_header == [503, 200]


def test_configured_fault_probability(start_mock: Any) -> None:
    provider = start_mock("--fault-500", "1", "--seed", "7")
    assert call(provider.port, "POST", "/v1/chat/completions", chat_body()).status == 500
    assert call(provider.port, "POST", "/v1/embeddings", {"model": "e", "input": "x"}).status == 500
    forced_ok = call(provider.port, "POST", "/v1/chat/completions", chat_body(), {"x-mock-fault": "none"})
    assert forced_ok.status == 200
    assert call(provider.port, "GET", "/health").status == 200


def test_half_fault_probability_is_roughly_half(start_mock: Any) -> None:
    provider = start_mock("--fault-429", "0.5", "--seed", "1")
    statuses = [call(provider.port, "POST", "/v1/chat/completions", chat_body()).status for _ in range(200)]
    assert set(statuses) == {200, 429}
    assert 60 <= statuses.count(429) <= 140


# --- latency -------------------------------------------------------------------------------------


def test_latency_option_and_overrides(start_mock: Any) -> None:
    provider = start_mock("--latency-ms", "300")

    def timed(**kwargs: Any) -> float:
        started = time.monotonic()
        assert call(provider.port, "POST", "/v1/chat/completions", **kwargs).status == 200
        return time.monotonic() - started

    assert timed(body=chat_body()) >= 0.29
    assert timed(body=chat_body(), headers={"x-mock-latency-ms": "0"}) < 0.25
    assert 0.49 <= timed(body=chat_body(mock={"latency_ms": 500})) < 2.0
    assert timed(body=chat_body(mock={"latency_ms": 0}), headers={"x-mock-latency-ms": "400"}) < 0.25


def test_lognormal_latency_varies_around_its_median(start_mock: Any) -> None:
    provider = start_mock("--latency-ms", "60", "--latency-dist", "lognormal", "--latency-sigma", "0.5")

    def timed(_: int) -> float:
        started = time.monotonic()
        assert call(provider.port, "POST", "/v1/chat/completions", chat_body()).status == 200
        return time.monotonic() - started

    with ThreadPoolExecutor(max_workers=20) as pool:
        durations = list(pool.map(timed, range(60)))
    assert 0.04 <= statistics.median(durations) <= 0.2
    assert max(durations) - min(durations) > 0.03


def test_2000_concurrent_delayed_requests_finish_together(mock: MockProvider) -> None:
    count = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 500), hard))
    request = post_bytes(
        "/v1/chat/completions", chat_body(), "x-mock-latency-ms: 1000\r\nConnection: close\r\n"
    )
    selector = selectors.DefaultSelector()
    received: dict[socket.socket, bytearray] = {}
    started = time.monotonic()
    try:
        for _ in range(count):
            sock = socket.create_connection((LOOPBACK, mock.port), timeout=5)
            sock.sendall(request)
            sock.setblocking(False)
            received[sock] = bytearray()
            selector.register(sock, selectors.EVENT_READ)
        all_sent = time.monotonic() - started
        open_count = count
        deadline = started + 10
        while open_count and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                chunk = sock.recv(65536)
                if chunk:
                    received[sock] += chunk
                else:
                    selector.unregister(sock)
                    open_count -= 1
        elapsed = time.monotonic() - started
    finally:
        selector.close()
        for sock in received:
            sock.close()
    assert open_count == 0
    assert all(bytes(data).startswith(b"HTTP/1.1 200 ") for data in received.values())
    assert 1.0 <= elapsed < 3.0, f"all sent after {all_sent:.2f} s, all answered after {elapsed:.2f} s"


# --- stats and admin -----------------------------------------------------------------------------


def test_stats_count_per_request_id_and_reset(start_mock: Any) -> None:
    provider = start_mock()
    port = provider.port
    for _ in range(2):
        call(port, "POST", "/v1/chat/completions", chat_body(), {"x-request-id": "alpha"})
    call(
        port,
        "POST",
        "/v1/embeddings",
        {"model": "e", "input": "x"},
        {"x-request-id": "alpha", "x-mock-fault": "500"},
    )
    call(port, "POST", "/v1/completions", {"model": "m", "prompt": "p"})
    call(port, "POST", "/v1/chat/completions", {"messages": []}, {"x-request-id": "beta"})
    call(port, "GET", "/health")
    stats = call(port, "GET", "/stats").json()
    assert stats["total"] == 5
    assert stats["by_status"] == {"200": 3, "500": 1, "400": 1}
    assert stats["by_request_id"] == {"alpha": 3, "": 1, "beta": 1}
    assert stats["by_fault"] == {"500": 1}
    one = call(port, "GET", "/stats?request_id=alpha").json()
    assert one == {"request_id": "alpha", "count": 3, "bodies": []}
    assert call(port, "GET", "/stats?request_id=never").json()["count"] == 0

    assert call(port, "POST", "/stats/reset").status == 200
    cleared = call(port, "GET", "/stats").json()
    assert cleared["total"] == 0
    assert cleared["by_status"] == {} and cleared["by_request_id"] == {}
    call(port, "POST", "/v1/chat/completions", chat_body(), {"x-request-id": "alpha"})
    assert call(port, "GET", "/stats?request_id=alpha").json()["count"] == 1


def test_stats_stay_valid_json_for_non_utf8_request_ids(start_mock: Any) -> None:
    provider = start_mock()
    conn = http.client.HTTPConnection(LOOPBACK, provider.port, timeout=5)
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps(chat_body()),
            headers={"x-request-id": b"id-\xff\xfe"},
        )
        assert conn.getresponse().read()
    finally:
        conn.close()
    stats = call(provider.port, "GET", "/stats").json()
    assert stats["by_request_id"] == {"id-\ufffd\ufffd": 1}


def test_admin_config_switches_a_429_storm(start_mock: Any) -> None:
    provider = start_mock("--retry-after", "2")
    port = provider.port
    config = call(port, "GET", "/admin/config").json()
    assert config["fault_429"] == 0
    assert config["retry_after"] == 2
    assert config["latency_dist"] == "fixed"
    assert call(port, "POST", "/v1/chat/completions", chat_body()).status == 200

    updated = call(port, "POST", "/admin/config", {"fault_429": 1.0, "retry_after": 5, "latency_ms": 20})
    assert updated.status == 200
    assert updated.json()["fault_429"] == 1.0
    storm = [call(port, "POST", "/v1/chat/completions", chat_body()) for _ in range(10)]
    assert {r.status for r in storm} == {429}
    assert {r.headers["Retry-After"] for r in storm} == {"5"}
    assert call(port, "GET", "/admin/config").json()["latency_ms"] == 20

    assert call(port, "POST", "/admin/config", {"fault_429": 0}).status == 200
    assert all(call(port, "POST", "/v1/chat/completions", chat_body()).status == 200 for _ in range(10))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"fault_429": 1.5}, "fault_429"),
        ({"latency_dist": "uniform"}, "latency_dist"),
        ({"no_such_knob": 1}, "no_such_knob"),
        ({"fault_500": 0.7, "fault_503": 0.7}, "fault"),
    ],
)
def test_admin_config_rejects_bad_values(start_mock: Any, change: dict[str, Any], named: str) -> None:
    provider = start_mock()
    before = call(provider.port, "GET", "/admin/config").json()
    resp = call(provider.port, "POST", "/admin/config", change)
    assert resp.status == 400
    assert named in resp.json()["error"]["message"]
    assert call(provider.port, "GET", "/admin/config").json() == before


# --- Unix socket ---------------------------------------------------------------------------------


def test_unix_socket_serves_http(start_mock: Any) -> None:
    # Unix socket paths are limited to ~100 bytes, so not under pytest's long tmp_path.
    with tempfile.TemporaryDirectory(prefix="mock-") as directory:
        path = os.path.join(directory, "provider.sock")
        provider = start_mock("--unix-socket", path)
        assert provider.listening["unix_socket"] == path
        conn = UnixHTTPConnection(path, timeout=5)
        try:
            conn.request("POST", "/v1/chat/completions", body=json.dumps(chat_body("over uds")))
            resp = conn.getresponse()
            doc = json.loads(resp.read())
        finally:
            conn.close()
        assert resp.status == 200
        assert doc["choices"][0]["message"]["content"].startswith("mock reply: over uds")
        assert call(provider.port, "GET", "/health").status == 200  # TCP still served
        assert provider.stop() == 0
        assert not os.path.exists(path)


def test_stale_unix_socket_file_is_replaced(start_mock: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="mock-") as directory:
        path = os.path.join(directory, "provider.sock")
        with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as stale:
            stale.bind(path)  # left behind, nobody listening
        provider = start_mock("--unix-socket", path)
        conn = UnixHTTPConnection(path, timeout=5)
        try:
            conn.request("GET", "/health")
            assert conn.getresponse().status == 200
        finally:
            conn.close()
        assert provider.proc.poll() is None
