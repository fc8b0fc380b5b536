"""Minimal clients that prove a part of the stack really answers: the Kafka wire protocol
(ApiVersions v0, Metadata v1, FindCoordinator v0), Redis RESP, and HTTP ``GET /health``.

No Kafka or Redis library: a few requests framed with ``struct`` over a blocking socket.
Every call opens its own connection, is bounded by ``timeout`` and closes the socket.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "KafkaBroker",
    "KafkaMetadata",
    "KafkaPartition",
    "KafkaProtocolError",
    "KafkaTopic",
    "ProbeResult",
    "RedisReplyError",
    "http_get",
    "kafka_api_versions",
    "kafka_find_coordinator",
    "kafka_metadata",
    "probe_http_health",
    "probe_kafka",
    "probe_redis",
    "redis_command",
]

# Kafka API keys (https://kafka.apache.org/protocol#protocol_api_keys).
_METADATA = 3
_FIND_COORDINATOR = 10
_API_VERSIONS = 18
_CLIENT_ID = "kafka-llm-devstack"
_MAX_FRAME = 64 * 1024 * 1024


@dataclass(frozen=True)
class ProbeResult:
    """Whether a part answered, with a one-line explanation."""

    ok: bool
    detail: str


class KafkaProtocolError(Exception):
    """The broker's answer could not be understood or carried an error code."""


class RedisReplyError(Exception):
    """Redis answered with an error reply (``-ERR ...``)."""


@dataclass(frozen=True)
class KafkaBroker:
    node_id: int
    host: str
    port: int
    rack: str | None


@dataclass(frozen=True)
class KafkaPartition:
    error_code: int
    index: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class KafkaTopic:
    error_code: int
    name: str
    is_internal: bool
    partitions: tuple[KafkaPartition, ...]


@dataclass(frozen=True)
class KafkaMetadata:
    brokers: tuple[KafkaBroker, ...]
    controller_id: int
    topics: tuple[KafkaTopic, ...]


# --- Kafka framing


class _Reader:
    """Reads big-endian Kafka primitives from a response body."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self._pos + size > len(self._data):
            raise KafkaProtocolError("response ended early")
        values = struct.unpack_from(fmt, self._data, self._pos)
        self._pos += size
        return values

    def int8(self) -> int:
        return self._take(">b")[0]

    def int16(self) -> int:
        return self._take(">h")[0]

    def int32(self) -> int:
        return self._take(">i")[0]

    def nullable_string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        if self._pos + length > len(self._data):
            raise KafkaProtocolError("response ended early")
        text = self._data[self._pos : self._pos + length].decode("utf-8")
        self._pos += length
        return text

    def string(self) -> str:
        text = self.nullable_string()
        if text is None:
            raise KafkaProtocolError("unexpected null string")
        return text

    def array_length(self) -> int:
        length = self.int32()
        return max(length, 0)


def _string(value: str) -> bytes:
    encoded = value.encode("utf-8")
    return struct.pack(">h", len(encoded)) + encoded


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 16))
        if not chunk:
            raise KafkaProtocolError("connection closed by the broker")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _kafka_call(
    sock: socket.socket, api_key: int, api_version: int, correlation_id: int, body: bytes
) -> _Reader:
    """Sends one request (header v1: key, version, correlation id, client id) and returns a
    reader positioned after the response header v0 (the correlation id)."""
    message = struct.pack(">hhi", api_key, api_version, correlation_id) + _string(_CLIENT_ID) + body
    sock.sendall(struct.pack(">i", len(message)) + message)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    if not 4 <= size <= _MAX_FRAME:
        raise KafkaProtocolError(f"implausible response size {size}")
    reader = _Reader(_recv_exact(sock, size))
    got = reader.int32()
    if got != correlation_id:
        raise KafkaProtocolError(f"correlation id {got} does not match request {correlation_id}")
    return reader


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def _read_api_versions(reader: _Reader) -> dict[int, tuple[int, int]]:
    error_code = reader.int16()
    if error_code != 0:
        raise KafkaProtocolError(f"ApiVersions error code {error_code}")
    versions: dict[int, tuple[int, int]] = {}
    for _ in range(reader.array_length()):
        key, low, high = reader.int16(), reader.int16(), reader.int16()
        versions[key] = (low, high)
    return versions


def kafka_api_versions(host: str, port: int, timeout: float = 5.0) -> dict[int, tuple[int, int]]:
    """ApiVersions v0: the broker's supported (min, max) version per API key."""
    with _connect(host, port, timeout) as sock:
        return _read_api_versions(_kafka_call(sock, _API_VERSIONS, 0, 1, b""))


def _read_metadata_v1(reader: _Reader) -> KafkaMetadata:
    brokers = []
    for _ in range(reader.array_length()):
        node_id, broker_host, broker_port = reader.int32(), reader.string(), reader.int32()
        brokers.append(KafkaBroker(node_id, broker_host, broker_port, reader.nullable_string()))
    controller_id = reader.int32()
    topics = []
    for _ in range(reader.array_length()):
        topic_error, name, internal = reader.int16(), reader.string(), reader.int8() != 0
        partitions = []
        for _ in range(reader.array_length()):
            part_error, index, leader = reader.int16(), reader.int32(), reader.int32()
            replicas = tuple(reader.int32() for _ in range(reader.array_length()))
            isr = tuple(reader.int32() for _ in range(reader.array_length()))
            partitions.append(KafkaPartition(part_error, index, leader, replicas, isr))
        topics.append(KafkaTopic(topic_error, name, internal, tuple(partitions)))
    return KafkaMetadata(tuple(brokers), controller_id, tuple(topics))


