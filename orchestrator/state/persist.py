"""Dump a whole state store to msgpack bytes and load it back: the FSM's Raft snapshot and restore."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import msgpack

from orchestrator.structs import Allocation, Deployment, Evaluation, Job, Node, decode, encode
from orchestrator.structs.codec import replace

from .core import StoreCore, new_tables
from .records import (
    ALLOCS,
    DEPLOYMENTS,
    EVALS,
    JOB_SUMMARY,
    JOB_VERSIONS,
    JOBS,
    NAMESPACES,
    NODES,
    PERIODIC_LAUNCH,
    SCHEDULER_CONFIG,
    Namespace,
    PeriodicLaunch,
    StateError,
)
from .summary import JobSummary
from .tables import Table

FORMAT_VERSION = 1

_HEADERS = msgpack.Packer()
_ARRAY_HEADER = _HEADERS.pack_array_header
_MAP_HEADER = _HEADERS.pack_map_header


def to_plain(obj: Any) -> Any:
    """msgpack's fallback for values it cannot pack: numpy scalars (scores) become Python numbers."""
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


class _JobPool:
    """Jobs are stored once however many rows hold them (the jobs and versions tables, every allocation),
    deduplicated by value, so a restored store shares one object per distinct job as the live one does.

    `packed` is what the previous snapshot packed each job into, by identity (its entries keep their jobs
    alive, so an id is never another job's): stored jobs are never changed in place, so only the jobs
    written since are encoded again. `seen` becomes the next snapshot's `packed`.
    """

    def __init__(self, packed: dict[int, tuple[Job, bytes, bytes]] | None = None) -> None:
        self.encoded: list[bytes] = []
        self.packed_bins: list[bytes] = []  # each of `encoded` packed as a msgpack bin
        self._by_bytes: dict[bytes, int] = {}
        self._by_identity: dict[int, int] = {}
        self._packed = packed or {}
        self.seen: dict[int, tuple[Job, bytes, bytes]] = {}

    def ref(self, job: Job) -> int:
        ref = self._by_identity.get(id(job))  # the store keeps every job alive while it is dumped
        if ref is None:
            entry = self._packed.get(id(job))
            if entry is None or entry[0] is not job:
                encoded = msgpack.packb(encode(job), default=to_plain)
                entry = (job, encoded, msgpack.packb(encoded))
            self.seen[id(job)] = entry
            packed = entry[1]
            ref = self._by_bytes.setdefault(packed, len(self.encoded))
            if ref == len(self.encoded):
                self.encoded.append(packed)
                self.packed_bins.append(entry[2])
            self._by_identity[id(job)] = ref
        return ref


# Per table: a row to plain data (with the job pool at hand) and back (with the decoded jobs).
RowDump = Callable[[Any, _JobPool], Any]
RowLoad = Callable[[Any, list[Job]], Any]


def _dump_alloc(alloc: Allocation, pool: _JobPool) -> list[Any]:
    return [encode(replace(alloc, job=None)), pool.ref(alloc.job) if alloc.job is not None else None]


def _load_alloc(data: list[Any], jobs: list[Job]) -> Allocation:
    fields, ref = data
    alloc = decode(Allocation, fields)
    if ref is not None:
        alloc.job = jobs[ref]
    return alloc


def _struct(cls: type) -> tuple[RowDump, RowLoad]:
    return (lambda row, _pool: encode(row)), (lambda data, _jobs: decode(cls, data))


_CODECS: dict[str, tuple[RowDump, RowLoad]] = {
    JOBS: (lambda job, pool: pool.ref(job), lambda ref, jobs: jobs[ref]),
    JOB_VERSIONS: (lambda job, pool: pool.ref(job), lambda ref, jobs: jobs[ref]),
    ALLOCS: (_dump_alloc, _load_alloc),
    NODES: _struct(Node),
    EVALS: _struct(Evaluation),
    DEPLOYMENTS: _struct(Deployment),
    PERIODIC_LAUNCH: _struct(PeriodicLaunch),
    NAMESPACES: _struct(Namespace),
    JOB_SUMMARY: _struct(JobSummary),
    SCHEDULER_CONFIG: (lambda row, _pool: row, lambda data, _jobs: dict(data)),
}


def _codec(table: str) -> tuple[RowDump, RowLoad]:
    codec = _CODECS.get(table)
    if codec is None:
        raise StateError(f"no snapshot codec for table {table!r}")
    return codec


def _key(data: Any) -> Hashable:
    """Primary keys are strings or tuples; msgpack brings tuples back as lists."""
    return tuple(data) if isinstance(data, list) else data


# Tables whose rows are packed once and reused by later snapshots while the same object is stored, with
# what else must still be equal. The store never changes a stored row in place (a write changes a private
# copy, then stores it), with one known exception: the generic scheduler sets `blocked_eval` on the
# evaluation it processes, which on the leader is the stored object, so an evaluation is packed again
# when that field no longer matches.
_REUSED_ROWS: dict[str, Callable[[Any], Any]] = {
    JOB_SUMMARY: lambda _row: None,
    EVALS: lambda evaluation: evaluation.blocked_eval,
}


