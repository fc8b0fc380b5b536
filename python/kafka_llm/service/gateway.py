"""What the routes do, between HTTP and Kafka: check the provider and model, answer from the cache,
produce the request envelope and wait for the worker's response envelope or token frames on the
response topic (docs/formats.md). Routes stay thin; this holds the flow."""

from __future__ import annotations

import asyncio
import contextvars
import fnmatch
import hashlib
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
from kafka_llm.service.bridge import KafkaBridge, NotProduced, ProduceUncertain, ResponseSubscription
from kafka_llm.service.errors import ServiceError, core_error_status, error_body
from kafka_llm.service.keystore import ApiKey, InferenceLogWriter, KeyStore, LogEntry
from kafka_llm.service.limits import max_body_bytes, max_envelope_bytes
from kafka_llm.service.metrics import ServiceMetrics, model_label
from kafka_llm.service.settings import ServiceSettings
from kafka_llm.service.stores import ResponseCache, ResultStore, RetryStore, cache_key
from kafka_llm.service.stream_limit import StreamLease, StreamLimiter
from kafka_llm.service.streaming import AnthropicToOpenAIChunks, assemble_body, chunks_from_body, output_text
from kafka_llm.service.tracing import Tracing

__all__ = [
    "CURRENT_RETRY",
    "DISCONNECT_REASON",
    "FINAL_STATUSES",
    "Answer",
    "Gateway",
    "RetryIdentity",
    "StreamStart",
]

logger = logging.getLogger("kafka_llm.service")

#: Result statuses after which a request never changes (a DELETE is then a 409).
FINAL_STATUSES = ("done", "error", "cancelled")
#: The reason of the cancel record produced when a client leaves before the end of its answer.
DISCONNECT_REASON = "client disconnected"
#: How long the service's shutdown waits for cancel records still being produced.
_BACKGROUND_DRAIN_SECONDS = 5.0
#: ``/process`` requests whose outcome the service waits for at once, to log it; beyond, a request
#: is logged as accepted only.
MAX_OUTCOME_WATCHES = 10_000
#: The Retry-After (seconds) of a 429 too_many_streams.
STREAM_RETRY_AFTER_SECONDS = 1
#: The most of a request or response body the inference log keeps (KAFKA_LLM_LOG_BODIES=true).
LOG_BODY_LIMIT_BYTES = 16_384


@dataclass(frozen=True)
class RetryIdentity:
    """What an HTTP call says about being a retry: its ``Idempotency-Key``, and the retry count an
    OpenAI SDK client sends (``X-Stainless-Retry-Count``: 0 on the first attempt). The SDK sends no
    idempotency header (its ``_idempotency_header`` is None), so its retries are recognized as the
    same API key sending the same call again with a count above 0."""

    idempotency_key: str | None = None
    retry_count: int | None = None

    @classmethod
    def from_headers(cls, headers: Any) -> RetryIdentity:
        key = (headers.get("idempotency-key") or "").strip() or None
        count: int | None = None
        raw = headers.get("x-stainless-retry-count")
        if raw is not None:
            try:
                count = max(int(raw), 0)
            except ValueError:
                count = None
        return cls(key[:200] if key else None, count)

    @property
    def retryable(self) -> bool:
        return self.idempotency_key is not None or self.retry_count is not None


#: The retry identity of the HTTP call being served (set by ``deps.authenticate``; a WebSocket
#: message has none).
CURRENT_RETRY: contextvars.ContextVar[RetryIdentity | None] = contextvars.ContextVar(
    "kafka_llm_retry", default=None
)
_NO_RETRY = RetryIdentity()


