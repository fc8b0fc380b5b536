"""``kafka-llm worker``: one pipeline worker, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import threading
import time

from kafka_llm.cli._common import Subcommands, add_config_arg, note
from kafka_llm.config import load_config
from kafka_llm.errors import KafkaLlmError
from kafka_llm.pipeline import Pipeline
from kafka_llm.worker import serve_metrics


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "worker",
        help="run one pipeline worker (scale out by running more in the same consumer group)",
        description="Consumes requests, calls providers, stores results and publishes responses "
        "until SIGTERM/SIGINT, then drains in-flight work and commits.",
    )
    add_config_arg(parser, "YAML configuration file (environment variables override it)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT/metrics")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port")
    parser.add_argument(
        "--stats-interval",
        type=float,
        default=10.0,
        help="seconds between progress lines on stderr (0: none)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    # First: a SIGTERM while the worker starts (it may block for seconds: joining the group, reading
    # a control topic back, registering a transactional producer) stops it cleanly once started.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        config = load_config(args.config)
        pipeline = Pipeline(config)
        pipeline.start()
    except KafkaLlmError as e:
        note("worker", str(e))
        return 2
    server = serve_metrics(pipeline, args.metrics_host, args.metrics_port) if args.metrics_port else None
    streams = ", ".join(f"{s.requests_topic} (group {s.group})" for s in config.streams)
    note("worker", f"consuming {streams}")
    last = time.monotonic()
    while not stop.wait(0.2):
        if args.stats_interval and time.monotonic() - last >= args.stats_interval:
            last = time.monotonic()
            s = pipeline.stats()
            e2e = s["latency"]["end_to_end"]
            note(
                "worker",
                f"done {s['requests_total']} inflight {s['inflight']} "
                f"p50 {e2e['p50_ms']:.1f} ms p99 {e2e['p99_ms']:.1f} ms dlq {sum(s['dlq'].values())}",
            )
    note("worker", "stopping (draining in-flight requests)")
    pipeline.stop()
    if server is not None:
        server.shutdown()
    return 0
