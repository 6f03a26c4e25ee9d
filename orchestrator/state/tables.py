"""Copy-on-write tables: a primary dict plus secondary indexes, shared with snapshots in O(1)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Iterator
from typing import Any

# An index maps each row to one key, or to None when the row is not in that index at all.
IndexKey = Callable[[Any], Hashable | None]


class _Readable:
    """Read helpers shared by a live table and the frozen views snapshots hold."""

    __slots__ = ()
    rows: dict[Hashable, Any]
    indexes: dict[str, dict[Hashable, dict[Hashable, None]]]
    index: int

    def get(self, key: Hashable) -> Any:
        return self.rows.get(key)

    def __len__(self) -> int:
        return len(self.rows)

    def values(self) -> Iterator[Any]:
        return iter(self.rows.values())

    def iter_members(self, index_name: str, key: Hashable) -> Iterator[Any]:
        """Rows whose `index_name` key is `key`, in the order they joined the index."""
        bucket = self.indexes[index_name].get(key)
        if not bucket:
            return iter(())
        rows = self.rows
        return (rows[pk] for pk in bucket)

    def members(self, index_name: str, key: Hashable) -> list[Any]:
        return list(self.iter_members(index_name, key))

    def index_keys(self, index_name: str) -> Iterator[Hashable]:
        return iter(self.indexes[index_name])


class TableView(_Readable):
    """A table as it was when a snapshot was taken; the store never writes to the dicts it holds."""

    __slots__ = ("__weakref__", "index", "indexes", "name", "rows")

    def __init__(self, name: str, rows: dict, indexes: dict, index: int) -> None:
        self.name = name
        self.rows = rows
        self.indexes = indexes
        self.index = index


class Table(_Readable):
    """The store's live table. Writes copy the dicts first if a live snapshot still shares them.

    Only the outer dicts are copied on the first write after a snapshot (O(rows) once, not per write);
    an index bucket (the set of rows under one key) is copied the first time it is changed after that,
    so a write stays O(changed rows) apart from that one copy.
    """

    __slots__ = ("_key_funcs", "_owned", "_view", "index", "indexes", "name", "rows")

    def __init__(self, name: str, **indexes: IndexKey) -> None:
        self.name = name
        self.rows: dict[Hashable, Any] = {}
        self.indexes = {index_name: {} for index_name in indexes}
        self.index = 0
        self._key_funcs = indexes
        # The view handed to the latest snapshot, while no write happened since: reused by later snapshots.
        self._view: weakref.ReferenceType[TableView] | None = None
        # Bucket keys copied since the outer dicts were last copied; None while no snapshot ever shared
        # a bucket, so every bucket is ours to change in place.
        self._owned: dict[str, set[Hashable]] | None = None

    def share(self) -> TableView:
        """A frozen view for a snapshot, in O(1)."""
        view = self._view() if self._view is not None else None
        if view is None:
            view = TableView(self.name, self.rows, self.indexes, self.index)
            self._view = weakref.ref(view)
        return view

    def _prepare_write(self) -> None:
        ref = self._view
        if ref is None:
            return
        self._view = None
        if ref() is None:
            # The snapshot that shared these dicts is gone: nobody else can see them any more.
            return
        self.rows = dict(self.rows)
        self.indexes = {name: dict(buckets) for name, buckets in self.indexes.items()}
        self._owned = {name: set() for name in self.indexes}

    def _bucket(self, index_name: str, key: Hashable) -> dict[Hashable, None]:
        """The bucket for `key`, copied first if a snapshot may still share it."""
        buckets = self.indexes[index_name]
        bucket = buckets.get(key)
        owned = self._owned[index_name] if self._owned is not None else None
        if bucket is None:
            bucket = buckets[key] = {}
        elif owned is not None and key not in owned:
            bucket = buckets[key] = dict(bucket)
        else:
            return bucket
        if owned is not None:
            owned.add(key)
        return bucket

    def _unlink(self, index_name: str, key: Hashable, pk: Hashable) -> None:
        bucket = self._bucket(index_name, key)
        bucket.pop(pk, None)
        if not bucket:
            # Empty buckets are dropped so index_keys() lists only keys that have rows.
            del self.indexes[index_name][key]
            if self._owned is not None:
                self._owned[index_name].discard(key)

    def put(self, pk: Hashable, row: Any) -> Any:
        """Insert or replace the row under `pk`; returns the row it replaced, if any."""
        self._prepare_write()
        old = self.rows.get(pk)
        self.rows[pk] = row
        for index_name, key_of in self._key_funcs.items():
            new_key = key_of(row)
            old_key = key_of(old) if old is not None else None
            if new_key == old_key:
                continue  # same bucket: it holds keys, not rows, so nothing to change
            if old_key is not None:
                self._unlink(index_name, old_key, pk)
            if new_key is not None:
                self._bucket(index_name, new_key)[pk] = None
        return old

    def delete(self, pk: Hashable) -> Any:
        """Remove the row under `pk`; returns it, or None when there was none."""
        if pk not in self.rows:
            return None
        self._prepare_write()
        old = self.rows.pop(pk)
        for index_name, key_of in self._key_funcs.items():
            old_key = key_of(old)
            if old_key is not None:
                self._unlink(index_name, old_key, pk)
        return old

    def bump(self, index: int) -> None:
        """Record that a write at Raft index `index` changed this table."""
        self._prepare_write()
        self.index = max(self.index, index)
