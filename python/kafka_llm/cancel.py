"""Cancelling requests (``kafka-llm cancel``; the service's ``DELETE /result/{request_id}``).

A stream with ``messaging.streams[].cancelURL: kafka://<control topic>`` has a control topic that
every worker of the stream reads whole. A **cancel record** on it is keyed by the request id
(UTF-8) and holds ``{"request_id": "<id>", "reason": "<free text>"}`` (``reason`` optional). A
worker skips a queued request with that id (the provider is never called) and aborts one in
flight; either way the request's Redis result becomes ``cancelled`` (status code 499, error
``cancelled: <reason>``) and a 499 response is published. A request that already finished keeps
its result.

:func:`cancel_record` builds the record (the service produces the same key and value with its own
asynchronous producer); :func:`cancel_requests` produces records and waits for the broker.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from kafka_llm import kafka as k
from kafka_llm.config import Config
from kafka_llm.errors import ConfigError, KafkaError

__all__ = ["DEFAULT_REASON", "cancel_record", "cancel_request", "cancel_requests", "cancel_topic"]

#: The reason given when the caller gives none.
DEFAULT_REASON = "requested by the user"


def cancel_topic(config: Config, stream: int = 0) -> str:
    """The control topic of ``config.streams[stream]``. Raises ConfigError naming the key when the
    stream has no ``cancelURL`` (or there is no such stream)."""
    if not 0 <= stream < len(config.streams):
        error = ConfigError(
            f"messaging.streams[{stream}]: no such stream (the configuration has "
            f"{len(config.streams)} stream(s), numbered from 0)"
        )
        error.key = f"messaging.streams[{stream}]"
        raise error
    topic = config.streams[stream].cancel_topic
    if not topic:
        key = f"messaging.streams[{stream}].cancelURL"
        error = ConfigError(
            f"{key} is not set: requests of this stream cannot be cancelled (add "
            f"cancelURL: kafka://<control topic> to the stream, for the workers and for this client)"
        )
        error.key = key
        raise error
    return topic


def cancel_record(request_id: str, reason: str | None = DEFAULT_REASON) -> tuple[bytes, bytes]:
    """The key and value of the cancel record of ``request_id`` (``reason`` None or empty: no
    ``reason`` member). Raises ValueError for an empty request id."""
    if not request_id:
        raise ValueError("request id: must not be empty")
    value: dict[str, str] = {"request_id": request_id}
    if reason:
        value["reason"] = reason
    return request_id.encode("utf-8"), json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def cancel_requests(
    config: Config,
    request_ids: Sequence[str],
    reason: str | None = DEFAULT_REASON,
    stream: int = 0,
    timeout: float = 10.0,
) -> str:
    """Produces a cancel record for each of ``request_ids`` to the stream's control topic and
    waits until the broker has acknowledged every one. Returns the topic.

    Raises ConfigError when the stream has no ``cancelURL``, ValueError for an empty id, and
    KafkaError when the control topic does not exist or a record is not acknowledged within
    ``timeout`` seconds. Cancelling an unknown or finished request is not an error here: the
    workers ignore it (a finished request keeps its result)."""
    topic = cancel_topic(config, stream)
    records = [cancel_record(request_id, reason) for request_id in request_ids]
    if not records:
        return topic
    timeout_ms = max(1, int(timeout * 1000))
    properties = dict(config.kafka)
    with k.admin(config.bootstrap_servers, properties) as admin:
        if admin.partition_count(topic, timeout_ms) <= 0:
            raise KafkaError(
                f"the control topic {topic!r} (messaging.streams[{stream}].cancelURL) does not exist: "
                "create it before cancelling"
            )
    with k.producer(config.bootstrap_servers, {**properties, "enable.idempotence": "true"}) as producer:
        for key, value in records:
            producer.produce(topic, value, key=key)
        try:
            failures = producer.flush(timeout_ms)
        except KafkaError as e:  # flush timed out
            message = f"the broker did not acknowledge the cancel records within {timeout:g} s: {e}"
            raise KafkaError(message) from None
    if failures:
        raise KafkaError(
            f"{len(failures)} of {len(records)} cancel record(s) could not be written to {topic!r}: "
            f"{failures[0]}"
        )
    return topic


def cancel_request(
    config: Config,
    request_id: str,
    reason: str | None = DEFAULT_REASON,
    stream: int = 0,
    timeout: float = 10.0,
) -> None:
    """Cancels one request: :func:`cancel_requests` with one id."""
    cancel_requests(config, [request_id], reason, stream, timeout)
