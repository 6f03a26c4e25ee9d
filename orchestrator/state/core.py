"""The store's write machinery: tables and their indexes, one write transaction, commit and listeners."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.structs import Allocation, Deployment, Evaluation, Job
from orchestrator.structs.codec import replace
from orchestrator.structs.evaluation import EVAL_BLOCKED

from .reader import StateReader
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
)
from .snapshot import StateSnapshot
from .summary import JobSummary
from .tables import Table

Listener = Callable[[frozenset[str], int], None]
JobKey = tuple[str, str]


# Index key functions; None keeps a row out of that index.
def _job_parent(job: Job) -> JobKey | None:
    return (job.namespace, job.parent_id) if job.parent_id else None


def _job_periodic(job: Job) -> bool | None:
    return True if job.is_periodic() else None


def _alloc_node(alloc: Allocation) -> str | None:
    return alloc.node_id or None


def _alloc_eval(alloc: Allocation) -> str | None:
    return alloc.eval_id or None


def _alloc_deployment(alloc: Allocation) -> str | None:
    return alloc.deployment_id or None


def _by_job(obj: Allocation | Evaluation | Deployment | Job) -> JobKey | None:
    job_id = obj.id if isinstance(obj, Job) else obj.job_id
    return (obj.namespace, job_id) if job_id else None


def _eval_blocked(evaluation: Evaluation) -> bool | None:
    return True if evaluation.status == EVAL_BLOCKED else None


def new_tables() -> dict[str, Table]:
    return {
        JOBS: Table(JOBS, namespace=lambda j: j.namespace, parent=_job_parent, periodic=_job_periodic,
                    type=lambda j: j.type),
        JOB_VERSIONS: Table(JOB_VERSIONS, job=_by_job),
        NODES: Table(NODES),
        ALLOCS: Table(ALLOCS, node=_alloc_node, job=_by_job, eval=_alloc_eval, deployment=_alloc_deployment),
        EVALS: Table(EVALS, job=_by_job, blocked=_eval_blocked),
        DEPLOYMENTS: Table(DEPLOYMENTS, job=_by_job),
        PERIODIC_LAUNCH: Table(PERIODIC_LAUNCH),
        NAMESPACES: Table(NAMESPACES),
        JOB_SUMMARY: Table(JOB_SUMMARY),
        SCHEDULER_CONFIG: Table(SCHEDULER_CONFIG),  # one row: the operator's scheduler configuration
    }


def private_deployment(deployment: Deployment, **changes: Any) -> Deployment:
    """A copy deep enough that a write may change its task group counts in place."""
    groups = {name: replace(s, placed_canaries=list(s.placed_canaries))
              for name, s in deployment.task_groups.items()}
    return replace(deployment, task_groups=groups, **changes)


@dataclass(slots=True)
class Write:
    """What one write has changed so far; committed as a whole, with one listener call."""

    index: int
    touched: set[str] = field(default_factory=set)
    # Summaries and deployments change once per allocation, so a write works on private copies
    # (original, copy) and stores each copy once at commit, only if it differs from the original.
    summaries: dict[JobKey, tuple[JobSummary | None, JobSummary]] = field(default_factory=dict)
    deployments: dict[str, tuple[Deployment | None, Deployment]] = field(default_factory=dict)
    # Jobs whose status may follow from this write's allocations or evaluations.
    job_checks: dict[JobKey, None] = field(default_factory=dict)
    # Garbage collection removed evaluations: a job with nothing left running is dead, not pending.
    eval_delete: bool = False


class WriteBlock:
    """`with` block of one write: gives the Write, and commits it when the block ends without an exception.

    A class rather than a generator-based context manager: every command enters several of these (one per
    store write, inside the command's batch), and a generator costs several times more to enter and leave.
    """

    __slots__ = ("store", "w")

    def __init__(self, store: StoreCore | None, w: Write) -> None:
        self.store = store  # None: the write joins an open batch, which commits it
        self.w = w

    def __enter__(self) -> Write:
        return self.w

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None and self.store is not None:
            self.store._commit(self.w)


class StoreCore(StateReader):
    __slots__ = ("_dumped_jobs", "_dumped_rows", "_listeners", "_tables", "job_versions_limit")

    def __init__(self, job_versions_limit: int = 6) -> None:
        self._tables = new_tables()
        self._listeners: list[Listener] = []
        self.job_versions_limit = job_versions_limit
        # What the last Raft snapshot packed each stored job (and evaluation, summary) into, by identity, for
        # persist.dump_store: stored objects are never changed in place, so the next snapshot packs only
        # those written since.
        self._dumped_jobs: dict[int, tuple[Job, bytes, bytes]] = {}
        self._dumped_rows: dict[int, tuple[Any, Hashable, Any, bytes]] = {}

    # -- snapshots and listeners ---------------------------------------------------------------------

    def snapshot(self) -> StateSnapshot:
        """A read-only picture of the store now, in O(number of tables)."""
        return StateSnapshot({name: table.share() for name, table in self._tables.items()})

    def add_listener(self, callback: Listener) -> None:
        """Call `callback(tables, index)` after every write, with the names of the tables it changed."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        self._listeners.remove(callback)

    # -- the write transaction -----------------------------------------------------------------------

    def _writing(self, index: int) -> WriteBlock:
        """Collect one write's changes, then commit them. Writes check their input before changing
        anything, so an exception leaves the store as it was (and tells no listener)."""
        return WriteBlock(self, Write(index))

    def _commit(self, w: Write) -> None:
        self._refresh_job_statuses(w)  # may change parents' children counts: before summaries are stored
        for key, (original, work) in w.summaries.items():
            if original is None or work != original:
                work.modify_index = w.index  # still private to this write, so changed in place
                self._put(w, JOB_SUMMARY, key, work)
        for deployment_id, (original, work) in w.deployments.items():
            if original is None or work != original:
                work.modify_index = w.index
                self._put(w, DEPLOYMENTS, deployment_id, work)
        if not w.touched:
            return
        for name in w.touched:
            self._tables[name].bump(w.index)
        tables = frozenset(w.touched)
        for callback in list(self._listeners):
            callback(tables, w.index)

    def _refresh_job_statuses(self, w: Write) -> None:
        raise NotImplementedError  # provided by JobWrites

    def _put(self, w: Write, table: str, pk: Hashable, row: Any) -> Any:
        w.touched.add(table)
        return self._tables[table].put(pk, row)

    def _delete(self, w: Write, table: str, pk: Hashable) -> Any:
        old = self._tables[table].delete(pk)
        if old is not None:
            w.touched.add(table)
        return old

    def _summary_for_update(self, w: Write, key: JobKey) -> JobSummary | None:
        """This write's private copy of a job's summary, or None when the job has none."""
        entry = w.summaries.get(key)
        if entry is not None:
            return entry[1]
        stored = self._tables[JOB_SUMMARY].get(key)
        if stored is None:
            return None
        work = stored.copy()
        w.summaries[key] = (stored, work)
        return work

    def _deployment_for_update(self, w: Write, deployment_id: str) -> Deployment | None:
        """This write's private copy of a deployment (its task group states copied too)."""
        entry = w.deployments.get(deployment_id)
        if entry is not None:
            return entry[1]
        stored = self._tables[DEPLOYMENTS].get(deployment_id)
        if stored is None:
            return None
        work = private_deployment(stored)
        w.deployments[deployment_id] = (stored, work)
        return work

