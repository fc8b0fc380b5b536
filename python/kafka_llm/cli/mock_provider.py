"""``kafka-llm mock-provider``: runs the native mock LLM provider (``kafka_llm.mock_provider``)."""

from __future__ import annotations

import argparse
import os

from kafka_llm.cli._common import Subcommands
from kafka_llm.mock_provider import binary_path


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "mock-provider",
        help="run the native mock LLM provider (OpenAI-compatible, with latency and fault injection)",
        description="Runs the native mock provider; every option after the command is passed to it "
        "(see `kafka-llm mock-provider --help`).",
        add_help=False,
        # No option prefix argv can hold, so every argument (--help, --port ...) is the provider's:
        # with "-" argparse takes them for unknown options of kafka-llm and refuses them.
        prefix_chars="\0",
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="options for the native mock provider")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    path = binary_path()
    os.execv(path, [path, *args.args])
