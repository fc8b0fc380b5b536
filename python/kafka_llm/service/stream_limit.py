"""Concurrent streams per API key (``KAFKA_LLM_MAX_STREAMS_PER_KEY``): counts only, no I/O. The
routes take a lease before a stream starts (an SSE answer, a WebSocket connection) and release it
when the stream ends, however it ends. The count is per service process: with ``--workers N`` a
key may hold up to N times the limit."""

from __future__ import annotations

import threading

__all__ = ["StreamLease", "StreamLimiter"]


class StreamLease:
    """One stream's place in its key's count; ``release()`` gives it back (once: later calls do
    nothing)."""

    def __init__(self, limiter: StreamLimiter, key: str) -> None:
        self._limiter = limiter
        self._key = key
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limiter._release(self._key)


class StreamLimiter:
    """At most ``limit`` leases per key at once (``limit`` 0: no limit, nothing refused). ``key``
    is the API key id; calls without a key (auth off) share one count."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self.limit = limit
        self._active: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str | None) -> StreamLease | None:
        """A lease, or None when ``key`` already holds ``limit`` streams."""
        name = key or ""
        with self._lock:
            count = self._active.get(name, 0)
            if self.limit and count >= self.limit:
                return None
            self._active[name] = count + 1
        return StreamLease(self, name)

    def active(self, key: str | None) -> int:
        """Streams ``key`` holds now."""
        with self._lock:
            return self._active.get(key or "", 0)

    def _release(self, name: str) -> None:
        with self._lock:
            count = self._active.get(name, 0) - 1
            if count > 0:
                self._active[name] = count
            else:
                self._active.pop(name, None)
