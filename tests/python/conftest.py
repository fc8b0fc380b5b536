"""Shared fixtures: the local stack (Kafka, Redis, mock provider) and unique names per test.

If ``KAFKA_LLM_BOOTSTRAP_SERVERS``, ``KAFKA_LLM_REDIS_URL`` and ``KAFKA_LLM_PROVIDER_URL`` are all
set, the tests use that stack. Otherwise one stack is started in a fresh temporary state dir
once per test run and stopped (by PID) at the end, whether tests passed or not.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported when a fixture runs, so that tests needing no stack (test_docs) need no build
    from kafka_llm.devstack import Stack, StackInfo

# Bounded: a cold broker start is well under this; the jar fetch has its own bound.
STACK_START_TIMEOUT = 90.0


@pytest.fixture(scope="session")
def _session_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack | None]:
    """The stack this run started, or None when the environment names an existing one."""
    from kafka_llm.devstack import Stack, StackInfo

    if StackInfo.from_env() is not None:
        yield None
        return
    handle = Stack(tmp_path_factory.mktemp("devstack"), timeout=STACK_START_TIMEOUT)
    handle.start()  # on failure it stops what it started and raises, naming the part
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def stack(_session_stack: Stack | None) -> StackInfo:
    """Endpoints of the stack the tests run against: ``bootstrap_servers``, ``redis_url``,
    ``provider_url``, ``provider_base``; ``env()`` gives them as KAFKA_LLM_* variables."""
    if _session_stack is None:
        from kafka_llm.devstack import StackInfo

        info = StackInfo.from_env()
        assert info is not None
        return info
    return _session_stack.info


@pytest.fixture
def stack_handle(_session_stack: Stack | None) -> Stack:
    """Control over the session stack (``stop_part``, ``start_part``, ``restart_part``,
    ``signal_part``, ``info`` with current PIDs). Fails when the stack came from the environment,
    because this run did not start it and must not kill it."""
    if _session_stack is None:
        pytest.fail(
            "this test stops and starts parts of the stack, but the stack was given by "
            "KAFKA_LLM_* environment variables; unset them to let the tests start their own"
        )
    return _session_stack


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """``t-<test name>-<8 hex>``: a topic / consumer group / key prefix no other test uses."""
    test_name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80]
    return f"t-{test_name}-{secrets.token_hex(4)}"
