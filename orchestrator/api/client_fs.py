"""An allocation's files for /v1/client/fs: paths confined to its directory, Nomad's file infos, and log reading."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import stat
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.client.logs import log_file_name, log_indexes

from .query import ApiError

CHUNK = 64 * 1024  # Nomad's frame size: what one read (and one frame) carries at most
POLL = 0.1  # seconds between looks at a followed file that has nothing new (no inotify: cheap and portable)
LOG_DIR = PurePosixPath("alloc/logs")
PATH_ESCAPES = "Path escapes the alloc directory"


# -- paths and file infos -------------------------------------------------------------------------------------


def resolve(alloc_dir: Path, path: str) -> Path:
    """`path` (relative to the alloc dir; "/" is its root) on disk, refused with 400 when it leaves the alloc
    dir, by `..` or through a symlink (a task may link to anything, and the agent reads as its own user)."""
    relative = PurePosixPath(path.lstrip("/"))
    if ".." in relative.parts:
        raise ApiError(400, PATH_ESCAPES)
    root = alloc_dir.resolve()
    target = (root / relative).resolve()
    if target != root and not target.is_relative_to(root):
        raise ApiError(400, PATH_ESCAPES)
    return target


def _missing(path: str) -> ApiError:
    return ApiError(404, f"stat {path or '/'}: no such file or directory")


# Go's os.FileMode.String(): type letters in this order, then rwxrwxrwx.
_TYPE_LETTERS = (("d", stat.S_ISDIR), ("L", stat.S_ISLNK), ("D", lambda m: stat.S_ISBLK(m) or stat.S_ISCHR(m)),
                 ("p", stat.S_ISFIFO), ("S", stat.S_ISSOCK))


def go_file_mode(mode: int) -> str:
    letters = "".join(letter for letter, test in _TYPE_LETTERS if test(mode))
    letters += "u" if mode & stat.S_ISUID else ""
    letters += "g" if mode & stat.S_ISGID else ""
    letters += "c" if stat.S_ISCHR(mode) else ""
    letters += "t" if mode & stat.S_ISVTX else ""
    perms = "".join(ch if mode & (1 << (8 - i)) else "-" for i, ch in enumerate("rwxrwxrwx"))
    return (letters or "-") + perms


def go_time(ns: int) -> str:
    """Go's time.Time in JSON (RFC 3339 with nanoseconds, trailing zeros cut) in the agent's zone, as Nomad's
    ModTime."""
    whole, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(whole).astimezone()
    fraction = f".{frac:09d}".rstrip("0") if frac else ""
    offset = stamp.strftime("%z")
    zone = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + fraction.rstrip(".") + zone


def file_info(name: str, st: os.stat_result) -> dict[str, Any]:
    """Nomad's AllocFileInfo."""
    return {"Name": name, "IsDir": stat.S_ISDIR(st.st_mode), "Size": st.st_size, "FileMode": go_file_mode(st.st_mode),
            "ModTime": go_time(st.st_mtime_ns)}


def list_dir(alloc_dir: Path, path: str) -> list[dict[str, Any]]:
    """`ls`: the entries of a directory sorted by name, links and FIFOs as themselves (lstat), as Go's ReadDir."""
    target = resolve(alloc_dir, path)
    try:
        names = sorted(os.listdir(target))
    except FileNotFoundError:
        raise _missing(path) from None
    except NotADirectoryError:
        raise ApiError(400, f"open {path}: not a directory") from None
    infos = []
    for name in names:
        with contextlib.suppress(FileNotFoundError):  # removed while listing
            infos.append(file_info(name, os.lstat(target / name)))
    return infos


def stat_file(alloc_dir: Path, path: str) -> dict[str, Any]:
    target = resolve(alloc_dir, path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        raise _missing(path) from None
    info = file_info(target.name if target != alloc_dir.resolve() else "/", st)
    if stat.S_ISREG(st.st_mode):
        info["ContentType"] = content_type(target)
    return info


def content_type(path: Path) -> str:
    """A rough http.DetectContentType of the first 512 bytes: text or binary is what UIs need to know."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return "application/octet-stream"
    if not head:
        return "text/plain; charset=utf-8"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or b"\x00" in head:  # a cut multi-byte character at the end is still text
            return "application/octet-stream"
    return "application/octet-stream" if b"\x00" in head else "text/plain; charset=utf-8"


def open_regular(alloc_dir: Path, path: str) -> tuple[int, int]:
    """An fd on a regular file of the alloc dir and its size. Anything else is refused: a directory is not
    cat-able, and the logs' FIFOs must never be read here (it would take lines from the task's log pump)."""
    target = resolve(alloc_dir, path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        raise _missing(path) from None
    if stat.S_ISDIR(st.st_mode):
        raise ApiError(400, f'file "{path}" is a directory')
    if not stat.S_ISREG(st.st_mode):
        raise ApiError(400, f'file "{path}" is not a regular file')
    # O_NONBLOCK and O_NOFOLLOW: a FIFO or link swapped in since the stat must neither block us nor be followed.
    fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ApiError(400, f'file "{path}" is not a regular file')
    return fd, st.st_size


# -- streaming ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """Nomad's StreamFrame: data read from `file` (relative to the alloc dir) ending at `offset`, or an event."""

    file: str
    offset: int
    data: bytes = b""
    event: str = ""  # "file truncated", "file deleted"

    def encode(self) -> dict[str, Any]:
        # Every field is omitempty in Nomad: a heartbeat is `{}`.
        out: dict[str, Any] = {}
        if self.offset:
            out["Offset"] = self.offset
        if self.data:
            out["Data"] = base64.b64encode(self.data).decode("ascii")
        if self.file:
            out["File"] = self.file
        if self.event:
            out["FileEvent"] = self.event
        return out


