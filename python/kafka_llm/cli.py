"""The ``kafka-llm`` command line. Each area registers its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kafka_llm import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kafka-llm", description="Run LLM work off Kafka.")
    parser.add_argument("--version", action="version", version=f"kafka-llm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from kafka_llm import batch, bench_cli, devstack, dlq, mock_provider, replay, service, worker

    worker.register_cli(sub)
    devstack.register_cli(sub)
    mock_provider.register_cli(sub)
    replay.register_cli(sub)
    dlq.register_cli(sub)
    batch.register_cli(sub)
    bench_cli.register_cli(sub)
    service.register_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
