"""The inference log (issue 20, point 5): a ``/process`` request's outcome (done/error with status,
tokens and end-to-end latency) logged when the worker's response arrives, the opt-in request and
response bodies (KAFKA_LLM_LOG_BODIES), and an old database gaining the new columns at start."""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_helpers import Service, service_on_stack
from sqlalchemy import insert, inspect, select

from kafka_llm.devstack import StackInfo
from kafka_llm.service.gateway import LOG_BODY_LIMIT_BYTES
from kafka_llm.service.keystore import InferenceLog, make_engine

pytestmark = pytest.mark.stack

_WAIT = 20.0


@pytest.fixture(scope="module")
def service(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    name = f"t-svc-log-{secrets.token_hex(4)}"
    with service_on_stack(stack, name, tmp_path_factory.mktemp("svc-log")) as running:
        yield running


@pytest.fixture(scope="module")
def bodies_service(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    name = f"t-svc-logb-{secrets.token_hex(4)}"
    with service_on_stack(stack, name, tmp_path_factory.mktemp("svc-logb"), log_bodies=True) as running:
        yield running


def _rows(service: Service, request_id: str, count: int) -> list[dict[str, Any]]:
    """The log rows of ``request_id`` (oldest first), once there are ``count`` of them, read
    straight from the SQLite file."""
    path = service.settings.database_url.removeprefix("sqlite:///")
    deadline = time.monotonic() + _WAIT
    while True:
        with sqlite3.connect(path) as db:
            db.row_factory = sqlite3.Row
            rows = [
                dict(r)
                for r in db.execute(
                    "SELECT * FROM kafka_llm_inference_log WHERE request_id = ? ORDER BY id", (request_id,)
                )
            ]
        if len(rows) >= count:
            return rows
        assert time.monotonic() < deadline, f"{len(rows)} log rows for {request_id} after {_WAIT} s: {rows}"
        time.sleep(0.05)


def _process(service: Service, **body: Any) -> str:
    response = httpx.post(f"{service.url}/process", json=body, headers=service.headers(), timeout=30)
    assert response.status_code == 202, response.text
    return str(response.json()["request_id"])


def test_process_outcome_is_logged_with_tokens_and_latency(service: Service) -> None:
    request_id = _process(service, model="mock-model", prompt=f"p-{secrets.token_hex(6)}")
    accepted, outcome = _rows(service, request_id, 2)
    assert (accepted["status"], accepted["status_code"]) == ("accepted", 202)
    assert accepted["endpoint"] == outcome["endpoint"] == "/process"
    assert accepted["prompt_tokens"] is None
    assert (outcome["status"], outcome["status_code"]) == ("done", 200)
    assert outcome["provider"] == "mock" and outcome["model"] == "mock-model"
    assert outcome["prompt_tokens"] > 0 and outcome["completion_tokens"] > 0
    # End to end: from the HTTP request to the worker's answer, so never less than the accept.
    assert outcome["latency_ms"] >= accepted["latency_ms"] > 0
    assert outcome["key_id"] == accepted["key_id"] is not None
    assert outcome["request_body"] is None and outcome["response_body"] is None  # off by default
    result = httpx.get(f"{service.url}/result/{request_id}", headers=service.headers(), timeout=10).json()
    assert result["usage"]["completion_tokens"] == outcome["completion_tokens"]


def test_process_error_outcome_is_logged(service: Service) -> None:
    request_id = _process(service, model="mock-model", prompt="x", mock={"fault": "400"})
    _, outcome = _rows(service, request_id, 2)
    assert (outcome["status"], outcome["status_code"]) == ("error", 400)
    assert outcome["prompt_tokens"] is None


def test_bodies_are_logged_only_with_the_setting(bodies_service: Service, service: Service) -> None:
    prompt = f"p-{secrets.token_hex(6)}"
    request_id = _process(bodies_service, model="mock-model", prompt=prompt)
    accepted, outcome = _rows(bodies_service, request_id, 2)
    assert prompt in accepted["request_body"] and '"messages"' in accepted["request_body"]
    assert outcome["status"] == "done" and f"mock reply: {prompt}" in outcome["response_body"]
    # A synchronous call logs both bodies on its one row.
    chat = httpx.post(
        f"{bodies_service.url}/v1/chat/completions",
        json={"model": "mock-model", "messages": [{"role": "user", "content": prompt + "-chat"}]},
        headers=bodies_service.headers(),
        timeout=30,
    )
    assert chat.status_code == 200
    (row,) = _rows(bodies_service, chat.headers["x-request-id"], 1)
    assert prompt + "-chat" in row["request_body"] and "mock reply" in row["response_body"]
    # A large body is cut to the documented size.
    big = _process(bodies_service, model="mock-model", prompt="y" * (LOG_BODY_LIMIT_BYTES * 2))
    kept = _rows(bodies_service, big, 1)[0]["request_body"]
    assert kept.endswith("…[truncated]") and len(kept.encode()) <= LOG_BODY_LIMIT_BYTES + 20
    # Without the setting, nothing of the bodies is kept.
    plain = httpx.post(
        f"{service.url}/v1/chat/completions",
        json={"model": "mock-model", "messages": [{"role": "user", "content": prompt}]},
        headers=service.headers(),
        timeout=30,
    )
    (row,) = _rows(service, plain.headers["x-request-id"], 1)
    assert row["request_body"] is None and row["response_body"] is None


def test_an_existing_database_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the log table as the first release created it
        db.execute(
            "CREATE TABLE kafka_llm_inference_log (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "created_at DATETIME NOT NULL, key_id VARCHAR(32), request_id VARCHAR(200) NOT NULL, "
            "endpoint VARCHAR(100) NOT NULL, provider VARCHAR(200), model VARCHAR(200) NOT NULL, "
            "stream BOOLEAN NOT NULL, cached BOOLEAN NOT NULL, status_code INTEGER NOT NULL, "
            "status VARCHAR(40) NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER, "
            "latency_ms FLOAT NOT NULL)"
        )
        db.execute(
            "INSERT INTO kafka_llm_inference_log (created_at, request_id, endpoint, model, stream, cached, "
            "status_code, status, latency_ms) VALUES ('2024-01-01 00:00:00', 'old', '/process', 'm', 0, 0, "
            "202, 'accepted', 1.5)"
        )
    for _ in range(2):  # and a second start finds nothing to add
        engine = make_engine(f"sqlite:///{path}")
        columns = {c["name"] for c in inspect(engine).get_columns("kafka_llm_inference_log")}
        assert {"request_body", "response_body"} <= columns
        engine.dispose()
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(
            insert(InferenceLog).values(
                created_at=datetime.now(UTC),
                request_id="new",
                endpoint="/process",
                model="m",
                stream=False,
                cached=False,
                status_code=200,
                status="done",
                latency_ms=2.0,
                response_body='{"x":1}',
            )
        )
        query = select(InferenceLog.request_id, InferenceLog.response_body).order_by(InferenceLog.id)
        rows = [tuple(r) for r in conn.execute(query)]
    assert rows == [("old", None), ("new", '{"x":1}')]
    engine.dispose()
