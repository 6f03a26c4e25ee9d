"""Durable Raft storage on local files: a segmented, checksummed log, a hard-state file and snapshot files."""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from orchestrator.raft import ConfState, Entry, EntryType, HardState, MemoryStorage, Snapshot

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024

# Every log record is framed as <payload length, CRC32 of the payload> followed by a msgpack payload.
_HEADER = struct.Struct("<II")
# [0, index, term, type, data] / [1, from_index] / [2, index, term, snapshot file number]
_ENTRY, _TRUNCATE, _RESET = 0, 1, 2
_TYPES = (EntryType.NORMAL, EntryType.CONF_CHANGE)
_TYPE_CODES = {t: code for code, t in enumerate(_TYPES)}
# Whole-file formats (hard state, snapshots): magic, CRC32 of the rest, msgpack.
_FILE_HEADER = struct.Struct("<4sI")
_STATE_MAGIC, _SNAP_MAGIC = b"YHS1", b"YSN1"
_STATE_FILE, _LOCK_FILE = "hardstate", "LOCK"
_SEG_PREFIX, _SEG_SUFFIX = "log-", ".seg"
_SNAP_PREFIX, _SNAP_SUFFIX = "snap-", ".snap"
_TMP_SUFFIX = ".tmp"
# fdatasync skips the inode's timestamps but still flushes a size change, which is all an append needs.
_datasync = getattr(os, "fdatasync", os.fsync)

# term, vote, commit, compaction index, compaction term, number of the current snapshot's file (0: none)
_State = tuple[int, str | None, int, int, int, int]


class StorageCorruptError(Exception):
    """Stored data fails its checksum or makes no sense where a crash cannot explain it."""

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"raft storage: {path} at offset {offset}: {reason}")
        self.path = path
        self.offset = offset


class _Mirror(MemoryStorage):
    """The in-memory copy: MemoryStorage, restorable to any state its API reaches, including one whose snapshot
    is no longer backed by its log (a suffix truncated below it), which no sequence of its public calls rebuilds."""

    __slots__ = ()

    @classmethod
    def restore(cls, hs: HardState, snap: Snapshot, base: int, base_term: int, ents: list[Entry]) -> _Mirror:
        mirror = cls()
        mirror._hard, mirror._snapshot, mirror._ents = hs, snap, ents
        mirror._base_index, mirror._base_term = base, base_term
        return mirror


@dataclass(slots=True)
class _Segment:
    seq: int
    path: Path
    size: int = 0  # bytes on disk plus bytes buffered for it
    max_index: int = 0  # highest entry index ever written to it (0: none)
    on_disk: bool = False


def _frame(record: list[Any]) -> bytes:
    payload = msgpack.packb(record)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _scan(path: Path, data: bytes, tail: bool) -> tuple[list[tuple[int, list[Any]]], int]:
    """The records of one segment and where the valid ones end. In the last segment (`tail`) a torn record at
    the end is what a crash mid-write leaves, so it ends the scan; anywhere else it is corruption."""
    records: list[tuple[int, list[Any]]] = []
    off, size = 0, len(data)
    while off < size:
        reason = None
        if size - off < _HEADER.size:
            reason = "truncated record header"
        else:
            length, crc = _HEADER.unpack_from(data, off)
            end = off + _HEADER.size + length
            if length == 0:
                reason = "empty record"
            elif end > size:
                reason = f"record of {length} bytes runs past the end"
            elif zlib.crc32(data[off + _HEADER.size:end]) != crc:
                reason = "checksum mismatch"
        if reason is not None:
            # Torn: the damaged record is the last one, or all that follows is the zeros of unwritten blocks.
            torn = size - off < _HEADER.size or end >= size or not data[off:].strip(b"\0")
            if tail and torn:
                return records, off
            raise StorageCorruptError(path, off, reason)
        try:
            record = msgpack.unpackb(data[off + _HEADER.size:end])
            if not isinstance(record, list) or not record or record[0] not in (_ENTRY, _TRUNCATE, _RESET):
                raise ValueError(f"unknown record {record!r:.60}")
        except Exception as exc:  # a record with a valid checksum that does not decode was written wrong
            raise StorageCorruptError(path, off, f"undecodable record: {exc}") from exc
        records.append((off, record))
        off = end
    return records, off


