"""One trace from the HTTP call to the response record (issue 20): the service's server and producer
spans and the worker's consume, provider call and publish spans reach one OTLP/HTTP receiver (the
service sends protobuf, the worker OTLP JSON) with one trace id and the right parent links; the
response record the worker produces carries its own producer span's context."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from pipeline_helpers import headers, make_topics, read_until
from service_helpers import config_document, free_port, run_server

from kafka_llm import Pipeline, load_config
from kafka_llm.devstack import StackInfo
from kafka_llm.service.app import create_app
from kafka_llm.service.keystore import KeyStore, make_engine
from kafka_llm.service.settings import ServiceSettings

pytestmark = pytest.mark.stack

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP SpanKind


@dataclass
class ReceivedSpan:
    service: str
    content_type: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    status_code: int


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP traces endpoint on 127.0.0.1: protobuf and JSON bodies, decoded into one list."""

    url: str
    spans: list[ReceivedSpan] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, content_type: str, body: bytes) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest()
        if content_type == "application/x-protobuf":
            request.ParseFromString(body)
        elif content_type == "application/json":
            json_format.Parse(json.dumps(_ids_as_base64(json.loads(body))), request)
        else:
            raise ValueError(f"unexpected Content-Type {content_type!r}")
        with self.lock:
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        self.spans.append(
                            ReceivedSpan(
                                service=resource.get("service.name", ""),
                                content_type=content_type,
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_span_id=s.parent_span_id.hex(),
                                name=s.name,
                                kind=s.kind,
                                attributes={a.key: _value(a.value) for a in s.attributes},
                                status_code=s.status.code,
                            )
                        )

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]


def _ids_as_base64(document: Any) -> Any:
    """OTLP JSON carries ids as hex; protobuf's JSON mapping reads bytes as base64."""
    if isinstance(document, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
            else _ids_as_base64(v)
            for k, v in document.items()
        }
    if isinstance(document, list):
        return [_ids_as_base64(v) for v in document]
    return document


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@contextlib.contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    port = free_port()
    receiver = OtlpReceiver(f"http://127.0.0.1:{port}/v1/traces")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
            try:
                assert self.path == "/v1/traces", self.path
                receiver.add(content_type, body)
            except Exception as e:  # reported by the test, answered as a bad request
                receiver.errors.append(f"{content_type}: {e!r}")
                self.send_response(400)
                self.end_headers()
                return
            answer = trace_service_pb2.ExportTraceServiceResponse()
            out = answer.SerializeToString() if content_type != "application/json" else b"{}"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _one(spans: list[ReceivedSpan], kind: int, name: str) -> ReceivedSpan:
    found = [s for s in spans if s.kind == kind and s.name == name]
    assert len(found) == 1, (kind, name, [(s.service, s.kind, s.name) for s in spans])
    return found[0]


def test_one_trace_from_the_http_call_through_the_worker(
    stack: StackInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # the service's batch span processor
    name = f"t-trace-{secrets.token_hex(4)}"
    topics = make_topics(stack, name, partitions=1)
    with otlp_receiver() as receiver:
        config_path = tmp_path / "worker.yaml"
        config_path.write_text(
            yaml.safe_dump(
                config_document(
                    stack,
                    topics,
                    tracing={"otlpEndpoint": receiver.url, "exportInterval": "100ms"},
                )
            )
        )
        settings = ServiceSettings(
            config=str(config_path),
            database_url=f"sqlite:///{tmp_path / 'keys.db'}",
            key_cache_seconds=0,
            response_timeout_seconds=20,
            otlp_endpoint=receiver.url,
            service_name="kafka-llm-api-test",
        )
        token, _ = KeyStore(make_engine(settings.database_url)).create("tests")
        trace_id = secrets.token_hex(16)
        caller_span = secrets.token_hex(8)
        with (
            Pipeline(load_config(str(config_path), env={})),
            run_server(create_app(settings), free_port()) as server,
        ):
            response = httpx.post(
                f"http://127.0.0.1:{server.config.port}/v1/chat/completions",
                json={"model": "mock-model", "messages": [{"role": "user", "content": "trace me"}]},
                headers={
                    "Authorization": f"Bearer {token}",
                    "traceparent": f"00-{trace_id}-{caller_span}-01",
                },
                timeout=30,
            )
            assert response.status_code == 200, response.text
            request_id = response.headers["x-request-id"]

            # Bounded: the worker exports every 100 ms, the service every 200 ms.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                received = receiver.of_trace(trace_id)
                if {SERVER, PRODUCER, CONSUMER, CLIENT} <= {s.kind for s in received} and len(received) >= 5:
                    break
                time.sleep(0.05)
        assert receiver.errors == []
        spans = receiver.of_trace(trace_id)

    # The service's spans (protobuf) and the worker's (OTLP JSON), in one trace.
    api_server = _one(spans, SERVER, "POST /v1/chat/completions")
    api_producer = _one(spans, PRODUCER, f"{topics.requests} publish")
    consume = _one(spans, CONSUMER, f"{topics.requests} process")
    call = _one(spans, CLIENT, "POST mock")
    publish = _one(spans, PRODUCER, f"{topics.responses} publish")
    assert api_server.parent_span_id == caller_span
    assert api_producer.content_type == "application/x-protobuf"
    assert {s.content_type for s in (consume, call, publish)} == {"application/json"}
    assert {s.service for s in (consume, call, publish)} == {"kafka-llm-worker"}
    assert api_server.service == "kafka-llm-api-test"

    # Parent links: caller -> API server -> API producer -> worker consumer -> provider call, publish.
    assert api_producer.parent_span_id == api_server.span_id
    assert consume.parent_span_id == api_producer.span_id
    assert call.parent_span_id == consume.span_id
    assert publish.parent_span_id == consume.span_id

    assert consume.attributes["messaging.system"] == "kafka"
    assert consume.attributes["messaging.destination.name"] == topics.requests
    assert consume.attributes["messaging.destination.partition.id"] == "0"
    assert consume.attributes["messaging.kafka.offset"] == 0
    assert consume.attributes["kafka_llm.request_id"] == request_id
    assert call.attributes["http.response.status_code"] == 200
    assert call.attributes["kafka_llm.provider"] == "mock"
    assert call.attributes["gen_ai.request.model"] == "mock-model"
    assert call.attributes["kafka_llm.attempt"] == 1
    assert call.status_code != 2  # not an error
    assert publish.attributes["messaging.destination.name"] == topics.responses

    # The response record continues the trace from the worker's producer span.
    def of_request(records: list[Any]) -> list[Any]:
        return [r for r in records if r.key == request_id.encode()]

    answered = of_request(read_until(stack, topics.responses, lambda rs: bool(of_request(rs)), timeout=20))
    assert headers(answered[0])["traceparent"] == f"00-{trace_id}-{publish.span_id}-01"
