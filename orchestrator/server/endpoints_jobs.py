"""Job RPCs beyond register and deregister: revert, stability, evaluate, dispatch, periodic force, scale."""

from __future__ import annotations

import base64
import binascii
from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from orchestrator.fsm import ApplyResult, commands
from orchestrator.raft import NotLeaderError, ProposalDroppedError
from orchestrator.rpc import methods
from orchestrator.scheduler.dispatch import dispatch_child_id, merge_dispatch_meta, validate_dispatch
from orchestrator.structs import DesiredTransition, Evaluation, Job
from orchestrator.structs.alloc import CLIENT_FAILED
from orchestrator.structs.evaluation import TRIGGER_JOB_REGISTER, TRIGGER_JOB_SCALING

from . import job_plan
from .endpoints_common import Handler, Reply, WriteOp, as_int, job_of, namespace_of, ns
from .evals import new_eval
from .leader import periodic_launch_commands

if TYPE_CHECKING:
    from .server import Server


def _register_answer(evaluation: Evaluation | None) -> Any:
    """Nomad's JobRegisterResponse, for the writes that register a version of a job."""
    def respond(result: ApplyResult, index: int) -> dict[str, Any]:
        return {"EvalID": evaluation.id if evaluation else "", "EvalCreateIndex": index if evaluation else 0,
                "JobModifyIndex": result.response.get("JobModifyIndex", index), "Index": index, "Warnings": ""}
    return respond


def _register_eval(server: Server, job: Job, trigger: str, now: float) -> Evaluation | None:
    # Periodic and parameterized jobs are templates: their children are what gets scheduled.
    if job.is_periodic() or job.is_parameterized():
        return None
    return new_eval(server.rng, job, trigger, ns(now))