# A reused row: (the row, its primary key, what its table's check gave, its packed `[pk, data]`).
_Packed = tuple[Any, Hashable, Any, bytes]


class _Dump:
    """One snapshot being packed: the pieces of its bytes, in order, joined once at the end."""

    def __init__(self, store: StoreCore) -> None:
        # One Packer for the whole dump: msgpack.packb builds a new one per call, which costs more than
        # packing a small row.
        self.pack = msgpack.Packer(default=to_plain).pack
        self.pool = _JobPool(store._dumped_jobs)
        self.packed: dict[int, _Packed] = store._dumped_rows
        self.seen: dict[int, _Packed] = {}

    def rows(self, table: Table, out: list[bytes]) -> None:
        """The table's "Rows", each row `[pk, data]` packed on its own: the same bytes as the whole list."""
        dump_row, _ = _codec(table.name)
        pack, pool = self.pack, self.pool
        out.append(_ARRAY_HEADER(len(table.rows)))
        check = _REUSED_ROWS.get(table.name)
        if check is None:
            out.extend(pack([pk, dump_row(row, pool)]) for pk, row in table.rows.items())
            return
        packed, seen = self.packed, self.seen
        for pk, row in table.rows.items():
            entry = packed.get(id(row))
            if entry is None or entry[0] is not row or entry[1] != pk or entry[2] != check(row):
                entry = (row, pk, check(row), pack([pk, dump_row(row, pool)]))
            seen[id(row)] = entry
            out.append(entry[3])

    def table(self, table: Table, out: list[bytes]) -> None:
        """{"Index", "Rows", "Indexes"} of one table."""
        position = {pk: i for i, pk in enumerate(table.rows)}
        # Index buckets keep the order rows joined them (readers list allocations in that order), which the
        # primary order does not give back: each bucket is dumped as the positions of its rows.
        indexes = {name: [[position[pk] for pk in bucket] for bucket in buckets.values()]
                   for name, buckets in table.indexes.items()}
        out += [_MAP_HEADER(3), self.pack("Index"), self.pack(table.index), self.pack("Rows")]
        self.rows(table, out)
        out += [self.pack("Indexes"), self.pack(indexes)]


def dump_store(store: StoreCore) -> bytes:
    """Every table of `store` (rows in order, secondary index order, the table's Raft index) as bytes.

    The bytes are those of msgpack.packb({"Version", "Jobs", "Tables": {name: {"Index", "Rows",
    "Indexes"}}}), assembled from pieces so that what an earlier snapshot packed (jobs, evaluations,
    summaries) is reused: a snapshot is taken every few thousand commands and the store only grows.
    """
    dump = _Dump(store)
    tables: list[bytes] = [_MAP_HEADER(len(store._tables))]
    for name, table in store._tables.items():
        tables.append(dump.pack(name))
        dump.table(table, tables)
    jobs = dump.pool.packed_bins  # complete only now: the tables above referenced every job
    head = [_MAP_HEADER(3), dump.pack("Version"), dump.pack(FORMAT_VERSION), dump.pack("Jobs"),
            _ARRAY_HEADER(len(jobs))]
    data = b"".join((*head, *jobs, dump.pack("Tables"), *tables))
    store._dumped_jobs, store._dumped_rows = dump.pool.seen, dump.seen
    return data


def _load_table(table: Table, data: dict[str, Any], jobs: list[Job]) -> None:
    _, load_row = _codec(table.name)
    rows = [(_key(pk), load_row(row, jobs)) for pk, row in data["Rows"]]
    indexes = data.get("Indexes") or {}
    if set(indexes) != set(table.indexes):
        for pk, row in rows:  # written by other code with other indexes: build them afresh
            table.put(pk, row)
    else:
        table.rows = dict(rows)
        for name, key_of in table._key_funcs.items():
            buckets: dict[Hashable, dict[Hashable, None]] = {}
            for positions in indexes[name]:
                buckets[key_of(rows[positions[0]][1])] = {rows[i][0]: None for i in positions}
            table.indexes[name] = buckets
    table.index = data["Index"]


def load_store(store: StoreCore, data: bytes) -> None:
    """Replace every table of `store` with those dumped in `data`, then tell each listener that every
    table changed, at the restored latest index. Listeners and settings stay; snapshots taken before keep
    seeing the old tables. Nothing changes if `data` cannot be decoded."""
    try:
        dumped = msgpack.unpackb(data, strict_map_key=False)
        if dumped.get("Version") != FORMAT_VERSION:
            raise StateError(f"unsupported snapshot format {dumped.get('Version')!r}")
        jobs = [decode(Job, msgpack.unpackb(packed)) for packed in dumped["Jobs"]]
        tables = new_tables()
        for name, table_data in dumped["Tables"].items():
            if name not in tables:
                raise StateError(f"snapshot has unknown table {name!r}")
            _load_table(tables[name], table_data, jobs)
    except StateError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise StateError(f"corrupt state snapshot: {err}") from err
    store._tables = tables
    index = store.latest_index()
    names = frozenset(tables)
    for callback in list(store._listeners):
        callback(names, index)
