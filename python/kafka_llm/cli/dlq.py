"""``kafka-llm dlq list|show|redrive``: dead-letter topics (``kafka_llm.dlq``)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from kafka_llm.cli import _common as common
from kafka_llm.dlq import ERROR_CLASSES, DeadLetter, list_records, read_record, redrive


def register(sub: common.Subcommands) -> None:
    parser = sub.add_parser(
        "dlq",
        help="inspect and re-drive dead-letter records",
        description="Reads a dead-letter topic (from the beginning to its current end, without a consumer "
        "group) and lists, shows or re-drives its records.",
    )
    commands = parser.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "list",
        help="one line per dead-letter record",
        description="Lists dead-letter records, oldest failure first, with the filters given.",
    )
    _add_common(listing)
    _add_filters(listing)
    common.set_command(listing, "dlq list", _run_list)

    show = commands.add_parser(
        "show",
        help="one record in full: every field, the headers and the value",
        description="Prints one dead-letter record in full, found by --request-id (every record of that "
        "request) or by --partition and --offset.",
    )
    _add_common(show)
    show.add_argument("--request-id", help="the request id (x-request-id)")
    show.add_argument("--partition", type=int, help="the dead-letter record's partition (with --offset)")
    show.add_argument("--offset", type=int, help="the dead-letter record's offset (with --partition)")
    common.set_command(show, "dlq show", _run_show)

    again = commands.add_parser(
        "redrive",
        help="produce the original records again to their source topic",
        description="Produces each matching record's original key, value and headers (without the x-* "
        "headers) to its source topic and partition, waits for the acknowledgements, and records the "
        "re-drive in the compacted topic <dlq>.redrive; records re-driven before are skipped unless "
        "--include-redriven.",
    )
    _add_common(again)
    _add_filters(again)
    again.add_argument("--to-topic", help="produce here instead of each record's x-source-topic")
    again.add_argument(
        "--include-redriven", action="store_true", help="re-drive records re-driven before, too"
    )
    again.add_argument(
        "--dry-run", action="store_true", help="show what would be re-driven without producing"
    )
    common.set_command(again, "dlq redrive", _run_redrive)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topic", "-t", help="the dead-letter topic (default: the config's first stream's dlqURL)"
    )
    common.add_json_flag(parser, "print JSON (one object per line) instead of a table")
    common.add_connection_args(parser)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--error-class", action="append", choices=ERROR_CLASSES, help="only this class (repeatable)"
    )
    parser.add_argument(
        "--since",
        type=common.time_arg("--since"),
        metavar="TIME",
        help="failed at or after: ISO 8601 (e.g. 2024-05-01T12:00:00Z) or a duration ago (e.g. 1h)",
    )
    parser.add_argument(
        "--until",
        type=common.time_arg("--until"),
        metavar="TIME",
        help="failed before (same forms as --since)",
    )
    parser.add_argument("--request-id", help="only this request id (x-request-id)")
    parser.add_argument("--limit", type=int, help="at most this many records")


def _where(args: argparse.Namespace) -> tuple[common.Connection, str]:
    """The connection and the dead-letter topic the options name."""
    connection = common.resolve_connection(args)
    return connection, common.stream_default(args.topic, connection, "--topic", lambda s: s.dlq_topic)


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "error_class": args.error_class,
        "since": args.since,
        "until": args.until,
        "request_id": args.request_id,
        "limit": args.limit,
    }


def _print_json_row(letter: DeadLetter) -> None:
    row = letter.to_row()
    for name in ("timestamp", "failed_at"):
        row[name] = common.format_time(row[name]) if row[name] is not None else None
    common.print_json(row, ensure_ascii=False)


def _shorten(text: str | None, width: int) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 3] + "..."


def _print_letters(letters: list[DeadLetter]) -> None:
    common.print_table(
        [
            "partition",
            "offset",
            "failed_at",
            "class",
            "status",
            "attempts",
            "request_id",
            "source",
            "redriven",
            "error",
        ],
        [
            (
                d.partition,
                d.offset,
                common.format_time(d.failed_or_written_at),
                d.error_class,
                d.http_status,
                d.attempts,
                d.request_id,
                f"{d.source_topic}[{d.source_partition}]@{d.source_offset}" if d.source_topic else None,
                "yes" if d.redriven else "no",
                _shorten(d.error, 60),
            )
            for d in letters
        ],
    )


def _print_full(letter: DeadLetter) -> None:
    row = letter.to_row()
    print(f"{letter.topic}[{letter.partition}]@{letter.offset}")
    for name in (
        "timestamp", "failed_at", "error_class", "error", "http_status", "attempts", "request_id",
        "provider", "model", "source_topic", "source_partition", "source_offset", "first_attempt_ms",
        "redriven", "redriven_to", "key",
    ):  # fmt: skip
        value = row[name]
        if isinstance(value, datetime):
            value = common.format_time(value)
        print(f"  {name}: {'-' if value is None else value}")
    print("  headers:")
    for name, value in letter.headers:
        print(f"    {name}: {value.decode('utf-8', errors='replace')}")
    print("  value:")
    try:
        text = json.dumps(json.loads(letter.value), indent=2, ensure_ascii=False)
    except ValueError:
        text = letter.value.decode("utf-8", errors="replace")
    for line in text.splitlines() or [""]:
        print(f"    {line}")


def _run_list(args: argparse.Namespace) -> int:
    connection, topic = _where(args)
    letters = list_records(
        connection.bootstrap_servers, topic, kafka_config=connection.properties, **_filters(args)
    )
    if args.json:
        for letter in letters:
            _print_json_row(letter)
    else:
        _print_letters(letters)
        common.note("dlq", f"{len(letters)} record(s) in {topic!r}")
    return 0


def _run_show(args: argparse.Namespace) -> int:
    connection, topic = _where(args)
    by_position = args.partition is not None or args.offset is not None
    if by_position and (args.partition is None or args.offset is None):
        raise ValueError("--partition and --offset go together")
    if by_position == (args.request_id is not None):
        raise ValueError("give either --request-id or --partition with --offset")
    if by_position:
        letters = [
            read_record(
                connection.bootstrap_servers,
                topic,
                args.partition,
                args.offset,
                kafka_config=connection.properties,
            )
        ]
    else:
        letters = list_records(
            connection.bootstrap_servers,
            topic,
            request_id=args.request_id,
            kafka_config=connection.properties,
        )
        if not letters:
            raise ValueError(f"--request-id: no record of request {args.request_id!r} in {topic!r}")
    for i, letter in enumerate(letters):
        if args.json:
            _print_json_row(letter)
            continue
        if i:
            print()
        _print_full(letter)
    return 0


def _run_redrive(args: argparse.Namespace) -> int:
    connection, topic = _where(args)
    report = redrive(
        connection.bootstrap_servers,
        topic,
        to_topic=args.to_topic,
        include_redriven=args.include_redriven,
        dry_run=args.dry_run,
        kafka_config=connection.properties,
        **_filters(args),
    )
    if args.json:
        for letter in report.redriven:
            _print_json_row(letter)
    else:
        common.print_table(
            ["partition", "offset", "request_id", "to"],
            [
                (d.partition, d.offset, d.request_id, d.redriven_to or args.to_topic or d.source_topic)
                for d in report.redriven
            ],
        )
    verb = "would re-drive" if report.dry_run else "re-drove"
    common.note(
        "dlq",
        f"{verb} {len(report.redriven)} record(s) from {topic!r}; skipped {report.skipped} "
        f"re-driven before; {len(report.failed)} failed",
    )
    for letter, error in report.failed:
        common.note("dlq", f"{letter.partition}:{letter.offset} ({letter.request_id}) failed: {error}")
    return 1 if report.failed else 0
