"""The server's state store: every table, versioned by Raft index, with O(1) snapshots and listeners."""

from __future__ import annotations

from .allocs import AllocWrites
from .namespaces import NamespaceWrites
from .nodes import NodeWrites
from .records import DEFAULT_NAMESPACE, NAMESPACES, Namespace


class StateStore(AllocWrites, NodeWrites, NamespaceWrites):
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
