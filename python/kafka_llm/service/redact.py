"""Secrets out of the service's logs. uvicorn writes each request's path with its query string
(the access log, and the WebSocket lines of ``uvicorn.error``), so a key sent as ``?api_key=``
would be logged. :class:`RedactSecrets` rewrites the values of query parameters whose names
look like credentials (``api_key``, ``key``, ``token``, ``access_token``, ``password``,
``secret``, …) to ``REDACTED``; :func:`uvicorn_log_config` is uvicorn's logging configuration
with it on every handler, as a dict so that each ``--workers`` process installs it."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote_plus

__all__ = ["REDACTED", "RedactSecrets", "is_secret_name", "redact_query", "uvicorn_log_config"]

REDACTED = "REDACTED"

# Parts of parameter names that carry credentials (matched in the lower-cased, URL-decoded name).
_SECRET_PARTS = re.compile(r"key|token|secret|passw|pwd|auth|signature|credential|session|sig$")
# One query parameter: its separator, name and value (up to the next separator, space or quote).
_PARAMETER = re.compile(r"(?P<lead>[?&;](?P<name>[^=&;#\s\"'?]+)=)(?P<value>[^&;#\s\"']*)")


def is_secret_name(name: str) -> bool:
    """Whether a query parameter named ``name`` may carry a credential."""
    return bool(_SECRET_PARTS.search(unquote_plus(name).lower()))


def redact_query(text: str) -> str:
    """``text`` with the value of every credential-like query parameter replaced by REDACTED."""
    if "=" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if not match.group("value") or not is_secret_name(match.group("name")):
            return match.group()
        return match.group("lead") + REDACTED

    return _PARAMETER.sub(replace, text)


class RedactSecrets(logging.Filter):
    """Redacts credential-like query parameters in a record's message and arguments (uvicorn's
    access line carries the path with its query string as an argument). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_query(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with :class:`RedactSecrets` on every handler (the
    access log and the error log, which has the WebSocket lines)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": f"{__name__}.RedactSecrets"}
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "redact_secrets"]
    return config
