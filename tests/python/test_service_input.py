"""Bad input that used to pass (issue 20): NaN/Infinity, numbers out of a double's range and
unpaired surrogates (poison for the workers) and deep nesting are a 422 naming the problem; the
body limit is the largest request the producer can write (librdkafka's message.max.bytes less
the record's overhead, key and headers), so a body between that and maxRequestBytes is a 413,
not a 503. Every rejection produces nothing; what the limits allow is produced and answered."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pipeline_helpers import make_topics, read_until
from service_helpers import Service, high_watermarks, service_on_stack
from websockets.sync.client import connect

from kafka_llm import _core
from kafka_llm.devstack import StackInfo
from kafka_llm.errors import KafkaError
from kafka_llm.service.limits import REQUEST_HEADERS, max_body_bytes, max_envelope_bytes
from kafka_llm.service.strict_json import MAX_DEPTH

pytestmark = pytest.mark.stack

PATHS = ["/process", "/v1/chat/completions"]


@pytest.fixture(scope="module")
def service(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    name = f"t-svc-input-{secrets.token_hex(4)}"
    with service_on_stack(stack, name, tmp_path_factory.mktemp("svc-input"), partitions=1) as running:
        yield running


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as c:
        yield c


def _body(path: str, **extra: Any) -> dict[str, Any]:
    if path == "/process":
        return {"model": "mock-model", "prompt": "input", **extra}
    return {"model": "mock-model", "messages": [{"role": "user", "content": "input"}], **extra}


def _raw(path: str, member: str) -> bytes:
    """A valid body of ``path`` with ``"x": <member>`` spliced in as raw JSON text."""
    return json.dumps(_body(path)).encode()[:-1] + b', "x": ' + member.encode() + b"}"


def _record(stack: StackInfo, service: Service, request_id: str) -> bytes:
    records = read_until(
        stack, service.topics.requests, lambda rs: any(r.key == request_id.encode() for r in rs), timeout=20
    )
    (record,) = [r for r in records if r.key == request_id.encode()]
    value: bytes = record.value
    return value


def _request_id(path: str, response: httpx.Response) -> str:
    return str(response.json()["request_id"] if path == "/process" else response.headers["x-request-id"])


def _assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"} and error["code"] == code, error
    assert error["type"] == "invalid_request_error"
    return error


def test_the_limit_is_what_the_producer_can_write(
    stack: StackInfo, service: Service, unique_name: str
) -> None:
    gateway = service.app.state.gateway
    limit = gateway.max_envelope_bytes
    # The default config: maxRequestBytes is 1 MiB, librdkafka's message.max.bytes 1,000,000.
    assert limit == gateway.max_body_bytes == 991_658
    assert max_envelope_bytes(1 << 20, {"message.max.bytes": "2000000"}) == 1 << 20
    assert max_envelope_bytes(500_000, {}) == 500_000
    assert max_body_bytes(1 << 20, {}, 4096) == 4096 and max_body_bytes(1 << 20, {}, 1 << 30) == limit
    # librdkafka itself: a request record at the limit, with the largest headers, is accepted;
    # one byte more is refused at produce time.
    topic = make_topics(stack, unique_name, partitions=1).requests
    headers = [(name, b"x" * size) for name, size in REQUEST_HEADERS]
    with _core.DeliveryProducer({"bootstrap.servers": stack.bootstrap_servers}) as producer:
        producer.produce(topic, b"v" * limit, b"k" * 32, headers)
        with pytest.raises(KafkaError, match="too large"):
            producer.produce(topic, b"v" * (limit + 1), b"k" * 32, headers)
        assert all(error is None for _, error, *_ in producer.flush(20_000))


@pytest.mark.parametrize("path", PATHS)
def test_a_request_at_the_limit_is_produced_and_one_byte_more_is_413(
    stack: StackInfo, service: Service, client: httpx.Client, path: str
) -> None:
    limit = service.app.state.gateway.max_envelope_bytes
    probe = client.post(path, json=_body(path, padding="p"))
    assert probe.status_code in (200, 202), probe.text
    base = len(_record(stack, service, _request_id(path, probe)))
    at_limit = _body(path, padding="p" * (limit - base + 1))
    response = client.post(path, json=at_limit)
    assert response.status_code == (202 if path == "/process" else 200), response.text[:500]
    assert len(_record(stack, service, _request_id(path, response))) == limit

    before = high_watermarks(stack, service.topics.requests)
    over = _body(path, padding="p" * (limit - base + 2))
    error = _assert_error(client.post(path, json=over), 413, "request_too_large")
    assert f"the limit is {limit}" in error["message"]
    assert high_watermarks(stack, service.topics.requests) == before


@pytest.mark.parametrize("path", PATHS)
def test_bodies_between_the_limit_and_maxrequestbytes_are_413_not_503(
    stack: StackInfo, service: Service, client: httpx.Client, path: str
) -> None:
    limit = service.app.state.gateway.max_body_bytes
    before = high_watermarks(stack, service.topics.requests)
    body = json.dumps(_body(path, padding="p" * 1_030_000)).encode()
    assert limit < 1_000_000 < len(body) < 1 << 20
    error = _assert_error(client.post(path, content=body), 413, "request_too_large")
    assert str(limit) in error["message"]
    # Just over the limit, without a Content-Length: counted while reading.
    just_over = json.dumps(_body(path, padding="p" * limit)).encode()[: limit + 1]

    def chunked() -> Iterator[bytes]:
        for at in range(0, len(just_over), 65536):
            yield just_over[at : at + 65536]

    response = client.post(path, content=chunked(), headers={"content-type": "application/json"})
    _assert_error(response, 413, "request_too_large")
    assert high_watermarks(stack, service.topics.requests) == before


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("member", "named"),
    [
        ("NaN", "NaN is not valid JSON"),
        ("Infinity", "Infinity is not valid JSON"),
        ("[1, -Infinity]", "-Infinity is not valid JSON"),
        ("1e400", "the number 1e400 is out of range"),
        ('"\\ud800 alone"', "unpaired UTF-16 surrogate (\\ud800)"),
    ],
)
def test_json_the_workers_cannot_read_is_422_and_produces_nothing(
    stack: StackInfo, service: Service, client: httpx.Client, path: str, member: str, named: str
) -> None:
    before = high_watermarks(stack, service.topics.requests)
    response = client.post(path, content=_raw(path, member), headers={"content-type": "application/json"})
    error = _assert_error(response, 422, "unprocessable_entity")
    assert named in error["message"] and error["param"] == "body", error
    assert high_watermarks(stack, service.topics.requests) == before


@pytest.mark.parametrize("path", PATHS)
def test_nesting_beyond_the_limit_is_422_and_the_deepest_allowed_is_answered(
    stack: StackInfo, service: Service, client: httpx.Client, path: str
) -> None:
    """MAX_DEPTH counts the body itself: one level under the workers' limit for the whole
    envelope, so the deepest body allowed is read by a worker (not dead-lettered as poison)."""
    json_type = {"content-type": "application/json"}
    before = high_watermarks(stack, service.topics.requests)
    for arrays in (100_000, MAX_DEPTH):  # with the body: 100,001 and MAX_DEPTH + 1 levels
        response = client.post(path, content=_raw(path, "[" * arrays + "]" * arrays), headers=json_type)
        error = _assert_error(response, 422, "unprocessable_entity")
        assert f"nested deeper than {MAX_DEPTH} levels" in error["message"] and error["param"] == "body"
    assert high_watermarks(stack, service.topics.requests) == before
    deepest = _raw(path, "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    response = client.post(path, content=deepest, headers=json_type)
    if path == "/v1/chat/completions":
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"].startswith("mock reply: input")
        return
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    deadline = time.monotonic() + 20
    while (result := client.get(f"/result/{request_id}").json()).get("status") == "pending":
        assert time.monotonic() < deadline, "the request stayed pending"
        time.sleep(0.05)
    assert str(result.get("output")).startswith("mock reply: input"), result


def test_websocket_messages_get_the_same_checks(stack: StackInfo, service: Service) -> None:
    limit = service.app.state.gateway.max_body_bytes
    url = service.url.replace("http://", "ws://") + "/v1/completions"
    request = {"model": "mock-model", "prompt": "socket"}
    bad = [
        ('{"model": "mock-model", "prompt": "x", "temperature": NaN}', 422, "NaN is not valid JSON"),
        ('{"model": "mock-model", "prompt": "\\udc00"}', 422, "unpaired UTF-16 surrogate"),
        ('{"model": "mock-model", "prompt": "x", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", 422, "nested"),
        (json.dumps({**request, "padding": "p" * limit}), 413, f"larger than {limit} bytes"),
    ]
    before = high_watermarks(stack, service.topics.requests)
    with connect(url, additional_headers=service.headers(), open_timeout=10, max_size=None) as ws:
        for text, status, named in bad:
            ws.send(text)
            error = json.loads(ws.recv(timeout=20))["error"]
            expected = "request_too_large" if status == 413 else "unprocessable_entity"
            assert error["code"] == expected and named in error["message"], error
        assert high_watermarks(stack, service.topics.requests) == before
        ws.send(json.dumps(request))  # the connection stays usable
        while not (message := json.loads(ws.recv(timeout=20))).get("done"):
            assert "error" not in message, message
    assert high_watermarks(stack, service.topics.requests) != before
