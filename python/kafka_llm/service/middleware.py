"""Pure ASGI middleware: the request body's size limit and strict JSON check, and the server span
plus HTTP metrics of every request (measured to the end of the body, so streams count whole)."""

from __future__ import annotations

import json
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kafka_llm.service import strict_json
from kafka_llm.service.errors import error_body
from kafka_llm.service.metrics import ServiceMetrics
from kafka_llm.service.tracing import Tracing

__all__ = ["BodyLimitMiddleware", "HeaderLimitMiddleware", "ObservabilityMiddleware"]


class HeaderLimitMiddleware:
    """The request headers' limits, before anything else reads them: more than ``max_bytes`` in
    total (names and values) or more than ``max_count`` headers is a 431 in OpenAI's error shape
    (a WebSocket handshake gets the same answer instead of the upgrade, where the server supports
    it, else a close before accepting). The server bounds the raw request head before this
    (``kafka-llm api``: service/http_limits.py)."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_count: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_count = max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        problem = None
        if len(headers) > self.max_count:
            problem = f"the request has {len(headers)} headers; at most {self.max_count} are accepted"
        else:
            size = sum(len(name) + len(value) for name, value in headers)
            if size > self.max_bytes:
                problem = f"the request headers total {size} bytes; at most {self.max_bytes} are accepted"
        if problem is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps(error_body(431, problem, code="request_header_fields_too_large")).encode()
        start = {
            "status": 431,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
        if scope["type"] == "http":
            await send({"type": "http.response.start", **start})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", **start})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})


class BodyLimitMiddleware:
    """The request body's checks, before the app sees any of it. Above ``limit`` bytes: 413, at
    once from Content-Length, or as soon as a chunked body passes the limit. A JSON body (a POST,
    PUT or PATCH with ``application/json`` or ``application/*+json``, or without a content type,
    which FastAPI parses as JSON unless its strict_content_type is on) is read whole and must be
    strict JSON nested at most :data:`~kafka_llm.service.strict_json.MAX_DEPTH` deep (422 naming
    the problem); the app then reads the same bytes. Every answer has OpenAI's error shape."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._reject(send, 413, self._too_large())
                    return
        if _is_json_body(scope):
            await self._json(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # FastAPI passes HTTPException through body parsing; the app's handler answers.
                    raise HTTPException(413, self._too_large())
            return message

        await self.app(scope, limited_receive, send)

    async def _json(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Reads the whole body, checks it, then runs the app with it."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._reject(send, 413, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:  # no body: the app's validation names the missing fields
            try:
                strict_json.loads(body)
            except strict_json.StrictJSONError as e:
                await self._reject(send, 422, f"body: {e}", param="body")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # then the disconnect, which streaming answers wait for

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"the request body is larger than {self.limit} bytes"

    async def _reject(self, send: Send, status: int, message: str, param: str | None = None) -> None:
        body = json.dumps(error_body(status, message, param=param)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _is_json_body(scope: Scope) -> bool:
    """Whether FastAPI may parse the body as JSON (its own test: ``application/json`` or
    ``application/<anything>+json``, or no content type at all)."""
    if scope.get("method") not in ("POST", "PUT", "PATCH"):
        return False
    content_type: bytes | None = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    if content_type is None:
        return True
    kind = content_type.decode("latin-1").split(";", 1)[0].strip().lower()
    main, _, sub = kind.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, tracing: Tracing) -> None:
        self.app = app
        self.metrics = metrics
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope.get("method", "WS") if scope["type"] == "http" else "WS"
        parent = self.tracing.extract(headers)
        span = self.tracing.tracer.start_span(
            f"{method} {scope['path']}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        status = 500
        started = time.monotonic()

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "websocket.accept":
                status = 101
            await send(message)

        self.metrics.http_inflight.inc()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            self.metrics.http_inflight.dec()
            route = _route_template(scope)
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            span.end()
            otel_context.detach(token)
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_duration.labels(method, route).observe(time.monotonic() - started)


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
