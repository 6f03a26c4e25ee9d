"""A node's view of its log: what storage holds, plus the unstable tail (and snapshot) not yet persisted."""

from __future__ import annotations

from collections.abc import Sequence

from .records import CompactedError, Entry, Snapshot, UnavailableError
from .storage import Storage


class RaftLog:
    """Entries up to `_offset - 1` come from storage, later ones from `_unstable` until the application persists
    them. A snapshot received from the leader shadows storage entirely until it is persisted."""

    __slots__ = ("_offset", "_pending_snapshot", "_storage", "_unstable", "applied", "applying", "committed")

    def __init__(self, storage: Storage, applied: int = 0) -> None:
        self._storage = storage
        self._unstable: list[Entry] = []
        self._offset = storage.last_index() + 1  # index of _unstable[0]
        self._pending_snapshot: Snapshot | None = None
        compacted = storage.first_index() - 1
        hard, _ = storage.initial_state()
        if hard.commit > storage.last_index():
            raise ValueError(f"raft: persisted commit {hard.commit} is beyond the log's end {storage.last_index()}")
        self.committed = max(hard.commit, compacted)
        if applied > self.committed:
            raise ValueError(f"raft: applied {applied} is beyond the commit index {self.committed}")
        # The state machine holds at least the snapshot (the application restores it before starting).
        self.applied = max(applied, storage.snapshot().index, compacted)
        self.applying = self.applied  # the last entry handed out for applying (>= applied)

    # --- reading --------------------------------------------------------------------------------------------

    def first_index(self) -> int:
        snap = self._pending_snapshot
        if snap is not None:
            return snap.index + 1
        return self._storage.first_index()

    def last_index(self) -> int:
        return self._offset + len(self._unstable) - 1

    def term(self, i: int) -> int | None:
        """Term of entry i, or None when it is compacted away or beyond the end."""
        offset = self._offset
        if i >= offset:
            k = i - offset
            return self._unstable[k].term if k < len(self._unstable) else None
        snap = self._pending_snapshot
        if snap is not None:
            return snap.term if i == snap.index else None
        try:
            return self._storage.term(i)
        except (CompactedError, UnavailableError):
            return None

    def last_term(self) -> int:
        term = self.term(self.last_index())
        assert term is not None  # the last entry, or the snapshot / compaction point, always has a term
        return term

    def match_term(self, i: int, term: int) -> bool:
        return self.term(i) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Is a log ending at (last_index, last_term) at least as up to date as this one (paper §5.4.1)?"""
        mine = self.last_term()
        return last_term > mine or (last_term == mine and last_index >= self.last_index())

    def entries(self, lo: int, hi: int) -> list[Entry]:
        """Entries [lo, min(hi, last + 1)); CompactedError when lo is below the first index."""
        if lo < self.first_index():
            raise CompactedError(f"raft: entry {lo} is compacted")
        offset = self._offset
        hi = min(hi, offset + len(self._unstable))
        if lo >= hi:
            return []
        if hi <= offset:
            return self._storage.entries(lo, hi)
        tail = self._unstable[max(lo, offset) - offset:hi - offset]
        if lo >= offset:
            return tail
        return self._storage.entries(lo, offset) + tail

    def find_conflict_by_term(self, index: int, term: int) -> int:
        """The largest j <= index whose term is <= `term` (or the first available index if none is).

        Terms never decrease along a log, so this is a binary search; it lets a reject skip whole terms.
        """
        lo = self.first_index() - 1
        if index <= lo:
            return index
        t = self.term(index)
        if t is None or t <= term:
            return index
        if (self.term(lo) or 0) > term:
            return lo
        hi = index  # invariant: term(lo) <= term < term(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (self.term(mid) or 0) <= term:
                lo = mid
            else:
                hi = mid
        return lo

    # --- changing -------------------------------------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> int:
        """Add entries to the unstable tail, replacing any suffix from the first one's index on."""
        first = entries[0].index
        if first - 1 < self.committed:
            raise AssertionError(f"raft: entry {first} would overwrite committed entry {self.committed}")
        offset = self._offset
        end = offset + len(self._unstable)
        if first == end:
            self._unstable.extend(entries)
        elif first <= offset:
            # Replaces stable entries too: storage truncates its conflicting suffix when these are persisted.
            self._offset = first
            self._unstable = list(entries)
        else:
            del self._unstable[first - offset:]
            self._unstable.extend(entries)
        return self.last_index()

    def maybe_append(self, prev_index: int, prev_term: int, commit: int, entries: Sequence[Entry]) -> int | None:
        """A leader's APPEND: None if the log lacks (prev_index, prev_term), else the last index now matched."""
        if self.term(prev_index) != prev_term:
            return None
        last_new = prev_index + len(entries)
        # Skip what is already here (duplicates, reordered older appends), truncate from the first conflict.
        for k, e in enumerate(entries):
            if self.term(e.index) != e.term:
                self.append(entries[k:])
                break
        # Only up to last_new: entries beyond it may not be the leader's.
        self.commit_to(min(commit, last_new))
        return last_new

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            if index > self.last_index():
                raise AssertionError(f"raft: commit {index} is beyond the log's end {self.last_index()}")
            self.committed = index

    def restore(self, snap: Snapshot) -> None:
        """Take a leader's snapshot: everything before and in storage is superseded."""
        self._pending_snapshot = snap
        self._unstable = []
        self._offset = snap.index + 1
        self.committed = snap.index

    # --- the Ready cycle ------------------------------------------------------------------------------------

    @property
    def pending_snapshot(self) -> Snapshot | None:
        return self._pending_snapshot

    def unstable_entries(self) -> tuple[Entry, ...]:
        return tuple(self._unstable)

    def has_unstable(self) -> bool:
        return bool(self._unstable)

    def has_next_committed(self) -> bool:
        return self.committed > max(self.applying, self.first_index() - 1)

    def next_committed(self) -> list[Entry]:
        lo = max(self.applying + 1, self.first_index())
        if lo > self.committed:
            return []
        return self.entries(lo, self.committed + 1)

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to `index` are persisted (unless the tail was replaced since the Ready was built)."""
        offset = self._offset
        k = index - offset
        if 0 <= k < len(self._unstable) and self._unstable[k].term == term:
            del self._unstable[:k + 1]
            self._offset = index + 1

    def stable_snapshot_to(self, index: int) -> None:
        snap = self._pending_snapshot
        if snap is not None and snap.index == index:
            self._pending_snapshot = None
        # The application restored the snapshot into its state machine.
        self.applied = max(self.applied, index)
        self.applying = max(self.applying, index)

    def applied_to(self, index: int) -> None:
        self.applied = max(self.applied, index)
        self.applying = max(self.applying, index)
