"""The OpenAI-compatible endpoints on the real stack, driven by the official ``openai`` client
(streaming included) and by a WebSocket client; the prompt/response cache (issue 6)."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from service_helpers import Service, high_watermarks, service_on_stack
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from kafka_llm.devstack import StackInfo

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def service(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    name = f"t-svc-openai-{secrets.token_hex(4)}"
    with service_on_stack(stack, name, tmp_path_factory.mktemp("svc-openai")) as running:
        yield running


@pytest.fixture
def client(service: Service) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{service.url}/v1", api_key=service.api_key, max_retries=0, timeout=30) as c:
        yield c


def _unique() -> str:
    return f"p-{secrets.token_hex(6)}"


def _mock_total(stack: StackInfo) -> int:
    with urllib.request.urlopen(f"{stack.provider_base}/stats", timeout=5) as response:
        return int(json.load(response)["total"])


def test_openai_client_chat_completion(client: openai.OpenAI) -> None:
    prompt = _unique()
    completion = client.chat.completions.create(
        model="mock-model", messages=[{"role": "user", "content": prompt}], temperature=0
    )
    assert completion.object == "chat.completion"
    content = completion.choices[0].message.content
    assert content is not None and content.startswith(f"mock reply: {prompt}")
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_openai_client_streams_tokens_as_they_arrive(client: openai.OpenAI) -> None:
    prompt = _unique()
    started = time.monotonic()
    arrivals: list[float] = []
    pieces: list[str] = []
    stream = client.chat.completions.create(
        model="mock-model",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        extra_body={"mock": {"token_interval_ms": 60}},
    )
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
                arrivals.append(time.monotonic() - started)
    text = "".join(pieces)
    assert text.startswith(f"mock reply: {prompt}")
    assert len(arrivals) >= 10
    # Relayed token by token: the first token is here long before the last one was generated.
    assert arrivals[-1] - arrivals[0] > 0.4, arrivals


def test_openai_client_talks_to_an_anthropic_provider(client: openai.OpenAI) -> None:
    """The worker maps bodies both ways; the service turns the relayed Anthropic stream events
    into OpenAI chunks."""
    prompt = _unique()
    messages: Any = [{"role": "user", "content": prompt}]
    completion = client.chat.completions.create(model="claude-test", messages=messages, max_tokens=6)
    content = completion.choices[0].message.content
    assert content is not None and content.startswith(f"mock reply: {prompt}")
    chunks = list(
        client.chat.completions.create(
            model="claude-test",
            messages=[{"role": "user", "content": _unique()}],
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("mock reply: p-")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"  # end_turn
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_openai_client_completions_and_embeddings(client: openai.OpenAI) -> None:
    prompt = _unique()
    completion = client.completions.create(model="mock-model", prompt=prompt, max_tokens=8)
    assert completion.choices[0].text.startswith(f"mock reply: {prompt}")
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(model="mock-model", prompt=prompt, stream=True)
        if c.choices
    )
    assert streamed.startswith(f"mock reply: {prompt}")
    embedding = client.embeddings.create(model="mock-embed", input=[prompt, "two"])
    assert len(embedding.data) == 2 and len(embedding.data[0].embedding) > 0


def test_openai_client_sees_provider_and_service_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):  # the provider's 404, relayed with its status
        client.chat.completions.create(
            model="mock-model",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"mock": {"fault": "404"}},
        )
    with pytest.raises(openai.NotFoundError):  # before the first token of a stream, too
        client.chat.completions.create(
            model="mock-model",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            extra_body={"mock": {"fault": "404"}},
        )
    with pytest.raises(openai.BadRequestError, match="unknown provider"):
        client.chat.completions.create(
            model="mock-model", messages=[{"role": "user", "content": "x"}], extra_body={"provider": "nope"}
        )
    with pytest.raises(openai.UnprocessableEntityError, match="messages"):
        client.chat.completions.create(model="mock-model", messages=[])


def test_cache_hit_is_served_and_streamed_without_kafka_or_provider(
    stack: StackInfo, service: Service, client: openai.OpenAI
) -> None:
    messages: Any = [{"role": "user", "content": _unique()}]
    first = client.chat.completions.with_raw_response.create(
        model="mock-model", messages=messages, temperature=0
    )
    assert first.headers.get("x-kafka-llm-cache") is None
    provider_calls = _mock_total(stack)
    produced = high_watermarks(stack, service.topics.requests)

    second = client.chat.completions.with_raw_response.create(
        model="mock-model", messages=messages, temperature=0
    )
    assert second.headers["x-kafka-llm-cache"] == "hit"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="mock-model", messages=messages, temperature=0, stream=True
        )
        if c.choices
    )
    assert streamed == first.parse().choices[0].message.content
    other = client.chat.completions.with_raw_response.create(
        model="mock-model", messages=messages, temperature=1
    )
    assert other.headers.get("x-kafka-llm-cache") is None  # parameters are part of the key

    assert _mock_total(stack) == provider_calls + 1  # only the call with other parameters
    assert sum(high_watermarks(stack, service.topics.requests)) == sum(produced) + 1
    metrics = httpx.get(f"{service.url}/metrics").text
    assert "kafka_llm_cache_hits_total 2.0" in metrics


def test_a_stream_fills_the_cache_for_the_plain_call(stack: StackInfo, client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": _unique()}]
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="mock-model", messages=messages, stream=True)
        if c.choices
    )
    calls = _mock_total(stack)
    hit = client.chat.completions.with_raw_response.create(model="mock-model", messages=messages)
    assert hit.headers["x-kafka-llm-cache"] == "hit"
    assert hit.parse().choices[0].message.content == streamed
    assert _mock_total(stack) == calls


def _socket(service: Service, key: str | None = None) -> Any:
    url = service.url.replace("http://", "ws://") + "/v1/completions"
    return connect(url, additional_headers=service.headers(key), open_timeout=10)


def test_websocket_streams_completions_and_chats(service: Service) -> None:
    prompt = _unique()
    with _socket(service) as ws:
        ws.send(json.dumps({"model": "mock-model", "prompt": prompt, "mock": {"token_interval_ms": 20}}))
        chunks: list[dict[str, Any]] = []
        while True:
            message = json.loads(ws.recv(timeout=20))
            if message.get("done"):
                break
            chunks.append(message)
        assert len(chunks) > 5
        assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]).startswith(
            f"mock reply: {prompt}"
        )
        assert message["usage"]["completion_tokens"] > 0 and message["request_id"]
        # A second request on the same connection, as a chat, and a bad one that keeps it open.
        ws.send(json.dumps({"model": "mock-model", "messages": [{"role": "user", "content": prompt}]}))
        contents = []
        while not (message := json.loads(ws.recv(timeout=20))).get("done"):
            contents.extend(c["delta"].get("content") or "" for c in message["choices"])
        assert "".join(contents).startswith(f"mock reply: {prompt}")
        ws.send(json.dumps({"prompt": "no model"}))
        error = json.loads(ws.recv(timeout=20))["error"]
        assert error["code"] == "unprocessable_entity" and error["param"] == "model"


def test_websocket_without_a_valid_key_is_refused(service: Service) -> None:
    with _socket(service, key="kllm_nope_nope") as ws:
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == "invalid_api_key"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_a_client_leaving_mid_stream_frees_its_wait(service: Service) -> None:
    body = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": _unique()}],
        "stream": True,
        "max_tokens": 30,  # 3 s of tokens: still streaming when the client leaves
        "mock": {"token_interval_ms": 100},
    }
    with (
        httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):  # leaves after the first token
        assert response.status_code == 200
        lines = response.iter_lines()  # kept: dropping the iterator would close the connection
        first = next(line for line in lines if line.startswith("data: "))
        assert json.loads(first[6:])["object"] == "chat.completion.chunk"
        assert "kafka_llm_inflight 1.0" in httpx.get(f"{service.url}/metrics").text
    deadline = time.monotonic() + 10
    while "kafka_llm_inflight 0.0" not in httpx.get(f"{service.url}/metrics").text:
        assert time.monotonic() < deadline, "the service still waits for a stream nobody reads"
        time.sleep(0.1)
