"""``kafka-llm batch``: an OpenAI Batch JSONL file through Kafka (``kafka_llm.batch``)."""

from __future__ import annotations

import argparse
from datetime import timedelta

from kafka_llm.batch import ENDPOINTS, run_batch
from kafka_llm.cli._common import Subcommands, add_config_arg, duration_arg, note, set_command


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "batch",
        help="run an OpenAI Batch JSONL file through Kafka and write the OpenAI Batch output",
        description="Checks every line of an OpenAI Batch input file (custom_id, method POST, url "
        f"{', '.join(ENDPOINTS)}, body), produces the requests to the configured stream's request topic, "
        "collects the responses from its response topic and writes OpenAI Batch output lines in input "
        "order. Requests answered with an error carry its status and body; requests not answered before "
        "--timeout get error code batch_expired.",
    )
    parser.add_argument("input", help="the batch input file (JSONL)")
    parser.add_argument("output", help="where the output JSONL is written (replaced when complete)")
    add_config_arg(parser, "the YAML configuration (Kafka and the stream)", required=True)
    parser.add_argument(
        "--stream", type=int, default=0, help="index of the stream in messaging.streams (default 0)"
    )
    parser.add_argument(
        "--with-worker", action="store_true", help="run a pipeline worker in this process for the duration"
    )
    parser.add_argument(
        "--timeout",
        type=duration_arg("--timeout"),
        metavar="DURATION",
        help="stop waiting for responses after this long, e.g. 10m (default: wait until all are answered)",
    )
    parser.add_argument("--batch-id", help="the batch id prefixing every request id (default: a new one)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    set_command(parser, "batch", _run)


def _run(args: argparse.Namespace) -> int:
    timeout: timedelta | None = args.timeout
    try:
        report = run_batch(
            args.config,
            args.input,
            args.output,
            stream=args.stream,
            progress=not args.no_progress,
            timeout=timeout.total_seconds() if timeout is not None else None,
            with_worker=args.with_worker,
            batch_id=args.batch_id,
        )
    except OSError as e:
        raise ValueError(f"{e.filename}: {e.strerror}") from None
    note(
        "batch",
        f"{report.batch_id}: {report.total} request(s), {report.completed} completed, "
        f"{report.failed} failed, {report.expired} expired in {report.elapsed_s:.1f} s; "
        f"output in {report.output_path}",
    )
    return 1 if report.expired else 0
