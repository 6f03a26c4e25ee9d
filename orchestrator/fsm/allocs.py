"""Allocation commands: plan results, client updates, desired transitions and allocation stops."""

from __future__ import annotations

from typing import Any

from orchestrator.structs import Allocation, Deployment, DesiredTransition, Job, PlanResult, decode
from orchestrator.structs.codec import replace

from .context import Context, get_dict, get_evals, get_int, get_str, get_struct
from .result import ApplyResult, Rejected


def _allocs_by_node(cmd: dict[str, Any], key: str) -> dict[str, list[Allocation]]:
    by_node = {}
    for node_id, items in get_dict(cmd, key).items():
        if not isinstance(items, list):
            raise Rejected(f"{key}.{node_id}: expected a list")
        allocs = [decode(Allocation, item, f"{key}.{node_id}[{i}]") for i, item in enumerate(items or ())]
        for alloc in allocs:
            if not alloc.id:
                raise Rejected(f"{key}.{node_id}: allocation without an ID")
        by_node[node_id] = allocs
    return by_node


def _deployment_updates(cmd: dict[str, Any]) -> list[dict[str, Any]]:
    updates = cmd.get("DeploymentUpdates") or []
    if not isinstance(updates, list):
        raise Rejected("DeploymentUpdates: expected a list")
    for update in updates:
        if not isinstance(update, dict) or not isinstance(update.get("DeploymentID"), str) or not isinstance(
                update.get("Status"), str):
            raise Rejected(f"DeploymentUpdates: malformed update {update!r}")
    return updates


class _JobResolver:
    """Gives placements their job back: the plan's job, or another stored version of it.

    A job equal to a stored one is replaced by the stored object, so allocations share one job object
    per version as they do when plans are applied in process.
    """

    def __init__(self, ctx: Context, plan_job: Job | None, versions: dict[str, Any]) -> None:
        self.store = ctx.store
        self.plan_job = self._stored_twin(plan_job) if plan_job is not None else None
        self.versions = versions

    def _stored_twin(self, job: Job) -> Job:
        for stored in (self.store.job_by_id(job.namespace, job.id),
                       self.store.job_by_id_and_version(job.namespace, job.id, job.version)):
            if stored is not None and stored == job:
                return stored
        return job

    def job_for(self, alloc: Allocation) -> Job | None:
        if alloc.id not in self.versions:
            return self.plan_job
        version = self.versions[alloc.id]
        existing = self.store.alloc_by_id(alloc.id)
        if version is None or (existing is not None and existing.job is not None
                               and existing.job.version == version):
            return None  # the store keeps the job the allocation already has
        found = self.store.job_by_id_and_version(alloc.namespace, alloc.job_id, version)
        return found if found is not None else (existing.job if existing is not None else None)


def apply_plan_results(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Commit a plan applier's verdict in one write (Nomad's ApplyPlanResultsRequest)."""
    plan_job = get_struct(Job, cmd, "Job")
    versions = get_dict(cmd, "AllocJobVersions")
    placements = _allocs_by_node(cmd, "NodeAllocation")
    stops = _allocs_by_node(cmd, "NodeUpdate")
    preemptions = _allocs_by_node(cmd, "NodePreemptions")
    deployment = get_struct(Deployment, cmd, "Deployment")
    updates = _deployment_updates(cmd)
    evals = get_evals(cmd)
    updated_at = get_int(cmd, "UpdatedAt")

    resolver = _JobResolver(ctx, plan_job, versions)
    for allocs in placements.values():
        for alloc in allocs:
            alloc.job = resolver.job_for(alloc)  # decoded just now: ours to change
            if updated_at:
                # Nomad's plan applier stamps placements when it commits them.
                alloc.create_time = alloc.create_time or updated_at
                alloc.modify_time = updated_at
    if updated_at:
        for group in (stops, preemptions):
            for allocs in group.values():
                for alloc in allocs:
                    alloc.modify_time = updated_at

    result = PlanResult(node_update=stops, node_allocation=placements, node_preemptions=preemptions,
                        deployment=deployment, deployment_updates=updates)
    for group in (placements, stops, preemptions):
        for allocs in group.values():
            ctx.watch_allocs(a.id for a in allocs)
            ctx.watch_deployments(a.deployment_id for a in allocs)
    ctx.watch_deployments([deployment.id] if deployment is not None else [])
    ctx.watch_deployments(u["DeploymentID"] for u in updates)
    ctx.watch_evals(evals)
    with ctx.write():
        ctx.store.apply_plan_result(ctx.index, result, evals)
    return ctx.result({"AllocIndex": ctx.index, "EvalID": get_str(cmd, "EvalID")})


def alloc_client_update(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Merge what clients report; allocations unknown (collected meanwhile) are ignored."""
    raw = cmd.get("Allocs") or []
    if not isinstance(raw, list):
        raise Rejected("Allocs: expected a list")
    updates = [decode(Allocation, item, f"Allocs[{i}]") for i, item in enumerate(raw)]
    if any(not u.id for u in updates):
        raise Rejected("Allocs: allocation without an ID")
    # A client-terminal allocation (failed, complete, lost) is final, as in Nomad: it never runs again, and
    # the scheduler has already replaced it (or will, from the reschedule evaluation of the same update).
    # A report that would bring it back to pending or running is stale (sent before the terminal one and
    # delivered after, or from a client that was partitioned while its node was marked lost): applying it
    # would leave an allocation counted as live that no client runs and no scheduler replaces.
    updates = [u for u in updates if u.client_terminal() or not _client_terminal(ctx, u.id)]
    update_time = get_int(cmd, "UpdateTime")
    if update_time:
        updates = [replace(u, modify_time=update_time) for u in updates]
    evals = get_evals(cmd)
    ctx.watch_allocs(u.id for u in updates)
    ctx.watch_evals(evals)
    with ctx.write():
        ctx.store.upsert_evals(ctx.index, evals)  # first, as Nomad: e.g. reschedule evals for failed ones
        ctx.store.update_allocs_from_client(ctx.index, updates)
    return ctx.result()


def _client_terminal(ctx: Context, alloc_id: str) -> bool:
    stored = ctx.store.alloc_by_id(alloc_id)
    return stored is not None and stored.client_terminal()


def alloc_desired_transition(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Mark allocations to migrate or reschedule (the drainer's request), with the evals to act on them."""
    transitions = {alloc_id: decode(DesiredTransition, value, f"Allocs.{alloc_id}")
                   for alloc_id, value in get_dict(cmd, "Allocs").items()}
    evals = get_evals(cmd)
    ctx.watch_allocs(transitions)
    ctx.watch_evals(evals)
    with ctx.write():
        ctx.store.update_alloc_desired_transition(ctx.index, transitions, evals)
    return ctx.result()


def alloc_stop(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Nomad's Alloc.Stop: the allocation is marked to migrate and its evaluation places a replacement."""
    alloc_id = get_str(cmd, "AllocID", required=True)
    evals = get_evals(cmd)
    if ctx.store.alloc_by_id(alloc_id) is None:
        raise Rejected(f'Unknown allocation "{alloc_id}"')
    ctx.watch_allocs([alloc_id])
    ctx.watch_evals(evals)
    with ctx.write():
        ctx.store.update_alloc_desired_transition(ctx.index, {alloc_id: DesiredTransition(migrate=True)}, evals)
    return ctx.result(ctx.eval_response(evals))
