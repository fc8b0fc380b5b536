"""``kafka-llm worker``: one pipeline worker, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kafka_llm.config import load_config
from kafka_llm.errors import KafkaLlmError
from kafka_llm.pipeline import Pipeline


def register_cli(sub: Any) -> None:
    parser = sub.add_parser(
        "worker",
        help="run one pipeline worker (scale out by running more in the same consumer group)",
        description="Consumes requests, calls providers, stores results and publishes responses "
        "until SIGTERM/SIGINT, then drains in-flight work and commits.",
    )
    parser.add_argument("--config", "-c", help="YAML configuration file (environment variables override it)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT/metrics")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port")
    parser.add_argument(
        "--stats-interval",
        type=float,
        default=10.0,
        help="seconds between progress lines on stderr (0: none)",
    )
    parser.set_defaults(func=_run)


def _serve_metrics(pipeline: Pipeline, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, kind = pipeline.metrics_text().encode(), "text/plain; version=0.0.4"
            elif self.path == "/stats":
                body, kind = json.dumps(pipeline.stats()).encode(), "application/json"
            elif self.path == "/health":
                body, kind = b'{"status":"ok"}', "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def _run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        pipeline = Pipeline(config)
    except KafkaLlmError as e:
        print(f"kafka-llm worker: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    pipeline.start()
    server = _serve_metrics(pipeline, args.metrics_host, args.metrics_port) if args.metrics_port else None
    streams = ", ".join(f"{s.requests_topic} (group {s.group})" for s in config.streams)
    print(f"kafka-llm worker: consuming {streams}", file=sys.stderr, flush=True)
    last = time.monotonic()
    while not stop.wait(0.2):
        if args.stats_interval and time.monotonic() - last >= args.stats_interval:
            last = time.monotonic()
            s = pipeline.stats()
            e2e = s["latency"]["end_to_end"]
            print(
                f"kafka-llm worker: done {s['requests_total']} inflight {s['inflight']} "
                f"p50 {e2e['p50_ms']:.1f} ms p99 {e2e['p99_ms']:.1f} ms dlq {sum(s['dlq'].values())}",
                file=sys.stderr,
                flush=True,
            )
    print("kafka-llm worker: stopping (draining in-flight requests)", file=sys.stderr, flush=True)
    pipeline.stop()
    if server is not None:
        server.shutdown()
    return 0
