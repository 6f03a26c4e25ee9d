"""The server's RPC methods: writes become one Raft command each, reads answer from the local store.

A write handler runs on the leader only (followers forward) and returns either a `Reply` (answered at
once: a validation error, or a heartbeat that changes nothing) or a `WriteOp`: the command to propose
and how to build the answer once the command is applied. Handlers never raise on bad input.

The client protocol and job registration live here; the other job RPCs in `endpoints_jobs` (and
`job_plan`), node/deployment/operator RPCs in `endpoints_cluster`, the reads in `endpoints_common`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from orchestrator.fsm import ApplyResult, commands
from orchestrator.rpc import methods
from orchestrator.structs import (
    Allocation,
    DecodeError,
    DrainStrategy,
    Node,
    decode,
    format_errors,
    job_from_api,
    validate_job,
)
from orchestrator.structs.alloc import CLIENT_FAILED
from orchestrator.structs.evaluation import (
    TRIGGER_ALLOC_STOP,
    TRIGGER_JOB_DEREGISTER,
    TRIGGER_JOB_REGISTER,
    TRIGGER_NODE_UPDATE,
    TRIGGER_RETRY_FAILED_ALLOC,
)
from orchestrator.structs.node import NODE_STATUS_READY

from . import endpoints_cluster, endpoints_jobs
from .endpoints_common import CONSISTENT_READS, Handler, Reply, WriteOp, client_allocs, get_allocs, index_only, ns
from .evals import job_evals, new_eval, node_evals

if TYPE_CHECKING:
    from .server import Server

__all__ = ["CONSISTENT_READS", "WRITE_HANDLERS", "Handler", "Reply", "WriteOp", "client_allocs", "get_allocs"]


# -- nodes -----------------------------------------------------------------------------------------------


def node_register(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    try:
        node = decode(Node, args.get("Node") or {})
    except (DecodeError, TypeError, ValueError) as exc:
        return Reply(error=f"invalid node: {exc}")
    if not node.id:
        return Reply(error="missing node ID for client registration")
    if not node.status:
        node.status = NODE_STATUS_READY
    node.computed_class = node.compute_class()
    ttl = server.leader.heartbeat_ttl()
    command = commands.node_register(node=node, update_time=ns(now))

    def after(result: ApplyResult) -> None:
        server.leader.heartbeat_seen(node.id, now, ttl)

    def respond(result: ApplyResult, index: int) -> dict[str, Any]:
        return {"HeartbeatTTL": ttl, "Index": index, "Servers": server.server_ids()}

    return WriteOp(command, respond, after)


def node_update_status(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    node_id = str(args.get("NodeID", ""))
    status = str(args.get("Status", NODE_STATUS_READY))
    node = server.store.node_by_id(node_id)
    if node is None:
        return Reply(error=f"node not found: {node_id}")
    ttl = server.leader.heartbeat_ttl()
    server.leader.heartbeat_seen(node_id, now, ttl)
    answer = {"HeartbeatTTL": ttl, "Servers": server.server_ids()}
    if node.status == status:
        return Reply({**answer, "Index": server.store.latest_index()})
    evals = []
    if status == NODE_STATUS_READY:
        evals = node_evals(server.store, node_id, node.modify_index, TRIGGER_NODE_UPDATE, server.rng, ns(now))
    command = commands.node_status_update(node_id=node_id, status=status, updated_at=ns(now), evals=evals)
    return WriteOp(command, lambda result, index: {**answer, "Index": index})


def node_update_alloc(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    try:
        updates = [decode(Allocation, a) for a in args.get("Alloc") or ()]
    except (DecodeError, TypeError, ValueError) as exc:
        return Reply(error=f"invalid allocation update: {exc}")
    if not updates:
        return Reply(error="must update at least one allocation")
    # A failed allocation may be rescheduled: one evaluation per job, in the same command (as Nomad).
    failed_jobs: set[tuple[str, str]] = set()
    for update in updates:
        if update.client_status == CLIENT_FAILED:
            existing = server.store.alloc_by_id(update.id)
            if existing is not None and not existing.client_terminal():
                failed_jobs.add((existing.namespace, existing.job_id))
    evals = job_evals(server.store, failed_jobs, TRIGGER_RETRY_FAILED_ALLOC, server.rng, ns(now))
    command = commands.alloc_client_update(allocs=updates, evals=evals, update_time=ns(now))
    return WriteOp(command, index_only)


def node_update_drain(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    node_id = str(args.get("NodeID", ""))
    if server.store.node_by_id(node_id) is None:
        return Reply(error=f"node not found: {node_id}")
    raw = args.get("DrainStrategy")
    try:
        strategy = decode(DrainStrategy, raw) if raw else None
    except (DecodeError, TypeError, ValueError) as exc:
        return Reply(error=f"invalid drain strategy: {exc}")
    if strategy is not None and strategy.deadline > 0 and not strategy.force_deadline:
        strategy = replace(strategy, force_deadline=ns(now) + strategy.deadline)
    command = commands.node_drain_update(node_id=node_id, drain_strategy=strategy,
                                         mark_eligible=bool(args.get("MarkEligible")), updated_at=ns(now))
    return WriteOp(command, index_only)


def node_update_eligibility(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    node_id = str(args.get("NodeID", ""))
    node = server.store.node_by_id(node_id)
    if node is None:
        return Reply(error=f"node not found: {node_id}")
    eligibility = str(args.get("Eligibility", ""))
    if eligibility not in ("eligible", "ineligible"):
        return Reply(error=f"invalid scheduling eligibility {eligibility!r}")
    if node.drain_strategy is not None and eligibility == "eligible":
        return Reply(error="can not set node's scheduling eligibility to eligible while it is draining")
    evals = []
    if eligibility == "eligible":
        evals = node_evals(server.store, node_id, node.modify_index, TRIGGER_NODE_UPDATE, server.rng, ns(now))
    command = commands.node_eligibility_update(node_id=node_id, eligibility=eligibility, evals=evals,
                                               updated_at=ns(now))
    return WriteOp(command, index_only)


def node_deregister(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    node_id = str(args.get("NodeID", ""))
    if server.store.node_by_id(node_id) is None:
        return Reply(error=f"node not found: {node_id}")
    return WriteOp(commands.node_deregister(node_ids=[node_id]), index_only)


# -- jobs and allocations --------------------------------------------------------------------------------


def job_register(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    raw = args.get("Job")
    if not isinstance(raw, dict):
        return Reply(error="missing job for registration")
    try:
        # job_from_api applies the defaults itself; applying them twice would change nothing but the cost.
        job = job_from_api(raw)
    except (DecodeError, TypeError, ValueError, KeyError, AttributeError) as exc:
        return Reply(error=f"invalid job: {exc}")
    errors = validate_job(job)
    if errors:
        return Reply(error=format_errors(errors))
    enforce = bool(args.get("EnforceIndex"))
    expected = int(args.get("JobModifyIndex") or 0)
    existing = server.store.job_by_id(job.namespace, job.id)
    if enforce:
        current = existing.job_modify_index if existing is not None else 0
        if current != expected:
            if expected == 0:
                return Reply(error=f"Enforcing job modify index {expected}: job already exists")
            return Reply(error=f"Enforcing job modify index {expected}: job exists with conflicting job modify "
                               f"index: {current}")
    evaluation = None
    if not job.is_periodic() and not job.is_parameterized() and not job.stop:
        evaluation = new_eval(server.rng, job, TRIGGER_JOB_REGISTER, ns(now))
    command = commands.job_register(job=job, evaluation=evaluation, enforce_index=enforce, job_modify_index=expected,
                                    submit_time=ns(now))

    def respond(result: ApplyResult, index: int) -> dict[str, Any]:
        return {"EvalID": evaluation.id if evaluation else "", "EvalCreateIndex": index if evaluation else 0,
                "JobModifyIndex": result.response.get("JobModifyIndex", index), "Index": index, "Warnings": ""}

    return WriteOp(command, respond)


def job_deregister(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    namespace = str(args.get("Namespace") or "default")
    job_id = str(args.get("JobID", ""))
    job = server.store.job_by_id(namespace, job_id)
    if job is None:
        return Reply(error=f"job not found: {job_id}")
    evaluation = None
    if not job.is_periodic() and not job.is_parameterized():
        evaluation = new_eval(server.rng, job, TRIGGER_JOB_DEREGISTER, ns(now))
    command = commands.job_deregister(namespace=namespace, job_id=job_id, purge=bool(args.get("Purge")),
                                      evaluation=evaluation, submit_time=ns(now))
    return WriteOp(command, lambda result, index: {
        "EvalID": evaluation.id if evaluation else "", "EvalCreateIndex": index if evaluation else 0,
        "JobModifyIndex": index, "Index": index})


def alloc_stop(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    """Stop one allocation: it is marked to migrate and an evaluation replaces it (Nomad's Alloc.Stop)."""
    alloc_id = str(args.get("AllocID", ""))
    alloc = server.store.alloc_by_id(alloc_id)
    if alloc is None:
        return Reply(error=f'Unknown allocation "{alloc_id}"')
    # The allocation's own job version when the job was purged meanwhile, as Nomad evaluates alloc.Job.
    job = server.store.job_by_id(alloc.namespace, alloc.job_id) or alloc.job
    if job is None:
        return Reply(error=f"job not found: {alloc.job_id}")
    evaluation = new_eval(server.rng, job, TRIGGER_ALLOC_STOP, ns(now))
    command = commands.alloc_stop(alloc_id=alloc_id, evaluation=evaluation)
    return WriteOp(command, lambda result, index: {"EvalID": evaluation.id, "Index": index})


WRITE_HANDLERS: dict[str, Handler] = {
    methods.NODE_REGISTER: node_register,
    methods.NODE_UPDATE_STATUS: node_update_status,
    methods.NODE_UPDATE_ALLOC: node_update_alloc,
    methods.NODE_UPDATE_DRAIN: node_update_drain,
    methods.NODE_UPDATE_ELIGIBILITY: node_update_eligibility,
    methods.NODE_DEREGISTER: node_deregister,
    methods.JOB_REGISTER: job_register,
    methods.JOB_DEREGISTER: job_deregister,
    methods.ALLOC_STOP: alloc_stop,
    **endpoints_jobs.HANDLERS,
    **endpoints_cluster.HANDLERS,
}
