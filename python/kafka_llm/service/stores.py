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

__all__ = ["ResponseCache", "ResultStore", "RetryStore", "cache_key"]

# Deletes KEYS[1] when it holds ARGV[1] (compare-and-delete: a claim is only released by its owner).
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# Deletes a result record still pending (a request that was certainly not produced).
_DROP_PENDING = (
    "local v = redis.call('GET', KEYS[1]) "
    "if v and string.find(v, '\"status\":\"pending\"', 1, true) then return redis.call('DEL', KEYS[1]) end "
    "return 0"
)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class ResultStore:
    def __init__(self, client: aioredis.Redis, prefix: str, ttl_ms: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_ms = ttl_ms

    def key(self, request_id: str) -> str:
        return f"{self._prefix}:result:{request_id}"

    def owner_key(self, request_id: str) -> str:
        """The API key id that created the request (its own Redis key: the worker rewrites the
        result record whole). It lives twice the result TTL, as the worker's final write restarts
        the result's TTL after the request waited in the queue."""
        return f"{self._prefix}:owner:{request_id}"

    async def get_owned(self, request_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """The result record and the id of the key that created it (None: unknown, e.g. a request
        produced to Kafka by another client), in one round trip."""
        try:
            raw, owner = await self._client.mget([self.key(request_id), self.owner_key(request_id)])
        except RedisPyError as e:
            raise RedisError(f"reading the result failed: {e}") from None
        return _record(raw), owner.decode() if isinstance(owner, bytes) else owner

    async def drop_pending(self, request_id: str) -> None:
        """Forgets a request that was certainly not produced (its pending record and owner)."""
        try:
            await self._client.eval(_DROP_PENDING, 1, self.key(request_id))
            await self._client.delete(self.owner_key(request_id))
        except RedisPyError as e:
            raise RedisError(f"deleting the pending result failed: {e}") from None

    async def get(self, request_id: str) -> dict[str, Any] | None:
        try:
            raw = await self._client.get(self.key(request_id))
        except RedisPyError as e:
            raise RedisError(f"reading the result failed: {e}") from None
        return _record(raw)

    async def put_pending(self, request_id: str, provider: str, model: str, owner: str | None = None) -> None:
        """A pending record (unless the worker already wrote one), so the id is known at once, and
        the id of the API key that owns it."""
        now = int(time.time() * 1000)
        record = {
            "status": "pending", "request_id": request_id, "provider": provider, "model": model,
            "output": None, "body": None, "error": None, "status_code": None, "usage": None,
            "attempts": 0, "latency_ms": None, "created_ms": now, "updated_ms": now,
        }  # fmt: skip
        await self._write(request_id, record, owner, nx=True, what="the pending result")

    async def put_done(
        self,
        request_id: str,
        provider: str,
        model: str,
        body: dict[str, Any],
        output: str | None,
        owner: str | None = None,
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
        await self._write(request_id, record, owner, nx=False, what="the result")

    async def _write(
        self, request_id: str, record: dict[str, Any], owner: str | None, *, nx: bool, what: str
    ) -> None:
        """The record (``nx``: unless one exists) and its owner, in one transaction."""
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self.key(request_id), _compact(record), px=self._ttl_ms, nx=nx)
                if owner is not None:
                    pipe.set(self.owner_key(request_id), owner, px=2 * self._ttl_ms)
                await pipe.execute()
        except RedisPyError as e:
            raise RedisError(f"writing {what} failed: {e}") from None

    async def ping(self) -> None:
        await self._client.ping()


def _record(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class RetryStore:
    """Which request a retried call joins, per API key (``scope``): an ``Idempotency-Key`` claimed
    with SET NX, or the last first attempt of an identical call (an OpenAI client's retries carry
    no key, only ``X-Stainless-Retry-Count``). Entries live as long as results."""

    def __init__(self, client: aioredis.Redis, prefix: str, ttl_ms: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_ms = ttl_ms

    def _key(self, scope: str, kind: str, name: str) -> str:
        digest = hashlib.sha256(name.encode()).hexdigest()
        return f"{self._prefix}:retry:{kind}:{scope}:{digest}"

    async def claim(self, scope: str, key: str, request_id: str) -> str | None:
        """Records ``key`` → ``request_id`` unless ``key`` is known: then returns its request id."""
        try:
            old = await self._client.set(
                self._key(scope, "key", key), request_id, px=self._ttl_ms, nx=True, get=True
            )
        except RedisPyError as e:
            raise RedisError(f"recording the idempotency key failed: {e}") from None
        return old.decode() if isinstance(old, bytes) else None

    async def remember(self, scope: str, fingerprint: str, request_id: str) -> None:
        """A first attempt: its retries (same scope and fingerprint) join ``request_id``."""
        try:
            await self._client.set(self._key(scope, "call", fingerprint), request_id, px=self._ttl_ms)
        except RedisPyError as e:
            raise RedisError(f"recording the call failed: {e}") from None

    async def last(self, scope: str, fingerprint: str) -> str | None:
        try:
            value = await self._client.get(self._key(scope, "call", fingerprint))
        except RedisPyError as e:
            raise RedisError(f"reading the call's first attempt failed: {e}") from None
        return value.decode() if isinstance(value, bytes) else value

    async def release(self, scope: str, kind: str, name: str, request_id: str) -> None:
        """Forgets ``name`` if it still names ``request_id`` (a request certainly not produced: a
        retry must produce it again). ``kind`` is "key" or "call"."""
        try:
            await self._client.eval(_RELEASE, 1, self._key(scope, kind, name), request_id)
        except RedisPyError as e:
            raise RedisError(f"releasing the idempotency key failed: {e}") from None

    async def mark_joined(self, request_id: str) -> None:
        """A retry joined ``request_id``: the cancel of an attempt whose client left is not sent."""
        try:
            await self._client.set(f"{self._prefix}:retry:joined:{request_id}", b"1", px=self._ttl_ms)
        except RedisPyError as e:
            raise RedisError(f"recording the retry failed: {e}") from None

    async def joined(self, request_id: str) -> bool:
        try:
            return bool(await self._client.exists(f"{self._prefix}:retry:joined:{request_id}"))
        except RedisPyError as e:
            raise RedisError(f"reading the retry marker failed: {e}") from None


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
