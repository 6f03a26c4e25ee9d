"""Deployment commands: status changes (with auto-revert), promotion, allocation health and deletion."""

from __future__ import annotations

from typing import Any

from orchestrator.state import StateError
from orchestrator.structs import Evaluation, Job
from orchestrator.structs.timefmt import rfc3339_ns as rfc3339

from .context import Context, get_bool, get_evals, get_int, get_str, get_strs, get_struct
from .jobs import check_namespace
from .result import ApplyResult, Rejected


def _active(ctx: Context, deployment_id: str) -> None:
    """Refuse with Nomad's messages unless the deployment exists and is running or paused."""
    try:
        ctx.store.active_deployment(deployment_id)
    except StateError as err:
        raise Rejected(str(err)) from err


def _revert_job(ctx: Context, cmd: dict[str, Any]) -> Job | None:
    job = get_struct(Job, cmd, "Job")
    if job is not None:
        check_namespace(ctx, job)
    return job


def _response(ctx: Context, deployment_id: str, evals: list[Evaluation], job: Job | None) -> dict[str, Any]:
    deployment = ctx.store.deployment_by_id(deployment_id)
    response = {"DeploymentModifyIndex": deployment.modify_index if deployment is not None else ctx.index,
                **ctx.eval_response(evals)}
    if job is not None:
        stored = ctx.store.job_by_id(job.namespace, job.id)
        response["RevertedJobVersion"] = stored.version if stored is not None else job.version
    return response


def deployment_status_update(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Set a deployment's status (a successful one marks its job version stable); `Job` registers the
    version an auto-revert goes back to, in the same write."""
    deployment_id = get_str(cmd, "DeploymentID", required=True)
    status = get_str(cmd, "Status", required=True)
    description = get_str(cmd, "StatusDescription")
    job = _revert_job(ctx, cmd)
    evals = get_evals(cmd)
    _active(ctx, deployment_id)
    ctx.watch_deployments([deployment_id])
    ctx.watch_evals(evals)
    with ctx.write():
        ctx.store.update_deployment_status(ctx.index, deployment_id, status, description, job=job, evals=evals)
    if job is not None:
        ctx.jobs.add((job.namespace, job.id))
    return ctx.result(_response(ctx, deployment_id, evals, job))


def deployment_promote(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Promote canaries of some task groups (or all): refused unless each has its healthy canaries."""
    deployment_id = get_str(cmd, "DeploymentID", required=True)
    all_groups = get_bool(cmd, "All")
    groups = get_strs(cmd, "Groups")
    updated_at = get_int(cmd, "UpdatedAt")
    evals = get_evals(cmd)
    _active(ctx, deployment_id)
    ctx.watch_deployments([deployment_id])
    ctx.watch_allocs(a.id for a in ctx.store.allocs_by_deployment(deployment_id))
    ctx.watch_evals(evals)
    # The promotion checks its canaries before it changes anything, so a refusal leaves the store as it was.
    with ctx.write():
        ctx.store.promote_deployment(ctx.index, deployment_id, groups, all_groups=all_groups, now_ns=updated_at)
        ctx.store.upsert_evals(ctx.index, evals)
    return ctx.result(_response(ctx, deployment_id, evals, None))


def deployment_alloc_health(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """The deployment watcher's health verdicts, with an optional status change, revert and evaluation."""
    deployment_id = get_str(cmd, "DeploymentID", required=True)
    healthy = get_strs(cmd, "HealthyAllocationIDs")
    unhealthy = get_strs(cmd, "UnhealthyAllocationIDs")
    timestamp = get_int(cmd, "Timestamp")
    update = cmd.get("DeploymentUpdate")
    job = _revert_job(ctx, cmd)
    evals = get_evals(cmd)
    if update is not None and (not isinstance(update, dict) or update.get("DeploymentID") != deployment_id
                               or not isinstance(update.get("Status"), str)
                               or not isinstance(update.get("StatusDescription") or "", str)):
        raise Rejected(f"DeploymentUpdate: malformed update {update!r}")
    _active(ctx, deployment_id)
    ctx.watch_deployments([deployment_id])
    ctx.watch_allocs([*healthy, *unhealthy])
    ctx.watch_evals(evals)
    store = ctx.store
    with ctx.write():
        # Checks its allocations before it changes anything: an unknown one refuses the whole command.
        store.set_alloc_health(ctx.index, deployment_id, healthy, unhealthy, rfc3339(timestamp) if timestamp else "")
        if update is not None:
            store.update_deployment_status(ctx.index, deployment_id, update["Status"],
                                           update.get("StatusDescription") or "", job=job, evals=evals)
        else:
            if job is not None:
                store.upsert_job(ctx.index, job)
            store.upsert_evals(ctx.index, evals)
    if job is not None:
        ctx.jobs.add((job.namespace, job.id))
    return ctx.result(_response(ctx, deployment_id, evals, job))


def deployment_delete(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Garbage-collect deployments; refused whole if one is unknown (Nomad's DeleteDeployment)."""
    deployment_ids = get_strs(cmd, "Deployments")
    for deployment_id in deployment_ids:
        if ctx.store.deployment_by_id(deployment_id) is None:
            raise Rejected("deployment not found")
    ctx.watch_deployments(deployment_ids)
    with ctx.write():
        ctx.store.delete_deployments(ctx.index, deployment_ids)
    return ctx.result()
