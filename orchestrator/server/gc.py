"""Nomad's core scheduler garbage collection, sans-IO: which old terminal evals, allocs, jobs, nodes to purge."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from orchestrator.state import JOB_STATUS_DEAD, StateReader
from orchestrator.structs import Allocation, Evaluation, Job
from orchestrator.structs.alloc import CLIENT_FAILED, CLIENT_RUNNING, DESIRED_STOP
from orchestrator.structs.node import NODE_STATUS_DOWN

HOUR = 3600.0
GC_INTERVAL = 300.0  # Nomad runs each of its GC core jobs every 5 minutes

JobKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class GCThresholds:
    """How long (seconds) an object must have been terminal before it is collected (Nomad's defaults)."""

    eval_gc_threshold: float = 1 * HOUR
    job_gc_threshold: float = 4 * HOUR
    node_gc_threshold: float = 24 * HOUR
    deployment_gc_threshold: float = 1 * HOUR
    batch_eval_gc_threshold: float = 24 * HOUR


@dataclass(slots=True)
class GCActions:
    """What to delete, in one or more Raft writes: evals and allocs together (`delete_evals`), each job
    (`delete_job`, a purge), each node (`delete_node`), the deployments (`delete_deployments`)."""

    eval_ids: list[str] = field(default_factory=list)
    alloc_ids: list[str] = field(default_factory=list)
    job_keys: list[JobKey] = field(default_factory=list)
    node_ids: list[str] = field(default_factory=list)
    deployment_ids: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.eval_ids or self.alloc_ids or self.job_keys or self.node_ids or self.deployment_ids)


class TimeTable:
    """Raft index <-> wall time, coarse (Nomad's TimeTable): objects that carry only a modify index
    (jobs, deployments) are judged old when that index was applied before the threshold.

    The leader witnesses `(latest index, now)` as it goes; `seed_from(state)` rebuilds an approximation
    on gaining leadership from the (index, time) pairs evaluations and allocations carry.
    """

    def __init__(self, granularity: float = 300.0, limit: float = 72 * HOUR) -> None:
        self.granularity = granularity
        self.limit = limit
        self._indexes: list[int] = []
        self._times: list[float] = []

    def witness(self, index: int, when: float) -> None:
        if self._times and (when - self._times[-1] < self.granularity or index <= self._indexes[-1]):
            return
        self._indexes.append(index)
        self._times.append(when)
        if when - self._times[0] > self.limit:
            cut = bisect.bisect_left(self._times, when - self.limit)
            del self._indexes[:cut], self._times[:cut]

    def nearest_index(self, when: float) -> int:
        """The highest index known to have been applied at or before `when`; 0 if none."""
        position = bisect.bisect_right(self._times, when)
        return self._indexes[position - 1] if position else 0

    def seed_from(self, state: StateReader) -> None:
        pairs = sorted({(e.modify_index, e.modify_time / 1e9) for e in state.evals() if e.modify_time}
                       | {(a.modify_index, a.modify_time / 1e9) for a in state.allocs() if a.modify_time})
        latest_time = float("-inf")
        for index, when in pairs:
            # Keep the mapping monotonic: a later index never maps to an earlier time.
            latest_time = max(latest_time, when)
            self.witness(index, latest_time)


def _ns_to_s(value: int) -> float:
    return value / 1e9


def _node_down_since(value: int) -> float:
    """`status_updated_at` is unix seconds in Nomad; accept nanoseconds too (anything past year 5000)."""
    return value / 1e9 if value > 100_000_000_000 else float(value)


