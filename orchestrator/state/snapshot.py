"""Read-only snapshots of the state store: what schedulers plan against."""

from __future__ import annotations

from .reader import StateReader
from .tables import TableView


class StateSnapshot(StateReader):
    """The store as it was at one Raft index; later writes to the store are never seen here.

    It holds frozen views of the store's tables, so taking one is O(number of tables) and it stays
    valid (and cheap) for as long as the caller keeps it.
    """

    __slots__ = ("_tables",)

    def __init__(self, tables: dict[str, TableView]) -> None:
        self._tables = tables

    @property
    def index(self) -> int:
        """The latest Raft index this snapshot includes."""
        return self.latest_index()
