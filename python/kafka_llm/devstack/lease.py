"""A stack to work against: the one the ``KAFKA_LLM_*`` environment names, or one started here.

For notebooks and scripts that run both on their own and under a test run that already has a
stack::

    from kafka_llm.devstack import use_stack

    lease = use_stack()      # the environment's stack, or a new one in a temporary directory
    info = lease.info        # bootstrap_servers, redis_url, provider_url, ...
    ...
    lease.stop()             # stops (by PID) only what use_stack() started
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from kafka_llm.devstack._part import Progress
from kafka_llm.devstack.stack import Stack, StackInfo

__all__ = ["StackLease", "use_stack"]


class StackLease:
    """The stack ``use_stack()`` found or started. ``stop()`` stops the stack only if it was started
    here (``started`` is then its ``Stack``); a stack named by the environment is left running."""

    def __init__(self, info: StackInfo, started: Stack | None, temp_dir: Path | None) -> None:
        self.info = info
        self.started = started
        self._temp_dir = temp_dir

    @property
    def from_env(self) -> bool:
        """True when the ``KAFKA_LLM_*`` environment variables named the stack."""
        return self.started is None

    def stop(self) -> bool:
        """Stops the processes ``use_stack()`` started (by recorded PID) and removes the temporary
        state directory it made. Returns False when there was nothing of ours to stop. Idempotent."""
        if self.started is None:
            return False
        stopped = self.started.stop()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        return stopped

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = "from the environment" if self.started is None else f"started in {self.started.state_dir}"
        return f"<StackLease {where}: kafka {self.info.bootstrap_servers}, redis {self.info.redis_url}>"


def use_stack(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    partitions: int | None = None,
    provider_args: Sequence[str] | None = None,
    timeout: float | None = 120.0,
    progress: Progress | None = None,
) -> StackLease:
    """The stack named by ``KAFKA_LLM_BOOTSTRAP_SERVERS``, ``KAFKA_LLM_REDIS_URL`` and
    ``KAFKA_LLM_PROVIDER_URL`` when all three are set (the options are then ignored: that stack
    is someone else's); otherwise starts one in ``state_dir`` (default: a new temporary directory,
    removed again by ``stop()``) and waits until every part answers. Raises PartStartError naming
    the part that failed to start, after stopping what it started."""
    info = StackInfo.from_env()
    if info is not None:
        return StackLease(info, None, None)
    temp_dir = Path(tempfile.mkdtemp(prefix="kafka-llm-stack-")) if state_dir is None else None
    stack = Stack(
        temp_dir if temp_dir is not None else state_dir,
        partitions=partitions,
        provider_args=provider_args,
        timeout=timeout,
        progress=progress,
    )
    try:
        info = stack.start()
    except BaseException:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return StackLease(info, stack, temp_dir)
