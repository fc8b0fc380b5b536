"""``kafka-llm topics create|list``: the topics a configuration needs (docs/operations.md, "Topics to
create"): every stream's request, response and dead-letter topics, its control topic (``cancelURL``)
and its human-review topic (``humanReview.topic``, compacted). The workers and the service never
create topics themselves."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from kafka_llm import kafka as k
from kafka_llm.cli import _common as common
from kafka_llm.config import Config, load_config
from kafka_llm.errors import ConfigError, KafkaError

__all__ = ["NeededTopic", "needed_topics", "register"]

_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class NeededTopic:
    name: str
    role: str  # e.g. "stream 0 requests"
    config: tuple[tuple[str, str], ...] = ()


def needed_topics(config: Config) -> list[NeededTopic]:
    """Every topic the configuration names, once each (a topic two streams share is listed with
    its first role), in stream order."""
    seen: dict[str, NeededTopic] = {}
    for i, stream in enumerate(config.streams):
        review = stream.features.get("humanReview")
        review_topic = review.get("topic") if isinstance(review, dict) else None
        for role, name, topic_config in (
            ("requests", stream.requests_topic, ()),
            ("responses", stream.responses_topic, ()),
            ("dead letters", stream.dlq_topic, ()),
            ("cancellations", stream.cancel_topic, ()),
            ("human review", review_topic, (("cleanup.policy", "compact"),)),
        ):
            if name and name not in seen:
                seen[name] = NeededTopic(name, f"stream {i} {role}", topic_config)
    return list(seen.values())


def register(sub: common.Subcommands) -> None:
    parser = sub.add_parser(
        "topics",
        help="create or list the topics a configuration needs",
        description="The topics of every stream of the configuration: requests, responses, dead letters, "
        "the control topic (cancelURL) and the human-review topic (humanReview.topic, compacted).",
    )
    commands = parser.add_subparsers(dest="topics_command", required=True, metavar="COMMAND")

    create = commands.add_parser(
        "create",
        help="create the topics that do not exist",
        description="Creates every topic the configuration names and waits until their partitions have "
        "leaders. A topic that exists already is an error (exit 1, nothing created) unless "
        "--if-not-exists, which reports it and leaves it as it is (run it as often as you like).",
    )
    _add_common(create)
    create.add_argument(
        "--partitions",
        type=common.number_arg(int, lambda n: n > 0, "--partitions: must be at least 1"),
        default=3,
        metavar="N",
        help="partitions of each new topic (default 3; the request topic's bounds how many workers are busy)",
    )
    create.add_argument(
        "--replication-factor",
        type=common.number_arg(int, lambda n: n > 0 or n == -1, "--replication-factor: must be >= 1 or -1"),
        default=1,
        metavar="R",
        help="replicas of each new topic (default 1; -1: the broker's default.replication.factor)",
    )
    create.add_argument(
        "--if-not-exists", action="store_true", help="report existing topics instead of failing"
    )
    common.set_command(create, "topics create", _run_create)

    listing = commands.add_parser(
        "list",
        help="the configuration's topics and whether they exist",
        description="Lists the topics the configuration names, their role and partition count "
        "('missing' when the topic does not exist). Exit 1 when one is missing.",
    )
    _add_common(listing)
    common.set_command(listing, "topics list", _run_list)


def _add_common(parser: argparse.ArgumentParser) -> None:
    common.add_json_flag(parser, "print JSON (one object per topic and line) instead of a table")
    common.add_connection_args(parser)


def _connection(args: argparse.Namespace) -> tuple[common.Connection, Config]:
    environment_config: Config | None = None
    if not args.config:
        # Without --config, the configuration a worker started without one would run (the
        # environment alone, e.g. what `kafka-llm dev up` exports).
        try:
            environment_config = load_config()
        except ConfigError as e:
            raise ValueError(
                "--config: is required (the configuration names the topics), unless the environment "
                f"configures a worker: {e}"
            ) from None
    connection = common.resolve_connection(args, environment_config)
    assert connection.config is not None
    return connection, connection.config


def _partitions(connection: common.Connection, topic: str) -> int:
    """The topic's partition count, -1 when it does not exist."""
    return k.partition_count(connection.bootstrap_servers, topic, connection.properties)


def _report(args: argparse.Namespace, rows: list[dict[str, object]]) -> None:
    if args.json:
        for row in rows:
            common.print_json(row, ensure_ascii=False)
    else:
        common.print_table(
            ["topic", "role", "partitions", "status"],
            [[r["topic"], r["role"], r["partitions"], r["status"]] for r in rows],
        )


def _run_create(args: argparse.Namespace) -> int:
    connection, config = _connection(args)
    topics = needed_topics(config)
    existing = {t.name: _partitions(connection, t.name) for t in topics}
    present = [t.name for t in topics if existing[t.name] >= 0]
    if present and not args.if_not_exists:
        return common.fail(
            "topics create",
            f"already exist: {', '.join(present)} (nothing created; --if-not-exists creates the others)",
            1,
        )
    missing = [t for t in topics if existing[t.name] < 0]
    # One request per topic config (the compacted review topic has its own).
    by_config: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for topic in missing:
        by_config.setdefault(topic.config, []).append(topic.name)
    for topic_config, names in by_config.items():
        try:
            k.create_topics(
                connection.bootstrap_servers,
                names,
                partitions=args.partitions,
                timeout=_TIMEOUT_SECONDS,
                config=dict(topic_config),
                properties=connection.properties,
                replication_factor=args.replication_factor,
            )
        except KafkaError as e:
            raise KafkaError(f"creating {', '.join(names)}: {e}") from None
    rows: list[dict[str, object]] = []
    for topic in topics:
        created = existing[topic.name] < 0
        rows.append(
            {
                "topic": topic.name,
                "role": topic.role,
                "partitions": args.partitions if created else existing[topic.name],
                "status": "created" if created else "exists",
            }
        )
    _report(args, rows)
    common.note("topics create", f"{len(missing)} created, {len(topics) - len(missing)} existed already")
    return 0


def _run_list(args: argparse.Namespace) -> int:
    connection, config = _connection(args)
    rows: list[dict[str, object]] = []
    for topic in needed_topics(config):
        count = _partitions(connection, topic.name)
        rows.append(
            {
                "topic": topic.name,
                "role": topic.role,
                "partitions": count if count >= 0 else None,
                "status": "exists" if count >= 0 else "missing",
            }
        )
    _report(args, rows)
    return 1 if any(r["status"] == "missing" for r in rows) else 0
