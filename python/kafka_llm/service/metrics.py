"""Prometheus metrics of one service process: HTTP metrics plus the pipeline metric names the
service can measure itself (its view of requests, end to end, time to first token, tokens, cache).
Each app has its own registry, so several apps in one process (tests) do not collide.

The ``model`` label is bounded by the configuration, never the name a client sent (any client
could otherwise grow ``/metrics`` without bound): see :func:`model_label`."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "OTHER_MODEL", "ServiceMetrics", "model_label"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

#: The ``model`` label of a model that none of its provider's ``models`` names or matches.
OTHER_MODEL = "other"


def model_label(models: Sequence[str], model: str) -> str:
    """The ``model`` label of a request for ``model`` served by a provider whose ``models`` are
    ``models``: the name itself when listed literally, else the first glob matching it (a model
    served by ``gpt-4o*`` counts as ``gpt-4o*``), else ``other`` (a provider without a ``models``
    list serving any name). The worker labels its metrics the same way
    (``PipelineConfig::metric_labels``)."""
    if model in models:
        return model
    for pattern in models:
        if fnmatch.fnmatchcase(model, pattern):
            return pattern
    return OTHER_MODEL


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "kafka_llm_http_requests",
            "HTTP requests answered, by route template and status code",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "kafka_llm_http_request_duration_seconds",
            "Time from request start to the end of the response body",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.http_inflight = Gauge(
            "kafka_llm_http_inflight", "HTTP requests being handled", registry=r, multiprocess_mode="livesum"
        )
        self.requests = Counter(
            "kafka_llm_requests",
            "LLM requests seen by the service, by outcome "
            "(ok, error, timeout, rejected, cached, accepted, cancelled)",
            ["stream", "provider", "model", "outcome"],
            registry=r,
        )
        self.inflight = Gauge(
            "kafka_llm_inflight",
            "LLM requests this service process is waiting on",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.end_to_end = Histogram(
            "kafka_llm_end_to_end_seconds",
            "From the HTTP request to the last byte of the worker's answer",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.time_to_first_token = Histogram(
            "kafka_llm_time_to_first_token_seconds",
            "From the HTTP request to the first relayed stream chunk",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "kafka_llm_tokens", "Tokens reported by providers", ["provider", "model", "direction"], registry=r
        )
        self.cache_hits = Counter(
            "kafka_llm_cache_hits", "Requests answered from the prompt/response cache", registry=r
        )
        self.produced = Counter(
            "kafka_llm_service_produced",
            "Request records produced, by delivery outcome",
            ["outcome"],
            registry=r,
        )
        self.log_rows_dropped = Counter(
            "kafka_llm_log_rows_dropped",
            "Inference log rows given up: the database stayed unreachable while the bounded buffer "
            "of rows waiting for it was full",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def count_tokens(self, provider: str, model: str, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        for field, direction in (("prompt_tokens", "input"), ("completion_tokens", "output")):
            value = usage.get(field)
            if isinstance(value, int) and value > 0:
                self.tokens.labels(provider, model, direction).inc(value)