def kafka_metadata(
    host: str, port: int, topics: Sequence[str] | None = (), timeout: float = 5.0
) -> KafkaMetadata:
    """Metadata v1. ``topics=()`` asks for brokers only, ``None`` for every topic; naming a topic
    that does not exist creates it when the broker has ``auto.create.topics.enable``."""
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(_string(t) for t in topics)
    with _connect(host, port, timeout) as sock:
        return _read_metadata_v1(_kafka_call(sock, _METADATA, 1, 2, body))


def kafka_find_coordinator(
    host: str, port: int, group: str, timeout: float = 5.0
) -> tuple[int, KafkaBroker | None]:
    """FindCoordinator v0 for a consumer group: (error code, coordinator or None). The first call
    makes the broker create ``__consumer_offsets``; error 15 (not available) means "not yet"."""
    with _connect(host, port, timeout) as sock:
        reader = _kafka_call(sock, _FIND_COORDINATOR, 0, 3, _string(group))
        error_code = reader.int16()
        node_id, coord_host, coord_port = reader.int32(), reader.string(), reader.int32()
    if error_code != 0:
        return error_code, None
    return 0, KafkaBroker(node_id, coord_host, coord_port, None)


def probe_kafka(host: str, port: int, timeout: float = 5.0) -> ProbeResult:
    """Ok when the broker answers ApiVersions, supports Metadata v1 and lists itself at
    ``host:port`` in a Metadata v1 response."""
    try:
        with _connect(host, port, timeout) as sock:
            versions = _read_api_versions(_kafka_call(sock, _API_VERSIONS, 0, 1, b""))
            low, high = versions.get(_METADATA, (1, 0))
            if not low <= 1 <= high:
                return ProbeResult(False, f"broker does not support Metadata v1 ({low}..{high})")
            metadata = _read_metadata_v1(_kafka_call(sock, _METADATA, 1, 2, struct.pack(">i", 0)))
    except (OSError, KafkaProtocolError, UnicodeDecodeError) as exc:
        return ProbeResult(False, f"no Kafka answer on {host}:{port}: {exc}")
    listed = [b for b in metadata.brokers if b.host == host and b.port == port]
    if not listed:
        seen = ", ".join(f"{b.node_id}@{b.host}:{b.port}" for b in metadata.brokers) or "none"
        return ProbeResult(False, f"broker metadata does not list {host}:{port} yet (brokers: {seen})")
    return ProbeResult(True, f"broker {listed[0].node_id} at {host}:{port}")


# --- Redis RESP

RespValue = str | int | bytes | None | list["RespValue"]


def _resp_command(args: Sequence[str | bytes | int]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
        parts.append(f"${len(raw)}\r\n".encode() + raw + b"\r\n")
    return b"".join(parts)


class _RespReader:
    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def close(self) -> None:
        self._file.close()

    def _line(self) -> bytes:
        line = self._file.readline(1 << 20)
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed by Redis")
        return line[:-2]

    def read(self) -> RespValue:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", errors="replace")
        if kind == b"-":
            raise RedisReplyError(rest.decode("utf-8", errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            data = self._file.read(length + 2)
            if len(data) != length + 2:
                raise ConnectionError("connection closed by Redis")
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.read() for _ in range(count)]
        raise ConnectionError(f"unexpected Redis reply {line[:40]!r}")


def redis_command(
    host: str,
    port: int,
    *args: str | bytes | int,
    password: str | None = None,
    timeout: float = 5.0,
) -> RespValue:
    """Runs one Redis command on a new connection (after ``AUTH`` when a password is given) and
    returns the decoded reply. Raises RedisReplyError for an error reply, OSError on I/O failure."""
    with _connect(host, port, timeout) as sock:
        reader = _RespReader(sock)
        try:
            if password is not None:
                sock.sendall(_resp_command(["AUTH", password]))
                reader.read()
            sock.sendall(_resp_command(args))
            return reader.read()
        finally:
            reader.close()


def probe_redis(host: str, port: int, password: str | None = None, timeout: float = 5.0) -> ProbeResult:
    """Ok when ``PING`` (after ``AUTH`` if a password is set) gets ``+PONG``."""
    try:
        reply = redis_command(host, port, "PING", password=password, timeout=timeout)
    except RedisReplyError as exc:
        return ProbeResult(False, f"Redis on {host}:{port} refused PING: {exc}")
    except (OSError, ValueError) as exc:
        return ProbeResult(False, f"no Redis answer on {host}:{port}: {exc}")
    if reply != "PONG":
        return ProbeResult(False, f"Redis on {host}:{port} answered PING with {reply!r}")
    return ProbeResult(True, f"PONG from {host}:{port}")


# --- HTTP


def http_get(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """``GET path`` over HTTP/1.1: (status code, body)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def probe_http_health(host: str, port: int, timeout: float = 5.0) -> ProbeResult:
    """Ok when ``GET /health`` answers 200 with JSON ``{"status": "ok"}``."""
    try:
        status, body = http_get(host, port, "/health", timeout=timeout)
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(False, f"no HTTP answer on {host}:{port}: {exc}")
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if status != 200 or not isinstance(payload, dict) or payload.get("status") != "ok":
        return ProbeResult(False, f"GET /health on {host}:{port} answered {status} {body[:200]!r}")
    return ProbeResult(True, f"GET /health 200 from {host}:{port}")
