"""Schedulers: pure placement logic behind a read-only State and a Planner, registered by job type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import SchedulerConfig
from .ports import Planner, Rng, State

if TYPE_CHECKING:
    from .generic import GenericScheduler
    from .system import SystemScheduler

SCHEDULER_TYPES = ("service", "batch", "system", "sysbatch")


def __getattr__(name: str) -> Any:
    # The schedulers (and numpy under them) load on first use: an agent starts serving without them.
    if name == "GenericScheduler":
        from .generic import GenericScheduler
        return GenericScheduler
    if name == "SystemScheduler":
        from .system import SystemScheduler
        return SystemScheduler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def new_scheduler(job_type: str, state: State, planner: Planner, *, now_ns: int, rng: Rng,
                  config: SchedulerConfig | None = None) -> GenericScheduler | SystemScheduler:
    """The scheduler for a job type, as Nomad's BuiltinSchedulers registry."""
    from .generic import GenericScheduler
    from .system import SystemScheduler

    if job_type in ("service", "batch"):
        return GenericScheduler(state, planner, batch=job_type == "batch", now_ns=now_ns, rng=rng, config=config)
    if job_type in ("system", "sysbatch"):
        return SystemScheduler(state, planner, sysbatch=job_type == "sysbatch", now_ns=now_ns, rng=rng,
                               config=config)
    raise ValueError(f"unknown scheduler type {job_type!r}")


__all__ = ["SCHEDULER_TYPES", "GenericScheduler", "Planner", "SchedulerConfig", "State", "SystemScheduler",
           "new_scheduler"]
