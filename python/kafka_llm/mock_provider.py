"""``kafka-llm mock-provider``: runs the native mock LLM provider (an OpenAI-compatible HTTP server)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from kafka_llm._paths import native_tool

BINARY = "kafka-llm-mock-provider"


def binary_path() -> str:
    """Path of the native mock provider executable shipped with the package."""
    return str(native_tool(BINARY))


def register_cli(sub: Any) -> None:
    parser = sub.add_parser(
        "mock-provider",
        help="run the native mock LLM provider (OpenAI-compatible, with latency and fault injection)",
        description="Runs the native mock provider; every option after the command is passed to it "
        "(see `kafka-llm mock-provider --help`).",
        add_help=False,
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="options for the native mock provider")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    path = binary_path()
    os.execv(path, [path, *args.args])
