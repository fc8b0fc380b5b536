"""Liveness, readiness and Prometheus metrics (no API key needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from kafka_llm.service.deps import GatewayDep
from kafka_llm.service.metrics import CONTENT_TYPE_LATEST

router = APIRouter(tags=["operations"])

_CHECK_TIMEOUT = 3.0


@router.get("/health", summary="Liveness: the process answers")
async def health(gateway: GatewayDep) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "ok",
        "auth": "enabled" if gateway.settings.auth_enabled else "disabled",
    }
    if not gateway.settings.auth_enabled:
        body["warnings"] = ["authentication is disabled: anyone who reaches this service can use it"]
    return body


async def _check(run: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            detail = await run()
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {_CHECK_TIMEOUT:g} s"}
    except Exception as e:  # a readiness probe reports every failure instead of raising
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True, **(detail or {})}


@router.get(
    "/health/ready",
    summary="Readiness: Kafka, Redis and the database answer",
    responses={503: {"description": "At least one dependency does not answer"}},
)
async def ready(gateway: GatewayDep) -> JSONResponse:
    async def kafka() -> Any:
        return await asyncio.to_thread(gateway.bridge.check, _CHECK_TIMEOUT)

    async def redis() -> Any:
        await gateway.results.ping()

    async def database() -> Any:
        await asyncio.to_thread(gateway.keys.ping)

    results = await asyncio.gather(_check(kafka), _check(redis), _check(database))
    checks = dict(zip(("kafka", "redis", "database"), results, strict=True))
    ok = all(c["ok"] for c in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/metrics", summary="Prometheus metrics of this process", response_class=Response)
async def metrics(gateway: GatewayDep) -> Response:
    gateway.metrics.inflight.set(gateway.bridge.waiting)
    return Response(gateway.metrics.render(), media_type=CONTENT_TYPE_LATEST)
