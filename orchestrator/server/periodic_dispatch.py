"""Nomad's periodic dispatcher, sans-IO: which periodic jobs launch a child when, from a heap of next launches."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from orchestrator.scheduler.cron import CronError
from orchestrator.scheduler.periodic import PeriodicLaunch, next_launch
from orchestrator.state import StateReader
from orchestrator.structs import Job

from .leadership import LeaderOnly

JobKey = tuple[str, str]
RunningChildren = Callable[[str, str], bool]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ns_to_datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def datetime_to_ns(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1) * 1000


def is_periodic_active(job: Job) -> bool:
    """Nomad's IsPeriodicActive: periodic and enabled, not stopped, not a parameterized template."""
    return job.is_periodic() and not job.stop and not job.is_parameterized()


def next_launch_ns(job: Job, after_ns: int) -> int | None:
    """The job's first launch strictly after `after_ns` (unix ns) in its time zone; None if it never
    launches again or its spec cannot be used."""
    periodic = job.periodic
    if periodic is None or periodic.spec_type not in ("", "cron"):
        return None
    try:
        launch = next_launch(periodic.spec, ns_to_datetime(after_ns), periodic.time_zone or "UTC")
    except (CronError, ValueError):
        return None
    return datetime_to_ns(launch) if launch is not None else None


def child_job_id(parent_id: str, launch_ns: int) -> str:
    """`<parent>/periodic-<unix seconds>`, Nomad's derivedJobID."""
    return PeriodicLaunch(parent_id, ns_to_datetime(launch_ns)).child_id


def derive_child(job: Job, launch_ns: int) -> Job:
    """The child job a launch registers (Nomad's deriveJob): the parent's spec under the child ID,
    without the periodic block, as a new job (no status, version or indexes)."""
    child_id = child_job_id(job.id, launch_ns)
    return replace(job, id=child_id, name=child_id, parent_id=job.id, periodic=None, status="",
                   status_description="", version=0, stable=False, create_index=0, modify_index=0,
                   job_modify_index=0, submit_time=0)


def running_children(state: StateReader) -> RunningChildren:
    """Nomad's RunningChildren check for `prohibit_overlap`: a child with a live evaluation or a
    non-terminal allocation is still running."""
    def check(namespace: str, job_id: str) -> bool:
        for child in state.jobs_by_parent(namespace, job_id):
            for evaluation in state.evals_by_job(child.namespace, child.id):
                if not evaluation.terminal():
                    return True
            if any(not a.terminal() for a in state.allocs_by_job(child.namespace, child.id)):
                return True
        return False
    return check


@dataclass(slots=True)
class _Tracked:
    job: Job
    next_ns: int | None
    generation: int


class PeriodicDispatcher(LeaderOnly):
    """Tracks active periodic jobs and says when each launches (`due`), once per launch.

    Leader-only: rebuilt by `restore_from(state, now)` on gaining leadership. The caller turns each
    `(job, launch_ns)` into a child job registration (`derive_child`) plus a periodic launch record
    in the same Raft round, as Nomad's leader does.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self._enabled = enabled
        self._tracked: dict[JobKey, _Tracked] = {}
        self._heap: list[tuple[int, int, JobKey, int]] = []
        self._seq = 0

    def flush(self) -> None:
        self._tracked.clear()
        self._heap.clear()

    # -- tracking ------------------------------------------------------------------------------------

    def add(self, job: Job, now: float) -> bool:
        """Track (or update) a periodic job; an inactive one is removed. Returns whether it is tracked.

        An update that keeps the spec and time zone keeps the pending launch, so re-registering a job
        at the moment it is due does not skip that launch.
        """
        key = (job.namespace, job.id)
        if not self._enabled or not is_periodic_active(job):
            self.remove(*key)
            return False
        existing = self._tracked.get(key)
        if existing is not None and existing.job.periodic == job.periodic:
            existing.job = job
            return existing.next_ns is not None
        next_ns = next_launch_ns(job, _ns(now))
        if next_ns is None:
            self.remove(*key)
            return False
        self._schedule(key, job, next_ns)
        return True

    def remove(self, namespace: str, job_id: str) -> None:
        self._tracked.pop((namespace, job_id), None)

    def _schedule(self, key: JobKey, job: Job, next_ns: int) -> None:
        self._seq += 1
        self._tracked[key] = _Tracked(job, next_ns, self._seq)
        heapq.heappush(self._heap, (next_ns, self._seq, key, self._seq))

    def tracked(self) -> list[Job]:
        return [t.job for _, t in sorted(self._tracked.items())]

    def next_launch(self, namespace: str, job_id: str) -> int | None:
        """When the job launches next (unix ns), or None when it is not tracked."""
        entry = self._tracked.get((namespace, job_id))
        return entry.next_ns if entry is not None else None

    # -- launching -----------------------------------------------------------------------------------

    def due(self, now: float, has_running_children: RunningChildren | None = None) -> list[tuple[Job, int]]:
        """Launches whose time has come: (job, launch time in unix ns), each returned once.

        With `prohibit_overlap`, a launch is skipped while `has_running_children(namespace, job_id)`.
        Launches missed by more than one period (a late tick) collapse into one.
        """
        now_ns = _ns(now)
        launches: list[tuple[Job, int]] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ns:
            launch_ns, _, key, generation = heapq.heappop(heap)
            entry = self._tracked.get(key)
            if entry is None or entry.generation != generation:
                continue  # removed or rescheduled since
            job = entry.job
            following = next_launch_ns(job, max(launch_ns, now_ns))
            if following is None:
                del self._tracked[key]
            else:
                self._schedule(key, job, following)
            if job.periodic is not None and job.periodic.prohibit_overlap and has_running_children is not None \
                    and has_running_children(job.namespace, job.id):
                continue
            launches.append((job, launch_ns))
        return launches

    def force(self, namespace: str, job_id: str, now: float) -> tuple[Job, int] | None:
        """`nomad job periodic force`: launch now, whatever the schedule (and overlap) says; None if
        the job is not tracked. The schedule of later launches is unchanged."""
        entry = self._tracked.get((namespace, job_id))
        if entry is None:
            return None
        return entry.job, _ns(now)

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            entry = self._tracked.get(heap[0][2])
            if entry is not None and entry.generation == heap[0][3]:
                return heap[0][0] / 1e9
            heapq.heappop(heap)
        return None

    # -- leadership ----------------------------------------------------------------------------------

    def restore_from(self, state: StateReader, now: float) -> int:
        """Track every active periodic job of the store (Nomad's restorePeriodicDispatcher).

        A job whose launch after its last recorded one (`state.periodic_launch`) is already past
        missed it while there was no leader: exactly one catch-up launch, at `now`, is made due, so the
        next `due(now)` returns it. Launches already recorded are never repeated. Returns how many
        catch-up launches were scheduled.
        """
        self.flush()
        now_ns = _ns(now)
        missed = 0
        for job in sorted(state.periodic_jobs(), key=lambda j: (j.namespace, j.id)):
            if not self.add(job, now):
                continue
            record = state.periodic_launch(job.namespace, job.id)
            if record is None:
                continue
            expected = next_launch_ns(job, record.launch)
            if expected is not None and expected < now_ns:
                self._schedule((job.namespace, job.id), job, now_ns)
                missed += 1
        return missed


def _ns(now: float) -> int:
    return round(now * 1e9)
