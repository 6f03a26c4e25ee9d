"""Which nodes can run a task group at all: drivers, constraints, volumes, devices; cached per node class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from orchestrator.structs import AllocMetric, Constraint, Job, Node, TaskGroup

from .cluster import ClusterView
from .constraints import check_constraint, constraint_escapes_class


@dataclass(frozen=True, slots=True)
class Check:
    """One feasibility test with the reason recorded in the metrics when it filters a node."""

    reason: str
    test: Callable[[Node], bool]
    escapes_class: bool  # True when the answer can differ between nodes of one computed class


def group_constraints(job: Job, group: TaskGroup) -> list[Constraint]:
    constraints = [*job.constraints, *group.constraints]
    for task in group.tasks:
        constraints.extend(task.constraints)
    return constraints


def constraint_reason(c: Constraint) -> str:
    return f"{c.l_target} {c.operand} {c.r_target}".strip()


def group_checks(job: Job, group: TaskGroup) -> list[Check]:
    """Every per-node test the group needs, cheapest and most selective first."""
    checks: list[Check] = []
    drivers = sorted({task.driver for task in group.tasks})
    checks.append(Check("missing drivers",
                        lambda node: all(node.driver_healthy(d) for d in drivers), False))
    for constraint in group_constraints(job, group):
        if constraint.operand in ("distinct_hosts", "distinct_property"):
            continue  # these depend on placements, not on the node alone (see rank.py)
        checks.append(Check(constraint_reason(constraint),
                            lambda node, c=constraint: check_constraint(c, node),
                            constraint_escapes_class(constraint)))
    host_volumes = sorted(v.source for v in group.volumes.values() if v.type in ("", "host"))
    if host_volumes:
        checks.append(Check("missing compatible host volumes",
                            lambda node: all(v in node.host_volumes for v in host_volumes), False))
    devices = [d for task in group.tasks for d in task.resources.devices]
    if devices:
        checks.append(Check("missing devices", lambda node: _has_devices(node, devices), True))
    return checks


def _has_devices(node: Node, requested) -> bool:
    for request in requested:
        healthy = sum(len(g.healthy_ids()) for g in node.node_resources.devices if g.matches(request.name))
        if healthy < request.count:
            return False
    return True


def feasible_mask(view: ClusterView, checks: list[Check], metrics: AllocMetric,
                  class_cache: dict[tuple[int, str], bool] | None = None) -> np.ndarray:
    """A boolean array over the view's nodes; filtered nodes are counted in `metrics` by reason and class.

    Checks that do not escape the computed class are answered once per class (Nomad's class
    eligibility), so 5,000 identical nodes cost one constraint evaluation, not 5,000.
    """
    n = len(view)
    mask = np.ones(n, dtype=bool)
    if n == 0 or not checks:
        return mask
    class_ids, classes = view.class_ids()
    cache = class_cache if class_cache is not None else {}
    for check in checks:
        if check.escapes_class:
            passed = np.fromiter((mask[i] and check.test(view.nodes[i]) for i in range(n)), bool, n)
        else:
            answers = np.zeros(len(classes), dtype=bool)
            first_of_class = _first_index_per_class(class_ids, len(classes))
            for cls, i in enumerate(first_of_class):
                if i < 0:
                    continue
                key = (cls, check.reason)
                if key not in cache:
                    cache[key] = check.test(view.nodes[i])
                answers[cls] = cache[key]
            passed = answers[class_ids]
        filtered = mask & ~passed
        count = int(filtered.sum())
        if count:
            metrics.nodes_filtered += count
            metrics.constraint_filtered[check.reason] = metrics.constraint_filtered.get(check.reason, 0) + count
            for i in np.flatnonzero(filtered)[:64]:
                node_class = view.nodes[i].node_class
                if node_class:
                    metrics.class_filtered[node_class] = metrics.class_filtered.get(node_class, 0) + 1
        mask &= passed
    return mask


def _first_index_per_class(class_ids: np.ndarray, n_classes: int) -> list[int]:
    first = [-1] * n_classes
    # np.unique's return_index gives the first occurrence of each class in one pass.
    values, positions = np.unique(class_ids, return_index=True)
    for cls, pos in zip(values.tolist(), positions.tolist()):
        first[cls] = pos
    return first
