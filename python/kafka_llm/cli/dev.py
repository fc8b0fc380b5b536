"""``kafka-llm dev up|down|status``: the local stack (``kafka_llm.devstack``)."""

from __future__ import annotations

import argparse
import functools
import os
import shlex
from pathlib import Path

from kafka_llm.cli._common import Subcommands, add_json_flag, note, number_arg, print_json, set_command
from kafka_llm.devstack import (
    DevStackError,
    Stack,
    StackInfo,
    StackStatus,
    default_state_dir,
    write_config,
)

_progress = functools.partial(note, "dev")
_port = number_arg(int, lambda v: 0 < v < 65536, "not a TCP port", not_a_number="not a port number")
_positive_int = number_arg(int, lambda v: v >= 1, "must be at least 1")
_positive_float = number_arg(float, lambda v: v > 0, "must be positive")
# What the local stack raises when a part cannot be started, stopped or asked: exit 1.
_FAILURES = (DevStackError,)


def _add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help=f"where the stack keeps its PIDs, config, logs and data (default: {default_state_dir()})",
    )


def register(subparsers: Subcommands) -> None:
    """Adds ``dev`` with the subcommands ``up``, ``down`` and ``status``."""
    dev = subparsers.add_parser(
        "dev",
        help="the local stack: Apache Kafka (KRaft), Redis and the mock provider",
        description="Runs a local stack on loopback ports: one Apache Kafka broker+controller "
        "(KRaft, official jars fetched once with Maven), Redis and the native mock LLM provider. "
        "The processes keep running after the command returns.",
    )
    commands = dev.add_subparsers(dest="dev_command", required=True, metavar="SUBCOMMAND")

    up = commands.add_parser(
        "up",
        help="start the stack (or report the one already running) and wait until it answers",
        description="Starts Kafka, Redis and the mock provider, each as a detached process, and "
        "waits until each really answers (Kafka Metadata, Redis PING, provider GET /health). "
        "Safe to run twice: parts already running are kept.",
    )
    up.add_argument("--kafka-port", type=_port, metavar="N", help="Kafka listener port (default: a free one)")
    up.add_argument("--redis-port", type=_port, metavar="N", help="Redis port (default: a free one)")
    up.add_argument(
        "--provider-port", type=_port, metavar="N", help="mock provider port (default: a free one)"
    )
    up.add_argument(
        "--partitions",
        type=_positive_int,
        metavar="N",
        help="partitions of auto-created topics (default: 3)",
    )
    up.add_argument(
        "--redis-password-env",
        metavar="VAR",
        help="require this password (read from environment variable VAR) for Redis",
    )
    up.add_argument(
        "--provider-arg",
        action="append",
        metavar="ARG",
        help="pass ARG to the mock provider, e.g. --provider-arg=--latency-ms=50 (repeatable)",
    )
    _add_state_dir(up)
    up.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="S",
        help="seconds to wait for each part to answer (default: 60 for Kafka, 10 for the others)",
    )
    output = up.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object with the endpoints")
    output.add_argument(
        "--env",
        action="store_true",
        help="print only `export KAFKA_LLM_...` lines (the Redis URL with its password, if any), for "
        'eval "$(kafka-llm dev up --env)"',
    )
    set_command(up, "dev up", _up, _FAILURES)

    down = commands.add_parser(
        "down",
        help="stop the stack and remove its state",
        description="Stops each part by its recorded PID (SIGTERM, then SIGKILL after a bounded "
        "wait), after checking the PID still belongs to the process that was started.",
    )
    _add_state_dir(down)
    down.add_argument(
        "--keep-data",
        action="store_true",
        help="keep ports, broker data and logs: the next `dev up` continues where this one stopped",
    )
    set_command(down, "dev down", _down, _FAILURES)

    status = commands.add_parser(
        "status",
        help="show each part: PID, alive, endpoint, answering (exit 1 unless all answer)",
        description="Shows each part's PID, whether it is alive, its endpoint and whether it "
        "answers. Exits 0 when all parts answer, 1 otherwise.",
    )
    _add_state_dir(status)
    add_json_flag(status, "print one JSON object")
    set_command(status, "dev status", _status, _FAILURES)


def _exports(info: StackInfo) -> str:
    """``export KAFKA_LLM_BOOTSTRAP_SERVERS=… KAFKA_LLM_REDIS_URL=… KAFKA_LLM_PROVIDER_URL=…``: what
    a worker, the api and topics create read from the environment (the Redis URL with its password)."""
    return "export " + " ".join(f"{key}={shlex.quote(value)}" for key, value in info.env().items())


