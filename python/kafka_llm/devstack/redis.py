"""Redis: Debian's ``redis-server`` on loopback, nothing persisted, optional password."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kafka_llm.devstack._part import DevStackError, Part, Progress
from kafka_llm.devstack._process import LOOPBACK
from kafka_llm.devstack.probes import ProbeResult, probe_redis


def redis_server_executable() -> str:
    """``redis-server`` on PATH. Raises DevStackError when it is not installed."""
    found = shutil.which("redis-server")
    if found is None:
        raise DevStackError("redis-server is needed for the local stack; apt-get install redis-server")
    return found


class RedisPart(Part):
    """The password, if any, lives only in ``redis/redis.conf`` (mode 0600): never on the
    command line (visible in ``ps``), in ``state.json`` or in printed output."""

    name = "redis"
    ready_timeout = 10.0
    stop_timeout = 10.0

    @property
    def conf_path(self) -> Path:
        return self.dir / "redis.conf"

    def ports(self) -> dict[str, int]:
        return {"port": self.settings.redis_port}

    def write_password(self, password: str | None) -> None:
        """Sets (or with None clears) the password used from the next launch on."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if password is not None and any(c in password for c in "\r\n\"'\\ \t"):
            raise DevStackError("the Redis password must not contain whitespace, quotes or backslashes")
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as conf:
            conf.write("# Written by `kafka-llm dev up`.\n")
            if password is not None:
                conf.write(f"requirepass {password}\n")
        self.settings.redis_auth = password is not None

    def password(self) -> str | None:
        """The password Redis was configured with (read back from ``redis.conf``)."""
        try:
            text = self.conf_path.read_text()
        except FileNotFoundError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "requirepass" and value:
                return value
        return None

    def prepare(self, progress: Progress) -> None:
        if not self.conf_path.is_file():
            self.write_password(None)

    def argv(self) -> list[str]:
        return [
            redis_server_executable(),
            str(self.conf_path),
            "--bind",
            LOOPBACK,
            "--port",
            str(self.settings.redis_port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--daemonize",
            "no",
        ]

    def marker(self) -> str:
        # redis-server rewrites its process title to "redis-server 127.0.0.1:<port>".
        return "redis-server"

    def endpoint(self) -> str:
        return f"redis://{LOOPBACK}:{self.settings.redis_port}/0"

    def probe(self, timeout: float) -> ProbeResult:
        return probe_redis(LOOPBACK, self.settings.redis_port, password=self.password(), timeout=timeout)
