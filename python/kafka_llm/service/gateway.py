"""What the routes do, between HTTP and Kafka: check the provider and model, answer from the cache,
produce the request envelope and wait for the worker's response envelope or token frames on the
response topic (docs/formats.md). Routes stay thin; this holds the flow."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from opentelemetry import trace
from sqlalchemy import Engine

from kafka_llm.cancel import cancel_record, cancel_topic
from kafka_llm.config import Config
from kafka_llm.errors import ConfigError, KafkaLlmError
from kafka_llm.service.bridge import KafkaBridge, ResponseSubscription
from kafka_llm.service.errors import ServiceError, core_error_status, error_body
from kafka_llm.service.keystore import ApiKey, InferenceLogWriter, KeyStore, LogEntry
from kafka_llm.service.metrics import ServiceMetrics
from kafka_llm.service.settings import ServiceSettings
from kafka_llm.service.stores import ResponseCache, ResultStore, cache_key
from kafka_llm.service.streaming import AnthropicToOpenAIChunks, assemble_body, chunks_from_body, output_text
from kafka_llm.service.tracing import Tracing

__all__ = ["DISCONNECT_REASON", "FINAL_STATUSES", "Answer", "Gateway", "StreamStart"]

logger = logging.getLogger("kafka_llm.service")

#: Result statuses after which a request never changes (a DELETE is then a 409).
FINAL_STATUSES = ("done", "error", "cancelled")
#: The reason of the cancel record produced when a client leaves before the end of its answer.
DISCONNECT_REASON = "client disconnected"
#: How long the service's shutdown waits for cancel records still being produced.
_BACKGROUND_DRAIN_SECONDS = 5.0


@dataclass
class Answer:
    """A complete (non-streamed) answer: the provider's status and body."""

    status_code: int
    body: dict[str, Any]
    request_id: str
    cached: bool = False


@dataclass
class StreamStart:
    """A stream that started: relay ``events`` (OpenAI chunk dicts, then a closing frame), then
    call ``aclose()`` whatever happened."""

    request_id: str
    events: AsyncGenerator[dict[str, Any], None]
    cached: bool = False
    # What ends the call when the relay never ran (the client left before the first event was
    # sent): closing a generator that never started runs none of its code.
    _abandon: Callable[[], None] | None = field(default=None, repr=False)

    async def aclose(self) -> None:
        """Ends the stream where it is: a stream left before its final frame counts as cancelled
        and, with a cancel topic, the workers are told to stop (in the background)."""
        await self.events.aclose()
        if self._abandon is not None:
            self._abandon()


@dataclass
class _Call:
    """One request on its way: what every log row and metric needs."""

    endpoint: str
    provider: str
    model: str
    key: ApiKey | None
    stream: bool
    started: float


