"""``kafka-llm dev up|down|status``: the local stack (``kafka_llm.devstack``)."""

from __future__ import annotations

import argparse
import functools
import os

from kafka_llm.cli._common import Subcommands, add_json_flag, note, number_arg, print_json, set_command
from kafka_llm.devstack import DevStackError, Stack, StackInfo, StackStatus, default_state_dir

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
    add_json_flag(up, "print one JSON object with the endpoints")
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


def _print_info(info: StackInfo, started: tuple[str, ...], state_dir_arg: str | None) -> None:
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
    exports = " ".join(
        f"{key}={value}"
        for key, value in (
            ("KAFKA_LLM_BOOTSTRAP_SERVERS", info.bootstrap_servers),
            ("KAFKA_LLM_REDIS_URL", info.redis_url),
            ("KAFKA_LLM_PROVIDER_URL", info.provider_url),
        )
    )
    print(f"  export {exports}")
    suffix = f" --state-dir {state_dir_arg}" if state_dir_arg else ""
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
    if args.json:
        print_json(info.to_json())
    else:
        _print_info(info, stack.started_parts, args.state_dir)
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
