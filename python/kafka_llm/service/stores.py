"""Redis side of the service: the worker's result records (docs/formats.md, "Redis result record")
and the prompt/response cache. redis-py errors become the core's ``RedisError`` (answered 503)
where a request needs Redis; the cache never fails a request (an unreachable cache is a miss)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError as RedisPyError

from kafka_llm.errors import RedisError

__all__ = ["ResponseCache", "ResultStore", "cache_key"]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class ResultStore:
    def __init__(self, client: aioredis.Redis, prefix: str, ttl_ms: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_ms = ttl_ms

    def key(self, request_id: str) -> str:
        return f"{self._prefix}:result:{request_id}"

    async def get(self, request_id: str) -> dict[str, Any] | None:
        try:
            raw = await self._client.get(self.key(request_id))
        except RedisPyError as e:
            raise RedisError(f"reading the result failed: {e}") from None
        if raw is None:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    async def put_pending(self, request_id: str, provider: str, model: str) -> None:
        """A pending record (unless the worker already wrote one), so the id is known at once."""
        now = int(time.time() * 1000)
        record = {
            "status": "pending", "request_id": request_id, "provider": provider, "model": model,
            "output": None, "body": None, "error": None, "status_code": None, "usage": None,
            "attempts": 0, "latency_ms": None, "created_ms": now, "updated_ms": now,
        }  # fmt: skip
        try:
            await self._client.set(self.key(request_id), _compact(record), px=self._ttl_ms, nx=True)
        except RedisPyError as e:
            raise RedisError(f"writing the pending result failed: {e}") from None

    async def put_done(
        self, request_id: str, provider: str, model: str, body: dict[str, Any], output: str | None
    ) -> None:
        """A done record in the worker's format (``status`` first: the worker's idempotency check
        reads the prefix ``{"status":"done",``)."""
        now = int(time.time() * 1000)
        record = {
            "status": "done", "request_id": request_id, "provider": provider, "model": model,
            "output": output, "body": body, "error": None, "status_code": 200,
            "usage": body.get("usage"), "attempts": 0, "latency_ms": 0.0, "created_ms": now,
            "updated_ms": now,
        }  # fmt: skip
        try:
            await self._client.set(self.key(request_id), _compact(record), px=self._ttl_ms)
        except RedisPyError as e:
            raise RedisError(f"writing the result failed: {e}") from None

    async def ping(self) -> None:
        await self._client.ping()


def cache_key(provider: str, path: str, body: dict[str, Any]) -> str:
    """Exact match on provider, endpoint, model, parameters and prompt; ``stream`` and
    ``stream_options`` do not change the answer, so a stream and a plain call share an entry."""
    significant = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    canonical = json.dumps([provider, path, significant], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    def __init__(self, client: aioredis.Redis, prefix: str, ttl_seconds: float) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_ms = int(ttl_seconds * 1000)
        self.errors = 0

    @property
    def enabled(self) -> bool:
        return self._ttl_ms > 0

    async def get(self, key: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        try:
            raw = await self._client.get(f"{self._prefix}:cache:{key}")
        except RedisPyError:
            self.errors += 1
            return None
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def put(self, key: str, body: dict[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            await self._client.set(f"{self._prefix}:cache:{key}", _compact(body), px=self._ttl_ms)
        except RedisPyError:
            self.errors += 1
