"""The two workers under test, each a separate process with a ``/stats`` endpoint on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Literal

import yaml

from kllm_bench.procfs import cpu_seconds, rss_bytes

Kind = Literal["core", "peer"]
KINDS: tuple[Kind, ...] = ("core", "peer")
LABELS = {"core": "kafka-llm (C++ core)", "peer": "Python asyncio peer"}
BENCH_DIR = Path(__file__).resolve().parent.parent
PEER_SCRIPT = BENCH_DIR / "baselines" / "asyncio_worker.py"


def snapshot_package(dest: Path, core_module: Path | None = None) -> dict[str, Any]:
    """Copies the installed ``kafka_llm`` package to ``dest/kafka_llm`` (optionally with another
    build of ``_core``) for the workers to import through PYTHONPATH: the whole run uses one build
    even when the shared virtualenv is reinstalled meanwhile. Returns what was copied."""
    import kafka_llm

    source = Path(kafka_llm.__file__).resolve().parent
    target = dest / "kafka_llm"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    core = next(target.glob("_core.*.so"))
    if core_module is not None:
        shutil.copy2(core_module, core)
    digest = hashlib.sha256(core.read_bytes()).hexdigest()
    return {
        "source": str(source),
        "core_module": core.name,
        "core_sha256": digest[:16],
        "core_built": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(core.stat().st_mtime)),
        "pythonpath": str(dest),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def worker_config(
    *,
    bootstrap: str,
    redis_url: str,
    provider_url: str,
    group: str,
    requests: str,
    responses: str,
    dlq: str,
    max_handlers: int,
    max_attempts: int = 6,
    kafka_extra: dict[str, str] | None = None,
    exactly_once: bool = False,
) -> dict[str, Any]:
    """The YAML both workers read (the peer understands the subset used here; ``exactly_once`` is
    for the native worker only)."""
    extra: dict[str, Any] = {"exactlyOnce": True} if exactly_once else {}
    return {
        "messaging": {
            "errorMaxBackoff": "30s",
            "streams": [
                {
                    "requestsURL": f"kafka://{group}?topic={requests}",
                    "responsesURL": f"kafka://{responses}",
                    "dlqURL": f"kafka://{dlq}",
                    "maxHandlers": max_handlers,
                }
            ],
        },
        "kafka": {"bootstrap.servers": bootstrap, **(kafka_extra or {})},
        "redis": {"url": redis_url, "resultTTL": "10m"},
        "providers": [{"name": "mock", "baseURL": provider_url}],
        "retry": {
            "maxAttempts": max_attempts,
            "initialBackoff": "100ms",
            "maxBackoff": "2s",
            "requestTimeout": "120s",
        },
        "commitInterval": "200ms",
        **extra,
    }


class WorkerProcess:
    """One worker process: started, watched through /proc and /stats, stopped by its PID."""

    def __init__(
        self,
        kind: Kind,
        config: dict[str, Any],
        workdir: Path,
        name: str,
        *,
        prefix: list[str] | None = None,
        pythonpath: str | None = None,
    ) -> None:
        self.kind = kind
        self.pythonpath = pythonpath
        self.name = name
        self.config_path = workdir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = workdir / f"{name}.log"
        self.stats_port = free_port()
        if kind == "core":
            argv = [
                sys.executable,
                "-m",
                "kafka_llm.cli",
                "worker",
                "--config",
                str(self.config_path),
                "--metrics-port",
                str(self.stats_port),
                "--stats-interval",
                "0",
            ]
        else:
            argv = [
                sys.executable,
                str(PEER_SCRIPT),
                "--config",
                str(self.config_path),
                "--stats-port",
                str(self.stats_port),
            ]
        self.argv = [*(prefix or []), *argv]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        # The configuration file is the whole truth: no KAFKA_*/REDIS_* overrides from outside.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KAFKA_", "REDIS_", "REQUEST_", "RESPONSE_"))
        }
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stats(self, timeout: float = 5.0) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/stats", timeout=timeout) as r:
                result: dict[str, Any] = json.load(r)
                return result
        except (OSError, ValueError):
            return None

    def wait_ready(self, partitions: int, timeout: float = 120.0) -> dict[str, Any]:
        """Waits until the worker owns every partition of its request topic; returns its stats."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early; log: {self.log_tail()}")
            stats = self.stats(timeout=2.0)
            if stats is not None and len(stats.get("assignment", [])) >= partitions:
                return stats
            time.sleep(0.05)
        raise RuntimeError(
            f"{self.name} did not get its {partitions} partitions in {timeout:.0f} s; log: {self.log_tail()}"
        )

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
