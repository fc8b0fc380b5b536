"""API keys and the inference log, in SQLite (the embedded default) or PostgreSQL.

A key reads ``kllm_<key id>_<secret>``. Only the key id (public, used to find the row) and
``HMAC-SHA256(pepper, salt || secret)`` with a per-key random salt are stored; the secret itself
never is. Keys carry 256 bits of randomness, so a fast keyed hash is enough (no password stretching
on every request) and the comparison runs in constant time.

Every comparison of secret material is :func:`hmac.compare_digest` of the stored hash and the hash
of the secret presented: the cache of verified keys is keyed by the public key id and keeps the
row's salt and hash (never the token or the secret), so a cached answer is a constant-time
comparison too, not a hash-table lookup on the secret.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
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
    Text,
    create_engine,
    event,
    insert,
    inspect,
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
    # Added after the first release, nullable so that _add_missing_columns() adds it to older
    # databases: their keys read NULL, which is "not admin".
    admin: Mapped[bool | None] = mapped_column(Boolean, nullable=True, default=False)


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
    # Added after the first release: nullable, added to an existing table at start (make_engine).
    # The request and response bodies, kept only with KAFKA_LLM_LOG_BODIES=true (truncated).
    request_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)


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
        # A bounded connect: an unreachable database fails a key check in seconds (a 503), not minutes.
        engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
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
    _add_missing_columns(engine)
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Brings a database made by an older version up to date: every nullable column the tables
    declare but the database lacks is added (``ALTER TABLE ... ADD COLUMN``, no default, so old
    rows read NULL). Anything else about an existing table is left alone. Processes starting at
    once may race: a failed ADD is fine when the column is there afterwards."""
    for table in _Base.metadata.sorted_tables:
        present = {c["name"] for c in inspect(engine).get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            statement = f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'
            try:
                with engine.begin() as conn:
                    conn.execute(text(statement))
            except DatabaseError:
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise


@dataclass(frozen=True)
class _Cached:
    """What the key cache keeps for a key id (``row`` None: no such key): the row's salt and
    secret hash, to compare a presented secret against, and its description."""

    expires: float
    row: tuple[str, str, ApiKey] | None  # (salt, secret hash, key)


@dataclass(frozen=True)
class ApiKey:
    """A stored key as listed and as verified (never the secret)."""

    id: str
    name: str
    models: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    #: An admin key reads and cancels every key's results; other keys only their own.
    admin: bool = False

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
            "admin": self.admin,
        }


class KeyStore:
    """Creates, lists, revokes and verifies API keys. Methods block (database I/O): call them from
    a thread, never on the event loop. Verified keys are remembered for ``cache_seconds``."""

    def __init__(self, engine: Engine, pepper: str = "", cache_seconds: float = 0.0) -> None:
        self._engine = engine
        self._pepper = pepper.encode()
        self._cache_seconds = cache_seconds
        # By key id (public); the secret is compared with the stored hash on every lookup.
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def _hash(self, salt: str, secret: str) -> str:
        return hmac.new(self._pepper, bytes.fromhex(salt) + secret.encode(), hashlib.sha256).hexdigest()

    def _matches(self, salt: str, secret: str, secret_hash: str) -> bool:
        """Whether ``secret`` is the one hashed into ``secret_hash``, in constant time."""
        return hmac.compare_digest(self._hash(salt, secret).encode(), secret_hash.encode())

    def _check(self, entry: _Cached, secret: str) -> ApiKey | None:
        if entry.row is None:
            return None
        salt, secret_hash, key = entry.row
        return key if self._matches(salt, secret, secret_hash) else None

    def create(self, name: str, models: Sequence[str] = (), *, admin: bool = False) -> tuple[str, ApiKey]:
        """A new key: returns the full token (shown once) and its stored description. An ``admin``
        key may read and cancel the results of every key."""
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
                    admin=admin,
                )
            )
        return f"{_KEY_PREFIX}_{key_id}_{secret}", ApiKey(key_id, name, tuple(models), now, None, admin)

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
        """``(True, key or None)`` when ``token``'s key id was looked up less than
        ``cache_seconds`` ago (the secret is then compared with the cached hash, in constant
        time), else ``(False, None)``. No I/O: safe on the event loop."""
        parsed = _parse(token)
        if parsed is None:
            return True, None
        key_id, secret = parsed
        with self._lock:
            entry = self._cache.get(key_id)
        if entry is None or entry.expires <= time.monotonic():
            return False, None
        return True, self._check(entry, secret)

    def verify(self, token: str) -> ApiKey | None:
        """The key behind ``token`` (possibly revoked: check ``revoked``), or None when the token
        names no key or its secret does not match."""
        parsed = _parse(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        now = time.monotonic()
        with self._lock:
            entry = self._cache.get(key_id)
        if entry is None or entry.expires <= now:
            with self._engine.connect() as conn:
                row = conn.execute(select(ApiKeyRow).where(ApiKeyRow.id == key_id)).first()
            stored = None if row is None else (str(row.salt), str(row.secret_hash), self._to_key(row))
            entry = _Cached(now + self._cache_seconds, stored)
            if self._cache_seconds > 0:
                with self._lock:
                    if len(self._cache) > 10_000:
                        self._cache.clear()
                    self._cache[key_id] = entry
        return self._check(entry, secret)

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
            admin=bool(row.admin),
        )


