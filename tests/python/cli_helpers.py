"""Running the ``kafka-llm`` command line from tests, as a user would: ``python -m kafka_llm.cli``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``kafka-llm <args>`` to completion (``env``: its whole environment, default this process's),
    with stdout and stderr captured as text. Raises TimeoutExpired after ``timeout`` seconds."""
    return subprocess.run(
        [sys.executable, "-m", "kafka_llm.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env) if env is not None else None,
        check=False,
    )
