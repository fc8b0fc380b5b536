"""Starting, inspecting and stopping the local stack; its state is ``<state_dir>/state.json``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal as _signal
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote, unquote, urlsplit

from kafka_llm._paths import cache_dir
from kafka_llm.devstack._part import (
    DevStackError,
    Part,
    PartStartError,
    Progress,
    Settings,
    no_progress,
)
from kafka_llm.devstack._process import (
    LOOPBACK,
    ProcessRecord,
    exit_code,
    file_lock,
    is_ours,
    pick_free_ports,
    port_is_free,
    send_signal,
    spawn_detached,
    wait_gone,
)
from kafka_llm.devstack.kafka import KafkaPart
from kafka_llm.devstack.provider import ProviderPart
from kafka_llm.devstack.redis import RedisPart

PartName = Literal["kafka", "redis", "provider"]
PART_NAMES: tuple[PartName, ...] = ("redis", "provider", "kafka")
"""Start order: the quick parts first, so a broken one fails before the broker is started."""

STATE_FILE = "state.json"
CONFIG_FILE = "kafka-llm.yaml"
"""The worker configuration ``kafka-llm dev up`` writes for the stack (``write_config``)."""
LOCK_FILE = ".lock"
_STATE_FORMAT = 1
_AUTO_PORT_ATTEMPTS = 3
_BIND_ERRORS = ("Address already in use", "BindException", "EADDRINUSE")
_ENV_BOOTSTRAP = "KAFKA_LLM_BOOTSTRAP_SERVERS"
_ENV_REDIS = "KAFKA_LLM_REDIS_URL"
_ENV_PROVIDER = "KAFKA_LLM_PROVIDER_URL"


def default_state_dir() -> Path:
    """``<cache>/dev/default``: where ``kafka-llm dev`` keeps its stack unless told otherwise."""
    return cache_dir() / "dev" / "default"


@dataclass(frozen=True)
class StackInfo:
    """Where a running stack answers. ``redis_url`` never carries the password; ``env()`` does."""

    bootstrap_servers: str
    redis_url: str
    provider_url: str
    provider_base: str
    pids: dict[str, int] = field(default_factory=dict)
    state_dir: Path | None = None
    redis_password: str | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The object ``kafka-llm dev up --json`` prints (no secrets)."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "redis_url": self.redis_url,
            "provider_url": self.provider_url,
            "state_dir": str(self.state_dir) if self.state_dir is not None else None,
            "pids": dict(self.pids),
        }

    def redis_url_with_password(self) -> str:
        """``redis_url`` with the password in it (for clients; do not print it)."""
        if self.redis_password is None:
            return self.redis_url
        parts = urlsplit(self.redis_url)
        netloc = f":{quote(self.redis_password, safe='')}@{parts.hostname}:{parts.port}"
        return parts._replace(netloc=netloc).geturl()

    def env(self) -> dict[str, str]:
        """``KAFKA_LLM_BOOTSTRAP_SERVERS``, ``KAFKA_LLM_REDIS_URL`` (with the password, if any) and
        ``KAFKA_LLM_PROVIDER_URL`` for a child process such as the C++ integration tests."""
        return {
            _ENV_BOOTSTRAP: self.bootstrap_servers,
            _ENV_REDIS: self.redis_url_with_password(),
            _ENV_PROVIDER: self.provider_url,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackInfo | None:
        """The stack named by those three variables, or None unless all are set."""
        env = os.environ if environ is None else environ
        values = [env.get(name, "") for name in (_ENV_BOOTSTRAP, _ENV_REDIS, _ENV_PROVIDER)]
        if not all(values):
            return None
        bootstrap, redis_url, provider_url = values
        redis_parts = urlsplit(redis_url)
        password = unquote(redis_parts.password) if redis_parts.password is not None else None
        if password is not None or redis_parts.username is not None:
            redis_url = redis_parts._replace(
                netloc=f"{redis_parts.hostname}:{redis_parts.port or 6379}"
            ).geturl()
        provider_parts = urlsplit(provider_url)
        return cls(
            bootstrap_servers=bootstrap,
            redis_url=redis_url,
            provider_url=provider_url,
            provider_base=f"{provider_parts.scheme}://{provider_parts.netloc}",
            redis_password=password,
        )


@dataclass(frozen=True)
class PartStatus:
    """One part as ``dev status`` sees it."""

    name: str
    pid: int | None
    alive: bool
    endpoint: str
    answers: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StackStatus:
    """Every part of the stack in one state dir; ``ok`` when all of them answer."""

    state_dir: Path
    exists: bool
    parts: tuple[PartStatus, ...]

    @property
    def ok(self) -> bool:
        return self.exists and bool(self.parts) and all(p.answers for p in self.parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "state_dir": str(self.state_dir),
            "exists": self.exists,
            "ok": self.ok,
            "parts": {p.name: p.to_json() for p in self.parts},
        }


@dataclass
class _State:
    settings: Settings
    processes: dict[str, ProcessRecord]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _STATE_FORMAT,
            "settings": dataclasses.asdict(self.settings),
            "processes": {name: dataclasses.asdict(rec) for name, rec in self.processes.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _State:
        if data.get("format") != _STATE_FORMAT:
            raise ValueError(f"unknown state format {data.get('format')!r}")
        settings = Settings(**data["settings"])
        processes = {name: ProcessRecord(**rec) for name, rec in data["processes"].items()}
        return cls(settings, processes)


def _check_port(name: str, port: int | None) -> None:
    if port is not None and not 0 < port < 65536:
        raise DevStackError(f"{name}: port {port} is not a valid TCP port")


class Stack:
    """The local stack in one state directory: Kafka (KRaft), Redis and the mock provider.

    ``start()`` is idempotent: parts already running and answering are kept, missing ones are
    started on their recorded ports. Processes are detached (own session) and outlive this
    object; they are only ever signalled by recorded PID after checking that the PID still
    belongs to the process that was started. Used as a context manager it starts on entry and
    stops (removing its data) on exit.

    Options left as None keep what the state dir recorded (or take the defaults for a new
    stack: free ports, 3 partitions, no provider arguments, no Redis password). ``timeout``
    overrides the per-part readiness timeouts (60 s for Kafka, 10 s for the others).
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        kafka_port: int | None = None,
        redis_port: int | None = None,
        provider_port: int | None = None,
        partitions: int | None = None,
        provider_args: Sequence[str] | None = None,
        redis_password: str | None = None,
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.state_dir = self.state_dir.absolute()
        for name, port in (
            ("kafka", kafka_port),
            ("redis", redis_port),
            ("provider", provider_port),
        ):
            _check_port(name, port)
        if partitions is not None and partitions < 1:
            raise DevStackError(f"partitions must be at least 1, not {partitions}")
        if timeout is not None and timeout <= 0:
            raise DevStackError(f"timeout must be positive, not {timeout}")
        self._ports: dict[str, int | None] = {
            "kafka": kafka_port,
            "redis": redis_port,
            "provider": provider_port,
        }
        self._partitions = partitions
        self._provider_args = list(provider_args) if provider_args is not None else None
        self._redis_password = redis_password
        self._timeout = timeout
        self._progress = progress or no_progress
        self._auto_ports: set[tuple[str, str]] = set()
        """(part, port label) pairs this ``start()`` picked itself and may pick again."""
        self.started_parts: tuple[str, ...] = ()
        """The parts the last ``start()`` or ``start_part()`` had to launch (empty: all were up)."""

    # --- context manager

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- state

    @property
    def state_path(self) -> Path:
        return self.state_dir / STATE_FILE

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with file_lock(self.state_dir / LOCK_FILE):
            yield

    def _load(self) -> _State | None:
        try:
            data = json.loads(self.state_path.read_text())
            return _State.from_json(data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as exc:
            raise DevStackError(
                f"{self.state_path} is unreadable ({exc}); stop the processes it names and remove it"
            ) from None

    def _save(self, state: _State) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
        os.replace(tmp, self.state_path)

    def _require_state(self) -> _State:
        state = self._load()
        if state is None:
            raise DevStackError(f"no stack in {self.state_dir} (run `kafka-llm dev up` first)")
        return state

    @staticmethod
    def _parts(settings: Settings, state_dir: Path) -> dict[str, Part]:
        return {
            "redis": RedisPart(state_dir, settings),
            "provider": ProviderPart(state_dir, settings),
            "kafka": KafkaPart(state_dir, settings),
        }

    def _part(self, state: _State, name: str) -> Part:
        parts = self._parts(state.settings, self.state_dir)
        if name not in parts:
            raise DevStackError(f"unknown part {name!r}; the parts are {', '.join(PART_NAMES)}")
        return parts[name]

    def _running(self, state: _State, name: str) -> ProcessRecord | None:
        record = state.processes.get(name)
        return record if record is not None and is_ours(record) else None

    def _info(self, state: _State) -> StackInfo:
        s = state.settings
        password = RedisPart(self.state_dir, s).password() if s.redis_auth else None
        return StackInfo(
            bootstrap_servers=f"{LOOPBACK}:{s.kafka_port}",
            redis_url=f"redis://{LOOPBACK}:{s.redis_port}/0",
            provider_url=f"http://{LOOPBACK}:{s.provider_port}/v1",
            provider_base=f"http://{LOOPBACK}:{s.provider_port}",
            pids={name: rec.pid for name, rec in state.processes.items()},
            state_dir=self.state_dir,
            redis_password=password,
        )

    @property
    def info(self) -> StackInfo:
        """Endpoints and PIDs as recorded now. Raises DevStackError when there is no stack."""
        return self._info(self._require_state())

    def pid(self, name: PartName) -> int | None:
        """PID of a running part, None when it is not running."""
        state = self._require_state()
        record = self._running(state, name)
        return record.pid if record is not None else None

    # --- starting

    def _new_settings(self) -> Settings:
        explicit = {name: port for name, port in self._ports.items() if port is not None}
        if len(set(explicit.values())) != len(explicit):
            raise DevStackError(f"the parts need different ports, got {explicit}")
        free = iter(pick_free_ports(4))
        self._auto_ports = {(name, "port") for name, port in self._ports.items() if port is None}
        picked = {name: port if port is not None else next(free) for name, port in self._ports.items()}
        self._auto_ports.add(("kafka", "controller port"))
        return Settings(
            kafka_port=picked["kafka"],
            kafka_controller_port=next(free),
            redis_port=picked["redis"],
            provider_port=picked["provider"],
            partitions=self._partitions if self._partitions is not None else 3,
            provider_args=list(self._provider_args or []),
        )

    def _merge_requested(self, state: _State) -> None:
        """Applies explicitly requested options to a recorded stack; refuses to change a part that
        is running."""
        s = state.settings
        changes: dict[str, list[tuple[str, object, object]]] = {name: [] for name in PART_NAMES}
        for name, attr in (
            ("kafka", "kafka_port"),
            ("redis", "redis_port"),
            ("provider", "provider_port"),
        ):
            wanted = self._ports[name]
            if wanted is not None and wanted != getattr(s, attr):
                changes[name].append((attr, getattr(s, attr), wanted))
        if self._partitions is not None and self._partitions != s.partitions:
            changes["kafka"].append(("partitions", s.partitions, self._partitions))
        if self._provider_args is not None and self._provider_args != s.provider_args:
            changes["provider"].append(("provider_args", s.provider_args, self._provider_args))
        if self._redis_password is not None:
            current = RedisPart(self.state_dir, s).password() if s.redis_auth else None
            if current != self._redis_password:
                changes["redis"].append(("redis password", "(recorded)", "(new)"))
        for name, diffs in changes.items():
            if not diffs:
                continue
            if self._running(state, name) is not None:
                what = "; ".join(f"{attr} is {old!r}, asked for {new!r}" for attr, old, new in diffs)
                raise DevStackError(
                    f"{name} is already running in {self.state_dir} with other settings ({what}); "
                    "run `kafka-llm dev down` first to change them"
                )
            for attr, _old, new in diffs:
                if attr != "redis password":
                    setattr(s, attr, new)

    def start(self) -> StackInfo:
        """Starts whatever part is not running and waits until every part answers.

        Raises PartStartError naming the part that failed (after stopping what this call
        started), or DevStackError for anything else.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            loaded = self._load()
            fresh = loaded is None
            self._auto_ports = set()
            if loaded is None:
                state = _State(self._new_settings(), {})
            else:
                state = loaded
                self._merge_requested(state)
            started: list[str] = []
            try:
                # A taken port fails before anything is launched, not after the broker started.
                for name in PART_NAMES:
                    if self._running(state, name) is None:
                        self._ensure_ports_free(self._part(state, name), state)
                for name in PART_NAMES:
                    part = self._part(state, name)
                    record = self._running(state, name)
                    if record is not None:
                        self._wait_ready(part, record, spawned=False)
                        continue
                    state.processes.pop(name, None)
                    if name == "redis" and (fresh or self._redis_password is not None):
                        assert isinstance(part, RedisPart)
                        part.write_password(self._redis_password)
                    self._launch(part, state, started)
            except BaseException:
                self._abandon(state, started, fresh)
                raise
            self.started_parts = tuple(started)
            return self._info(state)

    def _abandon(self, state: _State, started: list[str], fresh: bool) -> None:
        """Stops the parts this call started; a stack that did not exist before leaves only logs."""
        parts = self._parts(state.settings, self.state_dir)
        for name in reversed(started):
            record = state.processes.pop(name, None)
            if record is not None:
                _stop_record(record, parts[name].stop_timeout)
        if fresh:  # keep the logs for a look, forget ports and broker data
            self.state_path.unlink(missing_ok=True)
            kafka = parts["kafka"]
            assert isinstance(kafka, KafkaPart)
            shutil.rmtree(kafka.data_dir, ignore_errors=True)
        else:
            self._save(state)

    def _ensure_ports_free(self, part: Part, state: _State) -> None:
        for attempt in range(_AUTO_PORT_ATTEMPTS):
            busy = {what: port for what, port in part.ports().items() if not port_is_free(port)}
            if not busy:
                return
            if not self._can_repick(part, busy) or attempt == _AUTO_PORT_ATTEMPTS - 1:
                what, port = next(iter(busy.items()))
                raise PartStartError(
                    part.name, f"{what} {port} on {LOOPBACK} is already in use by another process"
                )
            self._repick(part, state, busy)

    def _can_repick(self, part: Part, labels: Iterable[str]) -> bool:
        return all((part.name, label) in self._auto_ports for label in labels)

    def _repick(self, part: Part, state: _State, labels: Iterable[str]) -> None:
        """New free ports for the given (auto-picked) ports of ``part``."""
        attributes = {
            ("kafka", "port"): "kafka_port",
            ("kafka", "controller port"): "kafka_controller_port",
            ("redis", "port"): "redis_port",
            ("provider", "port"): "provider_port",
        }
        wanted = [attributes[(part.name, label)] for label in labels]
        for attribute, port in zip(wanted, pick_free_ports(len(wanted)), strict=True):
            setattr(state.settings, attribute, port)

    def _launch(self, part: Part, state: _State, started: list[str]) -> None:
        """Prepares, spawns and waits for one part; on a lost race for an auto-picked port,
        tries again on a new one."""
        for attempt in range(_AUTO_PORT_ATTEMPTS):
            self._ensure_ports_free(part, state)
            part.prepare(self._progress)
            try:
                argv = part.argv()
            except DevStackError as exc:
                raise PartStartError(part.name, str(exc)) from None
            part.dir.mkdir(parents=True, exist_ok=True)
            if part.name == "kafka":
                self._progress(f"starting the Kafka broker on {part.endpoint()}")
            try:
                record = spawn_detached(argv, part.log_path, part.marker())
            except OSError as exc:
                raise PartStartError(part.name, f"cannot run {argv[0]}: {exc}") from None
            state.processes[part.name] = record
            started.append(part.name)
            self._save(state)
            try:
                self._wait_ready(part, record, spawned=True)
                return
            except PartStartError:
                # Which port was lost is not known; pick all of them again if all were ours.
                labels = list(part.ports())
                lost_race = any(marker in part.log_tail(60) for marker in _BIND_ERRORS)
                if not (lost_race and self._can_repick(part, labels)):
                    raise
                if attempt == _AUTO_PORT_ATTEMPTS - 1:
                    raise
                _stop_record(record, part.stop_timeout)
                state.processes.pop(part.name, None)
                started.remove(part.name)
                self._progress(f"{part.name}: port taken meanwhile, trying another one")
                self._repick(part, state, labels)

    def _wait_ready(self, part: Part, record: ProcessRecord, *, spawned: bool) -> None:
        timeout = self._timeout if self._timeout is not None else part.ready_timeout
        started = time.monotonic()
        deadline = started + timeout
        next_note = started + 10.0
        while True:
            if not is_ours(record):
                code = exit_code(record)
                how = f" with code {code}" if code is not None else ""
                when = "before answering" if spawned else "while being checked"
                raise PartStartError(part.name, f"the process exited{how} {when}", part.log_tail())
            now = time.monotonic()
            result = part.probe(timeout=max(0.5, min(5.0, deadline - now)))
            if result.ok:
                break
            now = time.monotonic()
            if now >= deadline:
                state = "started" if spawned else f"running as PID {record.pid}"
                raise PartStartError(
                    part.name,
                    f"{state} but not answering after {timeout:.0f} s: {result.detail}",
                    part.log_tail(),
                )
            if now >= next_note:
                self._progress(f"  waiting for {part.name} ({now - started:.0f} s)")
                next_note = now + 10.0
            time.sleep(0.2)
        warm = part.warm_up(deadline)
        if not warm.ok:
            raise PartStartError(part.name, warm.detail, part.log_tail())
        if part.name == "kafka" and spawned:
            self._progress(f"Kafka broker ready in {time.monotonic() - started:.1f} s")

    # --- stopping

    def stop(self, *, keep_data: bool = False) -> bool:
        """Stops every part (SIGTERM, bounded wait, SIGKILL), then removes the state and data
        unless ``keep_data``. Returns False when there was no stack in the state dir."""
        if not self.state_path.exists():
            return False
        with self._locked():
            state = self._load()
            if state is None:
                return False
            parts = self._parts(state.settings, self.state_dir)
            signalled = [
                (name, record)
                for name, record in state.processes.items()
                if send_signal(record, _signal.SIGTERM)
            ]
            for name, record in signalled:
                if not wait_gone(record, parts[name].stop_timeout):
                    send_signal(record, _signal.SIGKILL)
                    wait_gone(record, 10.0)
            state.processes.clear()
            if keep_data:
                self._save(state)
                return True
            for part in parts.values():
                part.clean()
            self.state_path.unlink(missing_ok=True)
            (self.state_dir / CONFIG_FILE).unlink(missing_ok=True)
            (self.state_dir / LOCK_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.state_dir.rmdir()  # only when nothing else is in it
        return True

    def stop_part(self, name: PartName, signal: int = _signal.SIGTERM, timeout: float | None = None) -> None:
        """Stops one part with ``signal`` and waits until it has exited (after ``timeout`` seconds,
        default the part's own, a SIGTERM or SIGINT is followed by SIGKILL). Its port and data
        are kept for ``start_part``. To pause a part instead, use ``signal_part``."""
        if signal in (_signal.SIGSTOP, _signal.SIGTSTP, _signal.SIGCONT):
            raise DevStackError(
                f"stop_part cannot stop with {_signal.Signals(signal).name}; "
                "use signal_part to pause and continue a part"
            )
        with self._locked():
            state = self._require_state()
            part = self._part(state, name)
            record = state.processes.get(name)
            if record is not None and send_signal(record, signal):
                limit = timeout if timeout is not None else part.stop_timeout
                if not wait_gone(record, limit):
                    send_signal(record, _signal.SIGKILL)
                    if not wait_gone(record, 10.0):
                        raise DevStackError(f"{name} (PID {record.pid}) survived SIGKILL")
            state.processes.pop(name, None)
            self._save(state)

    def signal_part(self, name: PartName, signal: int) -> bool:
        """Sends ``signal`` (e.g. SIGSTOP / SIGCONT) to a running part without waiting.
        Returns False when the part was not running."""
        state = self._require_state()
        self._part(state, name)
        record = state.processes.get(name)
        return record is not None and send_signal(record, signal)

    def start_part(self, name: PartName) -> int:
        """Starts one part again on its recorded port with its data dir, waits until it answers
        and returns its PID. A part already running is only checked."""
        with self._locked():
            state = self._require_state()
            part = self._part(state, name)
            record = self._running(state, name)
            if record is not None:
                self._wait_ready(part, record, spawned=False)
                return record.pid
            state.processes.pop(name, None)
            started: list[str] = []
            self._auto_ports = set()
            try:
                self._launch(part, state, started)
            except BaseException:
                self._abandon(state, started, fresh=False)
                raise
            self.started_parts = tuple(started)
            return state.processes[name].pid

    def restart_part(self, name: PartName, signal: int = _signal.SIGTERM) -> int:
        """``stop_part(name, signal)`` then ``start_part(name)``; returns the new PID."""
        self.stop_part(name, signal)
        return self.start_part(name)

    # --- status

    def status(self, probe_timeout: float = 3.0) -> StackStatus:
        """Each part's PID, whether that process is alive and whether it answers."""
        state = self._load()
        if state is None:
            return StackStatus(self.state_dir, False, ())
        parts = self._parts(state.settings, self.state_dir)
        rows = []
        for name in ("kafka", "redis", "provider"):
            part = parts[name]
            record = state.processes.get(name)
            alive = record is not None and is_ours(record)
            if alive:
                result = part.probe(timeout=probe_timeout)
                answers, detail = result.ok, result.detail
            else:
                answers, detail = False, "not running"
            rows.append(
                PartStatus(
                    name=name,
                    pid=record.pid if record is not None else None,
                    alive=alive,
                    endpoint=part.endpoint(),
                    answers=answers,
                    detail=detail,
                )
            )
        return StackStatus(self.state_dir, True, tuple(rows))


def _stop_record(record: ProcessRecord, timeout: float) -> None:
    if send_signal(record, _signal.SIGTERM) and not wait_gone(record, timeout):
        send_signal(record, _signal.SIGKILL)
        wait_gone(record, 10.0)


def start_stack(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    partitions: int | None = None,
    provider_args: Sequence[str] | None = None,
    redis_password: str | None = None,
    timeout: float | None = None,
    kafka_port: int | None = None,
    redis_port: int | None = None,
    provider_port: int | None = None,
    progress: Progress | None = None,
) -> StackInfo:
    """Starts (or finds running) the stack in ``state_dir`` and returns where it answers."""
    return Stack(
        state_dir,
        partitions=partitions,
        provider_args=provider_args,
        redis_password=redis_password,
        timeout=timeout,
        kafka_port=kafka_port,
        redis_port=redis_port,
        provider_port=provider_port,
        progress=progress,
    ).start()


def stop_stack(state_dir: str | os.PathLike[str] | None = None, *, keep_data: bool = False) -> bool:
    """Stops the stack in ``state_dir``; False when there was none."""
    return Stack(state_dir).stop(keep_data=keep_data)


def stack_status(state_dir: str | os.PathLike[str] | None = None) -> StackStatus:
    """The status of the stack in ``state_dir``."""
    return Stack(state_dir).status()


def write_config(info: StackInfo) -> Path:
    """Writes ``<state_dir>/kafka-llm.yaml``: a commented worker configuration for the stack (the
    Redis URL with its password, if any: then the file is readable by its owner only). Returns
    its path."""
    if info.state_dir is None:
        raise DevStackError("the stack has no state directory to write its configuration into")
    path = info.state_dir / CONFIG_FILE
    redis_note = "with the stack's password: keep this file private" if info.redis_password else "no password"
    text = f"""\
# A worker configuration for the local stack in {info.state_dir},
# written by `kafka-llm dev up` (again on each run) and removed by `kafka-llm dev down`.
#   kafka-llm topics create --config {path} --if-not-exists
#   kafka-llm worker --config {path}
#   kafka-llm api --config {path}
# Environment variables override it (docs/configuration.md, "Environment overrides");
# examples/ in the repository has configurations for real providers and clusters.
kafka:
  bootstrap.servers: "{info.bootstrap_servers}"  # the local broker (KRaft, one node)
redis:
  url: "{info.redis_url_with_password()}"  # results ({redis_note})
providers:
  - name: local  # the native mock provider: OpenAI API, answers any model name
    baseURL: "{info.provider_url}"
messaging:
  streams:
    - requestsURL: kafka://kafka-llm?topic=llm.requests  # consumer group kafka-llm
      responsesURL: kafka://llm.responses
      dlqURL: kafka://llm.dlq
"""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path