@dataclass
class _Claim:
    """What made a request joinable (forgotten again when it was certainly not produced)."""

    scope: str
    kind: str  # "key" (Idempotency-Key) or "call" (an SDK's first attempt)
    name: str


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
    retryable: bool = False


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
        self.retries = RetryStore(redis, config.redis_key_prefix, config.result_ttl_ms)
        self.request_topic = config.streams[0].requests_topic
        self.cancel_topic: str | None
        try:
            self.cancel_topic = cancel_topic(config, 0)
            self._no_cancel_topic = ""
        except ConfigError as e:
            self.cancel_topic, self._no_cancel_topic = None, str(e)
        self._background: set[asyncio.Task[None]] = set()
        # /process requests waiting for their outcome (to log it), by request id.
        self._watches: dict[str, asyncio.Task[None]] = {}
        self.watch_seconds = config.result_ttl_ms / 1000
        # The largest request envelope (maxRequestBytes, or what the producer's message.max.bytes
        # leaves for a record's value) and body (at most that): service/limits.py.
        self.max_envelope_bytes = max_envelope_bytes(config.max_request_bytes, config.kafka)
        self.max_body_bytes = max_body_bytes(config.max_request_bytes, config.kafka, settings.max_body_bytes)
        self.response_timeout = settings.response_timeout_seconds or (
            config.retry.get("request_timeout_ms", 120_000) / 1000 + 10
        )
        self._providers = {p.name: p for p in config.providers}
        # Concurrent streams per API key, in this process (KAFKA_LLM_MAX_STREAMS_PER_KEY).
        self.streams = StreamLimiter(settings.max_streams_per_key)

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

    def stream_lease(self, key: ApiKey | None) -> StreamLease:
        """A place among the key's concurrent streams (release it when the stream ends), or a
        429 ``too_many_streams`` when the key holds ``max_streams_per_key`` already."""
        lease = self.streams.acquire(key.id if key is not None else None)
        if lease is None:
            raise ServiceError(
                429,
                f"too many concurrent streams for this API key (at most {self.streams.limit} per "
                "service process): wait for one to end",
                code="too_many_streams",
                headers={"Retry-After": str(STREAM_RETRY_AFTER_SECONDS)},
            )
        return lease

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
        call = self._call("/process", provider_name, model, key, False)
        # The record first: a request too large is a 413 before any retry claim is made.
        fresh = uuid.uuid4().hex
        envelope = self._envelope(fresh, "/v1/chat/completions", body, provider_name, key, metadata)
        request_id, claim, joined = await self._begin(call, [body, metadata], fresh)
        if joined:  # a retry: the first attempt's request id, nothing produced
            self._finish(call, request_id, 202, "accepted", None, request=body)
            return request_id
        hit = await self._cache_get(provider_name, "/v1/chat/completions", body)
        if hit is not None:
            await self.results.put_done(request_id, provider_name, model, hit, output_text(hit), _owner(key))
            self._finish(
                call, request_id, 200, "cached", hit.get("usage"), cached=True, request=body, response=hit
            )
            return request_id
        watch = self._watch(request_id)  # before producing: the answer may come at once
        try:
            await self._put_pending(request_id, provider_name, model, key, claim)
            await self._produce_request(request_id, envelope, claim)
        except BaseException as e:
            if watch is not None:
                watch.close()
            if isinstance(e, KafkaLlmError | ServiceError):
                self._failed(call, request_id, e)
            raise
        self._finish(call, request_id, 202, "accepted", None, request=body)
        if watch is not None:
            self._log_outcome_later(call, request_id, watch)
        return request_id

    async def result(self, request_id: str, key: ApiKey | None = None) -> dict[str, Any]:
        """The request's state; 404 when unknown, expired or created by another key (an admin
        key sees all)."""
        record = await self._record(request_id, key)
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

    async def cancel(self, request_id: str, reason: str, key: ApiKey | None = None) -> dict[str, Any]:
        """Produces the cancel record of a request that is not finished and returns once the
        broker has it. 501 without a cancel topic, 404 for an unknown id, 409 when finished."""
        if self.cancel_topic is None:
            raise ServiceError(501, self._no_cancel_topic, code="cancel_not_configured")
        record = await self._record(request_id, key)
        status = record.get("status")
        if status in FINAL_STATUSES:
            raise ServiceError(
                409,
                f"request {request_id!r} is already {status}: a finished request cannot be cancelled",
                code="request_finished",
            )
        await self._produce_cancel(request_id, reason)
        return {"request_id": request_id, "status": "cancelling"}

    async def _record(self, request_id: str, key: ApiKey | None) -> dict[str, Any]:
        record, owner = await self.results.get_owned(request_id)
        if key is not None and not key.admin and owner is not None and owner != key.id:
            record = None  # another key's request: answered as unknown, never revealed
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
        call = self._call(endpoint, provider_name, model, key, False)
        # The record and the cache before any retry claim: a 413 or a cache hit leaves no claim
        # that a retry would join (and wait for in vain).
        fresh = uuid.uuid4().hex
        envelope = self._envelope(fresh, endpoint, body, provider_name, key, None)
        hit = await self._cache_get(provider_name, endpoint, body)
        if hit is not None:
            self._finish(
                call, fresh, 200, "cached", hit.get("usage"), cached=True, request=body, response=hit
            )
            return Answer(200, hit, fresh, cached=True)
        request_id, claim, joined = await self._begin(call, body, fresh)
        try:
            if joined:  # a retry: the first attempt's answer, nothing produced
                message = await self._await_final(request_id)
            else:
                # The pending record first: a Redis failure is a 503 with nothing produced.
                await self._put_pending(request_id, provider_name, model, key, claim)
                with self.bridge.subscribe(request_id) as subscription:
                    await self._produce_request(request_id, envelope, claim)
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
        outcome = "ok" if status < 400 else "error"
        self._finish(call, request_id, status, outcome, answer.get("usage"), request=body, response=answer)
        return Answer(status, answer, request_id)

    async def start_stream(
        self, key: ApiKey | None, endpoint: str, provider: str | None, body: dict[str, Any]
    ) -> Answer | StreamStart:
        """Starts a streamed call. Waits for the first frame, so that a call failing before any
        token is answered with the provider's status (an Answer) instead of a 200 stream."""
        model = str(body["model"])
        self.authorize(key, model)
        provider_name = self.route(provider, model)
        call = self._call(endpoint, provider_name, model, key, True)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        fresh = uuid.uuid4().hex
        envelope = self._envelope(fresh, endpoint, body, provider_name, key, None)
        hit = await self._cache_get(provider_name, endpoint, body)
        if hit is not None:
            self._finish(
                call, fresh, 200, "cached", hit.get("usage"), cached=True, request=body, response=hit
            )
            return StreamStart(fresh, _replay(chunks_from_body(hit, include_usage), hit), cached=True)
        request_id, claim, joined = await self._begin(call, body, fresh)
        if joined:
            return await self._joined_stream(call, request_id, include_usage, body)
        try:
            await self._put_pending(request_id, provider_name, model, key, claim)
        except KafkaLlmError as e:
            self._failed(call, request_id, e)
            raise
        subscription = self.bridge.subscribe(request_id)
        try:
            await self._produce_request(request_id, envelope, claim)
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
            outcome = "ok" if status < 400 else "error"
            self._finish(call, request_id, status, outcome, first.get("usage"), request=body, response=answer)
            return Answer(status, answer, request_id)
        self.metrics.time_to_first_token.observe(time.monotonic() - call.started)

        # An Anthropic provider's events become OpenAI chunks on the OpenAI endpoint.
        mapper = (
            AnthropicToOpenAIChunks(model)
            if self._providers[provider_name].kind == "anthropic" and endpoint == "/v1/chat/completions"
            else None
        )
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
                self._finish(call, request_id, status, outcome, usage, request=body)

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
        for watch in list(self._watches.values()):
            watch.cancel()
        if self._background:
            await asyncio.wait(set(self._background), timeout=_BACKGROUND_DRAIN_SECONDS)

    # --- retries: joining the first attempt's request -------------------------------------------

    def _call(self, endpoint: str, provider: str, model: str, key: ApiKey | None, stream: bool) -> _Call:
        retryable = (CURRENT_RETRY.get() or _NO_RETRY).retryable
        return _Call(endpoint, provider, model, key, stream, time.monotonic(), retryable)

    async def _begin(self, call: _Call, what: Any, request_id: str) -> tuple[str, _Claim | None, bool]:
        """``(request id, claim, joined)``: with an ``Idempotency-Key`` already used by this API
        key, or an OpenAI SDK retry of a call this key just made, the first attempt's request id
        and True (nothing is to be produced); else ``request_id``, recorded so that retries join
        it. Raises RedisError (a 503, nothing produced) when Redis fails."""
        identity = CURRENT_RETRY.get() or _NO_RETRY
        scope = call.key.id if call.key is not None else "-"
        if identity.idempotency_key is not None:
            first = await self.retries.claim(scope, identity.idempotency_key, request_id)
            if first is not None:
                await self.retries.mark_joined(first)
                return first, None, True
            return request_id, _Claim(scope, "key", identity.idempotency_key), False
        if identity.retry_count is not None:
            canonical = json.dumps(
                [call.provider, call.endpoint, what], sort_keys=True, separators=(",", ":")
            )
            fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
            if identity.retry_count > 0:
                first = await self.retries.last(scope, fingerprint)
                if first is not None:
                    await self.retries.mark_joined(first)
                    return first, None, True
            await self.retries.remember(scope, fingerprint, request_id)
            return request_id, _Claim(scope, "call", fingerprint), False
        return request_id, None, False

    async def _put_pending(
        self, request_id: str, provider: str, model: str, key: ApiKey | None, claim: _Claim | None
    ) -> None:
        """The pending result record; when Redis fails (a 503, nothing produced), the retry claim
        is released (if Redis still takes that), so a retry produces the request anew."""
        try:
            await self.results.put_pending(request_id, provider, model, _owner(key))
        except KafkaLlmError:
            await self._forget(request_id, claim)
            raise

    async def _forget(self, request_id: str, claim: _Claim | None) -> None:
        """Forgets a request that was certainly not produced: its pending record and retry claim."""
        try:
            await self.results.drop_pending(request_id)
            if claim is not None:
                await self.retries.release(claim.scope, claim.kind, claim.name, request_id)
        except KafkaLlmError as cleanup:
            logger.warning("request %s: not produced, and forgetting it failed: %s", request_id, cleanup)

    async def _produce_request(self, request_id: str, envelope: bytes, claim: _Claim | None) -> None:
        """Produces the request record. A record certainly not on the broker is a 503 (its
        pending result and retry claim forgotten, so a retry produces it anew); one that may be
        there is a 504 naming the request id (a retry joins it)."""
        try:
            await self._produce(request_id, envelope)
        except NotProduced as e:
            await self._forget(request_id, claim)
            raise ServiceError(
                503,
                f"Kafka is unavailable: {e}. The request was not produced and will not run: safe to retry",
                code="not_produced",
            ) from None
        except ProduceUncertain as e:
            raise ServiceError(
                504,
                f"Kafka did not confirm request {request_id} ({e}): it may still run. "
                f"GET /result/{request_id} tells; a retry with the same Idempotency-Key joins it",
                code="produce_uncertain",
                headers={"x-request-id": request_id},
            ) from None

    async def _await_final(self, request_id: str) -> dict[str, Any]:
        """The final response of a request another call produced: from its result record in
        Redis when finished, else from the response topic (up to the response timeout; Redis is
        asked again every second, as the response may have passed before this subscription)."""
        with self.bridge.subscribe(request_id) as subscription:
            deadline = time.monotonic() + self.response_timeout
            while True:
                record = await self.results.get(request_id)
                if record is not None and record.get("status") in FINAL_STATUSES:
                    return _final_of(record)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return await self._next(subscription, request_id)  # raises the 504 at once
                try:
                    message = await subscription.next(min(remaining, 1.0))
                except TimeoutError:
                    continue
                if "chunk" not in message:
                    return message

    async def _joined_stream(
        self, call: _Call, request_id: str, include_usage: bool, body: dict[str, Any]
    ) -> Answer | StreamStart:
        """A retried streamed call: the first attempt's answer, replayed as chunks once it is
        complete (its earlier frames have passed)."""
        try:
            final = await self._await_final(request_id)
            answer = final.get("body")
            if not isinstance(answer, dict):
                record = await self.results.get(request_id)
                answer = record.get("body") if record is not None else None
        except (ServiceError, KafkaLlmError) as e:
            self._failed(call, request_id, e)
            raise
        status = int(final.get("status_code") or 502)
        if not isinstance(answer, dict):
            answer = {"error": final["error"]} if final.get("error") else error_body(status, "no answer body")
        if status != 200 or not answer.get("choices"):
            self._finish(call, request_id, status, "ok" if status < 400 else "error", answer.get("usage"))
            return Answer(status, answer, request_id)
        self._finish(call, request_id, 200, "ok", answer.get("usage"), request=body, response=answer)
        return StreamStart(request_id, _replay(chunks_from_body(answer, include_usage), answer))

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
        if len(value) > self.max_envelope_bytes:
            raise ServiceError(
                413,
                f"the request is {len(value)} bytes as a Kafka record; "
                f"the limit is {self.max_envelope_bytes}",
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
            await self.bridge.produce(topic, value, key, headers)

    def _left(self, call: _Call, request_id: str) -> None:
        """The client went away before the answer ended: count it, and tell the workers to stop
        (with a cancel topic; produced in the background, so this never waits)."""
        self._finish(call, request_id, 499, "cancelled", None)
        if self.cancel_topic is None:
            return
        delay = self.settings.retry_grace_seconds if call.retryable else 0.0
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a stream finalized after its loop stopped: nothing can be sent
            logger.warning("request %s: its client left after the service stopped; not cancelled", request_id)
            return
        task = loop.create_task(self._cancel_in_background(request_id, delay))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _cancel_in_background(self, request_id: str, delay: float = 0.0) -> None:
        """The cancel record of a call whose client left. A retryable call's client may be about
        to retry (an SDK timing out): its cancel waits ``delay`` s and is dropped when a retry
        joined the request meanwhile."""
        try:
            if delay > 0:
                await asyncio.sleep(delay)
                if await self.retries.joined(request_id):
                    return
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

    def _model_label(self, call: _Call) -> str:
        """The metrics' ``model`` label: bounded by the serving provider's ``models``."""
        spec = self._providers.get(call.provider)
        return model_label(spec.models if spec is not None else (), call.model)

    def _finish(
        self,
        call: _Call,
        request_id: str,
        status_code: int,
        outcome: str,
        usage: Any,
        *,
        cached: bool = False,
        request: Any = None,
        response: Any = None,
    ) -> None:
        elapsed = time.monotonic() - call.started
        model = self._model_label(call)
        self.metrics.requests.labels(str(call.stream).lower(), call.provider, model, outcome).inc()
        if outcome in ("ok", "error", "cached"):
            self.metrics.end_to_end.observe(elapsed)
        self.metrics.count_tokens(call.provider, model, usage)
        self._log_row(call, request_id, status_code, outcome, elapsed, usage, cached, request, response)

    def _log_row(
        self,
        call: _Call,
        request_id: str,
        status_code: int,
        status: str,
        elapsed: float,
        usage: Any,
        cached: bool = False,
        request: Any = None,
        response: Any = None,
    ) -> None:
        """One inference log row (bodies only with KAFKA_LLM_LOG_BODIES=true)."""
        usage = usage if isinstance(usage, dict) else {}
        self.log.write(
            LogEntry(
                key_id=call.key.id if call.key else None,
                request_id=request_id,
                endpoint=call.endpoint,
                provider=call.provider,
                model=call.model,
                status_code=status_code,
                status=status,
                latency_ms=elapsed * 1000,
                stream=call.stream,
                cached=cached,
                prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
                completion_tokens=_int_or_none(usage.get("completion_tokens")),
                request_body=self._body(request),
                response_body=self._body(response),
            )
        )

    # --- the outcome of /process requests, for the inference log ----------------------------------

    def _watch(self, request_id: str) -> ResponseSubscription | None:
        """A subscription to the responses of a /process request, or None when
        MAX_OUTCOME_WATCHES requests are watched already (it is then logged as accepted only)."""
        if len(self._watches) >= MAX_OUTCOME_WATCHES:
            return None
        return self.bridge.subscribe(request_id)

    def _log_outcome_later(self, call: _Call, request_id: str, subscription: ResponseSubscription) -> None:
        task = asyncio.get_running_loop().create_task(self._log_outcome(call, request_id, subscription))
        self._watches[request_id] = task
        task.add_done_callback(lambda _: self._watches.pop(request_id, None))

    async def _log_outcome(self, call: _Call, request_id: str, subscription: ResponseSubscription) -> None:
        """Waits (up to the result's lifetime) for the worker's response to a /process request and
        logs its outcome; without one in time, the result record in Redis may still have it."""
        message: dict[str, Any] | None = None
        deadline = time.monotonic() + self.watch_seconds
        try:
            while message is None or "chunk" in message:
                message = await subscription.next(max(deadline - time.monotonic(), 0.001))
        except TimeoutError:
            message = None
        finally:
            subscription.close()
        if message is None:
            try:
                record = await self.results.get(request_id)
            except KafkaLlmError:
                record = None
            if record is None or record.get("status") not in FINAL_STATUSES:
                return
            message = {"status_code": record.get("status_code"), "body": record.get("body")}
            if record.get("body") is None:
                message["body"] = {"error": record.get("error"), "usage": record.get("usage")}
        status_code = _int_or_none(message.get("status_code")) or 502
        answer = message.get("body")
        usage = answer.get("usage") if isinstance(answer, dict) else message.get("usage")
        status = "done" if status_code < 400 else "cancelled" if status_code == 499 else "error"
        elapsed = time.monotonic() - call.started
        self.metrics.end_to_end.observe(elapsed)
        self.metrics.count_tokens(call.provider, self._model_label(call), usage)
        response = answer if answer is not None else message.get("error")
        self._log_row(call, request_id, status_code, status, elapsed, usage, response=response)

    def _body(self, body: Any) -> str | None:
        """What the inference log keeps of a body: nothing unless KAFKA_LLM_LOG_BODIES=true."""
        return _body_text(body) if self.settings.log_bodies else None


def _owner(key: ApiKey | None) -> str | None:
    return key.id if key is not None else None


def _final_of(record: dict[str, Any]) -> dict[str, Any]:
    """A finished result record as the final response envelope it stands for."""
    status = record.get("status")
    default = 200 if status == "done" else 499 if status == "cancelled" else 502
    status_code = _int_or_none(record.get("status_code")) or default
    body = record.get("body")
    if not isinstance(body, dict):
        body = error_body(status_code, _error_text(record, f"request {status}"))
    return {"status_code": status_code, "body": body, "usage": record.get("usage")}


def _error_text(record: dict[str, Any], default: str) -> str:
    """A result record's error message (a string, or an object with a ``message``)."""
    error = record.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    return str(error or default)


def _body_text(body: Any) -> str | None:
    """A body as the inference log keeps it: compact JSON, cut to LOG_BODY_LIMIT_BYTES of UTF-8
    (then ending with ``…[truncated]``)."""
    if body is None:
        return None
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)
    data = text.encode()
    if len(data) <= LOG_BODY_LIMIT_BYTES:
        return text
    return data[:LOG_BODY_LIMIT_BYTES].decode("utf-8", "ignore") + "…[truncated]"


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
