"""The FastAPI app. ``create_app()`` builds it; its lifespan starts and closes, in order, the
Kafka bridge (producer + response reader threads), Redis, the database, the inference log writer
and tracing. Run it with ``kafka-llm api`` (uvicorn) or any ASGI server (factory=True)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.middleware.cors import CORSMiddleware

from kafka_llm import __version__
from kafka_llm.config import load_config
from kafka_llm.service.bridge import KafkaBridge
from kafka_llm.service.errors import install_error_handlers
from kafka_llm.service.gateway import Gateway
from kafka_llm.service.keystore import InferenceLogWriter, KeyStore, make_engine
from kafka_llm.service.limits import max_body_bytes
from kafka_llm.service.metrics import ServiceMetrics
from kafka_llm.service.middleware import BodyLimitMiddleware, HeaderLimitMiddleware, ObservabilityMiddleware
from kafka_llm.service.routes import health, models, openai, process
from kafka_llm.service.settings import ServiceSettings, get_settings
from kafka_llm.service.tracing import Tracing

__all__ = ["create_app"]

logger = logging.getLogger("kafka_llm.service")

_DESCRIPTION = """LLM requests through Kafka: each call becomes a request record that a kafka-llm
worker answers. `/process` + `/result/{id}` queue work; the `/v1/…` endpoints are OpenAI-compatible
(point an OpenAI client's `base_url` here; `stream: true` relays tokens as they arrive).
`WebSocket /v1/completions` (not listed below: OpenAPI has no WebSockets) takes a request per JSON
message and answers each chunk as a message, then `{"done": true, "request_id", "finish_reason",
"usage"}`. Errors use OpenAI's shape `{"error": {"message", "type", "code", "param"}}`; a rejected
request (4xx) is never produced to Kafka. Send the API key as `Authorization: Bearer <key>`."""


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The app for ``settings`` (default: :func:`get_settings`, read from the environment)."""
    settings = settings or get_settings()
    config = load_config(settings.config)  # a bad config fails here, naming the key
    metrics = ServiceMetrics()
    tracing = Tracing(settings.service_name, settings.otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.auth_enabled:
            logger.warning(
                "kafka-llm api: AUTHENTICATION IS DISABLED (KAFKA_LLM_AUTH_ENABLED=false): "
                "anyone who can reach this service can use it and spend the providers' quota"
            )
        async with AsyncExitStack() as stack:
            stack.callback(tracing.shutdown)
            bridge = KafkaBridge(config, asyncio.get_running_loop(), settings.produce_timeout_seconds)
            await asyncio.to_thread(bridge.start)
            stack.push_async_callback(asyncio.to_thread, bridge.close)
            # Bounded calls: an unreachable Redis is a 503 within seconds, never a hang.
            redis = aioredis.Redis.from_url(
                config.redis_url,
                decode_responses=False,
                socket_timeout=settings.redis_timeout_seconds,
                socket_connect_timeout=settings.redis_timeout_seconds,
                retry=Retry(NoBackoff(), 0),
            )
            stack.push_async_callback(redis.aclose)
            engine = await asyncio.to_thread(make_engine, settings.database_url)
            stack.callback(engine.dispose)
            log = InferenceLogWriter(
                engine, capacity=settings.log_buffer_rows, on_drop=metrics.log_rows_dropped.inc
            )
            stack.push_async_callback(asyncio.to_thread, log.close)
            keys = KeyStore(engine, settings.api_key_pepper.get_secret_value(), settings.key_cache_seconds)
            gateway = Gateway(settings, config, bridge, redis, engine, keys, log, metrics, tracing)
            stack.push_async_callback(gateway.aclose)  # cancel records in flight, before the bridge
            app.state.gateway = gateway
            yield

    app = FastAPI(
        title="kafka-llm API",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    body_limit = max_body_bytes(config.max_request_bytes, config.kafka, settings.max_body_bytes)
    app.add_middleware(BodyLimitMiddleware, limit=body_limit)  # the gateway's max_body_bytes
    origins = settings.cors_origin_list
    if origins:  # no CORS at all unless configured: no Access-Control-* headers, preflights are a 405
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["*"],  # Authorization, Content-Type, Idempotency-Key, an SDK's X-Stainless-*
            expose_headers=["x-request-id", "x-kafka-llm-cache", "Retry-After"],
            allow_credentials=False,  # keys travel in the Authorization header, never in cookies
        )
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, tracing=tracing)
    # Outermost: nothing reads the headers before their limits are checked.
    app.add_middleware(
        HeaderLimitMiddleware, max_bytes=settings.max_header_bytes, max_count=settings.max_header_count
    )
    app.include_router(process.router)
    app.include_router(openai.router)
    app.include_router(models.router)
    app.include_router(health.router)
    return app