def job_revert(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    """Register a prior version's spec as the job's next version (Nomad's Job.Revert)."""
    job_id, current = job_of(server, args)
    if not job_id:
        return Reply(error="missing job ID for revert")
    if current is None:
        return Reply(error=f'job "{job_id}" not found')
    version = as_int(args.get("JobVersion") or 0)
    if version is None or version < 0:
        return Reply(error=f"invalid job version {args.get('JobVersion')!r}")
    if version == current.version:
        return Reply(error="can't revert to current version")
    namespace = namespace_of(args)
    target = server.store.job_by_id_and_version(namespace, job_id, version)
    if target is None:
        return Reply(error=f'job "{job_id}" in namespace "{namespace}" at version {version} not found')
    enforce = args.get("EnforcePriorVersion")
    if enforce is not None and as_int(enforce) != current.version:
        wanted = as_int(enforce)
        return Reply(error=f"Current job has version {current.version}; enforcing version "
                           f"{wanted if wanted is not None else enforce}")
    reverted = replace(target, stable=False, status="", status_description="", submit_time=ns(now))
    evaluation = _register_eval(server, reverted, TRIGGER_JOB_REGISTER, now)
    command = commands.job_register(job=reverted, evaluation=evaluation, enforce_index=enforce is not None,
                                    job_modify_index=current.job_modify_index, submit_time=ns(now))
    return WriteOp(command, _register_answer(evaluation))


def job_stable(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    job_id, _ = job_of(server, args)
    if not job_id:
        return Reply(error="missing job ID for marking job as stable")
    namespace = namespace_of(args)
    version = as_int(args.get("JobVersion") or 0)
    if version is None or server.store.job_by_id_and_version(namespace, job_id, version) is None:
        return Reply(error=f'job "{job_id}" in namespace "{namespace}" at version {args.get("JobVersion") or 0} '
                           f'not found')
    command = commands.job_stability(namespace=namespace, job_id=job_id, version=version,
                                     stable=bool(args.get("Stable")))
    return WriteOp(command, lambda result, index: {"Index": index})


def _reschedule_enabled(job: Job, group_name: str) -> bool:
    group = job.group(group_name)
    policy = group.reschedule_policy if group is not None else None
    return policy is not None and (policy.attempts > 0 or policy.unlimited)


def job_evaluate(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    """A new evaluation of the job; `EvalOptions.ForceReschedule` also marks its failed allocations to be
    replaced now, whatever their reschedule delay (Nomad's Job.Evaluate)."""
    job_id, job = job_of(server, args)
    if not job_id:
        return Reply(error="missing job ID for evaluation")
    if job is None:
        return Reply(error="job not found")
    if job.is_periodic():
        return Reply(error="can't evaluate periodic job")
    if job.is_parameterized():
        return Reply(error="can't evaluate parameterized job")
    options = args.get("EvalOptions") if isinstance(args.get("EvalOptions"), dict) else {}
    transitions: dict[str, DesiredTransition] = {}
    if options.get("ForceReschedule"):
        for alloc in server.store.allocs_by_job(job.namespace, job.id, any_create_index=False):
            if (alloc.client_status == CLIENT_FAILED and not alloc.next_allocation
                    and not alloc.desired_transition.force_reschedule
                    and _reschedule_enabled(job, alloc.task_group)):
                transitions[alloc.id] = DesiredTransition(reschedule=True, force_reschedule=True)
    evaluation = new_eval(server.rng, job, TRIGGER_JOB_REGISTER, ns(now))
    command = commands.alloc_desired_transition(allocs=transitions, evals=[evaluation])
    return WriteOp(command, lambda result, index: {"EvalID": evaluation.id, "EvalCreateIndex": index,
                                                    "JobModifyIndex": job.modify_index, "Index": index})


def _payload(raw: Any) -> tuple[bytes, str]:
    """The dispatch payload's bytes from the request (base64 text, as Nomad's API carries []byte), or an error."""
    if raw is None or raw == "":
        return b"", ""
    if isinstance(raw, bytes | bytearray):
        return bytes(raw), ""
    if not isinstance(raw, str):
        return b"", f"invalid payload: expected base64 text, got {type(raw).__name__}"
    try:
        return base64.b64decode(raw, validate=True), ""
    except (binascii.Error, ValueError) as exc:
        return b"", f"invalid payload: {exc}"


def job_dispatch(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    """Register a child of a parameterized job with the request's payload and meta, and its evaluation."""
    job_id, parent = job_of(server, args)
    if not job_id:
        return Reply(error="missing parameterized job ID")
    if parent is None:
        return Reply(error="parameterized job not found")
    if not parent.is_parameterized() or parent.parameterized_job is None:
        return Reply(error=f'Specified job "{job_id}" is not a parameterized job')
    if parent.stop:
        return Reply(error=f'Specified job "{job_id}" is stopped')
    payload, error = _payload(args.get("Payload"))
    if error:
        return Reply(error=error)
    meta = args.get("Meta") or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        return Reply(error="invalid dispatch meta: expected a map of strings")
    config = parent.parameterized_job
    errors = validate_dispatch(meta, config.meta_required, config.meta_optional, payload, config.payload)
    if errors:
        return Reply(error=errors[0])  # Nomad stops at the first problem
    child_id = dispatch_child_id(parent.id, int(now), server.rng)
    child = replace(parent, id=child_id, name=child_id, parent_id=parent.id, dispatched=True,
                    meta=merge_dispatch_meta(parent.meta, meta),
                    payload=base64.b64encode(payload).decode() if payload else None, status="",
                    status_description="", stable=False, version=0, create_index=0, modify_index=0,
                    job_modify_index=0, submit_time=ns(now))
    evaluation = _register_eval(server, child, TRIGGER_JOB_REGISTER, now)
    command = commands.job_register(job=child, evaluation=evaluation, submit_time=ns(now))
    return WriteOp(command, lambda result, index: {
        "DispatchedJobID": child_id, "EvalID": evaluation.id if evaluation else "",
        "EvalCreateIndex": index if evaluation else 0, "JobCreateIndex": index, "Index": index})


def job_periodic_force(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    """Launch a periodic job's child now, as the leader's dispatcher does when a launch is due."""
    job_id, job = job_of(server, args)
    if not job_id:
        return Reply(error="missing job ID for evaluation")
    if job is None:
        return Reply(error="job not found")
    if not job.is_periodic():
        return Reply(error="can't force launch non-periodic job")
    assert server.leader is not None  # write handlers run on the leader only
    forced = server.leader.periodic.force(job.namespace, job.id, now)
    if forced is None:
        return Reply(error=f'force launch for job "{job.id}" failed: can\'t force run non-tracked job '
                           f'"{job.id}" ({job.namespace})')
    parent, launch_ns = forced
    evaluation, command, record = periodic_launch_commands(server.rng, parent, launch_ns, ns(now))

    def record_launch(result: ApplyResult) -> None:
        # As the dispatcher: the child's registration, then the launch record (the FSM also notes it).
        with suppress(NotLeaderError, ProposalDroppedError):
            server.propose(record)

    return WriteOp(command, lambda result, index: {"EvalID": evaluation.id, "EvalCreateIndex": index,
                                                    "Index": index}, record_launch)


def _scale_target(args: dict[str, Any]) -> tuple[str, str, str]:
    """(namespace, job ID, group) of a scaling request: flat fields, or Nomad's Target map."""
    target = args.get("Target") if isinstance(args.get("Target"), dict) else {}
    return (str(args.get("Namespace") or target.get("Namespace") or "default"),
            str(args.get("JobID") or target.get("Job") or ""), str(args.get("Group") or target.get("Group") or ""))


def job_scale(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    """Set a group's count (Nomad's Job.Scale); a request without Count only reports, changing nothing."""
    namespace, job_id, group_name = _scale_target(args)
    target = args.get("Target") if isinstance(args.get("Target"), dict) else {}
    if target.get("Job") and args.get("JobID") and target["Job"] != args["JobID"]:
        return Reply(error="job ID in payload did not match URL")
    if not group_name:
        return Reply(error="missing task group name for scaling action")
    count = None
    if args.get("Count") is not None:
        count = as_int(args.get("Count"))
        if count is None or count < 0:
            return Reply(error="scaling action count can't be negative")
        if args.get("Error"):
            return Reply(error="scaling action should not contain count if error is true")
    job = server.store.job_by_id(namespace, job_id)
    if job is None:
        return Reply(error=f"job not found: {job_id}")
    group = job.group(group_name)
    if group is None:
        return Reply(error=f'task group "{group_name}" specified for scaling does not exist in job')
    if count is None:
        # Nomad records such requests as scaling events only; yurt keeps no event history, so nothing changes.
        return Reply({"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": job.job_modify_index,
                      "Index": server.store.latest_index(), "Warnings": ""})
    policy = group.scaling
    if policy is not None and count < policy.min:
        return Reply(error=f"group count was less than scaling policy minimum: {count} < {policy.min}")
    if policy is not None and policy.max and count > policy.max:
        return Reply(error=f"group count was greater than scaling policy maximum: {count} > {policy.max}")
    deployment = server.store.latest_deployment_by_job(namespace, job_id)
    if deployment is not None and deployment.active() and deployment.job_create_index == job.create_index:
        return Reply(error="job scaling blocked due to active deployment")
    groups = [replace(g, count=count) if g.name == group_name else g for g in job.task_groups]
    scaled = replace(job, task_groups=groups, submit_time=ns(now))
    evaluation = _register_eval(server, scaled, TRIGGER_JOB_SCALING, now)
    enforce = bool(args.get("EnforceIndex"))
    command = commands.job_register(job=scaled, evaluation=evaluation, enforce_index=enforce,
                                    job_modify_index=as_int(args.get("JobModifyIndex") or 0) or 0,
                                    submit_time=ns(now))
    return WriteOp(command, _register_answer(evaluation))


HANDLERS: dict[str, Handler] = {
    methods.JOB_REVERT: job_revert,
    methods.JOB_STABLE: job_stable,
    methods.JOB_EVALUATE: job_evaluate,
    methods.JOB_DISPATCH: job_dispatch,
    methods.JOB_PERIODIC_FORCE: job_periodic_force,
    methods.JOB_SCALE: job_scale,
    methods.JOB_PLAN: job_plan.job_plan,
}
