"""``kafka_llm.devstack.use_stack``: the environment's stack, or one started (and stopped) here."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from kafka_llm.devstack import PartStartError, StackInfo, use_stack

ENV_NAMES = ("KAFKA_LLM_BOOTSTRAP_SERVERS", "KAFKA_LLM_REDIS_URL", "KAFKA_LLM_PROVIDER_URL")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _processes_working_in(root: Path) -> list[int]:
    """PIDs whose working directory is (or was, if deleted) under ``root`` (Redis runs in its
    part's directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(f"{root}/"):
            found.append(int(entry.name))
    return found


@pytest.fixture
def no_env_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No KAFKA_LLM_* variables; temporary directories made under the returned one."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    return temp_root


@pytest.mark.stack
def test_the_environment_stack_is_used_and_left_running(
    stack: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in stack.env().items():
        monkeypatch.setenv(name, value)
    with use_stack(partitions=7, provider_args=["--latency-ms=5"]) as lease:
        assert lease.from_env
        assert lease.started is None
        assert lease.info.bootstrap_servers == stack.bootstrap_servers
        assert lease.info.redis_url_with_password() == stack.redis_url_with_password()
        assert lease.info.provider_url == stack.provider_url
        assert "from the environment" in repr(lease)
    assert lease.stop() is False


@pytest.mark.stack
def test_without_the_environment_a_stack_is_started_and_stopped_by_pid(no_env_stack: Path) -> None:
    lease = use_stack(timeout=90)
    try:
        assert not lease.from_env
        assert lease.started is not None
        state_dir = lease.started.state_dir
        assert state_dir.parent == no_env_stack
        pids = dict(lease.info.pids)
        assert set(pids) == {"kafka", "redis", "provider"}
        assert all(_alive(pid) for pid in pids.values())
        assert lease.started.status().ok
        assert _processes_working_in(no_env_stack)  # at least Redis
    finally:
        assert lease.stop() is True
    assert not any(_alive(pid) for pid in pids.values())
    assert not state_dir.exists()
    assert _processes_working_in(no_env_stack) == []
    assert list(no_env_stack.iterdir()) == []
    assert lease.stop() is False


def test_a_failed_start_leaves_no_process_and_no_directory(no_env_stack: Path) -> None:
    with pytest.raises(PartStartError, match="provider"):
        use_stack(provider_args=["--no-such-option"], timeout=10)
    assert list(no_env_stack.iterdir()) == []
    assert _processes_working_in(no_env_stack) == []
