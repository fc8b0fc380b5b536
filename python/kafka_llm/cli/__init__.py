"""The ``kafka-llm`` command line: ``build_parser()`` and ``main()``. Each command's options and
glue live in one module of this package (``worker``, ``dev``, ``replay``, ``dlq``, ...), what they
share in ``_common``; the work itself is in the library modules they call."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from kafka_llm import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kafka-llm", description="Run LLM work off Kafka.")
    parser.add_argument("--version", action="version", version=f"kafka-llm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from kafka_llm.cli import api, batch, bench, cancel, dev, dlq, keys, mock_provider, replay, topics, worker

    for command in (worker, dev, mock_provider, replay, dlq, cancel, batch, bench, api, keys, topics):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
