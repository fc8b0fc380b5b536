"""``kafka-llm bench``: runs the benchmark harness (``bench/run.py``) of a kafka-llm checkout.

The harness, its Python peer and its results live in the repository, not in the installed
package, so the command looks for a checkout: ``--checkout``, ``KAFKA_LLM_CHECKOUT``, or the
current directory and its parents.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from kafka_llm.cli._common import Subcommands, note

_RUNNER = Path("bench") / "run.py"
_ENV_CHECKOUT = "KAFKA_LLM_CHECKOUT"


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "bench",
        help="run the benchmarks on a private local stack (needs a kafka-llm checkout)",
        description="Runs bench/run.py of a kafka-llm checkout with this interpreter: the native worker "
        "and a Python asyncio peer side by side on a private local stack; results in bench/results/. "
        "Needs the bench extra: pip install 'kafka-llm[bench]'.",
    )
    parser.add_argument(
        "--checkout",
        help=f"the kafka-llm repository (default: ${_ENV_CHECKOUT}, else the current directory or a parent)",
    )
    # The runner's own options, passed on as they are (bench/run.py --help describes them too).
    parser.add_argument("--quick", action="store_true", help="smaller request counts (CI-sized)")
    parser.add_argument("--repeats", type=int, help="runs per measurement; medians are reported (default 3)")
    parser.add_argument("--scenarios", help="comma-separated scenario numbers, 1-5 (default: all)")
    parser.add_argument("--out", help="where results are written (default: <checkout>/bench/results)")
    parser.add_argument("--partitions", type=int, help="partitions of each request topic (default 3)")
    parser.add_argument("--s1-handlers", type=int, help="maxHandlers and wrk connections of scenario 1")
    parser.add_argument("--no-latest", action="store_true", help="do not overwrite bench/results/LATEST.md")
    parser.add_argument(
        "--kafka-property",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a librdkafka property for the native worker (repeatable)",
    )
    parser.set_defaults(func=_run)


def runner_args(args: argparse.Namespace) -> list[str]:
    """The command line of bench/run.py for the options given to ``kafka-llm bench``."""
    out: list[str] = []
    if args.quick:
        out.append("--quick")
    for flag, value in (
        ("--repeats", args.repeats),
        ("--scenarios", args.scenarios),
        ("--out", args.out),
        ("--partitions", args.partitions),
        ("--s1-handlers", args.s1_handlers),
    ):
        if value is not None:
            out += [flag, str(value)]
    if args.no_latest:
        out.append("--no-latest")
    for prop in args.kafka_property:
        out += ["--kafka-property", prop]
    return out


def find_checkout(explicit: str | None = None, cwd: Path | None = None) -> Path | None:
    """The repository root holding ``bench/run.py``: ``explicit``, else ``$KAFKA_LLM_CHECKOUT``,
    else ``cwd`` (default: the current directory) or its nearest parent that has one."""
    named = explicit or os.environ.get(_ENV_CHECKOUT)
    if named:
        root = Path(named).expanduser().resolve()
        return root if (root / _RUNNER).is_file() else None
    here = (cwd or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / _RUNNER).is_file() and (candidate / "pyproject.toml").is_file():
            return candidate
    return None


def _run(args: argparse.Namespace) -> int:
    root = find_checkout(args.checkout)
    if root is None:
        where = args.checkout or os.environ.get(_ENV_CHECKOUT) or f"{Path.cwd()} or its parents"
        note(
            "bench",
            f"no kafka-llm checkout (with {_RUNNER}) at {where}; the benchmarks live "
            f"in the repository: run this inside a checkout, or pass --checkout / set {_ENV_CHECKOUT}",
        )
        return 2
    return subprocess.call([sys.executable, str(root / _RUNNER), *runner_args(args)], cwd=root)
