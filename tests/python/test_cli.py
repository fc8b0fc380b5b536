"""The ``kafka-llm`` command line as a whole (``kafka_llm.cli``): every command and subcommand
answers ``--help``, ``mock-provider`` hands every argument to the native provider, the console
script is installed under its name, the argument types and errors shared by the commands say what
is wrong, and the library modules leave argparse to the CLI package. Needs the installed package,
not the stack."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli

import kafka_llm
from kafka_llm.cli import build_parser


def _command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the parser tree, e.g. ("dlq",), ("dlq", "list"), ..."""
    paths: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += [(*path, name), *_command_paths(sub, (*path, name))]
    return paths


COMMANDS = _command_paths(build_parser())


def test_the_tree_has_every_command_of_the_product() -> None:
    top = {path[0] for path in COMMANDS}
    assert top == {
        "worker", "api", "dev", "mock-provider", "replay", "dlq", "cancel", "batch", "keys", "bench",
        "topics",
    }  # fmt: skip
    assert {path for path in COMMANDS if len(path) == 2} == {
        ("dev", "up"), ("dev", "down"), ("dev", "status"),
        ("dlq", "list"), ("dlq", "show"), ("dlq", "redrive"),
        ("keys", "create"), ("keys", "list"), ("keys", "revoke"),
        ("topics", "create"), ("topics", "list"),
    }  # fmt: skip


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda path: " ".join(path) or "kafka-llm")
def test_every_command_answers_help_with_exit_0(path: tuple[str, ...]) -> None:
    shown = run_cli(*path, "--help")
    assert shown.returncode == 0, shown.stderr
    if path == ("mock-provider",):  # its options are the native provider's own
        assert shown.stdout.startswith("usage: kafka-llm-mock-provider") and "--latency-ms" in shown.stdout
    else:
        assert shown.stdout.startswith(f"usage: {' '.join(('kafka-llm', *path))}"), shown.stdout


def test_mock_provider_passes_every_argument_to_the_native_provider() -> None:
    refused = run_cli("mock-provider", "--threads", "0")
    assert refused.returncode == 2
    assert refused.stderr.startswith("kafka-llm-mock-provider: --threads: must be in [1, 256]"), (
        refused.stderr
    )


def test_the_console_script_is_kafka_llm() -> None:
    script = Path(sys.executable).parent / "kafka-llm"
    shown = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"kafka-llm {kafka_llm.__version__}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kafka-port", "0"], "argument --kafka-port: not a TCP port: 0"),
        (["--redis-port", "http"], "argument --redis-port: not a port number: 'http'"),
        (["--partitions", "0"], "argument --partitions: must be at least 1: 0"),
        (["--partitions", "three"], "argument --partitions: not a number: 'three'"),
        (["--timeout", "-1"], "argument --timeout: must be positive: -1.0"),
    ],
)
def test_dev_up_refuses_bad_numbers_naming_the_option(args: list[str], message: str) -> None:
    refused = run_cli("dev", "up", *args)
    assert refused.returncode == 2
    assert message in refused.stderr and refused.stdout == ""


def test_a_command_failure_is_one_line_naming_the_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_LLM_TEST_UNSET"}
    refused = run_cli(
        "dev",
        "up",
        "--state-dir",
        str(tmp_path / "s"),
        "--redis-password-env",
        "KAFKA_LLM_TEST_UNSET",
        env=env,
    )
    assert refused.returncode == 1
    assert refused.stderr == (
        "kafka-llm dev up: error: environment variable KAFKA_LLM_TEST_UNSET is not set or empty\n"
    )
    assert not (tmp_path / "s").exists()

    no_kafka = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    unconnected = run_cli("dlq", "list", "--topic", "t", env=no_kafka)
    assert unconnected.returncode == 2
    assert unconnected.stderr.startswith(
        "kafka-llm dlq list: error: invalid configuration: --bootstrap-servers"
    )


def test_library_modules_leave_argparse_to_the_cli_package() -> None:
    package = Path(kafka_llm.__file__).parent
    cli = package / "cli"
    offenders = [
        str(source.relative_to(package))
        for source in sorted(package.rglob("*.py"))
        if cli not in source.parents and "argparse" in source.read_text(encoding="utf-8")
    ]
    assert offenders == []