class _Collector:
    """One GC pass over a state snapshot."""

    def __init__(self, state: StateReader, now: float, thresholds: GCThresholds, force: bool,
                 timetable: TimeTable | None) -> None:
        self.state = state
        self.now = now
        self.force = force
        self.timetable = timetable
        self.thresholds = thresholds
        self.actions = GCActions()
        self._evals: dict[str, None] = {}
        self._allocs: dict[str, None] = {}

    def cutoff(self, threshold: float) -> float:
        return float("inf") if self.force else self.now - threshold

    def old(self, when: float, index: int, cutoff: float) -> bool:
        """Terminal since before `cutoff`: by the object's own time, else by its index in the timetable."""
        if self.force:
            return True
        if when > 0:
            return when <= cutoff
        return self.timetable is not None and index <= self.timetable.nearest_index(cutoff)

    # -- allocations and evaluations -----------------------------------------------------------------

    def alloc_eligible(self, alloc: Allocation, job: Job | None, cutoff: float) -> bool:
        """Nomad's allocGCEligible: terminal, old, not running, and not needed for a reschedule."""
        when = _ns_to_s(alloc.modify_time or alloc.create_time)
        if not alloc.terminal() or not self.old(when, alloc.modify_index, cutoff):
            return False
        if alloc.client_status == CLIENT_RUNNING:
            return False  # the client still runs it
        if job is None or job.stop or job.status == JOB_STATUS_DEAD:
            return True
        if alloc.desired_status == DESIRED_STOP or alloc.client_status != CLIENT_FAILED:
            return True
        group = job.group(alloc.task_group)
        policy = group.reschedule_policy if group is not None else None
        if policy is None or (not policy.unlimited and policy.attempts == 0):
            return True
        if alloc.next_allocation:
            return True  # its reschedule history has moved to the replacement
        if policy.unlimited:
            return False
        events = alloc.reschedule_tracker.events if alloc.reschedule_tracker else []
        if not events:
            return False
        return round(self.now * 1e9) - events[-1].reschedule_time > policy.interval

    def eval_collectable(self, evaluation: Evaluation, cutoff: float, allow_batch: bool) -> tuple[bool, list[str]]:
        """Nomad's gcEval: whether the evaluation can go, and which of its allocations can."""
        when = _ns_to_s(evaluation.modify_time or evaluation.create_time)
        if not evaluation.terminal() or not self.old(when, evaluation.modify_index, cutoff):
            return False, []
        state = self.state
        job = state.job_by_id(evaluation.namespace, evaluation.job_id) if evaluation.job_id else None
        allocs = state.allocs_by_eval(evaluation.id)
        if evaluation.type == "batch":
            # A live batch job's finished allocations are its record of work done: collecting them
            # would make the scheduler run them again. Only those of an older registration may go.
            dead = job is None or (job.status == JOB_STATUS_DEAD and (job.stop or allow_batch))
            if not dead:
                older = [a.id for a in allocs
                         if job is not None and a.job is not None and a.job.create_index < job.create_index
                         and a.terminal() and self.old(_ns_to_s(a.modify_time), a.modify_index, cutoff)]
                return len(older) == len(allocs), older
        eligible = [a.id for a in allocs if self.alloc_eligible(a, job, cutoff)]
        return len(eligible) == len(allocs), eligible

    # -- the passes ----------------------------------------------------------------------------------

    def jobs(self) -> None:
        """Dead jobs whose evaluations and allocations can all go are purged with them."""
        cutoff = self.cutoff(self.thresholds.job_gc_threshold)
        state = self.state
        for job in state.jobs(None):
            gcable = job.stop if (job.is_periodic() or job.is_parameterized()) else job.status == JOB_STATUS_DEAD
            if not gcable:
                continue
            evals = state.evals_by_job(job.namespace, job.id)
            allocs = state.allocs_by_job(job.namespace, job.id)
            last = max([job.submit_time, *(e.modify_time for e in evals), *(a.modify_time for a in allocs)])
            if not self.old(_ns_to_s(last), job.modify_index, cutoff):
                continue
            eval_ids: list[str] = []
            collectable = True
            for evaluation in evals:
                ok, _ = self.eval_collectable(evaluation, cutoff, allow_batch=True)
                if not ok:
                    collectable = False
                    break
                eval_ids.append(evaluation.id)
            if not collectable or not all(self.alloc_eligible(a, job, cutoff) for a in allocs):
                continue
            self.actions.job_keys.append((job.namespace, job.id))
            self._evals.update(dict.fromkeys(eval_ids))
            self._allocs.update(dict.fromkeys(a.id for a in allocs))

    def evals(self) -> None:
        eval_cutoff = self.cutoff(self.thresholds.eval_gc_threshold)
        batch_cutoff = self.cutoff(self.thresholds.batch_eval_gc_threshold)
        for evaluation in self.state.evals():
            if evaluation.id in self._evals:
                continue
            cutoff = batch_cutoff if evaluation.type == "batch" else eval_cutoff
            ok, alloc_ids = self.eval_collectable(evaluation, cutoff, allow_batch=False)
            if ok:
                self._evals[evaluation.id] = None
            self._allocs.update(dict.fromkeys(alloc_ids))

    def nodes(self) -> None:
        """Down nodes with nothing left running on them."""
        cutoff = self.cutoff(self.thresholds.node_gc_threshold)
        for node in self.state.nodes():
            if node.status != NODE_STATUS_DOWN:
                continue
            if not self.old(_node_down_since(node.status_updated_at), node.modify_index, cutoff):
                continue
            # Non-terminal allocations mean the scheduler has not yet marked them lost: wait for it.
            if all(a.terminal() for a in self.state.allocs_by_node(node.id)):
                self.actions.node_ids.append(node.id)

    def deployments(self) -> None:
        """Finished deployments none of whose allocations must be kept."""
        cutoff = self.cutoff(self.thresholds.deployment_gc_threshold)
        for deployment in self.state.deployments():
            if deployment.active():
                continue
            allocs = self.state.allocs_by_deployment(deployment.id)
            if self.timetable is not None:
                old = self.old(0, deployment.modify_index, cutoff)
            else:
                old = self.old(_ns_to_s(max((a.modify_time for a in allocs), default=0)),
                               deployment.modify_index, cutoff)
            if old and all(self.alloc_eligible(a, None, cutoff) for a in allocs):
                self.actions.deployment_ids.append(deployment.id)

    def run(self) -> GCActions:
        self.jobs()
        self.evals()
        self.nodes()
        self.deployments()
        self.actions.eval_ids = list(self._evals)
        self.actions.alloc_ids = list(self._allocs)
        return self.actions


def collect(state: StateReader, now: float, thresholds: GCThresholds | None = None, force: bool = False,
            timetable: TimeTable | None = None) -> GCActions:
    """Everything garbage collection may delete now (Nomad's core scheduler: job, eval, node and
    deployment GC in one pass). `force` (`nomad system gc`) ignores the thresholds, not the rules:
    running allocations and live jobs are never collected.

    Times come from the objects (evaluation and allocation modify times, a node's status update time,
    a job's latest activity); objects without one are judged by their modify index through `timetable`,
    and are kept when there is none.
    """
    return _Collector(state, now, thresholds or GCThresholds(), force, timetable).run()
