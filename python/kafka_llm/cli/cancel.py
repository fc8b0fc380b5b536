"""``kafka-llm cancel``: produce cancel records to a stream's control topic (``kafka_llm.cancel``)."""

from __future__ import annotations

import argparse

from kafka_llm.cancel import DEFAULT_REASON, cancel_requests
from kafka_llm.cli import _common as common
from kafka_llm.config import load_config


def register(sub: common.Subcommands) -> None:
    parser = sub.add_parser(
        "cancel",
        help="cancel queued or running requests by id",
        description="Writes a cancel record for each request id to the stream's control topic "
        "(messaging.streams[N].cancelURL) and waits for the broker's acknowledgement. The stream's "
        "workers skip a request still queued (the provider is never called) and abort one in flight; "
        "its result in Redis becomes 'cancelled' (status code 499). A request that already finished "
        "keeps its result.",
    )
    parser.add_argument("request_ids", nargs="+", metavar="REQUEST_ID", help="the request id(s)")
    common.add_config_arg(
        parser,
        "the workers' YAML configuration: its stream's cancelURL and its kafka properties",
        required=True,
        metavar="FILE",
    )
    parser.add_argument(
        "--stream",
        type=common.number_arg(int, lambda n: n >= 0, "must be at least 0"),
        default=0,
        metavar="N",
        help="the stream of the requests (index in messaging.streams; default 0)",
    )
    parser.add_argument(
        "--reason",
        default=DEFAULT_REASON,
        metavar="TEXT",
        help=f"why; the result's error becomes 'cancelled: TEXT' (default: {DEFAULT_REASON!r})",
    )
    common.set_command(parser, "cancel", _run)


def _run(args: argparse.Namespace) -> int:
    request_ids = list(dict.fromkeys(args.request_ids))  # once each, in the order given
    if any(not request_id for request_id in request_ids):
        raise ValueError("REQUEST_ID: must not be empty")
    config = load_config(args.config)
    topic = cancel_requests(config, request_ids, args.reason, stream=args.stream)
    for request_id in request_ids:
        print(request_id)
    common.note(
        "cancel",
        f"{len(request_ids)} cancel record(s) acknowledged on {topic!r}; the results become "
        "'cancelled' unless the requests had finished (GET /result/<id>, or the Redis result record)",
    )
    return 0
