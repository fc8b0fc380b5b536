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
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from opentelemetry import trace
from sqlalchemy import Engine

from kafka_llm.config import Config
from kafka_llm.errors import KafkaLlmError
from kafka_llm.service.bridge import KafkaBridge, ResponseSubscription
from kafka_llm.service.errors import ServiceError, core_error_status, error_body
from kafka_llm.service.keystore import ApiKey, InferenceLogWriter, KeyStore, LogEntry
from kafka_llm.service.metrics import ServiceMetrics
from kafka_llm.service.settings import ServiceSettings
from kafka_llm.service.stores import ResponseCache, ResultStore, cache_key
from kafka_llm.service.streaming import AnthropicToOpenAIChunks, assemble_body, chunks_from_body, output_text
from kafka_llm.service.tracing import Tracing

__all__ = ["Answer", "Gateway", "StreamStart"]

logger = logging.getLogger("kafka_llm.service")


@dataclass
class Answer:
    """A complete (non-streamed) answer: the provider's status and body."""

    status_code: int
    body: dict[str, Any]
    request_id: str
    cached: bool = False


@dataclass
class StreamStart:
    """A stream that started: relay ``events()`` (OpenAI chunk dicts, then a closing frame)."""

    request_id: str
    events: AsyncGenerator[dict[str, Any], None]
    cached: bool = False


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
        record = await self.results.get(request_id)
        if record is None:
            raise ServiceError(
                404, f"no result for request {request_id!r} (unknown or expired)", code="not_found"
            )
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
            error = record.get("error")
            if isinstance(error, dict):
                error = error.get("message")
            return {"error": str(error or f"request failed with status {record.get('status_code')}")}
        return {"status": "pending"}

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
            if isinstance(e, ServiceError | KafkaLlmError):
                self._failed(call, request_id, e)
            subscription.close()
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

        async def relay() -> AsyncGenerator[dict[str, Any], None]:
            chunks: list[dict[str, Any]] = []
            status, outcome, usage = 200, "ok", None
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
            except (asyncio.CancelledError, GeneratorExit):
                status, outcome = 499, "cancelled"
                raise
            finally:
                subscription.close()
                self._finish(call, request_id, status, outcome, usage)

        return StreamStart(request_id, relay())

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
        topic = self.request_topic
        with self.tracing.tracer.start_as_current_span(
            f"{topic} publish",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "publish",
                "messaging.destination.name": topic,
                "messaging.kafka.message.key": request_id,
            },
        ):
            headers = self.tracing.kafka_headers()
            try:
                await self.bridge.produce(
                    topic, value, request_id, headers, self.settings.produce_timeout_seconds
                )
            except BaseException:
                self.metrics.produced.labels("failed").inc()
                raise
        self.metrics.produced.labels("ok").inc()

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
