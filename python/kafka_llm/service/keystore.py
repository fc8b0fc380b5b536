"""API keys and the inference log, in SQLite (the embedded default) or PostgreSQL.

A key reads ``kllm_<key id>_<secret>``. Only the key id (public, used to find the row) and
``HMAC-SHA256(pepper, salt || secret)`` with a per-key random salt are stored; the secret itself
never is. Keys carry 256 bits of randomness, so a fast keyed hash is enough (no password stretching
on every request) and the comparison runs in constant time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import queue
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    create_engine,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiKey",
    "ApiKeyRow",
    "InferenceLog",
    "InferenceLogWriter",
    "KeyStore",
    "LogEntry",
    "make_engine",
]

_KEY_PREFIX = "kllm"


class _Base(DeclarativeBase):
    pass


class ApiKeyRow(_Base):
    __tablename__ = "kafka_llm_api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    salt: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64))
    models: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class InferenceLog(_Base):
    __tablename__ = "kafka_llm_inference_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    key_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("kafka_llm_api_keys.id"), nullable=True, index=True
    )
    request_id: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model: Mapped[str] = mapped_column(String(200))
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    status_code: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(40))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)


def make_engine(database_url: str) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql://…`` (psycopg 3), tables created."""
    url = database_url
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    for attempt in range(3):
        try:
            _Base.metadata.create_all(engine)
            break
        except DatabaseError:
            # Several service processes starting at once race to create the tables; the loser
            # sees "already exists" and finds them on the next check.
            if attempt == 2:
                raise
            time.sleep(0.2)
    return engine


@dataclass(frozen=True)
class ApiKey:
    """A stored key as listed and as verified (never the secret)."""

    id: str
    name: str
    models: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows_model(self, model: str) -> bool:
        return not self.models or any(fnmatch.fnmatchcase(model, p) for p in self.models)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "models": list(self.models),
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


class KeyStore:
    """Creates, lists, revokes and verifies API keys. Methods block (database I/O): call them from
    a thread, never on the event loop. Verified keys are remembered for ``cache_seconds``."""

    def __init__(self, engine: Engine, pepper: str = "", cache_seconds: float = 0.0) -> None:
        self._engine = engine
        self._pepper = pepper.encode()
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, str, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def _hash(self, salt: str, secret: str) -> str:
        return hmac.new(self._pepper, bytes.fromhex(salt) + secret.encode(), hashlib.sha256).hexdigest()

    def create(self, name: str, models: Sequence[str] = ()) -> tuple[str, ApiKey]:
        """A new key: returns the full token (shown once) and its stored description."""
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            conn.execute(
                insert(ApiKeyRow).values(
                    id=key_id,
                    name=name,
                    salt=salt,
                    secret_hash=self._hash(salt, secret),
                    models=",".join(models),
                    created_at=now,
                    revoked_at=None,
                )
            )
        return f"{_KEY_PREFIX}_{key_id}_{secret}", ApiKey(key_id, name, tuple(models), now, None)

    def list(self) -> list[ApiKey]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(ApiKeyRow).order_by(ApiKeyRow.created_at)).all()
        return [self._to_key(r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        """Marks the key revoked; False when there is no such (unrevoked) key."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        with self._lock:
            self._cache.clear()
        return bool(result.rowcount)

    def cached(self, token: str) -> tuple[bool, ApiKey | None]:
        """``(True, key or None)`` when ``token`` was verified less than ``cache_seconds`` ago,
        else ``(False, None)``. No I/O: safe on the event loop."""
        with self._lock:
            cached = self._cache.get(token)
        if cached is not None and cached[0] > time.monotonic():
            return True, cached[2]
        return False, None

    def verify(self, token: str) -> ApiKey | None:
        """The key behind ``token`` (possibly revoked: check ``revoked``), or None when the token
        names no key or its secret does not match."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != _KEY_PREFIX or not parts[1] or not parts[2]:
            return None
        key_id, secret = parts[1], parts[2]
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[2]
        with self._engine.connect() as conn:
            row = conn.execute(select(ApiKeyRow).where(ApiKeyRow.id == key_id)).first()
        key: ApiKey | None = None
        if row is not None and hmac.compare_digest(self._hash(row.salt, secret), row.secret_hash):
            key = self._to_key(row)
        if self._cache_seconds > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[token] = (now + self._cache_seconds, key_id, key)
        return key

    def ping(self) -> None:
        with self._engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @staticmethod
    def _to_key(row: Any) -> ApiKey:
        created: datetime = row.created_at
        revoked: datetime | None = row.revoked_at
        return ApiKey(
            id=row.id,
            name=row.name,
            models=tuple(m for m in row.models.split(",") if m),
            created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
            revoked_at=revoked if revoked is None or revoked.tzinfo else revoked.replace(tzinfo=UTC),
        )


@dataclass(frozen=True)
class LogEntry:
    """One inference log row (one per request the service answered or accepted)."""

    key_id: str | None
    request_id: str
    endpoint: str
    provider: str | None
    model: str
    status_code: int
    status: str
    latency_ms: float
    stream: bool = False
    cached: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class InferenceLogWriter:
    """Writes log rows in batches from its own thread, so a request never waits for the database.
    ``close()`` (or leaving the ``with`` block) writes what is queued and joins the thread."""

    def __init__(self, engine: Engine, batch: int = 500, interval: float = 0.2) -> None:
        self._engine = engine
        self._batch = batch
        self._interval = interval
        self._queue: queue.SimpleQueue[LogEntry | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="kafka-llm-inference-log", daemon=True)
        self._thread.start()
        self.failures = 0

    def write(self, entry: LogEntry) -> None:
        self._queue.put(entry)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            rows: list[dict[str, Any]] = []
            try:
                first = self._queue.get(timeout=self._interval)
            except queue.Empty:
                continue
            if first is None:
                stopping = True
            else:
                rows.append(self._row(first))
            while len(rows) < self._batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    continue
                rows.append(self._row(item))
            if rows:
                self._insert(rows)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(InferenceLog), rows)
        except Exception:  # the log must never take the service down; failures are counted
            self.failures += len(rows)

    @staticmethod
    def _row(entry: LogEntry) -> dict[str, Any]:
        return {"created_at": datetime.now(UTC), **vars(entry)}
