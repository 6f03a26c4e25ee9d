"""Container output into an allocation's log files: size-rotated `<task>.<stream>.<n>` writers fed by followers."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MAX_FILES = 10  # Nomad's `logs` block defaults
DEFAULT_MAX_FILE_SIZE_MB = 10
TAIL_BYTES = 65536  # how much of a log file a recovered follower compares with the engine's replay


class RotatingWriter:
    """Appends to `<dir>/<name>.<n>`, moving to n+1 past `max_bytes` and keeping the newest `max_files`.

    Resumes at the highest existing index, as Nomad's log rotator does after a restart. Thread-safe.
    """

    def __init__(self, directory: Path, name: str, max_files: int = DEFAULT_MAX_FILES,
                 max_bytes: int = DEFAULT_MAX_FILE_SIZE_MB * 1024 * 1024):
        self.directory = Path(directory)
        self.name = name
        self.max_files = max(1, max_files)
        self.max_bytes = max(1, max_bytes)
        self._lock = threading.Lock()
        self.directory.mkdir(parents=True, exist_ok=True)
        indexes = self.indexes()
        self.index = indexes[-1] if indexes else 0
        self._file = open(self.path(self.index), "ab", buffering=0)  # noqa: SIM115 - lives as long as the writer
        self._size = self._file.tell()

    def path(self, index: int) -> Path:
        return self.directory / f"{self.name}.{index}"

    def indexes(self) -> list[int]:
        pattern = re.compile(re.escape(self.name) + r"\.(\d+)$")
        found = (pattern.match(entry.name) for entry in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def last_write(self) -> float | None:
        """When the current file was last written (seconds since the epoch); None when it is empty."""
        with self._lock:
            if self._size == 0:
                return None
            return os.fstat(self._file.fileno()).st_mtime

    def tail(self, size: int) -> bytes:
        """The last `size` bytes written to the current file."""
        with self._lock:
            if self._file.closed:
                return b""
            with open(self.path(self.index), "rb") as f:
                f.seek(max(0, self._size - size))
                return f.read(size)

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._file.closed:
                return
            while data:
                if self._size >= self.max_bytes:
                    self._rotate()
                room = self.max_bytes - self._size
                chunk, data = data[:room], data[room:]
                self._file.write(chunk)
                self._size += len(chunk)

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        self.index += 1
        self._file = open(self.path(self.index), "ab", buffering=0)  # noqa: SIM115
        self._size = 0
        for old in self.indexes():
            if old <= self.index - self.max_files:
                self.path(old).unlink(missing_ok=True)


class LogSinks:
    """One writer per (directory, file name) shared by successive containers of a task, closed when unused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writers: dict[Path, tuple[RotatingWriter, int]] = {}

    def acquire(self, directory: Path, name: str, max_files: int, max_bytes: int) -> RotatingWriter:
        key = Path(directory) / name
        with self._lock:
            writer, users = self._writers.get(key, (None, 0))
            if writer is None:
                writer = RotatingWriter(directory, name, max_files, max_bytes)
            self._writers[key] = (writer, users + 1)
            return writer

    def close_all(self) -> None:
        """Close every writer: followers still reading then drop what they get (the driver was closed)."""
        with self._lock:
            writers, self._writers = [w for w, _ in self._writers.values()], {}
        for writer in writers:
            writer.close()

    def release(self, writer: RotatingWriter) -> None:
        key = writer.directory / writer.name
        with self._lock:
            current, users = self._writers.get(key, (None, 0))
            if current is not writer:
                return
            if users <= 1:
                del self._writers[key]
                writer.close()
            else:
                self._writers[key] = (writer, users - 1)


def split_timestamp(frame: bytes) -> tuple[bytes, bytes]:
    """(timestamp, payload) of one frame of a log stream requested with `timestamps=True`.

    The engine sends one frame per log message, its timestamp first in a fixed-width RFC 3339 form, so
    timestamps of one engine compare as bytes.
    """
    stamp, _, payload = frame.partition(b" ")
    return stamp, payload


def epoch_seconds(stamp: bytes) -> float:
    """A frame timestamp as seconds since the epoch (to microseconds: finer is filtered by comparing bytes)."""
    return datetime.fromisoformat(stamp.decode()).timestamp()


def catch_up(frames: Iterable[bytes], writer: RotatingWriter) -> bytes:
    """Write the frames the file does not end with yet; returns the last frame's timestamp (b"" when none).

    Used after a client restart: the frames start a little before the file's last write (its mtime is coarse),
    so the first few may already be in the file; they are recognised by the file's tail ending with them.
    """
    entries = [split_timestamp(frame) for frame in frames]
    tail = writer.tail(TAIL_BYTES)
    skip, joined = 0, b""
    for count, (_, payload) in enumerate(entries, 1):
        joined += payload
        if len(joined) > len(tail):
            break
        if tail.endswith(joined):
            skip = count
    for _, payload in entries[skip:]:
        writer.write(payload)
    return entries[-1][0] if entries else b""


def follow(frames: Callable[[], Iterable[bytes]], writer: RotatingWriter, sinks: LogSinks, what: str,
           after: bytes = b"") -> threading.Thread:
    """A daemon thread copying timestamped `frames()` (those stamped after `after`) into `writer` until the
    stream ends (the container stopped)."""

    def run() -> None:
        try:
            for frame in frames():
                stamp, payload = split_timestamp(frame)
                if payload and (not after or stamp > after):
                    writer.write(payload)  # a no-op once the writer is closed
        except Exception as err:  # the container was removed, or the engine went away
            log.debug("log stream of %s ended: %s", what, err)
        finally:
            sinks.release(writer)

    thread = threading.Thread(target=run, name=f"docker-logs-{what}", daemon=True)
    thread.start()
    return thread
