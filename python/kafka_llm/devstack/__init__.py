"""The local stack for development and tests: Apache Kafka (KRaft), Redis and the mock provider.

``kafka-llm dev up|down|status`` on the command line; from Python::

    from kafka_llm.devstack import Stack

    with Stack("/tmp/my-stack") as stack:
        info = stack.info  # bootstrap_servers, redis_url, provider_url, pids, ...
        stack.stop_part("kafka", signal.SIGKILL)
        stack.start_part("kafka")  # same port, same data

In notebooks and scripts, ``use_stack()`` takes the stack the ``KAFKA_LLM_*`` environment names
or starts one in a temporary directory; its ``stop()`` stops only what it started.
"""

from __future__ import annotations

from kafka_llm.devstack._part import DevStackError, PartStartError, Progress
from kafka_llm.devstack.lease import StackLease, use_stack
from kafka_llm.devstack.stack import (
    CONFIG_FILE,
    PART_NAMES,
    PartName,
    PartStatus,
    Stack,
    StackInfo,
    StackStatus,
    default_state_dir,
    stack_status,
    start_stack,
    stop_stack,
    write_config,
)

__all__ = [
    "CONFIG_FILE",
    "PART_NAMES",
    "DevStackError",
    "PartName",
    "PartStartError",
    "PartStatus",
    "Progress",
    "Stack",
    "StackInfo",
    "StackLease",
    "StackStatus",
    "default_state_dir",
    "stack_status",
    "start_stack",
    "stop_stack",
    "use_stack",
    "write_config",
]
