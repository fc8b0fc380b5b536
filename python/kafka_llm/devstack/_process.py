"""Detached children known by PID *and* start time so a recycled PID is never signalled."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Signals a child should not inherit as ignored from the Python parent (Python ignores SIGPIPE).
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class ProcessRecord:
    """A process this package started: its PID, its start time (clock ticks after boot, field 22
    of ``/proc/<pid>/stat``) and a string its ``/proc/<pid>/cmdline`` must contain."""

    pid: int
    starttime: int
    marker: str


def spawn_detached(argv: Sequence[str], log_path: Path, marker: str) -> ProcessRecord:
    """Starts ``argv`` in its own session with stdin from /dev/null and stdout+stderr appended to
    ``log_path``. The child outlives the caller. Raises OSError when the program cannot be run."""
    file_actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    pid = os.posix_spawn(
        argv[0],
        list(argv),
        dict(os.environ),
        file_actions=file_actions,
        setsid=True,
        setsigdef=_DEFAULT_SIGNALS,
        setsigmask=(),
    )
    _EXIT_CODES.pop(pid, None)
    # Our unreaped child keeps its /proc entry even if it has already exited.
    stat = _read_stat(pid)
    return ProcessRecord(pid=pid, starttime=stat[1] if stat else -1, marker=marker)


# Exit codes of our own children, collected when they are reaped (a zombie must not linger).
_EXIT_CODES: dict[int, int] = {}


def _reap(pid: int) -> None:
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
    if reaped == pid:
        _EXIT_CODES[pid] = os.waitstatus_to_exitcode(status)


def _read_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of a process, or None when there is no such process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace")


def exit_code(record: ProcessRecord) -> int | None:
    """The exit code of our own child once it has exited (negative: killed by that signal);
    None while it runs or when it is not a child of this process."""
    _reap(record.pid)
    return _EXIT_CODES.get(record.pid)


def is_ours(record: ProcessRecord) -> bool:
    """True when ``record.pid`` is still the live process that was started: same start time and
    the expected command line. A zombie or a recycled PID is not ours."""
    _reap(record.pid)
    stat = _read_stat(record.pid)
    if stat is None or stat[0] in ("Z", "X", "x"):
        return False
    if record.starttime >= 0 and stat[1] != record.starttime:
        return False
    cmdline = _cmdline(record.pid)
    # The command line reads empty for a moment while the process is in execve(); the start
    # time already matched, so that is still our process.
    return not cmdline or record.marker in cmdline


def send_signal(record: ProcessRecord, sig: int) -> bool:
    """Sends ``sig`` to the process if it is still ours. Returns False when it was already gone."""
    if not is_ours(record):
        return False
    try:
        os.kill(record.pid, sig)
    except ProcessLookupError:
        return False
    return True


def _still_running(record: ProcessRecord) -> bool:
    """False once the process has fully exited. The main thread of a multi-threaded process (a
    JVM) turns zombie before the other threads are gone and its sockets are closed; only when
    its thread list is down to itself has the port been released."""
    _reap(record.pid)
    stat = _read_stat(record.pid)
    if stat is None or (record.starttime >= 0 and stat[1] != record.starttime):
        return False
    if stat[0] in ("Z", "X", "x"):
        try:
            return len(os.listdir(f"/proc/{record.pid}/task")) > 1
        except FileNotFoundError:
            return False
    return True


def wait_gone(record: ProcessRecord, timeout: float) -> bool:
    """Waits up to ``timeout`` seconds for the process to exit completely. True when it has."""
    deadline = time.monotonic() + timeout
    while _still_running(record):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def terminate(record: ProcessRecord, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stops the process: ``sig``, a bounded wait, then SIGKILL. Does nothing if it is not ours."""
    if not send_signal(record, sig):
        return
    if wait_gone(record, timeout):
        return
    send_signal(record, signal.SIGKILL)
    wait_gone(record, 10.0)


def pick_free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that are free right now (the kernel picks them)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_is_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:``port`` (SO_REUSEADDR, as servers set it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Holds an exclusive ``flock`` on ``path`` (created if needed). Survives the file being
    unlinked and recreated by another holder: the lock is retaken on the current file."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and current.st_ino == os.fstat(fd).st_ino:
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)
