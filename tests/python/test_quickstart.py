"""The newcomer's path, run exactly as written: the README's "From zero to the HTTP service" block
(a fresh stack in a cache directory of its own, configured by the environment `dev up --env`
prints) and the commands plain `kafka-llm dev up` prints after its endpoints (against the session
stack, with the configuration it writes). Each runs in one bash process, as a user's shell would;
background processes are stopped by the PIDs the commands record, and what is left by the process
group of that shell. The only change to the text: the api's port 8000 becomes a free one."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from cli_helpers import run_cli

from kafka_llm._paths import cache_dir

if TYPE_CHECKING:
    from kafka_llm.devstack import Stack

REPO = Path(__file__).resolve().parents[2]
SCRIPT_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _newcomer_env(cache: Path) -> dict[str, str]:
    """This environment without any KAFKA_LLM_* / Kafka / Redis / provider variable (a newcomer's
    shell), the virtualenv's ``kafka-llm`` (the package ``make test`` installs) first on PATH, and
    the dev stack's cache in ``cache`` (sharing the Kafka jars already fetched)."""
    drop = re.compile(r"^(KAFKA_LLM_.*|KAFKA_.*|REDIS_.*|REQUEST_TOPIC|RESPONSE_TOPIC|DLQ_TOPIC|.*_API_KEY)$")
    env = {k: v for k, v in os.environ.items() if not drop.match(k)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "kafka").symlink_to(cache_dir() / "kafka")
    env["KAFKA_LLM_CACHE_DIR"] = str(cache)
    return env


def _run_shell(lines: list[str], env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lines`` as one bash script (``set -eu``: the first failing line fails it), in a session of
    its own; whatever it left running is stopped through that session's process group."""
    proc = subprocess.Popen(
        ["bash", "-euc", "\n".join(lines)],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(
            f"timed out after {SCRIPT_TIMEOUT} s\nstdout:\n{out}\nstderr:\n{err[-4000:]}"
        ) from None
    finally:
        with contextlib.suppress(ProcessLookupError):  # only this shell's group: its worker and api
            os.killpg(proc.pid, signal.SIGTERM)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _readme_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## From zero to the HTTP service", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def _assert_answered_by_the_mock(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    assert '"chat.completion"' in result.stdout and '"choices"' in result.stdout, result.stdout


def test_readme_from_zero_to_the_http_service_runs_as_written(tmp_path: Path) -> None:
    lines = _readme_block()
    assert [line.split()[0] for line in lines][:3] == ["eval", "kafka-llm", "kafka-llm"], lines
    assert any(line.startswith("kafka-llm dev down") for line in lines), lines
    port = str(_free_port())
    lines = [line.replace("8000", port) for line in lines]
    env = _newcomer_env(tmp_path / "cache")
    try:
        result = _run_shell(lines, env, tmp_path)
    finally:
        run_cli("dev", "down", env=env)  # in case the block failed before its last line
    _assert_answered_by_the_mock(result)
    assert "llm.requests" in result.stdout  # topics create reported the worker's default topics
    assert not (tmp_path / "cache" / "dev" / "default" / "state.json").exists()


def test_dev_up_prints_a_config_and_commands_that_run_as_printed(
    stack_handle: Stack, tmp_path: Path, unique_name: str
) -> None:
    env = _newcomer_env(tmp_path / "cache")
    state_dir = str(stack_handle.state_dir)
    up = run_cli("dev", "up", "--state-dir", state_dir, env=env)
    assert up.returncode == 0, up.stderr
    lines = up.stdout.splitlines()
    start = lines.index("next, in one shell (the worker and the api run in the background until killed):")
    commands = [line.strip() for line in lines[start + 1 :] if line.startswith("  ")]
    assert [c.split()[0] for c in commands] == [
        "kafka-llm",
        "kafka-llm",
        "kafka-llm",
        "KEY=$(kafka-llm",
        "curl",
        "kill",
    ]
    config = stack_handle.state_dir / "kafka-llm.yaml"
    assert f"config    {config}" in up.stdout
    # The export line it prints is the environment --env prints, and configures a worker alone.
    export = next(line.strip() for line in lines if line.strip().startswith("export KAFKA_LLM_"))
    assert run_cli("dev", "up", "--state-dir", state_dir, "--env", env=env).stdout.strip() == export
    from kafka_llm.config import load_config

    exported = dict(kv.split("=", 1) for kv in export.removeprefix("export ").split())
    from_env = load_config(env=exported)
    from_file = load_config(config, env={})
    assert from_env.providers[0].name == from_file.providers[0].name == "local"
    assert [s.requests_topic for s in from_env.streams] == [s.requests_topic for s in from_file.streams]
    assert [s.dlq_topic for s in from_env.streams] == [s.dlq_topic for s in from_file.streams]
    # This test's own topics and group (the environment overrides the file), and a free api port.
    env |= {
        "REQUEST_TOPIC": f"{unique_name}-req",
        "RESPONSE_TOPIC": f"{unique_name}-resp",
        "DLQ_TOPIC": f"{unique_name}-dlq",
        "KAFKA_GROUP_ID": unique_name,
    }
    port = str(_free_port())
    commands = [c.replace("8000", port) for c in commands]
    result = _run_shell(commands, env, tmp_path)
    _assert_answered_by_the_mock(result)
    assert f"{unique_name}-req" in result.stdout
