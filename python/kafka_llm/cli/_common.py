"""What the ``kafka-llm`` commands share: the configuration and connection options, argument types
(durations, times, bounded numbers), tables and JSON on stdout, messages on stderr, and turning
errors into one line naming the command and an exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, TypeVar

from kafka_llm.config import Config, StreamSpec, load_config, parse_duration_ms
from kafka_llm.errors import ConfigError, KafkaLlmError

__all__ = [
    "Connection",
    "Subcommands",
    "add_config_arg",
    "add_connection_args",
    "add_json_flag",
    "arg_type",
    "duration_arg",
    "fail",
    "format_time",
    "note",
    "number_arg",
    "parse_duration",
    "parse_time",
    "print_json",
    "print_table",
    "resolve_connection",
    "run_command",
    "set_command",
    "stream_default",
    "time_arg",
]

#: What ``add_subparsers()`` returns: each command module's ``register`` adds its parser to it.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

T = TypeVar("T")
N = TypeVar("N", int, float)


# --- messages and exit codes --------------------------------------------------------------------


def note(command: str, message: str, file: Any = None) -> None:
    """One line ``kafka-llm <command>: <message>`` (on stderr unless ``file`` says otherwise)."""
    print(f"kafka-llm {command}: {message}", file=file or sys.stderr, flush=True)


def fail(command: str, message: str, code: int) -> int:
    """Says ``kafka-llm <command>: error: <message>`` on stderr and returns the exit code ``code``."""
    note(command, f"error: {message}")
    return code


def run_command(
    name: str,
    body: Callable[[], int],
    failures: tuple[type[BaseException], ...] = (KafkaLlmError,),
) -> int:
    """Runs a command body; a bad argument or configuration exits 2 and any of ``failures`` (by
    default every kafka-llm error) 1, each with one line on stderr naming the command and the problem."""
    try:
        return body()
    except (ValueError, ConfigError) as e:
        return fail(name, str(e), 2)
    except failures as e:
        return fail(name, str(e), 1)
    except KeyboardInterrupt:
        note(name, "interrupted")
        return 130


def set_command(
    parser: argparse.ArgumentParser,
    name: str,
    run: Callable[[argparse.Namespace], int],
    failures: tuple[type[BaseException], ...] = (KafkaLlmError,),
) -> None:
    """Makes ``run`` the parser's command, under ``run_command`` (``name`` is how messages call it)."""
    parser.set_defaults(func=lambda args: run_command(name, lambda: run(args), failures))


# --- options ------------------------------------------------------------------------------------


def add_config_arg(
    parser: argparse.ArgumentParser, help: str, *, required: bool = False, metavar: str | None = None
) -> None:
    """``--config``/``-c``: the YAML configuration file."""
    parser.add_argument("--config", "-c", required=required, metavar=metavar, help=help)


def add_json_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """``--json``: machine-readable output (``args.json``)."""
    parser.add_argument("--json", action="store_true", help=help)


@dataclass(frozen=True)
class Connection:
    """Where to reach Kafka: bootstrap servers, every librdkafka property (from ``--config``), and
    the configuration itself when one was given (for defaults such as the first stream's topics)."""

    bootstrap_servers: str
    properties: dict[str, str]
    config: Config | None


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """``--bootstrap-servers`` and ``--config`` (read back with ``resolve_connection``)."""
    parser.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: the config's kafka.bootstrap.servers, else "
        "$KAFKA_LLM_BOOTSTRAP_SERVERS, else $KAFKA_BOOTSTRAP_SERVERS)",
    )
    add_config_arg(
        parser,
        "the workers' YAML configuration: its kafka properties (SASL, TLS, ...) are used and its "
        "first stream gives default topics and group",
        metavar="FILE",
    )


def resolve_connection(args: argparse.Namespace, config: Config | None = None) -> Connection:
    """The connection the options describe (``config``: the configuration to use when there is no
    ``--config``). Raises ConfigError naming the option when there is none."""
    if args.config:
        config = load_config(args.config)
    properties = dict(config.kafka) if config is not None else {}
    bootstrap = args.bootstrap_servers or properties.get("bootstrap.servers")
    # As the configuration parser: KAFKA_LLM_BOOTSTRAP_SERVERS (`kafka-llm dev up`) wins.
    environ = os.environ
    bootstrap = (
        bootstrap or environ.get("KAFKA_LLM_BOOTSTRAP_SERVERS") or environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    )
    if not bootstrap:
        error = ConfigError(
            "invalid configuration: --bootstrap-servers: is required "
            "(or give --config, or set KAFKA_LLM_BOOTSTRAP_SERVERS or KAFKA_BOOTSTRAP_SERVERS)"
        )
        error.key = "--bootstrap-servers"
        raise error
    properties["bootstrap.servers"] = bootstrap
    return Connection(bootstrap, properties, config)


def stream_default(
    value: str | None, connection: Connection, option: str, pick: Callable[[StreamSpec], str]
) -> str:
    """``value`` when given, else what ``pick`` takes from the configuration's first stream. Raises
    ValueError naming ``option`` when there is neither."""
    stream = connection.config.streams[0] if connection.config is not None else None
    chosen = value or (pick(stream) if stream is not None else None)
    if not chosen:
        raise ValueError(f"{option}: is required (or give --config with a stream)")
    return chosen


# --- argument types -----------------------------------------------------------------------------


def arg_type(convert: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type`` from ``convert``, whose ValueError message is what argparse shows."""

    def checked(text: str) -> T:
        try:
            return convert(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return checked


def number_arg(
    kind: Callable[[str], N], valid: Callable[[N], bool], invalid: str, not_a_number: str = "not a number"
) -> Callable[[str], N]:
    """An argparse ``type`` for a number of ``kind`` that ``valid`` accepts; the messages are
    ``<not_a_number>: 'text'`` and ``<invalid>: value``."""

    def convert(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"{not_a_number}: {text!r}") from None
        if not valid(value):
            raise ValueError(f"{invalid}: {value}")
        return value

    return arg_type(convert)


def parse_duration(text: str, option: str) -> timedelta:
    """A duration such as ``15m``, ``1h30m``, ``500ms`` or a bare number of seconds."""
    try:
        return timedelta(milliseconds=parse_duration_ms(text, option))
    except ConfigError:
        raise ValueError(f"{option}: must be a duration like 15m, 1h or 90s, got {text!r}") from None


def duration_arg(option: str) -> Callable[[str], timedelta]:
    """An argparse ``type`` for a duration option."""
    return arg_type(lambda text: parse_duration(text, option))


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
    return arg_type(lambda text: parse_time(text, option))


# --- output -------------------------------------------------------------------------------------


def format_time(moment: datetime | None) -> str:
    """UTC, to the millisecond: ``2024-05-01T12:00:00.123Z``; ``-`` for None."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def print_json(value: Any, ensure_ascii: bool = True) -> None:
    """``value`` as one line of JSON on stdout."""
    print(json.dumps(value, ensure_ascii=ensure_ascii))


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