def _parse(token: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a token ``kllm_<key id>_<secret>``, or None when it has another shape."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != _KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


@dataclass(frozen=True)
class LogEntry:
    """One inference log row: one per request the service answered, and two per ``/process``
    request: ``accepted`` (202), then its outcome (``done``, ``error``, ``cancelled``) when the
    worker's response arrives. The bodies are set only with ``KAFKA_LLM_LOG_BODIES=true``."""

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
    request_body: str | None = None
    response_body: str | None = None


class InferenceLogWriter:
    """Writes log rows in batches from its own thread, so a request never waits for the database.

    While the database is unreachable, rows wait in a bounded buffer (``capacity`` rows) and the
    batch is retried with a growing pause (up to ``retry_max`` s); a row that finds the buffer full
    is dropped and counted (``dropped``, and ``on_drop`` — the service's
    ``kafka_llm_log_rows_dropped_total``). ``close()`` makes one last attempt to write what is
    buffered, counts what is left as dropped and joins the thread."""

    def __init__(
        self,
        engine: Engine,
        batch: int = 500,
        interval: float = 0.2,
        *,
        capacity: int = 10_000,
        retry_max: float = 5.0,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._batch = batch
        self._interval = interval
        self._capacity = capacity
        self._retry_max = retry_max
        self._on_drop = on_drop
        self._rows: deque[dict[str, Any]] = deque()
        self._lock = threading.Condition()
        self._stopping = False
        #: Batches the database refused (each is retried); rows dropped for good.
        self.failures = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="kafka-llm-inference-log", daemon=True)
        self._thread.start()

    @property
    def buffered(self) -> int:
        """Rows waiting to be written."""
        with self._lock:
            return len(self._rows)

    def write(self, entry: LogEntry) -> None:
        row = self._row(entry)
        with self._lock:
            if len(self._rows) >= self._capacity:
                self._drop(1)
                return
            self._rows.append(row)
            self._lock.notify()

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _drop(self, count: int) -> None:
        self.dropped += count
        if self._on_drop is not None:
            self._on_drop(count)

    def _run(self) -> None:
        pause = self._interval
        while True:
            with self._lock:
                while not self._rows and not self._stopping:
                    self._lock.wait(self._interval)
                if self._stopping:
                    break
            batch = self._peek()
            if self._insert(batch):
                self._pop(len(batch))
                pause = self._interval
                continue
            # The database is down: keep the rows and wait (woken early only by close()).
            with self._lock:
                if not self._stopping:
                    self._lock.wait(pause)
            pause = min(pause * 2, self._retry_max)
        while batch := self._peek():  # closing: one last attempt at what is buffered
            if not self._insert(batch):
                break
            self._pop(len(batch))
        with self._lock:
            left = len(self._rows)
            self._rows.clear()
        if left:
            self._drop(left)

    def _peek(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._rows[i] for i in range(min(self._batch, len(self._rows)))]

    def _pop(self, count: int) -> None:
        with self._lock:
            for _ in range(count):
                self._rows.popleft()

    def _insert(self, rows: list[dict[str, Any]]) -> bool:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(InferenceLog), rows)
        except Exception:  # the log must never take the service down: kept, retried, counted
            self.failures += 1
            return False
        return True

    @staticmethod
    def _row(entry: LogEntry) -> dict[str, Any]:
        return {"created_at": datetime.now(UTC), **vars(entry)}
