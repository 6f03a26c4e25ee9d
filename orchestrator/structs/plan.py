"""Plans a scheduler submits (allocations to place, stop or preempt per node) and the applier's verdict."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .alloc import Allocation
from .codec import api_field
from .evaluation import Deployment
from .job import Job


@dataclass(slots=True)
class DesiredUpdates:
    """Per task group counts shown by `job plan` (`2 create, 1 in-place update`)."""

    ignore: int = 0
    place: int = 0
    migrate: int = 0
    stop: int = 0
    in_place_update: int = 0
    destructive_update: int = 0
    canary: int = 0
    preemptions: int = 0


@dataclass(slots=True)
class PlanAnnotations:
    desired_tg_updates: dict[str, DesiredUpdates] = api_field("DesiredTGUpdates", default_factory=dict)
    preempted_allocs: list[Allocation] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    eval_id: str = ""
    eval_token: str = ""
    priority: int = 50
    all_at_once: bool = False
    job: Job | None = None
    node_update: dict[str, list[Allocation]] = field(default_factory=dict)  # stops and evictions
    node_allocation: dict[str, list[Allocation]] = field(default_factory=dict)  # placements and updates
    node_preemptions: dict[str, list[Allocation]] = field(default_factory=dict)
    annotations: PlanAnnotations | None = None
    deployment: Deployment | None = None
    deployment_updates: list[dict] = field(default_factory=list)
    snapshot_index: int = 0

    def append_alloc(self, alloc: Allocation) -> None:
        self.node_allocation.setdefault(alloc.node_id, []).append(alloc)

    def append_stopped_alloc(self, alloc: Allocation, desired_description: str,
                             client_status: str = "") -> None:
        """Record that `alloc` must stop; the original stays untouched, the plan holds a copy."""
        stopped = replace(alloc, desired_status="stop", desired_description=desired_description)
        if client_status:
            stopped.client_status = client_status
        self.node_update.setdefault(alloc.node_id, []).append(stopped)

    def append_preempted_alloc(self, alloc: Allocation, preempting_alloc_id: str) -> None:
        evicted = replace(alloc, desired_status="evict", preempted_by_allocation=preempting_alloc_id,
                          desired_description=f"Preempted by alloc ID {preempting_alloc_id}")
        self.node_preemptions.setdefault(alloc.node_id, []).append(evicted)

    def is_no_op(self) -> bool:
        return (not self.node_update and not self.node_allocation and not self.node_preemptions
                and self.deployment is None and not self.deployment_updates)


@dataclass(slots=True)
class PlanResult:
    """What the plan applier committed: possibly only part of the plan if nodes filled up meanwhile."""

    node_update: dict[str, list[Allocation]] = field(default_factory=dict)
    node_allocation: dict[str, list[Allocation]] = field(default_factory=dict)
    node_preemptions: dict[str, list[Allocation]] = field(default_factory=dict)
    deployment: Deployment | None = None
    deployment_updates: list[dict] = field(default_factory=list)
    rejected_nodes: list[str] = field(default_factory=list)
    refresh_index: int = 0  # when partial: the state index the scheduler must catch up to
    alloc_index: int = 0

    def full_commit(self, plan: Plan) -> tuple[bool, int, int]:
        """(whether everything was committed, allocations expected, allocations committed)."""
        expected = sum(len(v) for v in plan.node_allocation.values())
        actual = sum(len(v) for v in self.node_allocation.values())
        return expected == actual, expected, actual
