"""OpenTelemetry traces of the service. Every HTTP request gets a server span continuing the
caller's W3C ``traceparent``; producing the request record is a producer span whose context goes
into the record's Kafka headers (``traceparent``, ``tracestate``), so the worker and the dead-letter
topic see the trace. Spans are exported over OTLP/HTTP only when an endpoint is configured."""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["Tracing"]


class Tracing:
    """One tracer provider per app (not the process-global one, so apps never share state)."""

    def __init__(self, service_name: str, otlp_endpoint: str | None) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if not endpoint and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            endpoint = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
        self.exporting = bool(endpoint)
        if endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self.tracer = self.provider.get_tracer("kafka_llm.service")
        self._propagator = TraceContextTextMapPropagator()

    def extract(self, headers: Mapping[str, str]) -> otel_context.Context:
        """The caller's trace context from HTTP headers (an empty context when there is none)."""
        carrier = {k: v for k, v in headers.items() if k in ("traceparent", "tracestate")}
        return self._propagator.extract(carrier)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """``traceparent`` (and ``tracestate``) of the current span, as Kafka record headers."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return [(name, value.encode()) for name, value in carrier.items()]

    @staticmethod
    def current_trace_id() -> str | None:
        span_context = trace.get_current_span().get_span_context()
        return format(span_context.trace_id, "032x") if span_context.is_valid else None

    def shutdown(self) -> None:
        self.provider.shutdown()
