"""Strict JSON for request bodies: what the workers' parser (``format::parse_json``, nlohmann's
grammar) accepts, checked before anything is produced. Python's ``json`` is laxer: it reads
``NaN``, ``Infinity`` and ``-Infinity``, turns ``1e400`` into ``inf`` (written back as ``Infinity``),
keeps unpaired UTF-16 surrogates (``"\\ud800"``, which cannot be written as UTF-8) and recurses
until a RecursionError on deep nesting. Each of these would reach Kafka as a poison record or
fail the service; here they are a :class:`StrictJSONError` naming the problem (a 422)."""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

__all__ = ["MAX_DEPTH", "StrictJSONError", "loads"]

#: The workers' nesting limit for a whole request record (``format::kDefaultMaxJsonDepth``).
CORE_MAX_DEPTH = 64
#: Arrays and objects inside each other in a request body (``{}`` is depth 1): the body sits one
#: level down in the request envelope, so the envelope stays within the workers' limit.
MAX_DEPTH = CORE_MAX_DEPTH - 1

# A JSON string (escapes included), then anything that is neither a string nor a bracket.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_CONSTANT = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-?Infinity|NaN', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class StrictJSONError(ValueError):
    """A body that is not strict JSON; the message says what and where."""


class _Rejected(Exception):
    pass


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The value of ``data`` (UTF-8 bytes, a byte order mark allowed, or text) when it is strict
    JSON nested at most ``max_depth`` deep; raises StrictJSONError otherwise."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise StrictJSONError(f"not valid UTF-8 (at byte {e.start})") from None
    else:
        text = data.removeprefix("\ufeff")
    _check_depth(text, max_depth)
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except _Rejected as e:
        raise StrictJSONError(_located(str(e), text)) from None
    except json.JSONDecodeError as e:
        raise StrictJSONError(f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:  # not reached: _check_depth bounds the nesting first
        raise StrictJSONError(_too_deep(max_depth)) from None
    if _SURROGATE_ESCAPE.search(text):
        _check_surrogates(value)
    return value


def _too_deep(max_depth: int) -> str:
    return f"nested deeper than {max_depth} levels (the limit of arrays and objects inside each other)"


def _check_depth(text: str, max_depth: int) -> None:
    """Raises when brackets outside strings open more than ``max_depth`` levels. The running
    count (never clamped at zero) is at least the depth the parser reaches before any error."""
    if text.count("[") + text.count("{") <= max_depth:
        return
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if brackets and max(accumulate(map(_STEP.__getitem__, brackets))) > max_depth:
        raise StrictJSONError(_too_deep(max_depth))


def _constant(name: str) -> Any:
    raise _Rejected(f"{name} is not valid JSON (numbers must be finite: send a number or null)")


def _float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _Rejected(f"the number {_short(token)} is out of range (JSON numbers must fit a 64-bit float)")
    return value


def _int(token: str) -> int:
    # Above 64 bits the workers read an integer as a double: it must fit one. (A float check
    # first also keeps int() away from its 4,300-digit limit.)
    if len(token) > 300 and not math.isfinite(float(token)):
        raise _Rejected(f"the number {_short(token)} is out of range (JSON numbers must fit a 64-bit float)")
    return int(token)


def _short(token: str) -> str:
    return token if len(token) <= 24 else f"{token[:20]}… ({len(token)} characters)"


def _located(message: str, text: str) -> str:
    """``message`` with the position of the first NaN/Infinity outside strings, when it is one."""
    if message.startswith(("NaN", "Infinity", "-Infinity")):
        for match in _CONSTANT.finditer(text):
            if not match.group().startswith('"'):
                return f"{message}, at character {match.start()}"
    return message


def _check_surrogates(value: Any) -> None:
    """Raises for a string (or key) holding an unpaired UTF-16 surrogate: valid JSON escapes in
    Python's reading, but no Unicode text (it cannot be written as UTF-8, and the workers'
    parser rejects it)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            for key, member in item.items():
                _check_text(key)
                stack.append(member)
        elif isinstance(item, list):
            stack.extend(item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        code = ord(text[e.start])
        raise StrictJSONError(
            f"a string holds an unpaired UTF-16 surrogate (\\u{code:04x}): not Unicode text; "
            "a surrogate escape must be a high one followed by a low one"
        ) from None
