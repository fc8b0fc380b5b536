"""Apache Kafka: official jars fetched once with Maven, one KRaft broker+controller node."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from kafka_llm._paths import cache_dir
from kafka_llm.devstack._part import DevStackError, Part, PartStartError, Progress, no_progress
from kafka_llm.devstack._process import LOOPBACK, file_lock, tail
from kafka_llm.devstack.probes import ProbeResult, kafka_find_coordinator, probe_kafka

KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
SLF4J_VERSION = "1.7.36"
NODE_ID = 1
OFFSETS_TOPIC_PARTITIONS = 5
MAVEN_TIMEOUT = 900.0
FORMAT_TIMEOUT = 120.0

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.kafka-llm</groupId>
  <artifactId>devstack-kafka-jars</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>{slf4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def jars_dir() -> Path:
    """Where the broker's jars live once fetched: ``<cache>/kafka/<version>/libs``."""
    return cache_dir() / "kafka" / KAFKA_VERSION / "libs"


def _main_jar(libs: Path) -> Path:
    return libs / f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar"


def ensure_jars(progress: Progress = no_progress) -> Path:
    """Returns the jar directory, fetching the jars with Maven the first time.

    The fetch goes to a temporary directory renamed into place only when complete, under a file
    lock, so concurrent callers wait for one fetch and an interrupted fetch leaves no half cache.
    Raises DevStackError when Maven is missing or fails.
    """
    libs = jars_dir()
    if _main_jar(libs).is_file():
        return libs
    base = libs.parent
    with file_lock(base.parent / f"{KAFKA_VERSION}.lock"):
        if _main_jar(libs).is_file():
            return libs
        for stale in base.glob("fetch-*"):  # left by an interrupted fetch; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        if libs.exists():  # a directory without the main jar was not made by us: replace it
            shutil.rmtree(libs)
        mvn = shutil.which("mvn")
        if mvn is None:
            raise DevStackError(
                "Maven (mvn) is needed once to fetch the Apache Kafka jars; install it "
                "(apt-get install maven) or run scripts/install-system-deps.sh"
            )
        base.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="fetch-", dir=base))
        try:
            _fetch(mvn, work, progress)
            os.rename(work / "libs", libs)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return libs