def _read_sealed(path: Path, magic: bytes) -> list[Any]:
    data = path.read_bytes()
    if len(data) < _FILE_HEADER.size or data[:4] != magic:
        raise StorageCorruptError(path, 0, f"not a {magic!r} file")
    crc, body = _FILE_HEADER.unpack_from(data)[1], data[_FILE_HEADER.size :]
    if zlib.crc32(body) != crc:
        raise StorageCorruptError(path, _FILE_HEADER.size, "checksum mismatch")
    value = msgpack.unpackb(body)
    if not isinstance(value, list):
        raise StorageCorruptError(path, _FILE_HEADER.size, "not a record")
    return value


def _seal(magic: bytes, value: list[Any]) -> bytes:
    body = msgpack.packb(value)
    return _FILE_HEADER.pack(magic, zlib.crc32(body)) + body


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class FileStorage:
    """Raft's Storage port on a directory, for one server. Reads are served from an in-memory mirror (a
    MemoryStorage, so errors and edge cases are exactly its own); writes change the mirror at once and are
    buffered until `sync()`, which makes everything written so far durable, as `sim.disk.SimDisk` models.

    `sync()` writes in an order that leaves a consistent state at every crash point: snapshot files, then the
    log, then the hard-state file (whose commit may only point at entries already durable), then it deletes
    what the durable state no longer needs. A snapshot file counts only once something durable names it: the
    hard-state file, or the log's reset record for an applied snapshot (the reset and the snapshot must appear
    together, so the file is written before the log that names it).
    """

    def __init__(self, directory: str | Path, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        if segment_bytes < 1:
            raise ValueError("raft storage: segment_bytes must be positive")
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        self._closed = False
        self._broken: BaseException | None = None
        self._lock_fd: int | None = os.open(self._dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise RuntimeError(f"raft storage: {self._dir} is in use by another process") from None
        self._dir_fd: int | None = os.open(self._dir, os.O_RDONLY)
        self._segments: list[_Segment] = []
        self._live_seq = 0  # segments before this one precede a durable reset and are garbage
        self._pending: list[tuple[_Segment, bytearray]] = []
        # Snapshot files to write at the next sync: (file number, snapshot, named by a reset record).
        self._pending_snapshots: list[tuple[int, Snapshot, bool]] = []
        self._snap_file = 0  # number of the current snapshot's file
        self._next_snap_file = 1
        self._fd: int | None = None  # the open segment and its descriptor (always the last segment)
        self._fd_seg: _Segment | None = None
        self._durable: _State | None = None  # what the hard-state file holds
        try:
            self._mem = self._recover()
        except BaseException:
            self.abandon()
            raise

    # -- Storage: reads -------------------------------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._mem.initial_state()

    @property
    def hard_state(self) -> HardState:
        return self._mem.hard_state

    def entries(self, lo: int, hi: int) -> list[Entry]:
        return self._mem.entries(lo, hi)

    def term(self, i: int) -> int:
        return self._mem.term(i)

    def first_index(self) -> int:
        return self._mem.first_index()

    def last_index(self) -> int:
        return self._mem.last_index()

    def snapshot(self) -> Snapshot:
        return self._mem.snapshot()

    # -- Storage: writes (the mirror validates and changes first, so a rejected write buffers nothing) ------

    def append(self, entries: Sequence[Entry]) -> None:
        self._check_open()
        if not entries:
            return
        mem = self._mem
        base, last = mem.first_index() - 1, mem.last_index()
        # The first entry that is not already stored identically: what the mirror will write.
        start = max(0, base + 1 - entries[0].index)
        n = len(entries)
        while start < n and entries[start].index <= last and mem.term(entries[start].index) == entries[start].term:
            start += 1
        mem.append(entries)
        if start >= n:
            return
        first = entries[start].index
        if first <= last:
            # Dropping a conflicting suffix: a marker, replayed in order, rather than rewriting the segment.
            self._write(_frame([_TRUNCATE, first]), 0)
        for e in entries[start:]:
            self._write(_frame([_ENTRY, e.index, e.term, _TYPE_CODES[e.type], e.data]), e.index)

    def set_hard_state(self, hs: HardState) -> None:
        self._check_open()
        self._mem.set_hard_state(hs)

    def apply_snapshot(self, snap: Snapshot) -> None:
        self._check_open()
        self._mem.apply_snapshot(snap)
        number = self._add_snapshot(snap, named=True)
        # A reset opens a fresh segment, so recovery starts from the newest segment that opens with one and
        # every older segment becomes garbage as soon as the reset is durable.
        self._write(_frame([_RESET, snap.index, snap.term, number]), 0, fresh=True)
        self._live_seq = self._segments[-1].seq

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        self._check_open()
        snap = self._mem.create_snapshot(index, conf, data)
        self._add_snapshot(snap, named=False)
        return snap

    def compact(self, index: int) -> None:
        self._check_open()
        # Durable through the hard-state file's compaction point; segments go once that is on disk.
        self._mem.compact(index)

    # -- durability -----------------------------------------------------------------------------------------

    def sync(self) -> None:
        """Make every write so far durable (fsync), then drop files the durable state no longer needs."""
        self._check_open()
        try:
            pending = self._pending_snapshots
            for k, (number, snap, named) in enumerate(pending):
                # One superseded before this sync matters only if a reset record names it.
                if named or k == len(pending) - 1:
                    body = _seal(_SNAP_MAGIC, [snap.index, snap.term, list(snap.conf.voters), snap.data])
                    self._write_file(self._snapshot_path(number), body)
            self._pending_snapshots = []
            self._flush_log()
            state = self._state()
            if state != self._durable:
                self._write_file(self._dir / _STATE_FILE, _seal(_STATE_MAGIC, list(state)))
                self._durable = state
            if pending:
                self._drop_snapshot_files()
            self._drop_dead_segments()
        except BaseException as exc:
            # After a failed write or fsync what reached the disk is unknown (a retried fsync may even report
            # success for pages the kernel dropped): refuse to go on; reopening recovers what is really there.
            self._broken = exc
            raise

    def close(self) -> None:
        """Sync, then release the directory (which is released even if the sync fails)."""
        if self._closed:
            return
        try:
            self.sync()
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Release the directory without syncing: unsynced writes are lost, as in a crash."""
        self._closed = True
        self._pending.clear()
        self._pending_snapshots = []
        for fd in (self._fd, self._dir_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd, self._fd_seg, self._dir_fd, self._lock_fd = None, None, None, None

    def __enter__(self) -> FileStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals: writing ---------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("raft storage: closed")
        if self._broken is not None:
            raise RuntimeError(f"raft storage: a sync failed ({self._broken!r}); reopen to recover") from self._broken

    def _state(self) -> _State:
        hs = self._mem.hard_state
        base = self._mem.first_index() - 1
        return (hs.term, hs.vote, hs.commit, base, self._mem.term(base), self._snap_file)

    def _add_snapshot(self, snap: Snapshot, *, named: bool) -> int:
        number = self._snap_file = self._next_snap_file
        self._next_snap_file += 1
        self._pending_snapshots.append((number, snap, named))
        return number

    def _snapshot_path(self, number: int) -> Path:
        return self._dir / f"{_SNAP_PREFIX}{number:020d}{_SNAP_SUFFIX}"

    def _new_segment(self) -> _Segment:
        seq = self._segments[-1].seq + 1 if self._segments else 1
        seg = _Segment(seq=seq, path=self._dir / f"{_SEG_PREFIX}{seq:020d}{_SEG_SUFFIX}")
        self._segments.append(seg)
        return seg

    def _write(self, record: bytes, index: int, *, fresh: bool = False) -> None:
        seg = self._segments[-1] if self._segments else None
        if seg is None or fresh or (seg.size and seg.size + len(record) > self._segment_bytes):
            seg = self._new_segment()
        seg.size += len(record)
        seg.max_index = max(seg.max_index, index)
        if self._pending and self._pending[-1][0] is seg:
            self._pending[-1][1].extend(record)
        else:
            self._pending.append((seg, bytearray(record)))

    def _fsync_dir(self) -> None:
        assert self._dir_fd is not None
        os.fsync(self._dir_fd)

    def _write_file(self, path: Path, data: bytes) -> None:
        """Replace `path` atomically and durably: temp file, fsync, rename, fsync of the directory."""
        tmp = path.with_name(path.name + _TMP_SUFFIX)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self._fsync_dir()

    def _flush_log(self) -> None:
        for seg, buf in self._pending:
            if self._fd_seg is not seg:
                if self._fd is not None:
                    fd, self._fd = self._fd, None
                    os.close(fd)  # already synced after its last chunk
                self._fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._fd_seg = seg
                if not seg.on_disk:
                    # The name must be durable before anything in a later segment can be: a missing middle
                    # segment would read as a gap in the log.
                    self._fsync_dir()
                    seg.on_disk = True
            _write_all(self._fd, buf)
            _datasync(self._fd)
        self._pending.clear()

    def _drop_snapshot_files(self) -> None:
        """Delete every snapshot file but the durable current one (older, or written but never named)."""
        for number, path in _numbered(self._dir, _SNAP_PREFIX, _SNAP_SUFFIX):
            if number != self._snap_file:
                path.unlink(missing_ok=True)

    def _drop_dead_segments(self) -> None:
        # Only a prefix goes, never the open segment: a truncation marker only reaches back, so a prefix whose
        # entries are all compacted (or that precedes a reset) cannot change what the remaining ones replay to.
        # Oldest first, each unlink durable before the next, so a crash leaves a suffix of the files: a segment
        # that precedes a reset must never outlive the segment holding that reset.
        durable_base = self._durable[3] if self._durable else 0
        segs = self._segments
        while len(segs) > 1 and (segs[0].seq < self._live_seq or segs[0].max_index <= durable_base):
            seg = segs.pop(0)
            if self._fd_seg is seg and self._fd is not None:
                fd, self._fd, self._fd_seg = self._fd, None, None
                os.close(fd)
            seg.path.unlink(missing_ok=True)
            self._fsync_dir()

    # -- internals: recovery --------------------------------------------------------------------------------

    def _recover(self) -> MemoryStorage:
        for tmp in self._dir.glob(f"*{_TMP_SUFFIX}"):
            tmp.unlink()  # a temp file never renamed is a write that never completed
        term, vote, commit, base, base_term, snap_file = self._load_state()
        ents, base, base_term, reset_file = self._replay(base, base_term)
        # File numbers only grow, so whichever of the two names is larger is the later snapshot.
        self._snap_file = max(snap_file, reset_file)
        snap = self._load_snapshot(self._snap_file)
        numbers = [n for n, _ in _numbered(self._dir, _SNAP_PREFIX, _SNAP_SUFFIX)]
        self._next_snap_file = max([self._snap_file, *numbers]) + 1
        if snap.index < base:
            raise StorageCorruptError(self._dir, 0, f"log compacted to {base} but the snapshot is at {snap.index}")
        hs = HardState(term=term, vote=vote, commit=commit)
        return _Mirror.restore(hs, snap, base, base_term, ents)

    def _load_state(self) -> _State:
        path = self._dir / _STATE_FILE
        if not path.exists():
            return (0, None, 0, 0, 0, 0)
        value = _read_sealed(path, _STATE_MAGIC)
        if len(value) == 6:
            term, vote, commit, base, base_term, snap_file = value
            if all(isinstance(v, int) for v in (term, commit, base, base_term, snap_file)) and (
                vote is None or isinstance(vote, str)
            ):
                self._durable = (term, vote, commit, base, base_term, snap_file)
                return self._durable
        raise StorageCorruptError(path, _FILE_HEADER.size, "malformed hard state")

    def _load_snapshot(self, number: int) -> Snapshot:
        if number == 0:
            return Snapshot()
        path = self._snapshot_path(number)
        try:
            index, term, voters, data = _read_sealed(path, _SNAP_MAGIC)
            return Snapshot(index=index, term=term, conf=ConfState(voters=tuple(voters)), data=data)
        except (OSError, ValueError, TypeError) as exc:  # missing, or not a snapshot
            raise StorageCorruptError(path, 0, f"the current snapshot is unreadable: {exc}") from exc

    def _replay(self, base: int, base_term: int) -> tuple[list[Entry], int, int, int]:
        """The log after the compaction point, replayed from the last segment that opens with a reset: entries,
        compaction index and term, and the snapshot file the last reset names (0: none)."""
        found = _numbered(self._dir, _SEG_PREFIX, _SEG_SUFFIX)
        segs = [_Segment(seq=seq, path=p, size=p.stat().st_size, on_disk=True) for seq, p in found]
        self._segments = segs
        start = next((k for k in range(len(segs) - 1, -1, -1) if _opens_with_reset(segs[k].path)), 0)
        self._live_seq = segs[start].seq if segs else 0
        ents: list[Entry] = []
        reset_file = 0
        for k in range(start, len(segs)):
            seg = segs[k]
            data = seg.path.read_bytes()
            records, end = _scan(seg.path, data, tail=k == len(segs) - 1)
            if end < len(data):
                log.warning("raft storage: discarding a torn record at the end of %s (offset %d, %d bytes)",
                            seg.path, end, len(data) - end)
                with seg.path.open("r+b") as f:  # so that appends go right after the last good record
                    f.truncate(end)
                    os.fsync(f.fileno())
                seg.size = end
            for off, rec in records:
                try:
                    if rec[0] == _ENTRY:
                        _, index, term, code, payload = rec
                        seg.max_index = max(seg.max_index, index)
                        if index <= base:
                            continue  # compacted away since it was written
                        if index != base + len(ents) + 1:
                            raise StorageCorruptError(seg.path, off, f"entry {index} after {base + len(ents)}")
                        ents.append(Entry(term=term, index=index, type=_TYPES[code], data=payload))
                    elif rec[0] == _TRUNCATE:
                        del ents[max(0, rec[1] - base - 1):]
                    else:
                        _, index, term, reset_file = rec
                        ents.clear()
                        # The hard-state file may already hold a later compaction point than this reset.
                        if index >= base:
                            base, base_term = index, term
                except (ValueError, TypeError, IndexError) as exc:
                    raise StorageCorruptError(seg.path, off, f"malformed record: {exc}") from exc
        return ents, base, base_term, reset_file


def _numbered(directory: Path, prefix: str, suffix: str) -> list[tuple[int, Path]]:
    """The files named prefix + decimal number + suffix, by number."""
    found = []
    for path in directory.glob(f"{prefix}*{suffix}"):
        digits = path.name[len(prefix) : -len(suffix)]
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


def _opens_with_reset(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(64)  # a reset record is far shorter
    try:
        records, _ = _scan(path, head[: _HEADER.size + _HEADER.unpack_from(head)[0]], tail=False)
    except (StorageCorruptError, struct.error):
        return False
    return len(records) == 1 and records[0][1][0] == _RESET