# The commands `dev up` prints after the endpoints; each runs as printed, in this order, in one shell
# (tests/python/test_quickstart.py runs them). API_PORT is the api's default port.
API_PORT = 8000
CURL = (
    "curl -sS --retry 30 --retry-connrefused --retry-delay 1 "
    f"http://127.0.0.1:{API_PORT}/v1/chat/completions "
    '-H "Authorization: Bearer $KEY" -H "Content-Type: application/json" '
    """-d '{"model": "mock", "messages": [{"role": "user", "content": "Hello"}]}'"""
)


def next_commands(config: Path) -> list[str]:
    """What to run next against the stack whose configuration is ``config``."""
    quoted = shlex.quote(str(config))
    return [
        f"kafka-llm topics create --config {quoted} --if-not-exists",
        f"kafka-llm worker --config {quoted} & WORKER=$!",
        f"kafka-llm api --config {quoted} --port {API_PORT} & API=$!",
        "KEY=$(kafka-llm keys create --name dev | tail -n 1)",
        CURL,
        "kill $WORKER $API && wait",
    ]


def _print_info(info: StackInfo, started: tuple[str, ...], state_dir_arg: str | None, config: Path) -> None:
    headline = "started" if started else "already running"
    if started and len(started) < 3:
        headline = f"up (started {', '.join(started)})"
    print(f"local stack {headline}: {info.state_dir}")
    rows = (
        ("kafka", info.bootstrap_servers),
        ("redis", info.redis_url),
        ("provider", info.provider_url),
    )
    for name, endpoint in rows:
        print(f"  {name:<9} {endpoint:<32} pid {info.pids.get(name, '-')}")
    if info.redis_password is None:
        print(f"  {_exports(info)}")
    else:  # the password is not printed: the --env form exports it
        print('  eval "$(kafka-llm dev up --env)"   # exports KAFKA_LLM_* (the Redis URL with its password)')
    print(f"  config    {config}")
    print("next, in one shell (the worker and the api run in the background until killed):")
    for command in next_commands(config):
        print(f"  {command}")
    suffix = f" --state-dir {shlex.quote(state_dir_arg)}" if state_dir_arg else ""
    print(f"stop it with: kafka-llm dev down{suffix}")


def _up(args: argparse.Namespace) -> int:
    password: str | None = None
    if args.redis_password_env:
        password = os.environ.get(args.redis_password_env)
        if not password:
            raise DevStackError(f"environment variable {args.redis_password_env} is not set or empty")
    try:
        stack = Stack(
            args.state_dir,
            kafka_port=args.kafka_port,
            redis_port=args.redis_port,
            provider_port=args.provider_port,
            partitions=args.partitions,
            provider_args=args.provider_arg,
            redis_password=password,
            timeout=args.timeout,
            progress=_progress,
        )
        info = stack.start()
    except KeyboardInterrupt:
        _progress("interrupted; stopped what this command had started")
        return 130
    config = write_config(info)
    if args.json:
        print_json({**info.to_json(), "config": str(config)})
    elif args.env:
        print(_exports(info))
    else:
        _print_info(info, stack.started_parts, args.state_dir, config)
    return 0


def _down(args: argparse.Namespace) -> int:
    stack = Stack(args.state_dir)
    existed = stack.stop(keep_data=args.keep_data)
    if not existed:
        print(f"no stack in {stack.state_dir}; nothing to stop")
    elif args.keep_data:
        print(f"stopped the stack in {stack.state_dir} (data kept)")
    else:
        print(f"stopped the stack in {stack.state_dir} and removed its state")
    return 0


def _print_status(status: StackStatus) -> None:
    if not status.exists:
        print(f"no stack in {status.state_dir}")
        return
    verdict = "all parts answer" if status.ok else "NOT all parts answer"
    print(f"stack in {status.state_dir}: {verdict}")
    for part in status.parts:
        pid = str(part.pid) if part.pid is not None else "-"
        alive = "alive" if part.alive else "dead"
        answers = "answers" if part.answers else "no answer"
        endpoint = f"{part.endpoint:<32}"
        print(f"  {part.name:<9} pid {pid:<8} {alive:<6} {endpoint} {answers} ({part.detail})")


def _status(args: argparse.Namespace) -> int:
    status = Stack(args.state_dir).status()
    if args.json:
        print_json(status.to_json())
    else:
        _print_status(status)
    return 0 if status.ok else 1
