"""API keys stay out of URLs and logs (issue 20): ``kafka-llm api`` redacts credential-like query
parameters in uvicorn's logs in every worker process, and the WebSocket takes its key from the
Authorization header or a first message, refusing one in the query string."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pipeline_helpers import make_topics, wait_for
from service_helpers import Service, config_document, free_port, service_on_stack
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from kafka_llm import Pipeline, load_config
from kafka_llm.devstack import StackInfo
from kafka_llm.service.keystore import KeyStore, make_engine

pytestmark = pytest.mark.stack

CHAT = {"model": "mock-model", "messages": [{"role": "user", "content": "secrets"}]}


def _ws_url(base: str, query: str = "") -> str:
    return base.replace("http://", "ws://") + "/v1/completions" + query


def _refusal(ws: ClientConnection) -> tuple[dict[str, Any], int | None]:
    """The error message the server sent, and the close code that followed it."""
    error: dict[str, Any] = json.loads(ws.recv(timeout=10))["error"]
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    return error, closed.value.rcvd.code if closed.value.rcvd is not None else None


def _answered(ws: ClientConnection, prompt: str) -> dict[str, Any]:
    ws.send(json.dumps({"model": "mock-model", "prompt": prompt}))
    text = ""
    while not (message := json.loads(ws.recv(timeout=20))).get("done"):
        assert "error" not in message, message
        text += "".join(c["text"] for c in message["choices"])
    assert text.startswith(f"mock reply: {prompt}")
    return message


def test_keys_in_query_strings_never_reach_the_logs(
    stack: StackInfo, tmp_path: Path, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config_document(stack, topics)))
    database_url = f"sqlite:///{tmp_path}/keys.db"
    token, _ = KeyStore(make_engine(database_url)).create("secrets")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "KAFKA_LLM_DATABASE_URL": database_url}
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
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    secrets_sent = [f"s3cret-{secrets.token_hex(8)}" for _ in range(24)]
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        server = subprocess.Popen(
            [*command, "--workers", "2", "--log-level", "info"], env=env, stdout=out, stderr=err
        )
        try:
            with Pipeline(load_config(str(config_path), env={})):

                def ready() -> bool:
                    assert server.poll() is None, f"kafka-llm api exited: {stderr.read_text()[-2000:]}"
                    try:
                        return httpx.get(f"{url}/health/ready", timeout=5).status_code == 200
                    except httpx.TransportError:
                        return False

                wait_for(ready, 30, "kafka-llm api to be ready")
                # One connection per call, so that both worker processes serve some.
                for i, secret in enumerate(secrets_sent[:20]):
                    if i % 4 == 0:
                        assert httpx.get(f"{url}/health?api_key={secret}", timeout=10).status_code == 200
                    elif i % 4 == 1:  # REST takes no key from the query: a 401 saying so, logged
                        response = httpx.post(f"{url}/v1/chat/completions?api_key={secret}", json=CHAT)
                        assert response.status_code == 401
                        assert response.json()["error"]["code"] == "api_key_in_url"
                        assert secret not in response.text
                    elif i % 4 == 2:
                        response = httpx.post(
                            f"{url}/v1/chat/completions?model=x&access_token={secret}",
                            json=CHAT,
                            headers={"Authorization": f"Bearer {token}"},
                            timeout=30,
                        )
                        assert response.status_code == 200, response.text
                    else:
                        assert (
                            httpx.get(f"{url}/result/x?Password={secret}&API%5FKEY={secret}").status_code
                            == 401
                        )
                for secret in [*secrets_sent[20:], token]:
                    with connect(_ws_url(url, f"?api_key={secret}"), open_timeout=10) as ws:
                        error, code = _refusal(ws)
                    assert code == 1008 and error["code"] == "api_key_in_url", error
                    assert "Authorization" in error["message"] and '{"api_key"' in error["message"]
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=30) == 0
    logs = stdout.read_text() + stderr.read_text()
    for secret in [*secrets_sent, token]:
        assert secret not in logs
    # The calls were logged, with their query strings redacted (each by the process serving it).
    assert logs.count("/health?api_key=REDACTED HTTP/1.1") == 5
    assert logs.count('/v1/chat/completions?api_key=REDACTED HTTP/1.1" 401') == 5
    assert logs.count('/v1/chat/completions?model=x&access_token=REDACTED HTTP/1.1" 200') == 5
    assert logs.count('/result/x?Password=REDACTED&API%5FKEY=REDACTED HTTP/1.1" 401') == 5
    assert logs.count('"WebSocket /v1/completions?api_key=REDACTED"') == 5


@pytest.fixture(scope="module")
def service(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    name = f"t-svc-secrets-{secrets.token_hex(4)}"
    with service_on_stack(stack, name, tmp_path_factory.mktemp("svc-secrets"), partitions=1) as running:
        yield running


def test_websocket_takes_the_key_from_the_header_or_a_first_message(service: Service) -> None:
    with connect(_ws_url(service.url), additional_headers=service.headers(), open_timeout=10) as ws:
        assert _answered(ws, "by header")["request_id"]
        _answered(ws, "and again")
    for first in ({"api_key": service.api_key}, {"authorization": f"Bearer {service.api_key}"}):
        with connect(_ws_url(service.url), open_timeout=10) as ws:
            ws.send(json.dumps(first))
            _answered(ws, "by message")
            _answered(ws, "and again")


@pytest.mark.parametrize(
    ("first", "code"),
    [
        ({"api_key": "kllm_nope_nope"}, "invalid_api_key"),
        ({"authorization": "Basic abc"}, "invalid_api_key"),
        ({"model": "mock-model", "prompt": "a request before any key"}, "missing_api_key"),
    ],
)
def test_websocket_without_a_valid_key_in_its_first_message_is_closed(
    service: Service, first: dict[str, str], code: str
) -> None:
    with connect(_ws_url(service.url), open_timeout=10) as ws:
        ws.send(json.dumps(first))
        error, close_code = _refusal(ws)
    assert close_code == 1008 and error["code"] == code, error
    if code == "missing_api_key":
        assert '{"api_key": "<key>"}' in error["message"] and "Authorization" in error["message"]


def test_websocket_key_in_the_query_is_refused_even_with_a_header(service: Service) -> None:
    url = _ws_url(service.url, f"?api_key={service.api_key}")
    with connect(url, additional_headers=service.headers(), open_timeout=10) as ws:
        error, code = _refusal(ws)
    assert code == 1008 and error["code"] == "api_key_in_url"
    assert error["message"].startswith("API keys are not accepted in the URL (?api_key=…)")
