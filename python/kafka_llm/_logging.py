"""Forwards the native core's log lines (its own and librdkafka's) to the ``kafka_llm.core``
logger.

The core calls its log sink on native threads (librdkafka's, the pipeline's io thread), which must
never wait for the GIL: a Python thread holding it may be waiting for that very thread (closing a
client, stopping a pipeline). So the native sink only queues lines, and a daemon thread here drains
the queue with the GIL released and logs each line at its level. At interpreter exit the native
sink goes back to stderr before the interpreter is finalized."""

from __future__ import annotations

import atexit
import logging
import threading

from kafka_llm import _core

__all__ = ["LOGGER_NAME", "start_forwarding", "stop_forwarding"]

LOGGER_NAME = "kafka_llm.core"

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_DRAIN_WAIT_MS = 500

_lock = threading.Lock()
_thread: threading.Thread | None = None


def _forward() -> None:
    logger = logging.getLogger(LOGGER_NAME)
    while (lines := _core._drain_log(_DRAIN_WAIT_MS)) is not None:
        for level, message in lines:
            logger.log(_LEVELS.get(level, logging.ERROR), "%s", message)


def start_forwarding() -> None:
    """Routes the core's log lines to the ``kafka_llm.core`` logger (done on import of
    ``kafka_llm``). Idempotent."""
    global _thread
    with _lock:
        if _thread is not None:
            return
        _core._forward_log()
        _thread = threading.Thread(target=_forward, name="kafka-llm-core-log", daemon=True)
        _thread.start()


def stop_forwarding() -> None:
    """Sends the core's log lines to stderr again, after logging the ones already queued.
    Idempotent; runs at interpreter exit."""
    global _thread
    with _lock:
        thread, _thread = _thread, None
    if thread is None:
        return
    _core._stop_log_forwarding()
    thread.join(timeout=5)


atexit.register(stop_forwarding)
