#!/usr/bin/env python3
"""Runs one command against a fresh local stack (Kafka in KRaft mode, Redis, mock provider).

    scripts/with-stack.py [--bin-dir DIR] [--timeout SECONDS] -- COMMAND [ARG...]

Starts a ``kafka_llm.devstack.Stack`` in a new temporary state dir, runs COMMAND with
``KAFKA_LLM_BOOTSTRAP_SERVERS``, ``KAFKA_LLM_REDIS_URL`` and ``KAFKA_LLM_PROVIDER_URL`` set, stops
the stack by the PIDs it recorded (whether the command passed, failed, timed out or this script
was interrupted), removes the state dir and exits with the command's exit code.

``--bin-dir`` runs the mock provider from a C++ build (e.g. ``build/asan/cpp/tools``) instead of
the installed package, so a sanitized build's provider serves the tests. After the stack is
stopped, the parts' logs are searched for sanitizer reports; a report fails the run (exit 1 if
the command itself passed) and is printed. Needs the ``kafka_llm`` package (``make install``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from kafka_llm.devstack import DevStackError, Stack

# A cold broker start is well under this (the same bound the pytest fixture uses).
STACK_START_TIMEOUT = 90.0
# Between SIGTERM and SIGKILL when the command outlives --timeout or this script is stopped.
COMMAND_STOP_GRACE = 10.0
SANITIZER_REPORT = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer)|"
    r"WARNING: ThreadSanitizer|runtime error: "
)
REPORT_CONTEXT_LINES = 60


class _Stopped(Exception):
    """SIGTERM or SIGHUP arrived: clean up as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, _frame: FrameType | None) -> None:
    raise _Stopped(signum)


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run a command against a fresh local Kafka + Redis + mock provider stack.",
        usage="%(prog)s [--bin-dir DIR] [--timeout SECONDS] -- COMMAND [ARG...]",
    )
    parser.add_argument(
        "--bin-dir",
        type=Path,
        help="directory holding kafka-llm-mock-provider (default: the installed package's)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop the command (SIGTERM, then SIGKILL) after this many seconds; exit 124",
    )
    parser.add_argument(
        "--partitions", type=int, default=None, help="partitions of auto-created topics (default 3)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command given (put it after --)")
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the command's process group (its own session, so only what it started), then
    SIGKILL after a grace period."""
    if child.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, COMMAND_STOP_GRACE), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _run(command: list[str], env: dict[str, str], timeout: float | None) -> int:
    child = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        return child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"with-stack: {command[0]} still running after {timeout:g} s; stopping it", file=sys.stderr)
        _stop_child(child)
        return 124
    finally:
        _stop_child(child)


def _sanitizer_reports(state_dir: Path) -> list[str]:
    """Excerpts of the part logs that hold a sanitizer report."""
    found = []
    for log in sorted(state_dir.glob("*/*.log")):
        lines = log.read_text(errors="replace").splitlines()
        for index, line in enumerate(lines):
            if SANITIZER_REPORT.search(line):
                excerpt = "\n".join(lines[index : index + REPORT_CONTEXT_LINES])
                found.append(f"--- {log.relative_to(state_dir)}, line {index + 1}:\n{excerpt}")
                break
    return found


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    if args.bin_dir is not None:
        bin_dir = args.bin_dir.resolve()
        if not (bin_dir / "kafka-llm-mock-provider").is_file():
            print(f"with-stack: no kafka-llm-mock-provider in {bin_dir}", file=sys.stderr)
            return 2
        os.environ["KAFKA_LLM_BIN_DIR"] = str(bin_dir)  # read by the stack when it starts the mock
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGHUP, _raise_stopped)

    state_dir = Path(tempfile.mkdtemp(prefix="kafka-llm-with-stack-"))
    stack = Stack(state_dir, timeout=STACK_START_TIMEOUT, partitions=args.partitions)
    code = 1
    try:
        started = time.monotonic()
        info = stack.start()  # on failure it stops what it started and raises, naming the part
        print(
            f"with-stack: stack up in {time.monotonic() - started:.1f} s "
            f"(kafka {info.bootstrap_servers}, redis {info.redis_url}, provider {info.provider_url})",
            file=sys.stderr,
        )
        env = {**os.environ, **info.env()}
        env.pop("KAFKA_LLM_BIN_DIR", None)
        code = _run(args.command, env, args.timeout)
    except DevStackError as exc:
        print(f"with-stack: the stack did not start: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    except _Stopped as stopped:
        code = 128 + stopped.signum
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stack.stop(keep_data=True)  # logs stay until they have been searched
            reports = _sanitizer_reports(state_dir)
            for report in reports:
                print(f"with-stack: sanitizer report in a stack part's log\n{report}", file=sys.stderr)
            if reports and code == 0:
                code = 1
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
