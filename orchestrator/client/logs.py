"""Task logs: stdout/stderr into rotated files `<alloc>/alloc/logs/<task>.<stream>.<n>`, fed through FIFOs."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import stat
from pathlib import Path

DEFAULT_MAX_FILES = 10
DEFAULT_MAX_FILE_SIZE_MB = 10
STREAMS = ("stdout", "stderr")
_READ_CHUNK = 64 * 1024
_READ_BUDGET = 1024 * 1024  # per wake-up, so one chatty task cannot hold the event loop


def log_file_name(task: str, stream: str, index: int) -> str:
    """Nomad's name of a task's log file: `<task>.stdout.0`, `<task>.stderr.3`..."""
    return f"{task}.{stream}.{index}"


def fifo_path(log_dir: Path, task: str, stream: str) -> Path:
    """Where the task's end of the stream is (Nomad's logmon FIFO, hidden in the logs directory)."""
    return log_dir / f".{task}.{stream}.fifo"


def log_indexes(log_dir: Path, task: str, stream: str) -> list[int]:
    """The indexes of a stream's log files, oldest first (the last one is being written)."""
    pattern = re.compile(re.escape(f"{task}.{stream}.") + r"(\d+)$")
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(pattern.match, names) if m)


class RotatingLogWriter:
    """Appends to `<task>.<stream>.<n>`, moving to n+1 when the file would exceed `max_bytes` and keeping the
    newest `max_files` files, as Nomad's FileRotator. It continues the newest existing file, so a restarted
    task (or client) appends where the previous run stopped. One writer per stream; not thread-safe."""

    def __init__(self, log_dir: Path, task: str, stream: str, *, max_files: int = DEFAULT_MAX_FILES,
                 max_bytes: int = DEFAULT_MAX_FILE_SIZE_MB * 1024 * 1024):
        self.log_dir = log_dir
        self.task = task
        self.stream = stream
        self.max_files = max(1, max_files)
        self.max_bytes = max(1, max_bytes)
        indexes = log_indexes(log_dir, task, stream)
        self.index = indexes[-1] if indexes else 0
        self._fd = -1
        self._size = 0
        self._open()

    @property
    def path(self) -> Path:
        return self.log_dir / log_file_name(self.task, self.stream, self.index)

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._size = os.fstat(self._fd).st_size
        if self._size >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        os.close(self._fd)
        self.index += 1
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644)
        self._size = 0
        for old in log_indexes(self.log_dir, self.task, self.stream):
            if old <= self.index - self.max_files:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.log_dir / log_file_name(self.task, self.stream, old))

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = self.max_bytes - self._size
            if room <= 0:
                self._rotate()
                continue
            chunk = view[:room]
            written = os.write(self._fd, chunk)
            self._size += written
            view = view[written:]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def make_fifo(path: Path) -> None:
    """A FIFO at `path`, replacing anything else found there."""
    try:
        if stat.S_ISFIFO(os.lstat(path).st_mode):
            return
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.mkfifo(path, 0o600)


def open_reader(path: Path) -> int:
    """The client's end of a FIFO, non-blocking. It must be open before the task's end closes: a FIFO keeps
    what was written only while someone holds it open."""
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)


def open_task_end(path: Path) -> int:
    """The task's end of a FIFO, opened read-write: the task then holds a reader itself, so its writes never
    fail with EPIPE while no client reads (the client restarting); they block once the pipe is full."""
    return os.open(path, os.O_RDWR | os.O_CLOEXEC)


class FifoPump:
    """Copies what a task writes into its FIFO to a RotatingLogWriter, from the event loop (no thread).

    The read end is non-blocking and watched with `loop.add_reader`. It reaches EOF only when nobody holds
    the task's end any more: then the pump stops watching (an EOF FIFO would otherwise wake the loop forever).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, path: Path, writer: RotatingLogWriter, fd: int = -1):
        self.loop = loop
        self.path = path
        self.writer = writer
        self.fd = fd if fd >= 0 else open_reader(path)  # given: opened by a worker thread before the task ran
        self.eof = False
        self.bytes = 0
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        self.drain(_READ_BUDGET)

    def drain(self, budget: int | None = None) -> None:
        """Copy what is buffered in the FIFO now (at most `budget` bytes)."""
        if self.fd < 0:
            return
        taken = 0
        while budget is None or taken < budget:
            try:
                data = os.read(self.fd, _READ_CHUNK)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                self._stop_watching()
                return
            if not data:
                self.eof = True
                self._stop_watching()
                return
            with contextlib.suppress(OSError):  # a full disk loses log lines, never the task
                self.writer.write(data)
            taken += len(data)
            self.bytes += len(data)

    def _stop_watching(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)

    def close(self, *, drain: bool = True) -> None:
        if self.fd < 0:
            return
        if drain:
            self.drain()
        self._stop_watching()
        os.close(self.fd)
        self.fd = -1
        self.writer.close()
