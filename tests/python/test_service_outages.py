"""Uneven outages (issue 20, point 3): Redis down or the database down is a structured 503 in
OpenAI's error shape within a bounded time, nothing is produced for a call answered 503, and
inference log rows written while the database is down are kept and written once it is back."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from service_helpers import _PG_BIN, high_watermarks, postgres_available, postgres_server, service_on_stack
from sqlalchemy import create_engine, text

from kafka_llm.devstack import Stack

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "outage"}]}


def test_redis_down_is_a_quick_503_and_nothing_is_produced(
    stack_handle: Stack, unique_name: str, tmp_path: Path
) -> None:
    stack = stack_handle.info
    with service_on_stack(stack, unique_name, tmp_path, worker=False) as service:
        with httpx.Client(base_url=service.url, timeout=60, headers=service.headers()) as http:
            stack_handle.stop_part("redis")
            try:
                answers = {}
                for name, path, body in (
                    ("chat", "/v1/chat/completions", CHAT),
                    ("stream", "/v1/chat/completions", {**CHAT, "stream": True}),
                    ("process", "/process", {"model": "gpt-4o-mini", "prompt": "outage"}),
                ):
                    started = time.monotonic()
                    response = http.post(path, json=body)
                    answers[name] = (response, time.monotonic() - started)
            finally:
                stack_handle.start_part("redis")
        for name, (response, elapsed) in answers.items():
            assert response.status_code == 503, (name, response.text)
            error = response.json()["error"]
            assert error["type"] == "api_error" and "redis" in error["message"].lower(), (name, error)
            assert elapsed < 8, f"{name}: the 503 took {elapsed:.1f} s"
        assert sum(high_watermarks(stack, service.topics.requests)) == 0, "a call answered 503 was produced"


def _pg_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL 15 is not installed")
def test_database_down_is_a_503_and_log_rows_wait_for_it(
    stack_handle: Stack, unique_name: str, tmp_path: Path
) -> None:
    stack = stack_handle.info
    with postgres_server() as url:
        engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
        with engine.connect() as conn:
            data_dir = Path(conn.execute(text("SHOW data_directory")).scalar_one())
        engine.dispose()
        port = url.rsplit(":", 1)[1].split("/")[0]
        restarted: subprocess.Popen[bytes] | None = None
        # Keys are trusted for 60 s once checked: the first key keeps working while the database
        # is down (so its log rows must wait), a key never checked gets the 503.
        with service_on_stack(
            stack, unique_name, tmp_path, database_url=url, key_cache_seconds=60
        ) as service:
            gateway = service.app.state.gateway
            fresh_key, _ = gateway.keys.create("fresh")
            try:
                with httpx.Client(base_url=service.url, timeout=60) as http:
                    assert (
                        http.post("/v1/chat/completions", json=CHAT, headers=service.headers()).status_code
                        == 200
                    )
                    # The database goes away: the postmaster is stopped by PID (fast shutdown).
                    os.kill(_pg_pid(data_dir), signal.SIGINT)
                    deadline = time.monotonic() + 20
                    while (data_dir / "postmaster.pid").exists():
                        assert time.monotonic() < deadline, "postgres did not stop"
                        time.sleep(0.1)
                    started = time.monotonic()
                    refused = http.post("/v1/chat/completions", json=CHAT, headers=service.headers(fresh_key))
                    elapsed = time.monotonic() - started
                    assert refused.status_code == 503, refused.text
                    assert refused.json()["error"]["code"] == "database_unavailable"
                    assert "database" in refused.json()["error"]["message"]
                    assert elapsed < 10
                    during = http.post("/v1/chat/completions", json=CHAT, headers=service.headers())
                    assert during.status_code == 200, during.text
                    deadline = time.monotonic() + 10
                    while gateway.log.failures == 0:  # the writer tried, failed, kept the row
                        assert time.monotonic() < deadline, "the log writer never tried"
                        time.sleep(0.05)
                    assert gateway.log.buffered >= 1
                    runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
                    restarted = subprocess.Popen(
                        [*runner, str(_PG_BIN / "postgres"), "-D", str(data_dir), "-p", port,
                         "-h", "127.0.0.1", "-k", str(data_dir.parent), "-c", "fsync=off"],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    deadline = time.monotonic() + 30
                    while gateway.log.buffered:
                        assert time.monotonic() < deadline, "buffered log rows were not written"
                        time.sleep(0.1)
                    assert gateway.log.dropped == 0
                    metrics = http.get("/metrics").text
                    assert "kafka_llm_log_rows_dropped_total 0.0" in metrics
                engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
                with engine.connect() as conn:
                    rows = (
                        conn.execute(
                            text("SELECT request_id FROM kafka_llm_inference_log WHERE status_code = 200")
                        )
                        .scalars()
                        .all()
                    )
                engine.dispose()
                # The row of the call answered while the database was down was not lost.
                assert during.headers["x-request-id"] in rows, rows
            finally:
                if restarted is not None:
                    # By PID: the postmaster this test started (runuser exits with it).
                    if (data_dir / "postmaster.pid").exists():
                        os.kill(_pg_pid(data_dir), signal.SIGINT)
                    restarted.wait(timeout=20)
