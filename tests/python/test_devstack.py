"""The local stack is real: Kafka answers the wire protocol, Redis stores, the provider is healthy,
and ``kafka-llm dev up|status|down`` start, report and stop real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cli_helpers import run_cli

from kafka_llm.config import load_config
from kafka_llm.devstack import Stack, StackInfo
from kafka_llm.devstack.kafka import KAFKA_VERSION, ensure_jars, jars_dir
from kafka_llm.devstack.probes import (
    KafkaTopic,
    RedisReplyError,
    http_get,
    kafka_api_versions,
    kafka_metadata,
    probe_http_health,
    probe_kafka,
    probe_redis,
    redis_command,
)

pytestmark = pytest.mark.stack

CLI_TIMEOUT = 180.0


def _host_port(address: str) -> tuple[str, int]:
    if "://" in address:
        parts = urlsplit(address)
        assert parts.hostname is not None and parts.port is not None, address
        return parts.hostname, parts.port
    host, _, port = address.rpartition(":")
    return host, int(port)


def _process_alive(pid: int) -> bool:
    """True while ``pid`` is a running process (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZXx"


def _wait_dead(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while _process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _topic_ready(bootstrap: str, topic: str, timeout: float = 30.0) -> KafkaTopic:
    """Asks for ``topic`` (auto-creating it) until every partition has a leader."""
    host, port = _host_port(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        metadata = kafka_metadata(host, port, [topic])
        (found,) = metadata.topics
        if found.error_code == 0 and found.partitions and all(p.leader >= 0 for p in found.partitions):
            return found
        assert time.monotonic() < deadline, f"topic {topic} not ready: {found}"
        time.sleep(0.2)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("dev", *args, env=env, timeout=CLI_TIMEOUT)


# --- the session stack answers -------------------------------------------------------------------


def test_kafka_metadata_lists_the_broker(stack: StackInfo) -> None:
    host, port = _host_port(stack.bootstrap_servers)
    versions = kafka_api_versions(host, port)
    low, high = versions[3]  # Metadata
    assert low <= 1 <= high
    metadata = kafka_metadata(host, port)
    assert [(b.host, b.port) for b in metadata.brokers] == [(host, port)]
    assert metadata.controller_id == metadata.brokers[0].node_id
    assert probe_kafka(host, port).ok


def test_kafka_auto_creates_a_topic_with_led_partitions(stack: StackInfo, unique_name: str) -> None:
    topic = _topic_ready(stack.bootstrap_servers, unique_name)
    host, port = _host_port(stack.bootstrap_servers)
    broker_ids = {b.node_id for b in kafka_metadata(host, port).brokers}
    assert topic.name == unique_name
    assert sorted(p.index for p in topic.partitions) == list(range(len(topic.partitions)))
    assert all(p.leader in broker_ids and p.isr == (p.leader,) for p in topic.partitions)


def test_redis_set_get_round_trip(stack: StackInfo, unique_name: str) -> None:
    host, port = _host_port(stack.redis_url)
    value = f"value-of-{unique_name}".encode()
    pw = stack.redis_password
    assert redis_command(host, port, "SET", unique_name, value, "EX", 60, password=pw) == "OK"
    assert redis_command(host, port, "GET", unique_name, password=pw) == value
    ttl = redis_command(host, port, "TTL", unique_name, password=pw)
    assert isinstance(ttl, int) and 0 < ttl <= 60
    assert redis_command(host, port, "GET", f"{unique_name}-missing", password=pw) is None
    with pytest.raises(RedisReplyError):
        redis_command(host, port, "NO-SUCH-COMMAND", password=pw)


def test_provider_health(stack: StackInfo) -> None:
    host, port = _host_port(stack.provider_base)
    assert stack.provider_url == f"{stack.provider_base}/v1"
    status, body = http_get(host, port, "/health")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}


def test_probes_refuse_the_wrong_protocol(stack: StackInfo) -> None:
    kafka = _host_port(stack.bootstrap_servers)
    redis = _host_port(stack.redis_url)
    provider = _host_port(stack.provider_base)
    assert not probe_kafka(*redis, timeout=1.0).ok
    assert not probe_redis(*provider, timeout=1.0).ok
    assert not probe_http_health(*kafka, timeout=1.0).ok


def test_unique_name_is_a_valid_unique_topic_name(unique_name: str) -> None:
    assert re.fullmatch(r"t-test-unique-name-is-a-valid-unique-topic-name-[0-9a-f]{8}", unique_name)


def test_stack_info_from_env_keeps_the_password_out_of_the_url() -> None:
    info = StackInfo.from_env(
        {
            "KAFKA_LLM_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
            "KAFKA_LLM_REDIS_URL": "redis://:pa%24s@127.0.0.1:6380/0",
            "KAFKA_LLM_PROVIDER_URL": "http://127.0.0.1:8000/v1",
        }
    )
    assert info is not None
    assert info.redis_url == "redis://127.0.0.1:6380/0"
    assert info.provider_base == "http://127.0.0.1:8000"
    assert "pa" not in repr(info) and "pa" not in json.dumps(info.to_json())
    assert info.env()["KAFKA_LLM_REDIS_URL"] == "redis://:pa%24s@127.0.0.1:6380/0"
    assert StackInfo.from_env({"KAFKA_LLM_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}) is None


# --- stopping and restarting parts of the session stack ------------------------------------------


def test_redis_stopped_and_started_keeps_its_port(stack_handle: Stack) -> None:
    before = stack_handle.info
    host, port = _host_port(before.redis_url)
    old_pid = before.pids["redis"]
    stack_handle.stop_part("redis")
    assert not _process_alive(old_pid)
    assert not probe_redis(host, port, before.redis_password, timeout=1.0).ok
    assert stack_handle.status().ok is False

    new_pid = stack_handle.start_part("redis")
    after = stack_handle.info
    assert new_pid != old_pid and after.pids["redis"] == new_pid
    assert after.redis_url == before.redis_url
    assert probe_redis(host, port, after.redis_password).ok
    assert stack_handle.status().ok


def test_redis_paused_does_not_answer_until_continued(stack_handle: Stack) -> None:
    info = stack_handle.info
    host, port = _host_port(info.redis_url)
    assert stack_handle.signal_part("redis", signal.SIGSTOP)
    try:
        assert not probe_redis(host, port, info.redis_password, timeout=1.0).ok
    finally:
        assert stack_handle.signal_part("redis", signal.SIGCONT)
    assert probe_redis(host, port, info.redis_password, timeout=5.0).ok
    assert stack_handle.info.pids["redis"] == info.pids["redis"]


def test_kafka_killed_and_restarted_keeps_its_port_and_topics(stack_handle: Stack, unique_name: str) -> None:
    before = stack_handle.info
    created = _topic_ready(before.bootstrap_servers, unique_name)
    old_pid = before.pids["kafka"]
    host, port = _host_port(before.bootstrap_servers)

    stack_handle.stop_part("kafka", signal.SIGKILL)
    assert not _process_alive(old_pid)
    assert not probe_kafka(host, port, timeout=1.0).ok

    new_pid = stack_handle.start_part("kafka")
    assert new_pid != old_pid and _process_alive(new_pid)
    assert stack_handle.info.bootstrap_servers == before.bootstrap_servers
    assert probe_kafka(host, port).ok
    (listed,) = kafka_metadata(host, port, [unique_name]).topics
    assert listed.error_code == 0
    assert len(listed.partitions) == len(created.partitions)  # the data dir was kept


# --- the CLI on its own stack --------------------------------------------------------------------


@pytest.fixture
def cli_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state dir for a CLI-started stack; whatever is left in it is stopped afterwards."""
    state_dir = tmp_path / "cli-stack"
    yield state_dir
    Stack(state_dir).stop()


def test_cli_up_status_down(cli_state_dir: Path) -> None:
    password = "cli-test-" + os.urandom(6).hex()
    env = {**os.environ, "DEVSTACK_TEST_REDIS_PASSWORD": password}
    up_args = [
        "up",
        "--json",
        "--state-dir",
        str(cli_state_dir),
        "--partitions",
        "2",
        "--redis-password-env",
        "DEVSTACK_TEST_REDIS_PASSWORD",
        "--provider-arg=--latency-ms=7",
    ]
    first = _cli(*up_args, env=env)
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.strip().splitlines()) == 1, first.stdout
    info = json.loads(first.stdout)
    assert set(info) == {"bootstrap_servers", "redis_url", "provider_url", "state_dir", "pids", "config"}
    assert info["state_dir"] == str(cli_state_dir)
    assert re.fullmatch(r"127\.0\.0\.1:\d+", info["bootstrap_servers"])
    assert re.fullmatch(r"redis://127\.0\.0\.1:\d+/0", info["redis_url"])
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", info["provider_url"])
    pids = info["pids"]
    assert set(pids) == {"kafka", "redis", "provider"}
    assert all(_process_alive(pid) for pid in pids.values())
    assert password not in first.stdout + first.stderr
    for pid in pids.values():
        assert password not in Path(f"/proc/{pid}/cmdline").read_text()
    assert "--latency-ms=7" in Path(f"/proc/{pids['provider']}/cmdline").read_text().split("\0")

    # Really answering: Kafka with the requested partitions, Redis only with the password.
    assert len(_topic_ready(info["bootstrap_servers"], "cli-topic").partitions) == 2
    redis_host, redis_port = _host_port(info["redis_url"])
    with pytest.raises(RedisReplyError, match="NOAUTH"):
        redis_command(redis_host, redis_port, "PING")
    assert redis_command(redis_host, redis_port, "PING", password=password) == "PONG"
    assert probe_http_health(*_host_port(info["provider_url"])).ok

    # The configuration it writes carries the password (so it is the owner's only); the human
    # output shows no password but the --env form, which exports the Redis URL with it.
    config_path = Path(info["config"])
    assert config_path == cli_state_dir / "kafka-llm.yaml"
    assert config_path.stat().st_mode & 0o777 == 0o600
    with_password = f"redis://:{password}@127.0.0.1:{redis_port}/0"
    assert load_config(config_path, env={}).redis_url == with_password
    human = _cli("up", "--state-dir", str(cli_state_dir), env=env)
    assert human.returncode == 0 and password not in human.stdout + human.stderr
    assert 'eval "$(kafka-llm dev up --env)"' in human.stdout and "export " not in human.stdout
    exported = _cli("up", "--env", "--state-dir", str(cli_state_dir), env=env)
    assert f"KAFKA_LLM_REDIS_URL={with_password}" in exported.stdout.split()

    second = _cli(*up_args, env=env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == info  # same processes, nothing restarted

    status = _cli("status", "--json", "--state-dir", str(cli_state_dir))
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert report["ok"] is True
    assert {name: part["pid"] for name, part in report["parts"].items()} == pids
    assert all(part["alive"] and part["answers"] for part in report["parts"].values())
    assert report["parts"]["kafka"]["endpoint"] == info["bootstrap_servers"]

    # A dead part shows in status; `up` starts only that part again, on the same port.
    Stack(cli_state_dir).stop_part("redis", signal.SIGKILL)
    degraded = _cli("status", "--json", "--state-dir", str(cli_state_dir))
    assert degraded.returncode == 1
    redis_report = json.loads(degraded.stdout)["parts"]["redis"]
    assert (redis_report["alive"], redis_report["answers"]) == (False, False)
    repaired = _cli(*up_args, env=env)
    assert repaired.returncode == 0, repaired.stderr
    repaired_info = json.loads(repaired.stdout)
    assert repaired_info["redis_url"] == info["redis_url"]
    assert repaired_info["pids"]["redis"] != pids["redis"]
    assert {k: v for k, v in repaired_info["pids"].items() if k != "redis"} == {
        k: v for k, v in pids.items() if k != "redis"
    }
    assert redis_command(redis_host, redis_port, "PING", password=password) == "PONG"
    pids = repaired_info["pids"]

    down = _cli("down", "--state-dir", str(cli_state_dir))
    assert down.returncode == 0, down.stderr
    for name, pid in pids.items():
        assert _wait_dead(pid), f"{name} (PID {pid}) is still alive after dev down"
    assert not cli_state_dir.exists()

    after = _cli("status", "--json", "--state-dir", str(cli_state_dir))
    assert after.returncode == 1
    assert json.loads(after.stdout)["ok"] is False


@pytest.mark.parametrize("part", ["kafka", "redis", "provider"])
def test_cli_up_on_a_busy_port_fails_naming_the_part(tmp_path: Path, part: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _cli("up", "--json", "--state-dir", str(tmp_path / "s"), f"--{part}-port", str(port))
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{part} failed to start" in result.stderr
    assert str(port) in result.stderr and "already in use" in result.stderr
    assert not (tmp_path / "s" / "state.json").exists()


def test_cli_up_reports_a_part_that_dies_and_stops_the_others(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "kafka-llm-mock-provider"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "print('boom: this provider refuses to start', flush=True)\n"
        "sys.exit(3)\n"
    )
    fake.chmod(0o755)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        redis_port = probe.getsockname()[1]
    env = {**os.environ, "KAFKA_LLM_BIN_DIR": str(fake_bin)}
    state_dir = tmp_path / "s"
    result = _cli("up", "--state-dir", str(state_dir), "--redis-port", str(redis_port), env=env)
    assert result.returncode == 1
    assert "provider failed to start" in result.stderr
    assert "exited with code 3" in result.stderr
    assert "boom: this provider refuses to start" in result.stderr  # the tail of its log
    assert not (state_dir / "state.json").exists()
    # Redis had been started first; it must have been stopped again.
    assert not probe_redis("127.0.0.1", redis_port, timeout=1.0).ok


# --- the Kafka jar cache


def test_jar_fetch_runs_once_for_concurrent_callers_and_replaces_a_half_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_LLM_CACHE_DIR", str(tmp_path / "cache"))
    libs = jars_dir()
    assert libs == tmp_path / "cache" / "kafka" / KAFKA_VERSION / "libs"
    stale = libs.parent / "fetch-interrupted" / "libs"
    stale.mkdir(parents=True)
    (stale / "half-written.jar").write_bytes(b"PK")

    messages: list[str] = []
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(ensure_jars(messages.append))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    assert results == [libs, libs]
    assert sum("fetching Apache Kafka" in m for m in messages) == 1  # Maven ran once
    assert (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()
    assert (libs / "slf4j-reload4j-1.7.36.jar").is_file()
    assert not list(libs.parent.glob("fetch-*"))  # no half cache left behind
    said = len(messages)
    assert ensure_jars(messages.append) == libs
    assert len(messages) == said  # cached: nothing fetched, nothing said