def _fetch(mvn: str, work: Path, progress: Progress) -> None:
    pom = work / "pom.xml"
    pom.write_text(_POM.format(kafka=KAFKA_VERSION, scala=SCALA_VERSION, slf4j=SLF4J_VERSION))
    out = work / "libs"
    log = work / "maven.log"
    argv = [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={out}",
        "-DincludeScope=runtime",
    ]
    progress(f"fetching Apache Kafka {KAFKA_VERSION} jars with Maven into {jars_dir()} (first run only)")
    started = time.monotonic()
    with log.open("wb") as log_file:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, cwd=work)
        try:
            next_note = started + 10.0
            while process.poll() is None:
                now = time.monotonic()
                if now - started > MAVEN_TIMEOUT:
                    raise DevStackError(f"Maven did not finish within {MAVEN_TIMEOUT:.0f} s")
                if now >= next_note:
                    progress(f"  still fetching jars ({now - started:.0f} s)")
                    next_note = now + 10.0
                time.sleep(0.2)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if process.returncode != 0 or not _main_jar(out).is_file():
        raise DevStackError(
            f"Maven could not fetch the Kafka jars (exit {process.returncode}):\n{tail(log, 30)}"
        )
    count = len(list(out.glob("*.jar")))
    progress(f"fetched {count} jars in {time.monotonic() - started:.1f} s")


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` on PATH. Raises DevStackError if absent."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").is_file():
        return str(Path(home, "bin", "java"))
    found = shutil.which("java")
    if found is None:
        raise DevStackError(
            "java is needed to run the Kafka broker (Java 17+); install it "
            "(apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    return found


def new_cluster_id() -> str:
    """A cluster id as Kafka makes them: 16 random bytes, URL-safe base64 without padding,
    never starting with '-' (it would look like an option to the storage tool)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


class KafkaPart(Part):
    """A single combined broker+controller in KRaft mode, data in ``<state>/kafka-data``."""

    name = "kafka"
    ready_timeout = 60.0
    stop_timeout = 30.0

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "kafka-data"

    @property
    def properties_path(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return self.dir / "log4j.properties"

    @property
    def server_log_path(self) -> Path:
        """The broker's own log (log4j); ``log_path`` only catches stdout/stderr."""
        return self.dir / "server.log"

    def ports(self) -> dict[str, int]:
        return {
            "port": self.settings.kafka_port,
            "controller port": self.settings.kafka_controller_port,
        }

    def server_properties(self) -> str:
        port, cport = self.settings.kafka_port, self.settings.kafka_controller_port
        props = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@{LOOPBACK}:{cport}",
            "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{cport}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(self.settings.partitions),
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": str(OFFSETS_TOPIC_PARTITIONS),
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            # A killed worker's open transaction is aborted within a second of its timeout, so
            # read_committed readers are held back no longer than transaction.timeout.ms.
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
            "group.initial.rebalance.delay.ms": "0",
            # A broker restarted after kill -9 cannot register until the old registration's
            # session expires (default 9 s); heartbeats stay frequent enough not to be fenced.
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "500",
        }
        lines = ["# Written by `kafka-llm dev up`; rewritten on every start."]
        lines += [f"{key}={value}" for key, value in props.items()]
        return "\n".join(lines) + "\n"

    def log4j_properties(self) -> str:
        return "\n".join(
            [
                "log4j.rootLogger=INFO, file",
                "log4j.appender.file=org.apache.log4j.RollingFileAppender",
                f"log4j.appender.file.File={self.server_log_path}",
                "log4j.appender.file.MaxFileSize=20MB",
                "log4j.appender.file.MaxBackupIndex=2",
                "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
                "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
                "log4j.logger.kafka.request.logger=WARN",
                "log4j.logger.state.change.logger=WARN",
                "log4j.logger.kafka.log.LogCleaner=WARN",
                "log4j.logger.org.apache.kafka.storage.internals.log=WARN",
                "log4j.logger.kafka.log=WARN",
                "",
            ]
        )

    def _java_prefix(self) -> list[str]:
        return [
            java_executable(),
            "-Xmx512m",
            "-Xms256m",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.log4j_path}",
            "-cp",
            f"{jars_dir()}/*",
        ]

    def prepare(self, progress: Progress) -> None:
        ensure_jars(progress)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text(self.server_properties())
        self.log4j_path.write_text(self.log4j_properties())
        if (self.data_dir / "meta.properties").is_file():
            return
        progress("formatting the Kafka storage (KRaft, first start only)")
        shutil.rmtree(self.data_dir, ignore_errors=True)  # a half-formatted dir from a crash
        argv = [
            *self._java_prefix(),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(self.properties_path),
        ]
        format_log = self.dir / "format.log"
        with format_log.open("wb") as log_file:
            try:
                result = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    timeout=FORMAT_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise PartStartError(
                    self.name,
                    f"storage format did not finish in {FORMAT_TIMEOUT:.0f} s",
                    tail(format_log),
                ) from None
        if result.returncode != 0 or not (self.data_dir / "meta.properties").is_file():
            raise PartStartError(
                self.name, f"storage format failed (exit {result.returncode})", tail(format_log)
            )

    def argv(self) -> list[str]:
        return [*self._java_prefix(), "kafka.Kafka", str(self.properties_path)]

    def marker(self) -> str:
        return str(self.properties_path)

    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.settings.kafka_port}"

    def probe(self, timeout: float) -> ProbeResult:
        return probe_kafka(LOOPBACK, self.settings.kafka_port, timeout=timeout)

    def warm_up(self, deadline: float) -> ProbeResult:
        """Waits until the group coordinator answers, which creates ``__consumer_offsets`` now
        rather than in the first test that joins a consumer group."""
        last = "no answer"
        while True:
            try:
                error_code, coordinator = kafka_find_coordinator(
                    LOOPBACK, self.settings.kafka_port, "kafka-llm-devstack-warmup", timeout=5.0
                )
            except OSError as exc:
                last = str(exc)
            else:
                if error_code == 0 and coordinator is not None:
                    return ProbeResult(True, f"group coordinator {coordinator.node_id}")
                last = f"FindCoordinator error code {error_code}"
            if time.monotonic() >= deadline:
                return ProbeResult(False, f"the group coordinator is not available: {last}")
            time.sleep(0.2)

    def log_tail(self, lines: int = 25) -> str:
        parts = []
        stdout_tail = tail(self.log_path, lines)
        if stdout_tail.strip():
            parts.append(stdout_tail)
        server_tail = tail(self.server_log_path, lines)
        if server_tail.strip():
            parts.append(f"({self.server_log_path}:)\n{server_tail}")
        return "\n".join(parts)

    def clean(self) -> None:
        super().clean()
        shutil.rmtree(self.data_dir, ignore_errors=True)
