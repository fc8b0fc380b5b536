"""The raw request head's bound, below the app: uvicorn's h11 protocol stops at
``h11_max_incomplete_event_size`` bytes of an incomplete head (and answers 400), but its httptools
protocol (the default when httptools is installed, as ``uvicorn[standard]`` does) has no bound at
all and buffers any amount of header bytes. :class:`BoundedHttpToolsProtocol` is uvicorn's
httptools protocol with the same bound: once more than ``h11_max_incomplete_event_size`` bytes
arrived without the head being complete, it answers ``431 Request Header Fields Too Large`` and
closes the connection. ``kafka-llm api`` uses it (``uvicorn_http_options``)."""

from __future__ import annotations

import json
from typing import Any

from kafka_llm.service.errors import error_body
from kafka_llm.service.limits import raw_head_bytes

__all__ = ["BoundedHttpToolsProtocol", "uvicorn_http_options"]

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools: uvicorn's h11 protocol, bounded by its own option
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

_PROTOCOL = "kafka_llm.service.http_limits:BoundedHttpToolsProtocol"


def uvicorn_http_options(max_header_bytes: int) -> dict[str, Any]:
    """uvicorn's ``http`` and ``h11_max_incomplete_event_size`` for a bounded request head."""
    return {
        "http": _PROTOCOL if HttpToolsProtocol is not None else "h11",
        "h11_max_incomplete_event_size": raw_head_bytes(max_header_bytes),
    }


if HttpToolsProtocol is not None:

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with a bound on the bytes of an incomplete request head."""

        def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(config, *args, **kwargs)
            self._head_limit: int | None = config.h11_max_incomplete_event_size
            self._in_head = True  # before a request's headers are complete
            self._head_bytes = 0

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if not self._in_head or self._head_limit is None or self.transport.is_closing():
                return
            # Still in a head after this data: all of it is head (a pipelined request's body
            # tail may be counted too: the bound is then at most one read larger).
            self._head_bytes += len(data)
            if self._head_bytes > self._head_limit:
                self._reject_head()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True
            self._head_bytes = 0

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def _reject_head(self) -> None:
            message = f"the request head is larger than {self._head_limit} bytes"
            body = json.dumps(error_body(431, message)).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + body
            )
            self.transport.close()