class Gateway:
    """Everything a request needs, built by the app's lifespan; one per service process."""

    def __init__(
        self,
        settings: ServiceSettings,
        config: Config,
        bridge: KafkaBridge,
        redis: aioredis.Redis,
        engine: Engine,
        keys: KeyStore,
        log: InferenceLogWriter,
        metrics: ServiceMetrics,
        tracing: Tracing,
    ) -> None:
        self.settings = settings
        self.config = config
        self.bridge = bridge
        self.redis = redis
        self.engine = engine
        self.keys = keys
        self.log = log
        self.metrics = metrics
        self.tracing = tracing
        self.results = ResultStore(redis, config.redis_key_prefix, config.result_ttl_ms)
        self.cache = ResponseCache(redis, config.redis_key_prefix, settings.cache_ttl_seconds)
        self.request_topic = config.streams[0].requests_topic
        self.cancel_topic: str | None
        try:
            self.cancel_topic = cancel_topic(config, 0)
            self._no_cancel_topic = ""
        except ConfigError as e:
            self.cancel_topic, self._no_cancel_topic = None, str(e)
        self._background: set[asyncio.Task[None]] = set()
        self.max_body_bytes = settings.max_body_bytes or config.max_request_bytes
        self.response_timeout = settings.response_timeout_seconds or (
            config.retry.get("request_timeout_ms", 120_000) / 1000 + 10
        )
        self._providers = {p.name: p for p in config.providers}

    # --- checks (nothing is produced when one fails) --------------------------------------------

    def route(self, provider: str | None, model: str) -> str:
        """The provider that will serve ``model`` (the worker's routing), or a 400 naming the field."""
        if provider is not None:
            spec = self._providers.get(provider)
            if spec is None:
                raise ServiceError(
                    400,
                    f"unknown provider {provider!r} (configured: {', '.join(self._providers)})",
                    param="provider",
                    code="unknown_provider",
                )
            if spec.models and not any(fnmatch.fnmatchcase(model, p) for p in spec.models):
                raise ServiceError(
                    400,
                    f"unknown model {model!r} for provider {provider!r} (serves: {', '.join(spec.models)})",
                    param="model",
                    code="unknown_model",
                )
            return provider
        for spec in self.config.providers:
            if any(fnmatch.fnmatchcase(model, p) for p in spec.models):
                return spec.name
        default = self._providers[self.config.default_provider]
        if default.models:
            raise ServiceError(
                400, f"unknown model {model!r}: no provider serves it", param="model", code="unknown_model"
            )
        return default.name

    @staticmethod
    def authorize(key: ApiKey | None, model: str) -> None:
        if key is not None and not key.allows_model(model):
            raise ServiceError(
                403, f"this API key may not use model {model!r}", param="model", code="model_not_allowed"
            )

    # --- /process and /result -------------------------------------------------------------------

    async def process(
        self, key: ApiKey | None, provider: str | None, model: str, body: dict[str, Any], metadata: Any
    ) -> str:
        """Produces one chat request and returns its id once the broker has it (202 semantics).
        A cache hit is stored as a done result at once, without Kafka."""
        self.authorize(key, model)
        provider_name = self.route(provider, model)
        call = _Call("/process", provider_name, model, key, False, time.monotonic())
        request_id = uuid.uuid4().hex
        hit = await self._cache_get(provider_name, "/v1/chat/completions", body)
        if hit is not None:
            await self.results.put_done(request_id, provider_name, model, hit, output_text(hit))
            self._finish(call, request_id, 200, "cached", hit.get("usage"), cached=True)
            return request_id
        envelope = self._envelope(request_id, "/v1/chat/completions", body, provider_name, key, metadata)
        try:
            await self.results.put_pending(request_id, provider_name, model)
            await self._produce(request_id, envelope)
        except KafkaLlmError as e:
            self._failed(call, request_id, e)
            raise
        self._finish(call, request_id, 202, "accepted", None)
        return request_id

    async def result(self, request_id: str) -> dict[str, Any]:
        record = await self._record(request_id)
        status = record.get("status")
        if status == "done":
            return {
                "provider": record.get("provider"),
                "model": record.get("model"),
                "output": record.get("output"),
                "error": None,
                "usage": record.get("usage"),
            }
        if status == "error":
            return {"error": _error_text(record, f"request failed with status {record.get('status_code')}")}
        if status == "cancelled":
            return {"status": "cancelled", "error": _error_text(record, "cancelled")}
        return {"status": "pending"}

    async def cancel(self, request_id: str, reason: str) -> dict[str, Any]:
        """Produces the cancel record of a request that is not finished and returns once the
        broker has it. 501 without a cancel topic, 404 for an unknown id, 409 when finished."""
        if self.cancel_topic is None:
            raise ServiceError(501, self._no_cancel_topic, code="cancel_not_configured")
        record = await self._record(request_id)
        status = record.get("status")
        if status in FINAL_STATUSES:
            raise ServiceError(
                409,
                f"request {request_id!r} is already {status}: a finished request cannot be cancelled",
                code="request_finished",
            )
        await self._produce_cancel(request_id, reason)
        return {"request_id": request_id, "status": "cancelling"}

    async def _record(self, request_id: str) -> dict[str, Any]:
        record = await self.results.get(request_id)
        if record is None:
            raise ServiceError(
                404, f"no result for request {request_id!r} (unknown or expired)", code="not_found"
            )
        return record

    # --- OpenAI-compatible calls ----------------------------------------------------------------

    async def complete(
        self, key: ApiKey | None, endpoint: str, provider: str | None, body: dict[str, Any]
    ) -> Answer:
        """One call answered in full: from the cache, or through Kafka and a worker."""
        model = str(body["model"])
        self.authorize(key, model)
        provider_name = self.route(provider, model)
        call = _Call(endpoint, provider_name, model, key, False, time.monotonic())
        hit = await self._cache_get(provider_name, endpoint, body)
        request_id = uuid.uuid4().hex
        if hit is not None:
            self._finish(call, request_id, 200, "cached", hit.get("usage"), cached=True)
            return Answer(200, hit, request_id, cached=True)
        envelope = self._envelope(request_id, endpoint, body, provider_name, key, None)
        try:
            with self.bridge.subscribe(request_id) as subscription:
                await self._produce(request_id, envelope)
                message = await self._next(subscription, request_id)
        except (ServiceError, KafkaLlmError) as e:
            self._failed(call, request_id, e)
            raise
        except asyncio.CancelledError:  # the client left: nobody will read the answer
            self._left(call, request_id)
            raise
        if "body" in message:
            status, answer = int(message.get("status_code", 502)), message["body"]
        else:  # a stream frame for a call that did not ask to stream: the worker's final word
            status = int(message.get("status_code", 502))
            answer = {"error": message.get("error")} if message.get("error") else {}
        if not isinstance(answer, dict):
            answer = {"result": answer}
        if status == 200:
            await self._cache_put(provider_name, endpoint, body, answer)
        self._finish(call, request_id, status, "ok" if status < 400 else "error", answer.get("usage"))
        return Answer(status, answer, request_id)

    async def start_stream(
        self, key: ApiKey | None, endpoint: str, provider: str | None, body: dict[str, Any]
    ) -> Answer | StreamStart:
        """Starts a streamed call. Waits for the first frame, so that a call failing before any
        token is answered with the provider's status (an Answer) instead of a 200 stream."""
        model = str(body["model"])
        self.authorize(key, model)
        provider_name = self.route(provider, model)
        call = _Call(endpoint, provider_name, model, key, True, time.monotonic())
        request_id = uuid.uuid4().hex
        hit = await self._cache_get(provider_name, endpoint, body)
        if hit is not None:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._finish(call, request_id, 200, "cached", hit.get("usage"), cached=True)
            return StreamStart(request_id, _replay(chunks_from_body(hit, include_usage), hit), cached=True)
        envelope = self._envelope(request_id, endpoint, body, provider_name, key, None)
        subscription = self.bridge.subscribe(request_id)
        try:
            await self._produce(request_id, envelope)
            first = await self._next(subscription, request_id)
        except BaseException as e:
            subscription.close()
            if isinstance(e, ServiceError | KafkaLlmError):
                self._failed(call, request_id, e)
            elif isinstance(e, asyncio.CancelledError):  # the client left before the first token
                self._left(call, request_id)
            raise
        if "chunk" not in first:
            subscription.close()
            status = int(first.get("status_code", 502))
            if "body" in first and isinstance(first["body"], dict):
                answer: dict[str, Any] = first["body"]
            elif first.get("error"):
                answer = {"error": first["error"]}
            else:
                answer = error_body(status, "the stream ended before its first token")
            self._finish(call, request_id, status, "ok" if status < 400 else "error", first.get("usage"))
            return Answer(status, answer, request_id)
        self.metrics.time_to_first_token.observe(time.monotonic() - call.started)

        # An Anthropic provider's events become OpenAI chunks on the OpenAI endpoint.
        mapper = (
            AnthropicToOpenAIChunks(model)
            if self._providers[provider_name].kind == "anthropic" and endpoint == "/v1/chat/completions"
            else None
        )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        ended = False

        def end(status: int, outcome: str, usage: Any) -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            subscription.close()
            if outcome == "cancelled":
                self._left(call, request_id)
            else:
                self._finish(call, request_id, status, outcome, usage)

        async def relay() -> AsyncGenerator[dict[str, Any], None]:
            chunks: list[dict[str, Any]] = []
            # Until the final frame is handed over, leaving (the consumer closes or is cancelled
            # because its client went away) is a cancellation.
            status, outcome, usage = 499, "cancelled", None
            try:
                message = first
                while "chunk" in message:
                    for chunk in mapper(message["chunk"]) if mapper else [message["chunk"]]:
                        if isinstance(chunk, dict):
                            chunks.append(chunk)
                        yield {**message, "chunk": chunk}
                    message = await self._next(subscription, request_id)
                status = int(message.get("status_code", 200))
                usage = message.get("usage")
                outcome = "ok" if status < 400 and not message.get("error") else "error"
                if mapper and include_usage and usage is not None and outcome == "ok":
                    yield {"chunk": mapper.usage_chunk(usage)}
                yield message
                if outcome == "ok":
                    assembled = assemble_body(chunks, usage)
                    if assembled is not None:
                        await self._cache_put(provider_name, endpoint, body, assembled)
            except ServiceError as e:  # the worker went quiet mid-stream
                status, outcome = e.status_code, "timeout"
                yield {
                    "done": True,
                    "status_code": e.status_code,
                    "error": error_body(e.status_code, e.message)["error"],
                }
            finally:
                end(status, outcome, usage)

        return StreamStart(request_id, relay(), _abandon=lambda: end(499, "cancelled", None))

    async def aclose(self) -> None:
        """Waits (a few seconds at most) for the cancel records still being produced; call
        before the Kafka bridge closes."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=_BACKGROUND_DRAIN_SECONDS)

    # --- internals ------------------------------------------------------------------------------

    def _envelope(
        self,
        request_id: str,
        path: str,
        body: dict[str, Any],
        provider: str,
        key: ApiKey | None,
        metadata: Any,
    ) -> bytes:
        if metadata is None and key is not None:
            metadata = {"api_key_id": key.id}
        envelope: dict[str, Any] = {
            "path": path,
            "body": body,
            "provider": provider,
            "request_id": request_id,
        }
        if metadata is not None:
            envelope = {"metadata": metadata, **envelope}
        value = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
        if len(value) > self.config.max_request_bytes:
            raise ServiceError(
                413,
                f"the request is {len(value)} bytes as a Kafka record; "
                f"the limit is {self.config.max_request_bytes}",
                code="request_too_large",
            )
        return value

    async def _produce(self, request_id: str, value: bytes) -> None:
        try:
            await self._publish(self.request_topic, request_id.encode(), value)
        except BaseException:
            self.metrics.produced.labels("failed").inc()
            raise
        self.metrics.produced.labels("ok").inc()

    async def _produce_cancel(self, request_id: str, reason: str) -> None:
        """The cancel record (kafka_llm.cancel's key and value) on the control topic, acknowledged."""
        assert self.cancel_topic is not None
        key, value = cancel_record(request_id, reason)
        await self._publish(self.cancel_topic, key, value)

    async def _publish(self, topic: str, key: bytes, value: bytes) -> None:
        with self.tracing.tracer.start_as_current_span(
            f"{topic} publish",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "publish",
                "messaging.destination.name": topic,
                "messaging.kafka.message.key": key.decode("utf-8", "replace"),
            },
        ):
            headers = self.tracing.kafka_headers()
            await self.bridge.produce(topic, value, key, headers, self.settings.produce_timeout_seconds)

    def _left(self, call: _Call, request_id: str) -> None:
        """The client went away before the answer ended: count it, and tell the workers to stop
        (with a cancel topic; produced in the background, so this never waits)."""
        self._finish(call, request_id, 499, "cancelled", None)
        if self.cancel_topic is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a stream finalized after its loop stopped: nothing can be sent
            logger.warning("request %s: its client left after the service stopped; not cancelled", request_id)
            return
        task = loop.create_task(self._cancel_in_background(request_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _cancel_in_background(self, request_id: str) -> None:
        try:
            await self._produce_cancel(request_id, DISCONNECT_REASON)
        except KafkaLlmError as e:
            logger.warning("request %s: its client left, but the cancel record failed: %s", request_id, e)

    async def _next(self, subscription: ResponseSubscription, request_id: str) -> dict[str, Any]:
        try:
            return await subscription.next(self.response_timeout)
        except TimeoutError:
            raise ServiceError(
                504,
                f"no answer from a worker within {self.response_timeout:g} s; the request {request_id} "
                "stays queued: GET /result/{request_id} later",
                code="gateway_timeout",
                headers={"x-request-id": request_id},
            ) from None

    async def _cache_get(self, provider: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        hit = await self.cache.get(cache_key(provider, path, body))
        if hit is not None:
            self.metrics.cache_hits.inc()
        return hit

    async def _cache_put(
        self, provider: str, path: str, body: dict[str, Any], answer: dict[str, Any]
    ) -> None:
        await self.cache.put(cache_key(provider, path, body), answer)

    def _failed(self, call: _Call, request_id: str, error: ServiceError | KafkaLlmError) -> None:
        status = error.status_code if isinstance(error, ServiceError) else core_error_status(error)
        self._finish(call, request_id, status, "timeout" if status == 504 else "error", None)

    def _finish(
        self,
        call: _Call,
        request_id: str,
        status_code: int,
        outcome: str,
        usage: Any,
        *,
        cached: bool = False,
    ) -> None:
        elapsed = time.monotonic() - call.started
        self.metrics.requests.labels(str(call.stream).lower(), call.provider, call.model, outcome).inc()
        if outcome in ("ok", "error", "cached"):
            self.metrics.end_to_end.observe(elapsed)
        self.metrics.count_tokens(call.provider, call.model, usage)
        usage = usage if isinstance(usage, dict) else {}
        self.log.write(
            LogEntry(
                key_id=call.key.id if call.key else None,
                request_id=request_id,
                endpoint=call.endpoint,
                provider=call.provider,
                model=call.model,
                status_code=status_code,
                status=outcome,
                latency_ms=elapsed * 1000,
                stream=call.stream,
                cached=cached,
                prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
                completion_tokens=_int_or_none(usage.get("completion_tokens")),
            )
        )


def _error_text(record: dict[str, Any], default: str) -> str:
    """A result record's error message (a string, or an object with a ``message``)."""
    error = record.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    return str(error or default)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _replay(chunks: list[dict[str, Any]], body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
    for seq, chunk in enumerate(chunks):
        yield {"seq": seq, "chunk": chunk}
    finish = None
    choices = body.get("choices") or []
    if choices and isinstance(choices[0], dict):
        finish = choices[0].get("finish_reason")
    yield {
        "seq": len(chunks),
        "done": True,
        "status_code": 200,
        "finish_reason": finish,
        "usage": body.get("usage"),
    }
