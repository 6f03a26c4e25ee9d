"""The durable-storage port Raft reads its log through, an in-memory implementation, and the persist step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .messages import Ready
from .records import (
    CompactedError,
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotOutOfDateError,
    UnavailableError,
)


class Storage(Protocol):
    """Stable storage of one node: hard state, the latest snapshot, and the log entries after its compaction point.

    Raft only reads it; the application writes what each Ready asks for (see `persist`) before sending that
    Ready's messages. `RaftNode.bootstrap` and `RaftNode.compact` also write to it.
    """

    def initial_state(self) -> tuple[HardState, ConfState]:
        """The persisted hard state, and the configuration of the latest snapshot."""
        ...

    def entries(self, lo: int, hi: int) -> list[Entry]:
        """Entries [lo, hi). CompactedError if lo < first_index(); UnavailableError if hi > last_index() + 1."""
        ...

    def term(self, i: int) -> int:
        """Term of entry i, for first_index() - 1 <= i <= last_index() (first_index() - 1: the compaction point)."""
        ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot:
        """The latest snapshot (index 0 when none was ever taken)."""
        ...

    def append(self, entries: Sequence[Entry]) -> None:
        """Append contiguous entries, first dropping any stored suffix that conflicts with them."""
        ...

    def set_hard_state(self, hs: HardState) -> None: ...

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace everything (snapshot and log) by `snap`; the log then starts right after it."""
        ...

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        """Record the application's state as of `index` as the latest snapshot (the log is untouched)."""
        ...

    def compact(self, index: int) -> None:
        """Drop the entries up to and including `index` (which must not exceed the snapshot's index)."""
        ...


class MemoryStorage:
    """Storage in memory. It outlives the RaftNode built on it, so tests crash a node and restart it from here."""

    __slots__ = ("_base_index", "_base_term", "_ents", "_hard", "_snapshot")

    def __init__(self) -> None:
        self._hard = HardState()
        self._snapshot = Snapshot()
        # The compaction point: entry `_base_index` (term `_base_term`) is the last one dropped; `_ents[k]`
        # holds index `_base_index + 1 + k`.
        self._base_index = 0
        self._base_term = 0
        self._ents: list[Entry] = []

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard, self._snapshot.conf

    @property
    def hard_state(self) -> HardState:
        return self._hard

    def entries(self, lo: int, hi: int) -> list[Entry]:
        base = self._base_index
        if lo <= base:
            raise CompactedError(f"raft: entry {lo} is compacted (log starts at {base + 1})")
        if hi > base + len(self._ents) + 1:
            raise UnavailableError(f"raft: entries up to {hi - 1} asked, log ends at {base + len(self._ents)}")
        return self._ents[lo - base - 1:hi - base - 1]

    def term(self, i: int) -> int:
        base = self._base_index
        if i == base:
            return self._base_term
        if i < base:
            raise CompactedError(f"raft: entry {i} is compacted (log starts at {base + 1})")
        if i > base + len(self._ents):
            raise UnavailableError(f"raft: entry {i} is beyond the log's end {base + len(self._ents)}")
        return self._ents[i - base - 1].term

    def first_index(self) -> int:
        return self._base_index + 1

    def last_index(self) -> int:
        return self._base_index + len(self._ents)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def append(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        base = self._base_index
        last = base + len(self._ents)
        first_new = entries[0].index
        if first_new > last + 1:
            raise ValueError(f"raft: appending entry {first_new} would leave a gap after {last}")
        start = 0
        # Entries at or below the compaction point are committed and already folded into the snapshot.
        if first_new <= base:
            start = base + 1 - first_new
        # Skip what is already stored identically; truncate from the first conflict.
        ents = self._ents
        n = len(entries)
        while start < n:
            e = entries[start]
            if e.index > last or ents[e.index - base - 1].term != e.term:
                break
            start += 1
        if start >= n:
            return
        del ents[entries[start].index - base - 1:]
        ents.extend(entries[start:])

    def set_hard_state(self, hs: HardState) -> None:
        self._hard = hs

    def apply_snapshot(self, snap: Snapshot) -> None:
        if snap.index < self._snapshot.index:
            raise SnapshotOutOfDateError(f"raft: snapshot {snap.index} is older than {self._snapshot.index}")
        self._snapshot = snap
        self._base_index = snap.index
        self._base_term = snap.term
        self._ents = []

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        if index <= self._snapshot.index:
            raise SnapshotOutOfDateError(f"raft: snapshot {index} is not newer than {self._snapshot.index}")
        snap = Snapshot(index=index, term=self.term(index), conf=conf, data=data)
        self._snapshot = snap
        return snap

    def compact(self, index: int) -> None:
        base = self._base_index
        if index <= base:
            raise CompactedError(f"raft: entry {index} is already compacted")
        if index > self.last_index():
            raise UnavailableError(f"raft: cannot compact beyond the log's end {self.last_index()}")
        if index > self._snapshot.index:
            raise ValueError(f"raft: compacting to {index} would drop entries not in snapshot {self._snapshot.index}")
        self._base_term = self._ents[index - base - 1].term
        self._ents = self._ents[index - base:]
        self._base_index = index


def persist(storage: Storage, ready: Ready) -> None:
    """Write what `ready` asks to be durable, in the one safe order: snapshot, then entries, then hard state."""
    if ready.snapshot is not None:
        storage.apply_snapshot(ready.snapshot)
    if ready.entries:
        storage.append(ready.entries)
    if ready.hard_state is not None:
        storage.set_hard_state(ready.hard_state)
