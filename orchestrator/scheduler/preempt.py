"""Preemption: which lower-priority allocations to evict from a node so a higher-priority one fits."""

from __future__ import annotations

from orchestrator.structs import Allocation

from .fit import ComparableResources

PRIORITY_DELTA = 10  # Nomad only preempts jobs at least this much lower in priority


def select_preemptions(free: ComparableResources, need: ComparableResources, candidates: list[Allocation],
                       priority: int) -> list[Allocation] | None:
    """The fewest, lowest-priority allocations whose eviction makes `need` fit in `free`, or None.

    Greedy like Nomad's: lowest job priority first, and within a priority the allocation that covers
    most of what is still missing, so as few allocations as possible are disturbed.
    """
    eligible = [a for a in candidates
                if not a.terminal() and a.job is not None and a.job.priority <= priority - PRIORITY_DELTA]
    chosen: list[Allocation] = []
    available = free
    while not available.superset(need)[0]:
        if not eligible:
            return None
        missing = need.subtract(available)

        def coverage(alloc: Allocation, missing: ComparableResources = missing) -> tuple[int, float]:
            r = ComparableResources.of_alloc(alloc)
            covered = (min(r.cpu, max(missing.cpu, 0)) / max(need.cpu, 1)
                       + min(r.memory_mb, max(missing.memory_mb, 0)) / max(need.memory_mb, 1)
                       + min(r.disk_mb, max(missing.disk_mb, 0)) / max(need.disk_mb, 1))
            return (alloc.job.priority if alloc.job else 0, -covered)

        eligible.sort(key=coverage)
        pick = eligible.pop(0)
        chosen.append(pick)
        available = available.add(ComparableResources.of_alloc(pick))
    return chosen
