"""Job commands: register (with its evaluation), deregister, stability and periodic launches."""

from __future__ import annotations

from typing import Any

from orchestrator.scheduler.periodic import PERIODIC_LAUNCH_SUFFIX
from orchestrator.structs import Job
from orchestrator.structs.codec import replace

from .context import NS_PER_SECOND, Context, get_bool, get_evals, get_int, get_str, get_struct
from .result import ApplyResult, Rejected

# Nomad's RegisterEnforceIndexErrPrefix: `nomad job run -check-index` looks for it.
ENFORCE_INDEX_PREFIX = "Enforcing job modify index"


def check_namespace(ctx: Context, job: Job) -> None:
    if ctx.store.namespace_by_name(job.namespace) is None:
        raise Rejected(f'job "{job.id}" is in nonexistent namespace "{job.namespace}"')


def _check_enforce_index(existing: Job | None, wanted: int) -> None:
    """Nomad's check-index: register only over the version the user saw (0: only if it does not exist)."""
    if wanted == 0:
        if existing is not None:
            raise Rejected(f"{ENFORCE_INDEX_PREFIX} 0: job exists")
    elif existing is None:
        raise Rejected(f"{ENFORCE_INDEX_PREFIX} {wanted}: job does not exist")
    elif existing.job_modify_index != wanted:
        raise Rejected(f"{ENFORCE_INDEX_PREFIX} {wanted}: job exists with conflicting job modify index: "
                       f"{existing.job_modify_index}")


def _child_launch(child_id: str, submit_time: int) -> int:
    """When a periodic child was due: its ID ends in the launch's unix seconds, else its submit time."""
    _, sep, stamp = child_id.rpartition(PERIODIC_LAUNCH_SUFFIX)
    if sep and stamp.isascii() and stamp.isdigit():
        return int(stamp) * NS_PER_SECOND
    return submit_time


def _record_launches(ctx: Context, job: Job, submit_time: int) -> None:
    """Nomad records launches in the same write, so a new leader neither misses nor repeats one: an
    active periodic job's registration counts as its first launch; a child marks its parent's launch."""
    store, index = ctx.store, ctx.index
    active = job.is_periodic() and not job.stop and not job.is_parameterized()
    if active and store.periodic_launch(job.namespace, job.id) is None:
        store.upsert_periodic_launch(index, job.namespace, job.id, submit_time)
    if job.parent_id:
        parent = store.job_by_id(job.namespace, job.parent_id)
        if parent is not None and parent.is_periodic() and not parent.is_parameterized():
            store.upsert_periodic_launch(index, job.namespace, parent.id, _child_launch(job.id, submit_time))


def job_register(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    job = get_struct(Job, cmd, "Job", required=True)
    evals = get_evals(cmd)
    submit_time = get_int(cmd, "SubmitTime")
    if not job.id:
        raise Rejected("missing job ID for registration")
    check_namespace(ctx, job)
    store = ctx.store
    if get_bool(cmd, "EnforceIndex"):
        _check_enforce_index(store.job_by_id(job.namespace, job.id), get_int(cmd, "JobModifyIndex"))
    if submit_time:
        job = replace(job, submit_time=submit_time)
    ctx.watch_evals(evals)
    with ctx.write():
        stored = store.upsert_job(ctx.index, job)
        _record_launches(ctx, stored, submit_time)
        # The evaluation is for the version just stored (an unchanged spec keeps its JobModifyIndex).
        store.upsert_evals(ctx.index, [replace(e, job_modify_index=stored.job_modify_index) for e in evals])
    ctx.jobs.add((job.namespace, job.id))
    return ctx.result({"JobModifyIndex": stored.job_modify_index, **ctx.eval_response(evals)})


def job_deregister(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    namespace = get_str(cmd, "Namespace") or "default"
    job_id = get_str(cmd, "JobID", required=True)
    purge = get_bool(cmd, "Purge")
    submit_time = get_int(cmd, "SubmitTime")
    evals = get_evals(cmd)
    store = ctx.store
    existing = store.job_by_id(namespace, job_id)
    if existing is None:
        raise Rejected("job not found" if purge else
                       f'job "{job_id}" in namespace "{namespace}" doesn\'t exist to be deregistered')
    ctx.watch_evals(evals)
    with ctx.write():
        if purge:
            store.delete_job(ctx.index, namespace, job_id)  # its versions, summary and periodic launch too
            job_modify_index = ctx.index
        else:
            # Stopping is a new version of the spec, as in Nomad; the scheduler then stops its allocations.
            stopped = replace(existing, stop=True, submit_time=submit_time or existing.submit_time)
            job_modify_index = store.upsert_job(ctx.index, stopped).job_modify_index
        store.upsert_evals(ctx.index, evals)
    ctx.jobs.add((namespace, job_id))
    return ctx.result({"JobModifyIndex": job_modify_index, **ctx.eval_response(evals)})


def job_stability(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    namespace = get_str(cmd, "Namespace") or "default"
    job_id = get_str(cmd, "JobID", required=True)
    version = get_int(cmd, "Version")
    stable = get_bool(cmd, "Stable")
    if ctx.store.job_by_id_and_version(namespace, job_id, version) is None:
        raise Rejected(f'job "{job_id}" ({namespace}) version {version} doesn\'t exist')
    with ctx.write():
        ctx.store.set_job_stable(ctx.index, namespace, job_id, version, stable)
    return ctx.result()


def periodic_launch(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    namespace = get_str(cmd, "Namespace") or "default"
    job_id = get_str(cmd, "JobID", required=True)
    launch = get_int(cmd, "Launch")
    with ctx.write():
        ctx.store.upsert_periodic_launch(ctx.index, namespace, job_id, launch)
    return ctx.result()
