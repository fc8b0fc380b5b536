"""The typed Python face of the native pipeline."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from kafka_llm import _core
from kafka_llm.config import Config, load_config

__all__ = ["EmbeddedProvider", "Pipeline"]

#: An in-process provider: called with the request path and body (a dict), returns the response
#: body (a dict in OpenAI's shape), or a ``(status_code, body)`` tuple. Raising fails the request.
EmbeddedProvider = Callable[[str, dict[str, Any]], "dict[str, Any] | tuple[int, dict[str, Any]]"]


def _embedded_trampoline(fn: EmbeddedProvider) -> Callable[[str, str], tuple[int, str]]:
    def call(path: str, body_json: str) -> tuple[int, str]:
        result = fn(path, json.loads(body_json))
        status, body = result if isinstance(result, tuple) else (200, result)
        return int(status), json.dumps(body)

    return call


class Pipeline:
    """Consumes LLM requests from Kafka and turns them into results.

    How: docs/architecture.md; what is promised: docs/guarantees.md.

    The work happens on native threads: ``start()`` returns at once, and ``stop()`` (or leaving a
    ``with`` block) drains in-flight requests for up to the drain timeout, commits what finished
    and leaves the consumer group. The GIL is released while the core works.
    """

    def __init__(self, config: Config | Mapping[str, Any] | str | Path) -> None:
        self.config = config if isinstance(config, Config) else load_config(config)
        self._core = _core.Pipeline(self.config.core)

    def register_provider(self, name: str, fn: EmbeddedProvider) -> None:
        """Registers the callable behind a provider of kind ``python`` (before ``start()``)."""
        self._core.register_embedded_provider(name, _embedded_trampoline(fn))

    def start(self) -> Pipeline:
        self._core.start()
        return self

    def stop(self) -> None:
        self._core.stop()

    @property
    def running(self) -> bool:
        return bool(self._core.running)

    def stats(self) -> dict[str, Any]:
        """Counters, gauges and latency summaries (count, mean, p50, p95, p99, max in ms)."""
        result: dict[str, Any] = json.loads(self._core.stats_json())
        return result

    def metrics_text(self) -> str:
        """The same figures in Prometheus text format (names prefixed ``kafka_llm_``)."""
        return str(self._core.prometheus())

    def submit(
        self,
        body: Mapping[str, Any],
        *,
        path: str = "/v1/chat/completions",
        metadata: Any = None,
        provider: str | None = None,
        request_id: str | None = None,
        timeout: float = 10.0,
    ) -> str:
        """Produces one request envelope to the first stream's request topic and returns its id."""
        envelope: dict[str, Any] = {"path": path, "body": dict(body)}
        if metadata is not None:
            envelope["metadata"] = metadata
        if provider is not None:
            envelope["provider"] = provider
        if request_id is not None:
            envelope["request_id"] = request_id
        return str(self._core.submit(json.dumps(envelope), int(timeout * 1000)))

    def __enter__(self) -> Pipeline:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def close(self) -> None:
        self.stop()
