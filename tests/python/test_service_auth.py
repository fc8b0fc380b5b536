"""API keys (401/403, revocation through the CLI), the key and inference log store on SQLite and
a real PostgreSQL, and one inference log row per request (issue 6)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_helpers import run_cli
from service_helpers import Service, postgres_available, postgres_server, service_on_stack
from sqlalchemy import select, text

from kafka_llm.devstack import StackInfo
from kafka_llm.service.keystore import InferenceLog, InferenceLogWriter, KeyStore, LogEntry, make_engine

CHAT = {"model": "mock-model", "messages": [{"role": "user", "content": "auth"}]}


@pytest.fixture(scope="module")
def service(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    name = f"t-svc-auth-{secrets.token_hex(4)}"
    with service_on_stack(stack, name, tmp_path_factory.mktemp("svc-auth")) as running:
        yield running


def _cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return run_cli("keys", *args, env={**os.environ, "KAFKA_LLM_DATABASE_URL": database_url})


@pytest.mark.stack
@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_api_key"),
        ("Basic abc", "invalid_api_key"),
        ("Bearer kllm_0000_secret", "invalid_api_key"),
        ("Bearer not-a-key", "invalid_api_key"),
    ],
)
def test_missing_or_invalid_keys_are_401(service: Service, authorization: str | None, code: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for method, path, body in (("POST", "/v1/chat/completions", CHAT), ("GET", "/result/abc", None)):
        response = httpx.request(method, service.url + path, json=body, headers=headers, timeout=10)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == code
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.stack
def test_a_wrong_secret_for_a_real_key_id_is_401(service: Service) -> None:
    key_id = service.api_key.split("_")[1]
    forged = f"kllm_{key_id}_{secrets.token_urlsafe(32)}"
    response = httpx.post(f"{service.url}/v1/chat/completions", json=CHAT, headers=service.headers(forged))
    assert response.status_code == 401


@pytest.mark.stack
def test_a_key_limited_to_models_gets_403_for_others(service: Service) -> None:
    token, _ = service.keys().create("small only", ["small-*"])
    response = httpx.post(
        f"{service.url}/v1/chat/completions", json=CHAT, headers=service.headers(token), timeout=30
    )
    assert response.status_code == 403
    assert response.json()["error"]["param"] == "model"
    allowed = {**CHAT, "model": "small-1"}
    response = httpx.post(
        f"{service.url}/v1/chat/completions", json=allowed, headers=service.headers(token), timeout=30
    )
    assert response.status_code == 200, response.text


@pytest.mark.stack
def test_keys_cli_creates_lists_and_revokes_and_revoked_keys_are_401(service: Service) -> None:
    database = service.settings.database_url
    created = _cli("create", "--name", "cli key", "--json", database_url=database)
    assert created.returncode == 0, created.stderr
    made = json.loads(created.stdout)
    token, key_id = made["key"], made["id"]
    assert token.startswith(f"kllm_{key_id}_")
    ok = httpx.post(
        f"{service.url}/v1/chat/completions", json=CHAT, headers=service.headers(token), timeout=30
    )
    assert ok.status_code == 200

    listed = json.loads(_cli("list", "--json", database_url=database).stdout)
    assert {"id": key_id, "name": "cli key", "revoked_at": None}.items() <= next(
        k for k in listed if k["id"] == key_id
    ).items()
    assert token not in _cli("list", database_url=database).stdout  # secrets never listed

    revoked = _cli("revoke", key_id, database_url=database)
    assert revoked.returncode == 0, revoked.stderr
    assert _cli("revoke", key_id, database_url=database).returncode == 1  # already revoked
    response = httpx.post(f"{service.url}/v1/chat/completions", json=CHAT, headers=service.headers(token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"


@pytest.mark.stack
def test_every_request_leaves_an_inference_log_row(service: Service) -> None:
    token, key = service.keys().create("logged")
    headers = service.headers(token)
    fresh = {**CHAT, "messages": [{"role": "user", "content": secrets.token_hex(8)}]}  # not in the cache
    ok = httpx.post(f"{service.url}/v1/chat/completions", json=fresh, headers=headers, timeout=30)
    failed = httpx.post(
        f"{service.url}/v1/chat/completions",
        json={**CHAT, "mock": {"fault": "404"}},
        headers=headers,
        timeout=30,
    )
    accepted = httpx.post(
        f"{service.url}/process", json={"model": "mock-model", "prompt": "log"}, headers=headers
    )
    assert (ok.status_code, failed.status_code, accepted.status_code) == (200, 404, 202)
    engine = make_engine(service.settings.database_url)
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(InferenceLog).where(InferenceLog.key_id == key.id).order_by(InferenceLog.id)
            ).all()
        if len(rows) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    engine.dispose()
    by_request = {r.request_id: r for r in rows if r.status != "done"}
    assert set(by_request) == {
        ok.headers["x-request-id"],
        failed.headers["x-request-id"],
        accepted.json()["request_id"],
    }
    done = by_request[ok.headers["x-request-id"]]
    assert (done.status_code, done.status, done.model, done.provider) == (200, "ok", "mock-model", "mock")
    assert done.completion_tokens and done.completion_tokens > 0 and done.prompt_tokens is not None
    assert done.latency_ms > 0
    assert by_request[failed.headers["x-request-id"]].status_code == 404
    # /process: its "accepted" row, then (once the worker answered) its outcome (test_service_log.py).
    process_rows = [r.status for r in rows if r.request_id == accepted.json()["request_id"]]
    assert process_rows[0] == "accepted" and set(process_rows) <= {"accepted", "done"}, process_rows


# --- the store itself, on SQLite and on a real PostgreSQL --------------------------------------


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if not postgres_available():
        pytest.fail(
            "PostgreSQL 15 binaries are missing (/usr/lib/postgresql/15/bin): apt-get install postgresql"
        )
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keys.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_key_store_hashes_verifies_and_revokes(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:  # each run starts from empty tables (PostgreSQL is shared)
            conn.execute(text("DELETE FROM kafka_llm_inference_log"))
            conn.execute(text("DELETE FROM kafka_llm_api_keys"))
        store = KeyStore(engine, pepper="pepper")
        token, key = store.create("alice", ["gpt-*"])
        other_token, _ = store.create("bob")
        secret = token.split("_", 2)[2]
        with engine.connect() as conn:
            stored = " ".join(
                str(v) for row in conn.execute(text("SELECT * FROM kafka_llm_api_keys")) for v in row
            )
        assert secret not in stored and token not in stored  # only the salted hash is kept

        verified = store.verify(token)
        assert verified is not None and verified.id == key.id and not verified.revoked
        assert verified.allows_model("gpt-4o") and not verified.allows_model("claude")
        assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert KeyStore(engine, pepper="other pepper").verify(token) is None  # the pepper is part of the hash
        assert [k.name for k in store.list()] == ["alice", "bob"]
        assert store.revoke(key.id) and not store.revoke(key.id)
        revoked = store.verify(token)
        assert revoked is not None and revoked.revoked
        assert store.verify(other_token) is not None

        writer = InferenceLogWriter(engine, interval=0.05)
        for i in range(120):
            writer.write(
                LogEntry(
                    key.id, f"r{i}", "/v1/chat/completions", "mock", "m", 200, "ok", 1.5, prompt_tokens=3
                )
            )
        writer.close()
        assert writer.failures == 0
        with engine.connect() as conn:
            count = conn.execute(text("SELECT COUNT(*) FROM kafka_llm_inference_log")).scalar_one()
        assert count == 120
    finally:
        engine.dispose()
