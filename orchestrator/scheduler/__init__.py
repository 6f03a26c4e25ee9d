"""Schedulers: pure placement logic behind a read-only State and a Planner, registered by job type."""

from __future__ import annotations

from .generic import GenericScheduler
from .ports import Planner, Rng, State
from .rank import SchedulerConfig
from .system import SystemScheduler

SCHEDULER_TYPES = ("service", "batch", "system", "sysbatch")


def new_scheduler(job_type: str, state: State, planner: Planner, *, now_ns: int, rng: Rng,
                  config: SchedulerConfig | None = None) -> GenericScheduler | SystemScheduler:
    """The scheduler for a job type, as Nomad's BuiltinSchedulers registry."""
    if job_type in ("service", "batch"):
        return GenericScheduler(state, planner, batch=job_type == "batch", now_ns=now_ns, rng=rng, config=config)
    if job_type in ("system", "sysbatch"):
        return SystemScheduler(state, planner, sysbatch=job_type == "sysbatch", now_ns=now_ns, rng=rng,
                               config=config)
    raise ValueError(f"unknown scheduler type {job_type!r}")


__all__ = ["SCHEDULER_TYPES", "GenericScheduler", "Planner", "SchedulerConfig", "State", "SystemScheduler",
           "new_scheduler"]
