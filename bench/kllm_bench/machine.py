"""What the machine is and what else is running on it: every figure is co-located."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Iterable
from typing import Any

import psutil


def describe() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }


def busy_neighbours(
    ours: Iterable[int], window: float = 1.0, threshold: float = 10.0
) -> list[dict[str, Any]]:
    """Processes outside ``ours`` (and their children) using more than ``threshold`` % of a CPU
    over ``window`` seconds: the co-location a reader should know about."""
    own = set(ours) | {os.getpid()}
    procs = []
    for p in psutil.process_iter(["pid", "name"]):
        try:
            p.cpu_percent(None)
            procs.append(p)
        except psutil.Error:
            continue
    time.sleep(window)
    busy = []
    for p in procs:
        try:
            if p.pid in own or own & {a.pid for a in p.parents()}:
                continue
            share = p.cpu_percent(None)
            if share >= threshold:
                busy.append({"pid": p.pid, "name": p.info["name"], "cpu_percent": round(share)})
        except psutil.Error:
            continue
    return sorted(busy, key=lambda b: -b["cpu_percent"])


def git_revision(repo: str) -> dict[str, Any]:
    def run(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", "-C", repo, *args], capture_output=True, text=True, check=True
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {
        "commit": run("rev-parse", "HEAD").strip(),
        "dirty_files": len(run("status", "--porcelain").split("\n")) - 1,
    }
