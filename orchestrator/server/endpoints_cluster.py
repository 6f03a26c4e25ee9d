"""Node, deployment, system and operator RPCs: node evaluate and purge, promote/fail/pause, GC, Raft peers."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from orchestrator.fsm import ApplyResult, commands
from orchestrator.raft import ConfChange, ConfChangeKind, NotLeaderError, ProposalDroppedError
from orchestrator.rpc import methods
from orchestrator.state.jobs import spec_changed
from orchestrator.structs import Deployment, Evaluation, Job
from orchestrator.structs.evaluation import (
    DEPLOYMENT_FAILED,
    DEPLOYMENT_PAUSED,
    DEPLOYMENT_RUNNING,
    TRIGGER_DEPLOYMENT_WATCHER,
    TRIGGER_NODE_UPDATE,
)

from .deployment_watcher import (
    DESC_RUNNING,
    no_rollback_target_description,
    rollback_description,
    rollback_noop_description,
)
from .endpoints_common import Handler, Reply, WriteOp, multierror, ns
from .evals import new_eval, node_evals

if TYPE_CHECKING:
    from .server import Server

# Nomad's DeploymentStatusDescription* texts for the operator's own actions.
DESC_PAUSED = "Deployment is paused"
DESC_FAILED_BY_USER = "Deployment marked as failed"


# -- nodes -----------------------------------------------------------------------------------------------


def node_evaluate(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    """One evaluation per job with work on the node, and per system job (Nomad's Node.Evaluate)."""
    node_id = str(args.get("NodeID") or "")
    if not node_id:
        return Reply(error="missing node ID for evaluation")
    node = server.store.node_by_id(node_id)
    if node is None:
        return Reply(error="node not found")
    evals = node_evals(server.store, node_id, node.modify_index, TRIGGER_NODE_UPDATE, server.rng, ns(now))
    if not evals:
        return Reply({"EvalIDs": [], "EvalCreateIndex": 0, "NodeModifyIndex": node.modify_index,
                      "Index": server.store.latest_index()})
    return WriteOp(commands.eval_update(evals=evals), lambda result, index: {
        "EvalIDs": [e.id for e in evals], "EvalCreateIndex": index, "NodeModifyIndex": node.modify_index,
        "Index": index})


def node_purge(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    """Remove a node from the state, with evaluations that replace the work it had (`nomad node purge`)."""
    node_id = str(args.get("NodeID") or "")
    if not node_id:
        return Reply(error="missing node ID for client deregistration")
    node = server.store.node_by_id(node_id)
    if node is None:
        return Reply(error="node not found")
    evals = node_evals(server.store, node_id, node.modify_index, TRIGGER_NODE_UPDATE, server.rng, ns(now))
    return WriteOp(commands.node_deregister(node_ids=[node_id], evals=evals), lambda result, index: {
        "EvalIDs": [e.id for e in evals], "EvalCreateIndex": index if evals else 0, "NodeModifyIndex": index,
        "Index": index})


# -- deployments -----------------------------------------------------------------------------------------


def _deployment(server: Server, args: dict[str, Any], verb: str) -> tuple[Deployment | None, Job | None, str]:
    """The active deployment a request names and its job, or Nomad's error text."""
    deployment_id = str(args.get("DeploymentID") or "")
    if not deployment_id:
        return None, None, "missing deployment ID"
    deployment = server.store.deployment_by_id(deployment_id)
    if deployment is None:
        return None, None, "deployment not found"
    if not deployment.active():
        return None, None, f"can't {verb} terminal deployment"
    job = server.store.job_by_id(deployment.namespace, deployment.job_id)
    if job is None:
        return None, None, f'job "{deployment.job_id}" for deployment "{deployment.id}" not found'
    return deployment, job, ""


def _watcher_eval(server: Server, job: Job, deployment: Deployment, now: float) -> Evaluation:
    return new_eval(server.rng, job, TRIGGER_DEPLOYMENT_WATCHER, ns(now), deployment_id=deployment.id)


def _update_answer(evaluation: Evaluation | None, reverted_to: Job | None = None) -> Any:
    """Nomad's DeploymentUpdateResponse; RevertedJobVersion is the version reverted to (not the new one)."""
    def respond(result: ApplyResult, index: int) -> dict[str, Any]:
        answer = {"EvalID": evaluation.id if evaluation else "", "EvalCreateIndex": index if evaluation else 0,
                  "DeploymentModifyIndex": result.response.get("DeploymentModifyIndex", index), "Index": index}
        if reverted_to is not None:
            answer["RevertedJobVersion"] = reverted_to.version
        return answer
    return respond


def deployment_promote(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    """Promote the healthy canaries of some groups (`Groups`) or all (`All`)."""
    deployment, job, error = _deployment(server, args, "promote")
    if deployment is None or job is None:
        return Reply(error=error)
    all_groups = bool(args.get("All"))
    groups = [str(g) for g in args.get("Groups") or ()]
    chosen = {name for name in deployment.task_groups if all_groups or name in groups}
    canaries = {c for name in chosen for c in deployment.task_groups[name].placed_canaries}
    unhealthy, have_canaries = [], False
    for alloc in server.store.allocs_by_deployment(deployment.id):
        if alloc.id not in canaries or alloc.terminal():
            continue  # a canary that stopped was replaced by another placed canary
        if alloc.deployment_status is None or alloc.deployment_status.healthy is not True:
            unhealthy.append(f'Canary allocation "{alloc.id}" for group "{alloc.task_group}" is not healthy')
        else:
            have_canaries = True
    if unhealthy:
        return Reply(error=multierror(unhealthy))
    if not have_canaries:
        return Reply(error="no canaries to promote")
    evaluation = _watcher_eval(server, job, deployment, now)
    command = commands.deployment_promote(deployment_id=deployment.id, all_groups=all_groups, groups=groups,
                                          evaluation=evaluation, updated_at=ns(now))
    return WriteOp(command, _update_answer(evaluation))


def deployment_fail(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    """Mark a deployment failed; with auto-revert, register the latest stable version again in the same write."""
    deployment, job, error = _deployment(server, args, "fail")
    if deployment is None or job is None:
        return Reply(error=error)
    description, revert = DESC_FAILED_BY_USER, None
    if any(state.auto_revert for state in deployment.task_groups.values()):
        stable = next((v for v in server.store.job_versions(job.namespace, job.id) if v.stable), None)
        if stable is None:
            description = no_rollback_target_description(description)
        elif not spec_changed(job, stable):
            # Reverting to the very spec that is failing would only fail again (Nomad's rollback no-op).
            description = rollback_noop_description(description, stable.version)
        else:
            description = rollback_description(description, stable.version)
            revert = stable
    evaluation = _watcher_eval(server, job, deployment, now)
    command = commands.deployment_status_update(
        deployment_id=deployment.id, status=DEPLOYMENT_FAILED, status_description=description,
        job=replace(revert, stable=False, submit_time=ns(now)) if revert is not None else None, evaluation=evaluation)
    return WriteOp(command, _update_answer(evaluation, revert))


def deployment_pause(server: Server, args: dict[str, Any], now: float) -> Reply | WriteOp:
    """Pause a deployment (`Pause: true`) or resume it, with an evaluation to pick the rollout up again."""
    pause = bool(args.get("Pause"))
    deployment, job, error = _deployment(server, args, "pause" if pause else "resume")
    if deployment is None or job is None:
        return Reply(error=error)
    evaluation = None if pause else _watcher_eval(server, job, deployment, now)
    command = commands.deployment_status_update(
        deployment_id=deployment.id, status=DEPLOYMENT_PAUSED if pause else DEPLOYMENT_RUNNING,
        status_description=DESC_PAUSED if pause else DESC_RUNNING, evaluation=evaluation)
    return WriteOp(command, _update_answer(evaluation))


# -- system and operator ---------------------------------------------------------------------------------


def system_gc(server: Server, args: dict[str, Any], now: float) -> Reply:
    """Collect every terminal object now, whatever its age; answered once the deletions are proposed
    (Nomad answers as soon as its forced-GC core evaluation is queued)."""
    assert server.leader is not None  # write handlers run on the leader only
    server.leader.housekeeping.collect_garbage(now, force=True)
    return Reply({"Index": server.store.latest_index()})


def raft_remove_peer(server: Server, args: dict[str, Any], now: float) -> Reply:
    """Remove a server from the Raft configuration, named by `ID` or `Address` (yurt's server IDs are
    their addresses)."""
    peer_id, address = str(args.get("ID") or ""), str(args.get("Address") or "")
    if not peer_id and not address:
        return Reply(error="Must specify either ?id with the server's ID or ?address with IP:port of peer to remove")
    voters = server.raft.voters
    if peer_id and peer_id not in voters:
        return Reply(error=f'id "{peer_id}" was not found in the Raft configuration')
    if not peer_id and address not in voters:
        return Reply(error=f'address "{address}" was not found in the Raft configuration')
    try:
        index = server.raft.propose_conf_change(ConfChange(kind=ConfChangeKind.REMOVE_NODE,
                                                           node_id=peer_id or address))
    except NotLeaderError:
        return Reply(error="No cluster leader")
    except (ProposalDroppedError, ValueError) as exc:  # a change already pending; the last voter
        return Reply(error=str(exc))
    return Reply({"Index": index})


HANDLERS: dict[str, Handler] = {
    methods.NODE_EVALUATE: node_evaluate,
    methods.NODE_PURGE: node_purge,
    methods.DEPLOYMENT_PROMOTE: deployment_promote,
    methods.DEPLOYMENT_FAIL: deployment_fail,
    methods.DEPLOYMENT_PAUSE: deployment_pause,
    methods.SYSTEM_GC: system_gc,
    methods.OPERATOR_RAFT_REMOVE_PEER: raft_remove_peer,
}
