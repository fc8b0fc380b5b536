"""What a pipeline worker process serves beside its work: ``/metrics``, ``/stats`` and ``/health``
over HTTP (``kafka-llm worker --metrics-port``)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kafka_llm.pipeline import Pipeline

__all__ = ["serve_metrics"]


def serve_metrics(pipeline: Pipeline, host: str, port: int) -> ThreadingHTTPServer:
    """Serves ``pipeline``'s Prometheus metrics at ``/metrics``, its stats as JSON at ``/stats`` and
    ``/health`` on ``host:port`` from a daemon thread; ``shutdown()`` the returned server to stop."""

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
