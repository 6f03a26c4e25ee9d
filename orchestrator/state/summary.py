"""Job summaries (`/v1/job/:id/summary`): allocation counts per task group and child job counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.structs import Job
from orchestrator.structs.codec import api_field, replace

from .records import JOB_STATUS_DEAD, JOB_STATUS_PENDING, JOB_STATUS_RUNNING


@dataclass(slots=True)
class TaskGroupSummary:
    queued: int = 0
    complete: int = 0
    failed: int = 0
    running: int = 0
    starting: int = 0
    lost: int = 0


@dataclass(slots=True)
class JobChildrenSummary:
    """How many dispatched or periodic children of a parent job are pending, running or dead."""

    pending: int = 0
    running: int = 0
    dead: int = 0


@dataclass(slots=True)
class JobSummary:
    job_id: str = api_field("JobID", default="")
    namespace: str = "default"
    summary: dict[str, TaskGroupSummary] = field(default_factory=dict)
    children: JobChildrenSummary = field(default_factory=JobChildrenSummary)
    create_index: int = 0
    modify_index: int = 0

    def copy(self) -> JobSummary:
        """A deep copy a write may change freely before storing it."""
        return replace(self, summary={name: replace(tg) for name, tg in self.summary.items()},
                       children=replace(self.children))


# The summary bin each client status counts in; "unknown" and anything newer count nowhere.
_CLIENT_STATUS_BIN = {"pending": "starting", "running": "running", "complete": "complete",
                      "failed": "failed", "lost": "lost"}


def new_summary(job: Job, index: int) -> JobSummary:
    return JobSummary(job_id=job.id, namespace=job.namespace,
                      summary={tg.name: TaskGroupSummary() for tg in job.task_groups},
                      create_index=index, modify_index=index)


def add_task_groups(summary: JobSummary, job: Job) -> None:
    """Start counting a job's new task groups; counts of removed groups stay, as in Nomad."""
    for tg in job.task_groups:
        summary.summary.setdefault(tg.name, TaskGroupSummary())


def count_alloc_transition(summary: JobSummary, task_group: str, old_status: str | None,
                           new_status: str) -> None:
    """Move one allocation between bins; `old_status` None means the allocation is new.

    A new allocation takes one from Queued: the scheduler counted it as queued until it was placed.
    """
    tg = summary.summary.get(task_group)
    if tg is None:
        tg = summary.summary[task_group] = TaskGroupSummary()
    if old_status is None:
        if tg.queued > 0:
            tg.queued -= 1
    elif old_status == new_status:
        return
    else:
        old_bin = _CLIENT_STATUS_BIN.get(old_status)
        if old_bin is not None:
            setattr(tg, old_bin, max(0, getattr(tg, old_bin) - 1))
    new_bin = _CLIENT_STATUS_BIN.get(new_status)
    if new_bin is not None:
        setattr(tg, new_bin, getattr(tg, new_bin) + 1)


_CHILD_STATUS_FIELD = {JOB_STATUS_PENDING: "pending", JOB_STATUS_RUNNING: "running", JOB_STATUS_DEAD: "dead"}


def count_child_transition(summary: JobSummary, old_status: str | None, new_status: str | None) -> None:
    """A child job appeared (old None), changed status, or was purged (new None)."""
    children = summary.children
    old_field = _CHILD_STATUS_FIELD.get(old_status or "")
    new_field = _CHILD_STATUS_FIELD.get(new_status or "")
    if old_field is not None:
        setattr(children, old_field, max(0, getattr(children, old_field) - 1))
    if new_field is not None:
        setattr(children, new_field, getattr(children, new_field) + 1)
