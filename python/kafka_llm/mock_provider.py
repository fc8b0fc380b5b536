"""The native mock LLM provider (an OpenAI-compatible HTTP server) shipped with the package;
``kafka-llm mock-provider`` runs it."""

from __future__ import annotations

from kafka_llm._paths import native_tool

__all__ = ["BINARY", "binary_path"]

BINARY = "kafka-llm-mock-provider"


def binary_path() -> str:
    """Path of the native mock provider executable shipped with the package."""
    return str(native_tool(BINARY))
