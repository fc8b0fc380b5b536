"""What the stack needs to know about each of its parts (Kafka, Redis, the mock provider)."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from kafka_llm.devstack._process import tail
from kafka_llm.devstack.probes import ProbeResult

Progress = Callable[[str], None]
"""Receives one line of progress for the user (the CLI prints it on stderr)."""


def no_progress(message: str) -> None:
    """A Progress that says nothing (the default for the Python API)."""


class DevStackError(Exception):
    """The local stack could not be started, inspected or stopped; the message says why."""


class PartStartError(DevStackError):
    """One part did not come up. ``part`` names it; ``log_tail`` holds the end of its log."""

    def __init__(self, part: str, reason: str, log_tail: str = "") -> None:
        message = f"{part} failed to start: {reason}"
        if log_tail:
            indented = "\n".join(f"    {line}" for line in log_tail.splitlines())
            message += f"\n  last lines of the {part} log:\n{indented}"
        super().__init__(message)
        self.part = part
        self.reason = reason
        self.log_tail = log_tail


@dataclass
class Settings:
    """Ports and options of one stack, persisted in ``state.json`` so parts restart identically."""

    kafka_port: int
    kafka_controller_port: int
    redis_port: int
    provider_port: int
    partitions: int = 3
    provider_args: list[str] = field(default_factory=list)
    redis_auth: bool = False


class Part(ABC):
    """One process of the stack. Subclasses say how to prepare, launch and probe it."""

    name: ClassVar[str]
    ready_timeout: ClassVar[float]
    """Default seconds to wait for the part to answer after it was launched."""
    stop_timeout: ClassVar[float]
    """Seconds between SIGTERM and SIGKILL."""

    def __init__(self, state_dir: Path, settings: Settings) -> None:
        self.state_dir = state_dir
        self.settings = settings

    @property
    def dir(self) -> Path:
        return self.state_dir / self.name

    @property
    def log_path(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self.dir / f"{self.name}.log"

    def log_tail(self, lines: int = 25) -> str:
        return tail(self.log_path, lines)

    @abstractmethod
    def ports(self) -> dict[str, int]:
        """The loopback ports the part listens on, by what they are for."""

    @abstractmethod
    def prepare(self, progress: Progress) -> None:
        """Writes config files and does one-time setup; called before every launch."""

    @abstractmethod
    def argv(self) -> list[str]:
        """The command line that runs the part in the foreground."""

    @abstractmethod
    def marker(self) -> str:
        """A string ``/proc/<pid>/cmdline`` of the running part contains."""

    @abstractmethod
    def endpoint(self) -> str:
        """Where clients reach the part (without secrets)."""

    @abstractmethod
    def probe(self, timeout: float) -> ProbeResult:
        """One attempt to talk to the part."""

    def warm_up(self, deadline: float) -> ProbeResult:
        """Extra readiness work after the first good probe (until ``deadline``, monotonic)."""
        return ProbeResult(True, "")

    def clean(self) -> None:
        """Removes the part's files from the state dir."""
        shutil.rmtree(self.dir, ignore_errors=True)
