"""The plan applier's check (Nomad's `evaluatePlan`): what of an optimistic plan fits the latest state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrator.structs import Allocation, Node, Plan, PlanResult

from .fit import allocs_fit

REASON_NODE_MISSING = "node does not exist"
REASON_NODE_NOT_READY = "node is not ready for placements"
REASON_NODE_INELIGIBLE = "node is not eligible"


class PlanState(Protocol):
    """The slice of the (latest, not snapshot) state store the plan applier reads."""

    def node_by_id(self, node_id: str) -> Node | None: ...
    def allocs_by_node(self, node_id: str) -> list[Allocation]: ...
    def alloc_by_id(self, alloc_id: str) -> Allocation | None: ...
    def latest_index(self) -> int: ...


@dataclass(frozen=True, slots=True)
class NodeVerdict:
    """Whether a node's part of a plan may be committed; `reason` says why not (a fit dimension or status)."""

    fit: bool
    reason: str = ""


def evaluate_node_plan(state: PlanState, plan: Plan, node_id: str) -> NodeVerdict:
    """Whether the placements `plan` makes on `node_id` still fit, given what has been committed since."""
    placements = plan.node_allocation.get(node_id)
    if not placements:
        return NodeVerdict(True)  # stops and evictions only remove work: they always fit
    node = state.node_by_id(node_id)
    if node is None:
        return NodeVerdict(False, REASON_NODE_MISSING)
    if not node.ready():
        return NodeVerdict(False, REASON_NODE_NOT_READY)

    existing = [a for a in state.allocs_by_node(node_id) if not a.terminal()]
    existing_ids = {a.id for a in existing}
    # A draining or ineligible node keeps what it runs: updating those allocations in place is allowed,
    # only new work is turned away (Nomad's AllocSubset check).
    only_updates = all(a.id in existing_ids for a in placements)
    if not only_updates and not node.schedulable():
        return NodeVerdict(False, REASON_NODE_INELIGIBLE)

    # Stopped, preempted and updated allocations leave the node; an update's new version is added back
    # below, so an in-place update is counted once. Unlike Nomad we still check fit for updates-only
    # plans: an in-place update may grow, and a concurrent plan may have taken the room meanwhile.
    removed = {a.id for a in placements}
    removed.update(a.id for a in plan.node_update.get(node_id, ()))
    removed.update(a.id for a in plan.node_preemptions.get(node_id, ()))
    proposed = [a for a in existing if a.id not in removed]
    proposed.extend(placements)
    result = allocs_fit(node, proposed)
    return NodeVerdict(result.fit, result.dimension)


def _live_preemptions(state: PlanState, preempted: list[Allocation] | None) -> list[Allocation]:
    """Preemptions of allocations still running: one that stopped meanwhile needs no eviction."""
    live = []
    for alloc in preempted or ():
        current = state.alloc_by_id(alloc.id)
        if current is not None and not current.terminal():
            live.append(alloc)
    return live


def evaluate_plan(state: PlanState, plan: Plan) -> PlanResult:
    """The part of `plan` that may be committed against `state`, which is newer than the planner's snapshot.

    Stops are always committed. A node whose placements no longer fit (gone, down, ineligible for new work,
    or full) is rejected whole: none of its placements nor preemptions are committed, and `refresh_index`
    tells the scheduler which index to refresh its snapshot to before it retries. An `all_at_once` plan
    with any rejected node commits nothing at all, as in Nomad.
    """
    result = PlanResult()
    rejected: list[str] = []
    for node_id, placements in plan.node_allocation.items():
        if not placements:
            continue
        verdict = evaluate_node_plan(state, plan, node_id)
        if not verdict.fit:
            rejected.append(node_id)
            if plan.all_at_once:
                break  # the plan fails as a whole; the other nodes need no checking
            continue
        result.node_allocation[node_id] = list(placements)
        preemptions = _live_preemptions(state, plan.node_preemptions.get(node_id))
        if preemptions:
            result.node_preemptions[node_id] = preemptions

    if rejected:
        result.rejected_nodes = rejected
        result.refresh_index = state.latest_index()
        if plan.all_at_once:
            result.node_allocation = {}
            result.node_preemptions = {}
            return result

    for node_id, stops in plan.node_update.items():
        if stops:
            result.node_update[node_id] = list(stops)
    # A deployment exists for the placements it tracks; with every one of them rejected the scheduler
    # will plan it again after refreshing, so committing it now would only leave a deployment behind.
    if not rejected or result.node_allocation:
        result.deployment = plan.deployment
        result.deployment_updates = list(plan.deployment_updates)
    return result
