"""``kafka-llm replay``: reset a consumer group's committed offsets (``kafka_llm.replay``)."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from kafka_llm.cli import _common as common
from kafka_llm.replay import reset_offsets


def register(sub: common.Subcommands) -> None:
    parser = sub.add_parser(
        "replay",
        help="reset a consumer group's offsets so its workers process records again",
        description="Sets a consumer group's committed offsets on a topic to a time, an offset, or a "
        "duration ago, and prints partition / old / new. Kafka accepts offset changes only while the "
        "group has no active members, so stop the group's workers first (or use --allow-active to wait "
        "for them to leave), then start them again. Requests whose results are still 'done' in Redis "
        "are not sent to the provider again: their stored responses are re-published.",
    )
    parser.add_argument(
        "--group", "-g", help="the consumer group (default: the config's first stream's group)"
    )
    parser.add_argument(
        "--topic", "-t", help="the topic (default: the config's first stream's request topic)"
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--to-datetime",
        metavar="TIME",
        type=common.time_arg("--to-datetime"),
        help="the first record at or after this ISO 8601 time (e.g. 2024-05-01T12:00:00Z; without an "
        "offset it is local time)",
    )
    target.add_argument(
        "--to-offset",
        metavar="N|earliest|latest",
        type=common.arg_type(_offset),
        help="this offset on every partition, or the partitions' beginning or end",
    )
    target.add_argument(
        "--by-duration",
        metavar="DURATION",
        type=common.duration_arg("--by-duration"),
        help="the first record of the last DURATION (e.g. 15m, 2h)",
    )
    parser.add_argument(
        "--partitions",
        type=common.arg_type(_partitions),
        help="only these partitions, e.g. 0,1 (default: all)",
    )
    parser.add_argument(
        "--allow-active",
        action="store_true",
        help="if the group has active members, wait (up to --active-timeout) for them to leave instead of "
        "refusing; offsets are never changed while a member is active",
    )
    parser.add_argument(
        "--active-timeout",
        metavar="DURATION",
        type=common.duration_arg("--active-timeout"),
        default=timedelta(seconds=60),
        help="how long --allow-active waits for the group to empty (default: 60s)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the new offsets without changing anything"
    )
    common.add_connection_args(parser)
    common.set_command(parser, "replay", _run)


def _offset(text: str) -> int | str:
    if text in ("earliest", "latest"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"must be an offset, earliest or latest, got {text!r}") from None
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def _partitions(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or any(v < 0 for v in values):
        raise ValueError(f"must be partition numbers like 0,1,2, got {text!r}")
    return values


def _run(args: argparse.Namespace) -> int:
    connection = common.resolve_connection(args)
    group = common.stream_default(args.group, connection, "--group", lambda s: s.group)
    topic = common.stream_default(args.topic, connection, "--topic", lambda s: s.requests_topic)
    resets = reset_offsets(
        connection.bootstrap_servers,
        group,
        topic,
        to_datetime=args.to_datetime,
        to_offset=args.to_offset,
        by_duration=args.by_duration,
        partitions=args.partitions,
        allow_active=args.allow_active,
        dry_run=args.dry_run,
        kafka_config=connection.properties,
        active_timeout=args.active_timeout.total_seconds(),
    )
    common.print_table(
        ["partition", "old", "new"], [(r.partition, r.old_offset, r.new_offset) for r in resets]
    )
    again = sum(max(0, r.old_offset - r.new_offset) for r in resets if r.old_offset is not None)
    verb = "would set" if args.dry_run else "set"
    common.note(
        "replay",
        f"{verb} the committed offsets of group {group!r} on {topic!r} "
        f"({len(resets)} partition(s); {again} record(s) behind the old offsets to process again)",
        file=sys.stdout,
    )
    return 0
