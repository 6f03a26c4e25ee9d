"""The server's state store: every table, versioned by Raft index, with O(1) snapshots and listeners."""

from __future__ import annotations

import weakref

from .allocs import AllocWrites
from .core import StoreCore
from .fsm_writes import FSMWrites
from .namespaces import NamespaceWrites
from .nodes import NodeWrites
from .records import DEFAULT_NAMESPACE, NAMESPACES, Namespace
from .tables import Table, TableView


class StateStore(FSMWrites, AllocWrites, NodeWrites, NamespaceWrites):
    """Nomad's state store in Python dicts.

    Every write takes the Raft index of the command that caused it and stamps it on what it changes;
    stored objects are never changed in place, so readers (and snapshots) may keep references.
    Reads are inherited from StateReader; `snapshot()` gives a read-only StateSnapshot.
    """

    __slots__ = ()

    def __init__(self, job_versions_limit: int = 6) -> None:
        super().__init__(job_versions_limit)
        # Present from the start at index 0, as Nomad bootstraps it: no write, no listener call.
        default = Namespace(DEFAULT_NAMESPACE, "Default shared namespace")
        self._tables[NAMESPACES].put(DEFAULT_NAMESPACE, default)

    def fork(self) -> StateStore:
        """A writable copy in O(number of tables), with no listeners: it shares every table with this
        store copy-on-write, so writes to either are never seen by the other.

        The leader applies plan results proposed but not yet committed to a fork, so the next plan is
        checked against them (as Nomad's plan applier does with its optimistic snapshot).
        """
        return ForkedStore(self)


class ForkedStore(StateStore):
    """A StateStore made by `fork()`; it pins the frozen views it shares with the original store."""

    __slots__ = ("_pins",)

    def __init__(self, origin: StoreCore) -> None:
        super().__init__(origin.job_versions_limit)  # its fresh tables are replaced by shared ones below
        self._pins: list[TableView] = []
        for name, table in origin._tables.items():
            # While a view lives, the original copies a table before changing it; the fork keeps the views
            # alive and, pointing its own `_view` at them, copies too before its first write.
            view = table.share()
            self._pins.append(view)
            forked = Table(name, **table._key_funcs)
            forked.rows, forked.indexes, forked.index = view.rows, view.indexes, view.index
            forked._view = weakref.ref(view)
            self._tables[name] = forked
