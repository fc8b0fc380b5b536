"""Profiles the native worker on scenario 1's load with valgrind's callgrind (instruction counts:
deterministic, unlike timings on a shared machine; ``perf`` has no hardware counters here).

    python bench/profile_core.py [--requests 3000] [--max-handlers 5000] [--out bench/results/profile]

Starts a private stack (mock latency 0), runs ``kafka-llm worker`` under
``valgrind --tool=callgrind --instr-atstart=no``, switches instrumentation on once the worker owns
its partitions, produces the requests at once, switches it off when the last response is out,
stops the worker and writes ``callgrind.out``, ``inclusive.txt`` and ``exclusive.txt``
(callgrind_annotate) and ``summary.json`` (instructions per request, by library and by area).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kafka_llm import kafka as k
from kafka_llm._paths import cache_dir
from kafka_llm.devstack import Stack
from kllm_bench.load import ResponseMonitor, produce
from kllm_bench.procfs import cpu_seconds, rss_bytes
from kllm_bench.scenarios import MOCK_DEFAULTS
from kllm_bench.workers import WorkerProcess, snapshot_package, worker_config

REPO = Path(__file__).resolve().parent.parent

# Where a symbol's instructions go: (area, "symbol" or "object", pattern); the first match wins.
AREAS: list[tuple[str, str, str]] = [
    (
        "allocation (malloc/free/new/delete)",
        "symbol",
        r"malloc|free|calloc|realloc|operator new|operator delete|_int_|arena",
    ),
    ("JSON (nlohmann parse/dump)", "symbol", r"nlohmann"),
    (
        "JSON (kafka-llm writers, UTF-8 checks)",
        "symbol",
        r"json_util|ObjectWriter|append_json|utf8|scan_json|canonical",
    ),
    ("Kafka (librdkafka)", "object", r"librdkafka"),
    ("HTTP (libcurl)", "object", r"libcurl|libnghttp2"),
    ("Redis (hiredis)", "object", r"libhiredis"),
    ("TLS/crypto (OpenSSL)", "object", r"libssl|libcrypto"),
    ("compression", "object", r"libzstd|liblz4|libz\.|libsnappy"),
    (
        "string/memory copies (libc)",
        "symbol",
        r"mem(cpy|move|set|cmp|chr)|str(len|cmp|chr|ncmp)|__(memcpy|memmove|memset|strlen)",
    ),
    ("std::string/containers (libstdc++)", "symbol", r"basic_string|_Rb_tree|_Hashtable|vector<"),
    ("formatting (printf/strtol)", "symbol", r"printf|strto|_IO_"),
    ("Boost.Asio", "symbol", r"boost::asio"),
    ("Python interpreter", "object", r"libpython|/python3\.\d+$|/bin/python"),
    ("kafka-llm (named)", "symbol", r"kafka_llm::"),
    ("kafka-llm core (unnamed)", "object", r"_core\.cpython"),
    ("libc (other)", "object", r"libc\.so"),
]


def split_symbol(entry: str) -> tuple[str, str]:
    """``file:function [object]`` -> (function, object)."""
    match = re.match(r"^(.*?)(?:\s+\[([^\]]+)\])?$", entry)
    assert match is not None
    name = match.group(1)
    return name.split(":", 1)[1] if ":" in name else name, match.group(2) or ""


def annotate(out_file: Path, inclusive: bool) -> str:
    result = subprocess.run(
        [
            "callgrind_annotate",
            "--auto=no",
            f"--inclusive={'yes' if inclusive else 'no'}",
            "--threshold=100",
            str(out_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([\s\d.]+%\)\s+)?(.*?)\s*$")


def parse_annotate(text: str) -> list[tuple[int, str]]:
    rows = []
    started = False
    for line in text.splitlines():
        if "file:function" in line:
            started = True
            continue
        if not started:
            continue
        match = LINE.match(line)
        if match and match.group(2):
            rows.append((int(match.group(1).replace(",", "")), match.group(2)))
    return rows


def totals(text: str) -> int:
    match = re.search(r"^\s*([\d,]+)\s+(?:\([\s\d.]+%\)\s+)?PROGRAM TOTALS", text, re.MULTILINE)
    return int(match.group(1).replace(",", "")) if match else 0


def by_area(exclusive: list[tuple[int, str]]) -> dict[str, int]:
    areas: dict[str, int] = defaultdict(int)
    for count, entry in exclusive:
        symbol, obj = split_symbol(entry)
        for area, where, pattern in AREAS:
            if re.search(pattern, symbol if where == "symbol" else obj):
                areas[area] += count
                break
        else:
            areas["other"] += count
    return dict(sorted(areas.items(), key=lambda kv: -kv[1]))


def by_object(exclusive: list[tuple[int, str]]) -> dict[str, int]:
    objects: dict[str, int] = defaultdict(int)
    for count, entry in exclusive:
        objects[Path(split_symbol(entry)[1]).name or "?"] += count
    return dict(sorted(objects.items(), key=lambda kv: -kv[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--max-handlers", type=int, default=5000)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "profile"))
    parser.add_argument(
        "--analyze-only",
        type=int,
        metavar="REQUESTS",
        help="only re-read <out>/callgrind.out of an earlier run of REQUESTS finished requests",
    )
    parser.add_argument(
        "--core-module",
        help="profile this build of _core*.so (e.g. an unstripped RelWithDebInfo one), not the installed one",
    )
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install valgrind)", file=sys.stderr)
            return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "callgrind.out"
    if args.analyze_only:
        analyze(raw, args.analyze_only, out)
        return 0
    run_id = secrets.token_hex(3)
    with (
        Stack(cache_dir() / "dev" / f"profile-{run_id}", partitions=3, timeout=180) as stack,
        tempfile.TemporaryDirectory(prefix="kafka-llm-profile-") as workdir,
    ):
        info = stack.info
        request = urllib_post(f"{info.provider_base}/admin/config", MOCK_DEFAULTS)
        print(f"mock: {request}")
        name = f"profile-{run_id}"
        topics = f"{name}.requests", f"{name}.responses", f"{name}.dlq"
        k.create_topics(info.bootstrap_servers, list(topics), partitions=3)
        config = worker_config(
            bootstrap=info.bootstrap_servers,
            redis_url=info.redis_url_with_password(),
            provider_url=info.provider_url,
            group=f"{name}.workers",
            requests=topics[0],
            responses=topics[1],
            dlq=topics[2],
            max_handlers=args.max_handlers,
        )
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={raw}"]
        package = snapshot_package(
            Path(workdir) / "pkg", Path(args.core_module) if args.core_module else None
        )
        print(f"core module: {package}")
        worker = WorkerProcess(
            "core", config, Path(workdir), name, prefix=valgrind, pythonpath=package["pythonpath"]
        )
        worker.start()
        try:
            print("waiting for the worker under callgrind to own its partitions (slow start)...", flush=True)
            worker.wait_ready(3, timeout=900)
            time.sleep(2.0)
            subprocess.run(
                ["callgrind_control", "-i", "on", str(worker.pid)], check=True, capture_output=True
            )
            pid = worker.pid
            monitor = ResponseMonitor(
                info.bootstrap_servers,
                topics[1],
                lambda: (cpu_seconds(pid), rss_bytes(pid)),
                f"{name}.monitor",
            )
            monitor.wait_assigned()
            monitor.start()
            ids = [f"{name}-{i}" for i in range(args.requests)]
            sent = produce(info.bootstrap_servers, topics[0], 3, ids)
            deadline = time.monotonic() + 1800
            while monitor.finished() < args.requests and time.monotonic() < deadline:
                time.sleep(0.5)
            elapsed = time.monotonic() - sent.started
            subprocess.run(
                ["callgrind_control", "-i", "off", str(worker.pid)], check=True, capture_output=True
            )
            monitor.stop_event.set()
            monitor.join(10)
            finished = monitor.finished()
            print(f"{finished}/{args.requests} finished under callgrind in {elapsed:.0f} s", flush=True)
        finally:
            worker.stop(timeout=300)
    analyze(raw, finished, out)
    return 0


def analyze(raw: Path, finished: int, out: Path) -> None:
    """Writes inclusive.txt, exclusive.txt and summary.json from a callgrind output file."""
    inclusive_text = annotate(raw, inclusive=True)
    exclusive_text = annotate(raw, inclusive=False)
    (out / "inclusive.txt").write_text(_head(inclusive_text, 150))
    (out / "exclusive.txt").write_text(_head(exclusive_text, 150))
    total = totals(exclusive_text)
    exclusive = parse_annotate(exclusive_text)
    summary: dict[str, Any] = {
        "requests": finished,
        "instructions_total": total,
        "instructions_per_request": total / finished if finished else None,
        "by_area_per_request": {a: c / finished for a, c in by_area(exclusive).items()} if finished else {},
        "by_object_per_request": {o: c / finished for o, c in by_object(exclusive).items()}
        if finished
        else {},
        "top_exclusive": [{"instructions": c, "share": c / total, "symbol": s} for c, s in exclusive[:40]],
        "top_inclusive": [
            {"instructions": c, "share": c / total, "symbol": s}
            for c, s in parse_annotate(inclusive_text)[:60]
        ],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{total:,} instructions, {summary['instructions_per_request'] or 0:,.0f} per request")
    for area, per in summary["by_area_per_request"].items():
        print(f"  {per:>12,.0f}  {per * finished / total:6.1%}  {area}")
    print(f"wrote {out}/summary.json, inclusive.txt, exclusive.txt")


def _head(text: str, entries: int) -> str:
    """The annotate header and its first ``entries`` function lines (the files stay small)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "file:function" in line), 0)
    return "\n".join(lines[: start + 2 + entries]) + "\n"


def urllib_post(url: str, body: dict[str, Any]) -> Any:
    import urllib.request

    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


if __name__ == "__main__":
    sys.exit(main())
