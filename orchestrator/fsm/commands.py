"""Raft commands: a log entry's data is a msgpack map in Nomad's API shape; one typed builder per type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from orchestrator.state.persist import to_plain
from orchestrator.structs import (
    Allocation,
    DesiredTransition,
    DrainStrategy,
    Evaluation,
    Job,
    Node,
    NodeEvent,
    PlanResult,
    encode,
)
from orchestrator.structs.codec import replace

from .result import MalformedCommandError

# Builders take structs and return the bytes to propose; `decode_command` gives the map back to the FSM.
# Every time a command carries is unix nanoseconds: the FSM never reads a clock, so all servers agree.

JOB_REGISTER = "JobRegister"
JOB_DEREGISTER = "JobDeregister"
JOB_STABILITY = "JobStability"
EVAL_UPDATE = "EvalUpdate"
EVAL_DELETE = "EvalDelete"
APPLY_PLAN_RESULTS = "ApplyPlanResults"
ALLOC_CLIENT_UPDATE = "AllocClientUpdate"
ALLOC_DESIRED_TRANSITION = "AllocDesiredTransition"
ALLOC_STOP = "AllocStop"
NODE_REGISTER = "NodeRegister"
NODE_DEREGISTER = "NodeDeregister"
NODE_STATUS_UPDATE = "NodeStatusUpdate"
NODE_DRAIN_UPDATE = "NodeDrainUpdate"
NODE_ELIGIBILITY_UPDATE = "NodeEligibilityUpdate"
DEPLOYMENT_STATUS_UPDATE = "DeploymentStatusUpdate"
DEPLOYMENT_PROMOTE = "DeploymentPromote"
DEPLOYMENT_ALLOC_HEALTH = "DeploymentAllocHealth"
DEPLOYMENT_DELETE = "DeploymentDelete"
PERIODIC_LAUNCH = "PeriodicLaunch"
SCHEDULER_CONFIG = "SchedulerConfig"

COMMAND_TYPES = frozenset({
    JOB_REGISTER, JOB_DEREGISTER, JOB_STABILITY, EVAL_UPDATE, EVAL_DELETE, APPLY_PLAN_RESULTS,
    ALLOC_CLIENT_UPDATE, ALLOC_DESIRED_TRANSITION, ALLOC_STOP, NODE_REGISTER, NODE_DEREGISTER,
    NODE_STATUS_UPDATE, NODE_DRAIN_UPDATE, NODE_ELIGIBILITY_UPDATE, DEPLOYMENT_STATUS_UPDATE,
    DEPLOYMENT_PROMOTE, DEPLOYMENT_ALLOC_HEALTH, DEPLOYMENT_DELETE, PERIODIC_LAUNCH, SCHEDULER_CONFIG,
})

_ENVELOPE = ("Type", "IgnoreUnknown")


def encode_command(type_name: str, payload: Mapping[str, Any], *, ignore_unknown: bool = False) -> bytes:
    """One log entry: `{"Type": type_name, "IgnoreUnknown": ..., **payload}` packed with msgpack."""
    clash = [k for k in _ENVELOPE if k in payload]
    if clash:
        raise ValueError(f"payload may not set {clash}")
    return msgpack.packb({"Type": type_name, "IgnoreUnknown": ignore_unknown, **payload}, default=to_plain)


def decode_command(data: bytes) -> dict[str, Any]:
    """The command map of a log entry; MalformedCommandError if it is not one."""
    try:
        cmd = msgpack.unpackb(data)
    except (ValueError, TypeError) as err:  # msgpack's unpack errors are ValueErrors
        raise MalformedCommandError(f"log entry is not msgpack: {err}") from err
    if not isinstance(cmd, dict) or not isinstance(cmd.get("Type"), str):
        raise MalformedCommandError("log entry is not a command map with a string Type")
    return cmd


# -- payload pieces -----------------------------------------------------------------------------------

def _opt(obj: Any) -> Any:
    return encode(obj) if obj is not None else None


def _event(event: NodeEvent | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A node event as a struct or an API-shaped map; an empty or integer (unix ns) Timestamp is turned
    into RFC 3339 text by the FSM, from the command's time when empty."""
    if event is None or isinstance(event, Mapping):
        return dict(event) if event is not None else None
    return encode(event)


