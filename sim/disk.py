"""A simulated disk for a server's Raft storage: writes reach the platter only when the runtime syncs them,
so a crash between `persist` and the end of its fsync loses them, as a real disk loses its page cache."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from orchestrator.raft import ConfState, Entry, HardState, MemoryStorage, Snapshot

_WRITES = ("append", "set_hard_state", "apply_snapshot", "create_snapshot", "compact")


class SimDisk:
    """Raft's Storage port over two MemoryStorages: what the process sees (its writes, synced or not) and
    what survives a crash (synced writes only). Writes are journaled and replayed onto the durable copy
    at each sync, so a sync costs what changed, not the whole log."""

    def __init__(self) -> None:
        self.durable = MemoryStorage()
        self.live = MemoryStorage()
        self._journal: list[tuple[str, tuple[Any, ...]]] = []
        self.lost_writes = 0  # journaled writes a crash threw away (for tests and traces)

    # -- the runtime's hooks ------------------------------------------------------------------------------

    def sync(self) -> None:
        """fsync completed: everything written so far survives a crash."""
        for name, args in self._journal:
            getattr(self.durable, name)(*args)
        self._journal.clear()

    def pending_writes(self) -> int:
        """Writes made since the last sync: what a crash now would lose."""
        return len(self._journal)

    def crash(self) -> None:
        """The process died: the page cache is gone, the next incarnation reads only what was synced."""
        self.lost_writes += len(self._journal)
        self._journal.clear()
        live = copy.copy(self.durable)
        live._ents = list(self.durable._ents)  # the one mutable part a MemoryStorage shares
        self.live = live

    # -- Storage: reads see the process's own writes ------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.live.initial_state()

    @property
    def hard_state(self) -> HardState:
        return self.live.hard_state

    def entries(self, lo: int, hi: int) -> list[Entry]:
        return self.live.entries(lo, hi)

    def term(self, i: int) -> int:
        return self.live.term(i)

    def first_index(self) -> int:
        return self.live.first_index()

    def last_index(self) -> int:
        return self.live.last_index()

    def snapshot(self) -> Snapshot:
        return self.live.snapshot()

    # -- Storage: writes go to the process's view now, to the platter at the next sync --------------------

    def _write(self, name: str, *args: Any) -> None:
        getattr(self.live, name)(*args)
        self._journal.append((name, args))

    def append(self, entries: Sequence[Entry]) -> None:
        self._write("append", list(entries))

    def set_hard_state(self, hs: HardState) -> None:
        self._write("set_hard_state", hs)

    def apply_snapshot(self, snap: Snapshot) -> None:
        self._write("apply_snapshot", snap)

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        snap = self.live.create_snapshot(index, conf, data)
        self._journal.append(("create_snapshot", (index, conf, data)))
        return snap

    def compact(self, index: int) -> None:
        self._write("compact", index)