def _log_entries(log_dir: Path, task: str, kind: str) -> list[tuple[int, int]]:
    """(index, size) of a stream's log files, oldest first."""
    entries = []
    for index in log_indexes(log_dir, task, kind):
        with contextlib.suppress(FileNotFoundError):  # rotated out meanwhile
            entries.append((index, os.stat(log_dir / log_file_name(task, kind, index)).st_size))
    return entries


def find_closest(entries: list[tuple[int, int]], desired_index: int, desired_offset: int) -> tuple[int, int]:
    """Nomad's findClosest: the position in `entries` of the first file with an index >= `desired_index` (else
    the last), moved across files by `desired_offset` bytes (negative: back from its end); (position, offset)."""
    pos = next((i for i, (index, _) in enumerate(entries) if index >= desired_index), len(entries) - 1)
    offset = desired_offset
    while offset:
        size = entries[pos][1]
        if offset < 0:
            if size + offset >= 0:
                offset += size
                break
            if pos == 0:
                offset = 0
                break
            offset += size
            pos -= 1
        else:
            if offset <= size:
                break
            if pos == len(entries) - 1:
                offset = size
                break
            offset -= size
            pos += 1
    return pos, offset


def has_logs(log_dir: Path, task: str, kind: str) -> bool:
    return bool(log_indexes(log_dir, task, kind))


async def read_logs(log_dir: Path, task: str, kind: str, *, origin: str, offset: int,
                    follow: bool) -> AsyncGenerator[Frame | None, None]:
    """A task's log as frames, across its rotated files as Nomad's logsImpl: from `offset` bytes after the
    start (or before the end) of the stream; to the end of the file that was last when it began, or, with
    `follow`, on and on. While following it yields None every POLL seconds nothing came, so that the caller
    can heartbeat and notice a caller gone; it ends when the log directory does (the allocation was removed)."""
    next_index = 0 if origin == "start" else sys.maxsize
    relative_offset = offset if origin == "start" else -offset
    entries = _log_entries(log_dir, task, kind)
    last_index = entries[-1][0] if entries else -1
    while entries:
        pos, position = find_closest(entries, next_index, relative_offset)
        if origin == "end" and offset == 0 and next_index == sys.maxsize:
            # Nomad starts "0 bytes before the end" at the start of the last file (its own CLI asks for 1 byte
            # to get round that); yurt takes it to mean the end.
            position = entries[pos][1]
        index = entries[pos][0]
        name = log_file_name(task, kind, index)
        file = str(LOG_DIR / name)
        try:
            fd = os.open(log_dir / name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            entries = _log_entries(log_dir, task, kind)  # rotated out before we got to it: the next one
            continue
        try:
            position = min(position, os.fstat(fd).st_size)
            while True:
                data = os.pread(fd, CHUNK, position)
                if data:
                    position += len(data)
                    yield Frame(file, position, data)
                    continue
                if not follow:
                    break
                if any(i > index for i in log_indexes(log_dir, task, kind)):
                    # The writer moved to a newer file; it closed this one first, so its end is here now.
                    while data := os.pread(fd, CHUNK, position):
                        position += len(data)
                        yield Frame(file, position, data)
                    break
                if os.fstat(fd).st_size < position:
                    position = 0
                    yield Frame(file, 0, event="file truncated")
                    continue
                if not log_dir.is_dir():
                    return
                yield None
                await asyncio.sleep(POLL)
        finally:
            os.close(fd)
        if not follow and index >= last_index:
            return
        next_index, relative_offset = index + 1, 0
        entries = _log_entries(log_dir, task, kind)


async def read_file(fd: int, file: str, *, position: int, follow: bool,
                    path: Path) -> AsyncGenerator[Frame | None, None]:
    """One file as frames from `position` (/v1/client/fs/stream); following, None on idle polls as above, and a
    "file deleted" frame to end with when it goes away."""
    while True:
        data = os.pread(fd, CHUNK, position)
        if data:
            position += len(data)
            yield Frame(file, position, data)
            continue
        if not follow:
            return
        if not path.exists():
            yield Frame(file, position, event="file deleted")
            return
        if os.fstat(fd).st_size < position:
            position = 0
            yield Frame(file, 0, event="file truncated")
            continue
        yield None
        await asyncio.sleep(POLL)
