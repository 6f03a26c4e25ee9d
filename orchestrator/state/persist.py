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

    def __init__(self, packed: dict[int, tuple[Job, bytes]] | None = None) -> None:
        self.encoded: list[bytes] = []
        self._by_bytes: dict[bytes, int] = {}
        self._by_identity: dict[int, int] = {}
        self._packed = packed or {}
        self.seen: dict[int, tuple[Job, bytes]] = {}

    def ref(self, job: Job) -> int:
        ref = self._by_identity.get(id(job))  # the store keeps every job alive while it is dumped
        if ref is None:
            entry = self._packed.get(id(job))
            if entry is None or entry[0] is not job:
                entry = (job, msgpack.packb(encode(job), default=to_plain))
            self.seen[id(job)] = entry
            packed = entry[1]
            ref = self._by_bytes.setdefault(packed, len(self.encoded))
            if ref == len(self.encoded):
                self.encoded.append(packed)
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


def _dump_table(table: Table, pool: _JobPool) -> dict[str, Any]:
    dump_row, _ = _codec(table.name)
    position = {pk: i for i, pk in enumerate(table.rows)}
    # Index buckets keep the order rows joined them (readers list allocations in that order), which the
    # primary order does not give back: each bucket is dumped as the positions of its rows.
    indexes = {name: [[position[pk] for pk in bucket] for bucket in buckets.values()]
               for name, buckets in table.indexes.items()}
    return {"Index": table.index, "Rows": [[pk, dump_row(row, pool)] for pk, row in table.rows.items()],
            "Indexes": indexes}


def dump_store(store: StoreCore) -> bytes:
    """Every table of `store` (rows in order, secondary index order, the table's Raft index) as bytes."""
    pool = _JobPool(store._dumped_jobs)
    tables = {name: _dump_table(table, pool) for name, table in store._tables.items()}
    data = msgpack.packb({"Version": FORMAT_VERSION, "Jobs": pool.encoded, "Tables": tables}, default=to_plain)
    store._dumped_jobs = pool.seen
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
