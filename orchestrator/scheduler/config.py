"""The cluster-wide scheduler configuration, kept apart from the numpy-heavy ranking code so that
everything that only configures scheduling imports cheaply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SchedulerConfig:
    """The cluster-wide scheduler configuration (`default_scheduler_config` in the server block)."""

    algorithm: str = "binpack"  # or "spread"
    preempt_system: bool = True
    preempt_batch: bool = False
    preempt_service: bool = False
    preempt_sysbatch: bool = False

    def preemption_enabled(self, job_type: str) -> bool:
        return {"system": self.preempt_system, "batch": self.preempt_batch,
                "service": self.preempt_service, "sysbatch": self.preempt_sysbatch}.get(job_type, False)
