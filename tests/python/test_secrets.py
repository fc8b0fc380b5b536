"""Secrets read from files (issue 17.4): a provider key planted through ``apiKeyFile``, a
``sasl.password.file`` value, a Redis password from ``redis.passwordFile`` and the service's pepper
from ``KAFKA_LLM_API_KEY_PEPPER_FILE`` never appear in any output: the worker's log, config errors,
``/metrics``, ``/stats``, response and dead-letter records (values and headers), the stored results,
the service's error bodies and logs, and the OTel spans of the worker and the service. The provider
here is hostile: like OpenAI's "Incorrect API key provided: sk-...", its 401 body repeats the key."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_lib
import yaml
from pipeline_helpers import Collector, envelope, make_topics, produce, stop_process, wait_for, worker_env
from service_helpers import run_server

from kafka_llm import ConfigError, load_config
from kafka_llm.devstack import StackInfo
from kafka_llm.service.app import create_app
from kafka_llm.service.keystore import KeyStore, make_engine
from kafka_llm.service.settings import ServiceSettings

pytestmark = pytest.mark.stack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", _free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _Recorder:
    """What the hostile provider saw and what the OTLP receiver got (raw bodies)."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []
        self.span_bodies: list[bytes] = []


def _handler(recorder: _Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/v1/traces":
                recorder.span_bodies.append(body)
                out, status, kind = b"{}", 200, "application/json"
            else:  # the hostile provider: a 401 that repeats the key it was sent
                authorization = self.headers.get("Authorization", "")
                recorder.authorizations.append(authorization)
                message = f"Incorrect API key provided: {authorization.removeprefix('Bearer ')}"
                out = json.dumps({"error": {"message": message, "code": "invalid_api_key"}}).encode()
                status, kind = 401, "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _pings(client: redis_lib.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis_lib.ConnectionError:
        return False


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body


def test_secrets_from_files_never_appear_in_any_output(
    stack: StackInfo, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    tag = unique_name[-8:]
    api_key = f"sk-file-planted-{tag}-ABCDEFGH"
    sasl_password = f"sasl-file-planted-{tag}"
    # URL-special characters: the worker (C++) and the service (redis-py) must both log in with it.
    redis_password = f"redis-file:planted@{tag}/%41?"
    pepper = f"pepper-file-planted-{tag}"
    planted = (api_key, sasl_password, redis_password, pepper)
    secrets_dir = tmp_path / "secrets"  # as Kubernetes mounts them: one file each, newline-terminated
    secrets_dir.mkdir()
    for name, value in [("api-key", api_key), ("sasl", sasl_password), ("redis", redis_password),
                        ("pepper", pepper)]:  # fmt: skip
        (secrets_dir / name).write_text(value + "\n")
    (secrets_dir / "database-url").write_text(f"sqlite:///{tmp_path / 'service.db'}\n")

    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # the service's batch span processor
    caplog.set_level("DEBUG")
    recorder = _Recorder()
    redis_port = _free_port()
    own_redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--requirepass", redis_password, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    exits = contextlib.ExitStack()
    try:
        client = redis_lib.Redis(port=redis_port, password=redis_password)
        wait_for(lambda: _pings(client), 10, "the password-protected redis-server")
        port = exits.enter_context(_http_server(_handler(recorder)))
        topics = make_topics(stack, unique_name, partitions=1)
        document = {
            "messaging": {
                "streams": [
                    {
                        "requestsURL": f"kafka://{topics.group}?topic={topics.requests}",
                        "responsesURL": f"kafka://{topics.responses}",
                        "dlqURL": f"kafka://{topics.dlq}",
                    }
                ]
            },
            "kafka": {
                "bootstrap.servers": stack.bootstrap_servers,
                "sasl.username": "u",
                "sasl.password.file": "secrets/sasl",  # relative to the configuration file
            },
            "redis": {"url": f"redis://127.0.0.1:{redis_port}/0", "passwordFile": str(secrets_dir / "redis")},
            "providers": [
                {"name": "mock", "baseURL": stack.provider_url, "apiKeyFile": "secrets/api-key"},
                {
                    "name": "hostile",
                    "baseURL": f"http://127.0.0.1:{port}/v1",
                    "apiKeyFile": "secrets/api-key",
                    "models": ["hostile-*"],
                },
            ],
            "retry": {
                "maxAttempts": 2,
                "initialBackoff": "20ms",
                "maxBackoff": "100ms",
                "requestTimeout": "10s",
            },
            "commitInterval": "50ms",
            "tracing": {"otlpEndpoint": f"http://127.0.0.1:{port}/v1/traces", "exportInterval": "100ms"},
        }
        config_path = tmp_path / "worker.yaml"
        config_path.write_text(yaml.safe_dump(document))

        # Config errors: a field that repeats its value, holding what a file held, is masked.
        echo = json.loads(json.dumps(document))
        echo["providers"][0]["connectTimeout"] = api_key
        echo["providers"][1]["firstByteTimeout"] = redis_password
        echo_path = tmp_path / "echo.yaml"
        echo_path.write_text(yaml.safe_dump(echo))
        with pytest.raises(ConfigError) as raised:
            load_config(str(echo_path), env={})
        errors = str(raised.value) + repr(raised.value)
        assert "providers[0].connectTimeout" in errors and "***" in errors

        metrics_port = _free_port()
        log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [sys.executable, "-m", "kafka_llm.cli", "worker", "--config", str(config_path),
             "--stats-interval", "0", "--metrics-port", str(metrics_port)],
            env=worker_env(),
            stdout=log,
            stderr=log,
        )  # fmt: skip
        worker.log_file = log  # type: ignore[attr-defined]
        exits.callback(lambda: worker.poll() is not None or stop_process(worker))

        settings = ServiceSettings(
            config=str(config_path),
            database_url_file=str(secrets_dir / "database-url"),
            api_key_pepper_file=str(secrets_dir / "pepper"),
            key_cache_seconds=0,
            response_timeout_seconds=15,
            otlp_endpoint=f"http://127.0.0.1:{port}/v1/traces",
            service_name="kafka-llm-api-secrets",
        )
        assert settings.api_key_pepper.get_secret_value() == pepper
        engine = make_engine(settings.database_url)
        exits.callback(engine.dispose)
        token, _ = KeyStore(engine, pepper).create("tests")
        service_port = _free_port()
        exits.enter_context(run_server(create_app(settings), service_port))

        requests = {
            "ok": envelope("fine", request_id=f"{unique_name}-ok"),
            "hostile": envelope("no", model="hostile-1", request_id=f"{unique_name}-hostile"),
            "fail": envelope("boom", request_id=f"{unique_name}-fail", body_extra={"mock": {"fault": "500"}}),
        }
        produce(stack, topics.requests, [json.dumps(e).encode() for e in requests.values()] + [b"not json"])
        responses = Collector(stack, topics.responses)
        exits.callback(responses.close)
        dlq = Collector(stack, topics.dlq)
        exits.callback(dlq.close)
        responses.poll_until(lambda c: len(c.ids()) >= 3, 20, "the responses")

        # The service's error bodies: the hostile provider's 401 through the worker, no key, bad body.
        bodies: list[bytes] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{service_port}", timeout=20) as http:
            auth = {"Authorization": f"Bearer {token}"}
            hostile = http.post(
                "/v1/chat/completions",
                headers=auth,
                json={"model": "hostile-2", "messages": [{"role": "user", "content": "hi"}]},
            )
            # The provider's own 401, relayed: the service reached its Redis with the password from
            # the file too (its URL-special characters percent-encoded for both the core and redis-py).
            assert hostile.status_code == 401, hostile.text
            bodies.append(hostile.content + str(hostile.headers).encode())
            for response in (
                http.post("/v1/chat/completions", json={"model": "mock-model", "messages": []}),
                http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {pepper}"}, json={}),
                http.post("/v1/chat/completions", headers=auth, content=b"{not json"),
                http.get("/v1/models", headers={"Authorization": "Bearer sk-wrong"}),
            ):
                assert response.status_code >= 400
                bodies.append(response.content + str(response.headers).encode())

        dlq.poll_until(lambda c: len(c.records) >= 1, 20, "the dead letter of the bad record")
        metrics = _get(f"http://127.0.0.1:{metrics_port}/metrics")
        stats = _get(f"http://127.0.0.1:{metrics_port}/stats")
        assert b"kafka_llm_requests_total" in metrics and b"requests_total" in stats
        # The worker exports every 100 ms and the service every 200 ms: both services' spans arrive.
        wait_for(
            lambda: (
                b"kafka-llm-worker" in b"".join(recorder.span_bodies)
                and b"kafka-llm-api-secrets" in b"".join(recorder.span_bodies)
            ),
            10,
            "the spans of the worker and the service",
        )
        assert stop_process(worker) == 0

        # The secrets were used: the key reached the provider, the password let the worker store.
        assert f"Bearer {api_key}" in recorder.authorizations, "the key read from the file was sent"
        stored = json.loads(client.get(f"kafka-llm:result:{unique_name}-ok") or b"{}")
        assert stored["status"] == "done", "the worker stored its result through Redis AUTH"
        everything = b"".join(
            [(tmp_path / "worker.log").read_bytes(), errors.encode(), metrics, stats, caplog.text.encode()]
            + bodies
            + recorder.span_bodies
            + [
                r.value + b"".join(k.encode() + v for k, v in r.headers)
                for r in responses.records + dlq.records
            ]
            + [client.get(key) or b"" for key in client.keys("kafka-llm:*")]
        )
        assert b"Incorrect API key provided: ***" in everything, "the hostile provider's echo was seen"
        for secret in planted:
            assert secret.encode() not in everything, f"a planted secret leaked: {secret[:14]}..."
    finally:
        exits.close()
        own_redis.terminate()
        own_redis.wait(10)


@pytest.mark.parametrize("name", ["DATABASE_URL", "API_KEY_PEPPER"])
def test_a_service_secret_comes_from_its_variable_or_its_file_not_both(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "postgresql://u:file-secret-42@h/db" if name == "DATABASE_URL" else "pepper-file-secret-42"
    (tmp_path / "secret").write_text(secret + "\n")
    (tmp_path / "empty").write_text("\n")
    monkeypatch.chdir(tmp_path)  # no .env file
    monkeypatch.setenv(f"KAFKA_LLM_{name}_FILE", str(tmp_path / "secret"))
    value = getattr(ServiceSettings(), name.lower())
    assert (value if isinstance(value, str) else value.get_secret_value()) == secret

    monkeypatch.setenv(f"KAFKA_LLM_{name}", "other-secret-43")
    with pytest.raises(ValueError) as both:
        ServiceSettings()
    assert f"give either KAFKA_LLM_{name} or KAFKA_LLM_{name}_FILE, not both" in str(both.value)
    monkeypatch.delenv(f"KAFKA_LLM_{name}")

    for file, reason in [("empty", "is empty"), ("missing", "cannot read")]:
        monkeypatch.setenv(f"KAFKA_LLM_{name}_FILE", str(tmp_path / file))
        with pytest.raises(ValueError) as raised:
            ServiceSettings()
        assert f"KAFKA_LLM_{name}_FILE" in str(raised.value) and reason in str(raised.value)
    for message in (str(both.value), str(raised.value)):
        assert "file-secret-42" not in message and "other-secret-43" not in message
