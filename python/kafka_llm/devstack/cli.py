"""``kafka-llm dev up|down|status``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from kafka_llm.devstack._part import DevStackError
from kafka_llm.devstack.stack import Stack, StackInfo, StackStatus, default_state_dir


def _progress(message: str) -> None:
    print(f"kafka-llm dev: {message}", file=sys.stderr, flush=True)


def _error(command: str, message: str) -> int:
    print(f"kafka-llm dev {command}: error: {message}", file=sys.stderr, flush=True)
    return 1


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def _add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help=f"where the stack keeps its PIDs, config, logs and data (default: {default_state_dir()})",
    )


def register_cli(subparsers: Any) -> None:
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
    up.add_argument("--json", action="store_true", help="print one JSON object with the endpoints")
    up.set_defaults(func=_up)

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
    down.set_defaults(func=_down)

    status = commands.add_parser(
        "status",
        help="show each part: PID, alive, endpoint, answering (exit 1 unless all answer)",
        description="Shows each part's PID, whether it is alive, its endpoint and whether it "
        "answers. Exits 0 when all parts answer, 1 otherwise.",
    )
    _add_state_dir(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=_status)


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
            return _error("up", f"environment variable {args.redis_password_env} is not set or empty")
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
    except DevStackError as exc:
        return _error("up", str(exc))
    except KeyboardInterrupt:
        _progress("interrupted; stopped what this command had started")
        return 130
    if args.json:
        print(json.dumps(info.to_json()))
    else:
        _print_info(info, stack.started_parts, args.state_dir)
    return 0


def _down(args: argparse.Namespace) -> int:
    stack = Stack(args.state_dir)
    try:
        existed = stack.stop(keep_data=args.keep_data)
    except DevStackError as exc:
        return _error("down", str(exc))
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
    try:
        status = Stack(args.state_dir).status()
    except DevStackError as exc:
        return _error("status", str(exc))
    if args.json:
        print(json.dumps(status.to_json()))
    else:
        _print_status(status)
    return 0 if status.ok else 1