def _evals(evals: Sequence[Evaluation]) -> list[dict[str, Any]]:
    return [encode(e) for e in evals]


def _same_job(a: Job | None, b: Job | None) -> bool:
    """Whether two job objects are the same registered version (not necessarily the same status)."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    return (a.namespace, a.id, a.create_index, a.job_modify_index, a.version) == (
        b.namespace, b.id, b.create_index, b.job_modify_index, b.version)


def _stop_diff(alloc: Allocation) -> dict[str, Any]:
    """What the store takes from a stop or an eviction (Nomad's AllocationDiff): the rest is stored."""
    return {"ID": alloc.id, "Namespace": alloc.namespace, "JobID": alloc.job_id, "TaskGroup": alloc.task_group,
            "NodeID": alloc.node_id, "DesiredStatus": alloc.desired_status,
            "DesiredDescription": alloc.desired_description, "ClientStatus": alloc.client_status,
            "FollowupEvalID": alloc.followup_eval_id, "PreemptedByAllocation": alloc.preempted_by_allocation,
            "ModifyTime": alloc.modify_time}


def _client_diff(alloc: Allocation) -> dict[str, Any]:
    """The fields a client owns; every other one the store keeps."""
    return {"ID": alloc.id, "NodeID": alloc.node_id, "ClientStatus": alloc.client_status,
            "ClientDescription": alloc.client_description, "TaskStates": encode(alloc.task_states),
            "DeploymentStatus": _opt(alloc.deployment_status), "ModifyTime": alloc.modify_time}


# -- jobs ---------------------------------------------------------------------------------------------

def job_register(*, job: Job, evaluation: Evaluation | None = None, enforce_index: bool = False,
                 job_modify_index: int = 0, submit_time: int = 0) -> bytes:
    """Register a job (also dispatched and periodic children), with the evaluation created with it.
    With `enforce_index` it fails unless the job's JobModifyIndex is `job_modify_index` (0: must not exist)."""
    return encode_command(JOB_REGISTER, {"Job": encode(job), "Eval": _opt(evaluation),
                                         "EnforceIndex": enforce_index, "JobModifyIndex": job_modify_index,
                                         "SubmitTime": submit_time})


def job_deregister(*, namespace: str, job_id: str, purge: bool = False, evaluation: Evaluation | None = None,
                   submit_time: int = 0) -> bytes:
    return encode_command(JOB_DEREGISTER, {"Namespace": namespace, "JobID": job_id, "Purge": purge,
                                           "Eval": _opt(evaluation), "SubmitTime": submit_time})


def job_stability(*, namespace: str, job_id: str, version: int, stable: bool) -> bytes:
    return encode_command(JOB_STABILITY, {"Namespace": namespace, "JobID": job_id, "Version": version,
                                          "Stable": stable})


def periodic_launch(*, namespace: str, job_id: str, launch: int) -> bytes:
    return encode_command(PERIODIC_LAUNCH, {"Namespace": namespace, "JobID": job_id, "Launch": launch})


# -- evaluations and configuration --------------------------------------------------------------------

def eval_update(*, evals: Sequence[Evaluation]) -> bytes:
    return encode_command(EVAL_UPDATE, {"Evals": _evals(evals)})


def eval_delete(*, evals: Sequence[str] = (), allocs: Sequence[str] = ()) -> bytes:
    """Garbage-collect evaluations and allocations by ID."""
    return encode_command(EVAL_DELETE, {"Evals": list(evals), "Allocs": list(allocs)})


def scheduler_config(*, config: Mapping[str, Any], cas: bool = False) -> bytes:
    """Set the scheduler configuration (API shape); with `cas` only if the stored one's ModifyIndex is
    `config["ModifyIndex"]`, as Nomad's check-and-set."""
    return encode_command(SCHEDULER_CONFIG, {"Config": dict(config), "CAS": cas})


# -- allocations --------------------------------------------------------------------------------------

def apply_plan_results(*, result: PlanResult, job: Job | None, eval_id: str = "",
                       evals: Sequence[Evaluation] = (), updated_at: int = 0) -> bytes:
    """Commit what the plan applier accepted of the plan for `job` (plan.job), with evaluations to store in
    the same entry (the scheduler's eval update, preemption evals).

    The job travels once: placements go without it and get it back on apply (those for another version
    of the job are re-attached from the stored versions, as Nomad normalises plans); stops and evictions
    travel as the few fields they change. `updated_at` stamps the allocations' create and modify times.
    """
    placements: dict[str, list[dict[str, Any]]] = {}
    versions: dict[str, int | None] = {}
    for node_id, allocs in result.node_allocation.items():
        placed = placements.setdefault(node_id, [])
        for alloc in allocs:
            if not _same_job(alloc.job, job):
                # None keeps the stored allocation's job, a version is looked up when applied.
                versions[alloc.id] = alloc.job.version if alloc.job is not None else None
            placed.append(encode(replace(alloc, job=None)))
    return encode_command(APPLY_PLAN_RESULTS, {
        "Job": _opt(job),
        "EvalID": eval_id,
        "NodeAllocation": placements,
        "AllocJobVersions": versions,
        "NodeUpdate": {n: [_stop_diff(a) for a in allocs] for n, allocs in result.node_update.items()},
        "NodePreemptions": {n: [_stop_diff(a) for a in allocs] for n, allocs in result.node_preemptions.items()},
        "Deployment": _opt(result.deployment),
        "DeploymentUpdates": [dict(u) for u in result.deployment_updates],
        "Evals": _evals(evals),
        "UpdatedAt": updated_at,
    })


def alloc_client_update(*, allocs: Sequence[Allocation], evals: Sequence[Evaluation] = (),
                        update_time: int = 0) -> bytes:
    """What clients report of their allocations (only client-owned fields travel), with evaluations the
    leader creates for them (e.g. to reschedule failed ones)."""
    return encode_command(ALLOC_CLIENT_UPDATE, {"Allocs": [_client_diff(a) for a in allocs],
                                                "Evals": _evals(evals), "UpdateTime": update_time})


def alloc_desired_transition(*, allocs: Mapping[str, DesiredTransition],
                             evals: Sequence[Evaluation] = ()) -> bytes:
    return encode_command(ALLOC_DESIRED_TRANSITION, {"Allocs": {k: encode(v) for k, v in allocs.items()},
                                                     "Evals": _evals(evals)})


def alloc_stop(*, alloc_id: str, evaluation: Evaluation | None = None) -> bytes:
    """Stop one allocation: it is marked to migrate, and the evaluation replaces it (Nomad's Alloc.Stop)."""
    return encode_command(ALLOC_STOP, {"AllocID": alloc_id, "Eval": _opt(evaluation)})


# -- nodes --------------------------------------------------------------------------------------------

def node_register(*, node: Node, update_time: int = 0, evals: Sequence[Evaluation] = ()) -> bytes:
    """Register or re-register a node (its computed class is filled in when missing)."""
    if not node.computed_class:
        node = replace(node, computed_class=node.compute_class())
    return encode_command(NODE_REGISTER, {"Node": encode(node), "UpdateTime": update_time,
                                          "Evals": _evals(evals)})


def node_deregister(*, node_ids: Sequence[str], evals: Sequence[Evaluation] = ()) -> bytes:
    return encode_command(NODE_DEREGISTER, {"NodeIDs": list(node_ids), "Evals": _evals(evals)})


def node_status_update(*, node_id: str, status: str, updated_at: int, evals: Sequence[Evaluation] = (),
                       node_event: NodeEvent | Mapping[str, Any] | None = None) -> bytes:
    return encode_command(NODE_STATUS_UPDATE, {"NodeID": node_id, "Status": status, "UpdatedAt": updated_at,
                                               "Evals": _evals(evals), "NodeEvent": _event(node_event)})


def node_drain_update(*, node_id: str, drain_strategy: DrainStrategy | None, mark_eligible: bool = False,
                      evals: Sequence[Evaluation] = (), updated_at: int = 0,
                      node_event: NodeEvent | Mapping[str, Any] | None = None) -> bytes:
    """Start a drain, or cancel it with `drain_strategy=None` (optionally making the node eligible)."""
    return encode_command(NODE_DRAIN_UPDATE, {"NodeID": node_id, "DrainStrategy": _opt(drain_strategy),
                                              "MarkEligible": mark_eligible, "Evals": _evals(evals),
                                              "UpdatedAt": updated_at, "NodeEvent": _event(node_event)})


def node_eligibility_update(*, node_id: str, eligibility: str, evals: Sequence[Evaluation] = (),
                            updated_at: int = 0, node_event: NodeEvent | Mapping[str, Any] | None = None) -> bytes:
    return encode_command(NODE_ELIGIBILITY_UPDATE, {"NodeID": node_id, "Eligibility": eligibility,
                                                    "Evals": _evals(evals), "UpdatedAt": updated_at,
                                                    "NodeEvent": _event(node_event)})


# -- deployments --------------------------------------------------------------------------------------

def deployment_status_update(*, deployment_id: str, status: str, status_description: str = "",
                             job: Job | None = None, evaluation: Evaluation | None = None) -> bytes:
    """Set a deployment's status; `job` (an auto-revert) is registered in the same entry."""
    return encode_command(DEPLOYMENT_STATUS_UPDATE, {"DeploymentID": deployment_id, "Status": status,
                                                     "StatusDescription": status_description, "Job": _opt(job),
                                                     "Eval": _opt(evaluation)})


def deployment_promote(*, deployment_id: str, all_groups: bool = False, groups: Sequence[str] = (),
                       evaluation: Evaluation | None = None, updated_at: int = 0) -> bytes:
    """Promote canaries; `updated_at` restarts the promoted groups' progress deadlines."""
    return encode_command(DEPLOYMENT_PROMOTE, {"DeploymentID": deployment_id, "All": all_groups,
                                               "Groups": list(groups), "Eval": _opt(evaluation),
                                               "UpdatedAt": updated_at})


def deployment_alloc_health(*, deployment_id: str, healthy_ids: Sequence[str] = (),
                            unhealthy_ids: Sequence[str] = (), evaluation: Evaluation | None = None,
                            timestamp: int = 0, status: str = "", status_description: str = "",
                            job: Job | None = None) -> bytes:
    """Health verdicts on a deployment's allocations; a non-empty `status` also changes the deployment's
    status (e.g. failed), and `job` registers an auto-revert, in the same entry."""
    update = ({"DeploymentID": deployment_id, "Status": status, "StatusDescription": status_description}
              if status else None)
    return encode_command(DEPLOYMENT_ALLOC_HEALTH, {
        "DeploymentID": deployment_id, "HealthyAllocationIDs": list(healthy_ids),
        "UnhealthyAllocationIDs": list(unhealthy_ids), "Eval": _opt(evaluation), "Timestamp": timestamp,
        "DeploymentUpdate": update, "Job": _opt(job)})


def deployment_delete(*, deployment_ids: Sequence[str]) -> bytes:
    return encode_command(DEPLOYMENT_DELETE, {"Deployments": list(deployment_ids)})
