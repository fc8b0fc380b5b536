"""Where the package's native tools and caches live."""

from __future__ import annotations

import os
from pathlib import Path


def native_tool(name: str) -> Path:
    """Path of a native executable shipped in the wheel (``kafka_llm/_bin/<name>``).

    The tools are installed next to the native module, which in an editable install is not
    where the Python sources are, so the path is taken from ``_core``. ``KAFKA_LLM_BIN_DIR``
    overrides the directory, e.g. to use a C++ dev build. Raises FileNotFoundError naming the
    path that was looked at.
    """
    from kafka_llm import _core

    override = os.environ.get("KAFKA_LLM_BIN_DIR")
    base = Path(override) if override else Path(_core.__file__).resolve().parent / "_bin"
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
