"""The largest request the service accepts: a request envelope must fit both the workers'
``maxRequestBytes`` and the service's producer, whose librdkafka ``message.max.bytes`` (default
1,000,000, set in the config's ``kafka`` properties) bounds the whole record: value, key and
headers plus librdkafka's per-record overhead. Anything larger is refused with a 413 before
producing (the producer would refuse it with "Message size too large", a 503)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "LIBRDKAFKA_MESSAGE_MAX_BYTES",
    "RECORD_OVERHEAD_BYTES",
    "max_body_bytes",
    "max_envelope_bytes",
    "raw_head_bytes",
    "record_reserve_bytes",
]

#: What the raw request head may hold besides the headers the app counts: the request line (the
#: URL) and the header lines' separators.
HEAD_SLACK_BYTES = 8192


def raw_head_bytes(max_header_bytes: int) -> int:
    """The bound of a raw request head (request line and header lines) for the server, above which
    it answers before the app runs: ``KAFKA_LLM_MAX_HEADER_BYTES`` plus :data:`HEAD_SLACK_BYTES`."""
    return max_header_bytes + HEAD_SLACK_BYTES


#: librdkafka's default ``message.max.bytes``.
LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000
#: What librdkafka adds to a record's key, value and headers when it checks ``message.max.bytes``
#: at produce time (``rd_kafka_msg_max_wire_size``: ``RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD``, the
#: record's length, attributes, timestamp delta, offset delta, key length, value length and
#: header count at their largest varint sizes: 5 + 1 + 10 + 5 + 5 + 5 + 5).
RECORD_OVERHEAD_BYTES = 36
#: A request record's key: the request id (``uuid4().hex``).
REQUEST_KEY_BYTES = 32
#: The headers of a request record at their largest (name, value length): the producer span's
#: W3C ``traceparent`` (version 00: 55 characters) and a ``tracestate`` continued from the
#: caller, which OpenTelemetry drops above 8,192 characters.
REQUEST_HEADERS: tuple[tuple[str, int], ...] = (("traceparent", 55), ("tracestate", 8192))


def _varint_bytes(value: int) -> int:
    """The size of a zigzag varint (Kafka's header name and value lengths) of ``value`` >= 0."""
    encoded, size = value << 1, 1
    while encoded >= 0x80:
        encoded >>= 7
        size += 1
    return size


def record_reserve_bytes() -> int:
    """What a request record needs besides its value: librdkafka's overhead, the key and the
    largest headers (8,274 bytes for the headers as ``rd_kafka_header_add`` counts them)."""
    headers = sum(
        _varint_bytes(len(name)) + len(name) + _varint_bytes(size) + size for name, size in REQUEST_HEADERS
    )
    return RECORD_OVERHEAD_BYTES + REQUEST_KEY_BYTES + headers


def max_envelope_bytes(max_request_bytes: int, kafka: Mapping[str, str]) -> int:
    """The largest request envelope: the workers' ``maxRequestBytes``, or what the producer's
    ``message.max.bytes`` leaves for a record's value, whichever is smaller."""
    message_max = int(kafka.get("message.max.bytes", LIBRDKAFKA_MESSAGE_MAX_BYTES))
    return max(1, min(max_request_bytes, message_max - record_reserve_bytes()))


def max_body_bytes(max_request_bytes: int, kafka: Mapping[str, str], configured: int | None) -> int:
    """The largest request body (HTTP or WebSocket message): ``KAFKA_LLM_MAX_BODY_BYTES`` when set
    and smaller, else the envelope limit (a larger body could never be produced)."""
    envelope = max_envelope_bytes(max_request_bytes, kafka)
    return envelope if configured is None else min(configured, envelope)
