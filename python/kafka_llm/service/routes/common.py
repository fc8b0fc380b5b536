"""OpenAPI descriptions of the errors every route can answer."""

from __future__ import annotations

from typing import Any

from kafka_llm.service.schemas import ErrorBody

__all__ = ["errors"]

_DESCRIPTIONS = {
    400: "Unknown provider, or a model no provider serves (nothing is produced)",
    401: "Missing, invalid or revoked API key",
    403: "The API key may not use this model",
    404: "Unknown or expired request id, or one created by another API key",
    409: "The request already finished (done, error or cancelled): it cannot be cancelled",
    413: "The request body is larger than the limit",
    422: "Invalid body; the message names the field",
    429: "stream: true and the API key already holds KAFKA_LLM_MAX_STREAMS_PER_KEY streams in this "
    "service process (code too_many_streams, Retry-After); nothing was produced",
    431: "The request's headers are larger than KAFKA_LLM_MAX_HEADER_BYTES or more than "
    "KAFKA_LLM_MAX_HEADER_COUNT",
    501: "Cancellation is not configured: messaging.streams[0].cancelURL is not set",
    503: "Kafka, Redis or the database unreachable; nothing was produced: safe to retry",
    504: "No answer from a worker in time, or Kafka did not confirm the request: it may run; the "
    "x-request-id header names it (poll /result/{request_id})",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}
