"""Pieces the toolkit commands (``replay``, ``dlq``, ``batch``) share: connection options, time
and duration arguments, tables, and turning errors into messages and exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka_llm.config import Config, load_config, parse_duration_ms
from kafka_llm.errors import ConfigError, KafkaLlmError

__all__ = [
    "Connection",
    "add_connection_args",
    "duration_arg",
    "format_time",
    "parse_duration",
    "parse_time",
    "print_table",
    "resolve_connection",
    "run_command",
]


@dataclass(frozen=True)
class Connection:
    """Where to reach Kafka: bootstrap servers, every librdkafka property (from ``--config``), and
    the configuration itself when one was given (for defaults such as the first stream's topics)."""

    bootstrap_servers: str
    properties: dict[str, str]
    config: Config | None


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: the config's kafka.bootstrap.servers, else "
        "$KAFKA_BOOTSTRAP_SERVERS)",
    )
    parser.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="the workers' YAML configuration: its kafka properties (SASL, TLS, ...) are used and its "
        "first stream gives default topics and group",
    )


def resolve_connection(args: argparse.Namespace) -> Connection:
    """The connection the options describe. Raises ConfigError naming the option when there is none."""
    config = load_config(args.config) if args.config else None
    properties = dict(config.kafka) if config is not None else {}
    bootstrap = args.bootstrap_servers or properties.get("bootstrap.servers")
    bootstrap = bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not bootstrap:
        error = ConfigError(
            "invalid configuration: --bootstrap-servers: is required "
            "(or give --config, or set KAFKA_BOOTSTRAP_SERVERS)"
        )
        error.key = "--bootstrap-servers"
        raise error
    properties["bootstrap.servers"] = bootstrap
    return Connection(bootstrap, properties, config)


def parse_duration(text: str, option: str) -> timedelta:
    """A duration such as ``15m``, ``1h30m``, ``500ms`` or a bare number of seconds."""
    try:
        return timedelta(milliseconds=parse_duration_ms(text, option))
    except ConfigError:
        raise ValueError(f"{option}: must be a duration like 15m, 1h or 90s, got {text!r}") from None


def duration_arg(option: str) -> Callable[[str], timedelta]:
    """An argparse ``type`` for a duration option."""

    def convert(text: str) -> timedelta:
        try:
            return parse_duration(text, option)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def parse_time(text: str, option: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (``2024-05-01T12:00:00Z``; without an offset it is local time) or a
    duration meaning that long ago (``1h``: an hour before now). Returns an aware datetime."""
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            ago = parse_duration(text, option)
        except ValueError:
            raise ValueError(
                f"{option}: must be an ISO 8601 time like 2024-05-01T12:00:00Z or a duration like 1h "
                f"(that long ago), got {text!r}"
            ) from None
        return (now or datetime.now(UTC)) - ago
    return moment if moment.tzinfo is not None else moment.astimezone()


def time_arg(option: str) -> Callable[[str], datetime]:
    """An argparse ``type`` for a time option (see parse_time)."""

    def convert(text: str) -> datetime:
        try:
            return parse_time(text, option)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def format_time(moment: datetime | None) -> str:
    """UTC, to the millisecond: ``2024-05-01T12:00:00.123Z``; ``-`` for None."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], file: Any = None) -> None:
    """Left-aligned columns, numbers right-aligned, one header line."""
    out = file or sys.stdout
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [
        bool(rows)
        and all(row[i] is None or (isinstance(row[i], int) and not isinstance(row[i], bool)) for row in rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            (v.rjust(w) if numeric[i] else v.ljust(w))
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    print(line(headers), file=out)
    for row in cells:
        print(line(row), file=out)


def run_command(name: str, body: Callable[[], int]) -> int:
    """Runs a command body; a bad argument or configuration exits 2 and any other kafka-llm error 1,
    each with one line on stderr naming the command and the problem."""
    try:
        return body()
    except (ValueError, ConfigError) as e:
        print(f"kafka-llm {name}: error: {e}", file=sys.stderr, flush=True)
        return 2
    except KafkaLlmError as e:
        print(f"kafka-llm {name}: error: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"kafka-llm {name}: interrupted", file=sys.stderr, flush=True)
        return 130
