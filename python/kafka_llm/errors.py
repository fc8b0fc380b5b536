"""Exceptions raised by kafka-llm. They are the native core's classes, so one ``except`` catches
errors from Python and C++ alike."""

from __future__ import annotations

from kafka_llm._core import ConfigError, KafkaError, KafkaLlmError, RedisError

__all__ = ["ConfigError", "GroupActiveError", "KafkaError", "KafkaLlmError", "RedisError", "config_error"]


class GroupActiveError(KafkaError):
    """A consumer group's committed offsets cannot be changed because the group has active members
    (the broker only accepts offset changes for an empty group). ``members`` describes them."""

    def __init__(self, message: str, members: list[str]) -> None:
        super().__init__(message)
        self.members = members


def config_error(key: str, reason: str, file: str = "") -> ConfigError:
    """A ConfigError naming ``key`` (e.g. ``providers[1].baseURL``) and, when given, the ``file``,
    as the core raises them."""
    where = f"{file}: " if file else ""
    error = ConfigError(f"invalid configuration: {where}{key}: {reason}")
    error.key = key
    return error
