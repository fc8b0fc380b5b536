"""Where the package's native tools and caches live."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def native_tool(name: str) -> Path:
    """Path of a native executable shipped in the wheel (``kafka_llm/_bin/<name>``).

    ``KAFKA_LLM_BIN_DIR`` overrides the directory, e.g. to use a C++ dev build.
    Raises FileNotFoundError naming the path that was looked at.
    """
    base = (
        Path(os.environ["KAFKA_LLM_BIN_DIR"])
        if os.environ.get("KAFKA_LLM_BIN_DIR")
        else _PACKAGE_DIR / "_bin"
    )
    path = base / name
    if not path.is_file():
        raise FileNotFoundError(
            f"native tool {name!r} not found at {path}; reinstall kafka-llm (pip install .)"
        )
    return path


def cache_dir() -> Path:
    """Per-user cache outside the repository (Kafka jars, dev stack state).

    ``KAFKA_LLM_CACHE_DIR`` overrides it; otherwise ``$XDG_CACHE_HOME/kafka-llm`` or ``~/.cache/kafka-llm``.
    """
    if os.environ.get("KAFKA_LLM_CACHE_DIR"):
        return Path(os.environ["KAFKA_LLM_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kafka-llm"
