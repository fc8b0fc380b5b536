"""Helpers for the HTTP service tests: a worker and the service (uvicorn in a thread, on a free
loopback port) on the real stack, a throwaway PostgreSQL, and request-topic offsets."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from pipeline_helpers import Topics, make_topics
from sqlalchemy import Engine

from kafka_llm import Pipeline, _core, load_config
from kafka_llm.devstack import StackInfo
from kafka_llm.service.app import create_app
from kafka_llm.service.keystore import KeyStore, make_engine
from kafka_llm.service.settings import ServiceSettings

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_document(
    stack: StackInfo,
    topics: Topics,
    redis_url: str | None = None,
    stream_extra: Mapping[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """The worker's (and the service's) configuration, as YAML would hold it; ``stream_extra``
    adds or replaces keys of the stream (cancelURL, maxHandlers, ...)."""
    return {
        "messaging": {
            "errorMaxBackoff": "5s",
            "streams": [
                {
                    "requestsURL": f"kafka://{topics.group}?topic={topics.requests}",
                    "responsesURL": f"kafka://{topics.responses}",
                    "dlqURL": f"kafka://{topics.dlq}",
                    "maxHandlers": 200,
                    **(stream_extra or {}),
                }
            ],
        },
        "kafka": {"bootstrap.servers": stack.bootstrap_servers},
        "redis": {"url": redis_url or stack.redis_url_with_password(), "resultTTL": "10m"},
        "providers": [
            {"name": "mock", "baseURL": stack.provider_url},
            {"name": "restricted", "baseURL": stack.provider_url, "models": ["small-*"]},
            {"name": "claude", "kind": "anthropic", "baseURL": stack.provider_url, "models": ["claude-*"]},
        ],
        "retry": {"initialBackoff": "20ms", "maxBackoff": "200ms", "maxAttempts": 2},
        "commitInterval": "50ms",
        **top,
    }


@dataclass
class Service:
    """A running service: its URL, its settings, an API key and the topics it uses."""

    url: str
    settings: ServiceSettings
    topics: Topics
    api_key: str
    config_path: Path
    server: uvicorn.Server
    app: Any
    engine: Engine
    """The tests' own connection to the service's database (disposed when the service stops)."""

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.api_key}"}

    def keys(self) -> KeyStore:
        return KeyStore(self.engine, self.settings.api_key_pepper.get_secret_value())


@contextlib.contextmanager
def run_server(app: Any, port: int) -> Iterator[uvicorn.Server]:
    """uvicorn serving ``app`` on 127.0.0.1:port in a thread, until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="websockets-sansio"
        )
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        assert thread.is_alive(), "the service did not start (see the log above)"
        assert time.monotonic() < deadline, f"the service did not start within {START_TIMEOUT} s"
        time.sleep(0.02)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "the service did not stop within 30 s"


@contextlib.contextmanager
def service_on_stack(
    stack: StackInfo,
    name: str,
    tmp: Path,
    *,
    worker: bool = True,
    partitions: int = 2,
    redis_url: str | None = None,
    stream_extra: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Iterator[Service]:
    """Topics, a worker (in-process Pipeline) and the service with its own SQLite database."""
    topics = make_topics(stack, name, partitions=partitions)
    config_path = tmp / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config_document(stack, topics, redis_url, stream_extra)))
    options: dict[str, Any] = {
        "config": str(config_path),
        "database_url": f"sqlite:///{tmp / (name + '.db')}",
        "key_cache_seconds": 0,
        "response_timeout_seconds": 20,
        **settings,
    }
    service_settings = ServiceSettings(**options)
    pipeline = Pipeline(load_config(str(config_path), env={})) if worker else None
    with contextlib.ExitStack() as exits:
        # Disposed, or a PostgreSQL connection left in its pool warns when collected (a later test).
        engine = make_engine(service_settings.database_url)
        exits.callback(engine.dispose)
        token, _ = KeyStore(engine, service_settings.api_key_pepper.get_secret_value()).create("tests")
        if pipeline is not None:
            exits.enter_context(pipeline)
        app = create_app(service_settings)
        port = free_port()
        server = exits.enter_context(run_server(app, port))
        yield Service(
            f"http://127.0.0.1:{port}", service_settings, topics, token, config_path, server, app, engine
        )


def high_watermarks(stack: StackInfo, topic: str) -> list[int]:
    """The end offset of every partition of ``topic`` (what has ever been produced to it)."""
    consumer = _core.Consumer({"bootstrap.servers": stack.bootstrap_servers})
    try:
        count = _core.partition_count({"bootstrap.servers": stack.bootstrap_servers}, topic)
        return [consumer.query_watermark_offsets(topic, p, 10_000)[1] for p in range(count)]
    finally:
        consumer.close()


# --- a throwaway PostgreSQL ---------------------------------------------------------------------

_PG_BIN = Path("/usr/lib/postgresql/15/bin")


def postgres_available() -> bool:
    return (_PG_BIN / "initdb").exists()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """initdb + postgres on a free loopback port in a temp dir, as the ``postgres`` system user
    when running as root (postgres refuses root); stopped by PID. Yields a database URL."""
    as_root = os.geteuid() == 0
    runner: list[str] = []
    if as_root:
        if subprocess.run(["id", "-u", "postgres"], capture_output=True).returncode != 0:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
                check=True,
            )
        runner = ["runuser", "-u", "postgres", "--"]
    data_root = Path(tempfile.mkdtemp(prefix="kafka-llm-pg-"))
    data = data_root / "data"
    if as_root:
        shutil.chown(data_root, "postgres")
    port = free_port()
    subprocess.run(
        [*runner, str(_PG_BIN / "initdb"), "-D", str(data), "-U", "kafka_llm", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    log = data_root / "postgres.log"
    log_file = open(log, "wb")  # noqa: SIM115 - closed after the server stops
    process = subprocess.Popen(
        [
            *runner,
            str(_PG_BIN / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(data_root),
            "-c",
            "fsync=off",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        ready = [str(_PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "kafka_llm"]
        while subprocess.run(ready).returncode != 0:
            assert process.poll() is None, f"postgres exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "postgres did not start within 30 s"
            time.sleep(0.1)
        yield f"postgresql://kafka_llm@127.0.0.1:{port}/postgres"
    finally:
        process.terminate()  # SIGTERM: postgres' smart shutdown
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log_file.close()
        shutil.rmtree(data_root, ignore_errors=True)
