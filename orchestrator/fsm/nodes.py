"""Node commands: register, deregister, status (heartbeat verdicts), drain and scheduling eligibility."""

from __future__ import annotations

from typing import Any

from orchestrator.structs import DrainStrategy, Evaluation, Node, NodeEvent
from orchestrator.structs.codec import replace
from orchestrator.structs.node import (
    ELIGIBLE,
    INELIGIBLE,
    NODE_STATUS_DISCONNECTED,
    NODE_STATUS_DOWN,
    NODE_STATUS_INIT,
    NODE_STATUS_READY,
)
from orchestrator.structs.timefmt import rfc3339_ns as rfc3339

from .context import NS_PER_SECOND, Context, get_bool, get_evals, get_int, get_str, get_strs, get_struct
from .result import ApplyResult, Rejected

NODE_STATUSES = (NODE_STATUS_INIT, NODE_STATUS_READY, NODE_STATUS_DOWN, NODE_STATUS_DISCONNECTED)


def _node(ctx: Context, node_id: str) -> Node:
    node = ctx.store.node_by_id(node_id)
    if node is None:
        raise Rejected("node not found")
    return node


def _event(cmd: dict[str, Any], updated_at: int) -> NodeEvent | None:
    """The command's node event, stamped with the command's time when it carries none (or carries unix
    nanoseconds rather than Nomad's RFC 3339 text)."""
    raw = cmd.get("NodeEvent")
    if isinstance(raw, dict) and isinstance(raw.get("Timestamp"), int) and not isinstance(raw["Timestamp"], bool):
        cmd = {"NodeEvent": {**raw, "Timestamp": rfc3339(raw["Timestamp"]) if raw["Timestamp"] else ""}}
    event = get_struct(NodeEvent, cmd, "NodeEvent")
    if event is not None and not event.timestamp and updated_at:
        event = replace(event, timestamp=rfc3339(updated_at))
    return event


def _response(ctx: Context, node_id: str, evals: list[Evaluation]) -> dict[str, Any]:
    node = ctx.store.node_by_id(node_id)
    stored = [ctx.store.eval_by_id(e.id) for e in evals]
    return {"NodeModifyIndex": node.modify_index if node is not None else ctx.index,
            "EvalIDs": [e.id for e in evals],
            "EvalCreateIndex": max((e.create_index for e in stored if e is not None), default=0)}


def node_register(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Register or re-register a node; the store keeps what the servers decided (drain, eligibility)."""
    node = get_struct(Node, cmd, "Node", required=True)
    update_time = get_int(cmd, "UpdateTime")
    evals = get_evals(cmd)
    if not node.id:
        raise Rejected("missing node ID for client registration")
    status = node.status or NODE_STATUS_INIT
    if status not in NODE_STATUSES:
        raise Rejected("invalid status for node")
    existing = ctx.store.node_by_id(node.id)
    if existing is not None and existing.secret_id and node.secret_id != existing.secret_id:
        raise Rejected("node secret ID does not match. Not registering node.")
    changes: dict[str, Any] = {"status": status, "computed_class": node.computed_class or node.compute_class()}
    if update_time:
        changes["status_updated_at"] = update_time // NS_PER_SECOND
    if existing is None and not node.events:
        changes["events"] = [NodeEvent(message="Node registered", subsystem="Cluster", create_index=ctx.index,
                                       timestamp=rfc3339(update_time) if update_time else "")]
    node = replace(node, **changes)
    ctx.watch_evals(evals)
    with ctx.write():
        stored = ctx.store.upsert_node(ctx.index, node)
        ctx.store.upsert_evals(ctx.index, evals)
    ctx.nodes.add(node.id)
    if stored.ready():
        ctx.unblock_node(node.id)  # a ready node may bring capacity, even when it only re-registered
    return ctx.result(_response(ctx, node.id, evals))


def node_deregister(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Remove nodes; refused whole if one is unknown. Their allocations stay for the scheduler to replace."""
    node_ids = get_strs(cmd, "NodeIDs")
    evals = get_evals(cmd)
    if not node_ids:
        raise Rejected("missing node IDs for client deregistration")
    for node_id in node_ids:
        _node(ctx, node_id)
    ctx.watch_evals(evals)
    with ctx.write():
        for node_id in dict.fromkeys(node_ids):
            ctx.store.delete_node(ctx.index, node_id)
        ctx.store.upsert_evals(ctx.index, evals)
    ctx.nodes.update(node_ids)
    return ctx.result({"EvalIDs": [e.id for e in evals]})


def node_status_update(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    node_id = get_str(cmd, "NodeID", required=True)
    status = get_str(cmd, "Status")
    updated_at = get_int(cmd, "UpdatedAt")
    evals = get_evals(cmd)
    event = _event(cmd, updated_at)
    if status not in NODE_STATUSES:
        raise Rejected("invalid status for node")
    _node(ctx, node_id)
    ctx.watch_evals(evals)
    with ctx.write():
        ctx.store.update_node_status(ctx.index, node_id, status, updated_at // NS_PER_SECOND)
        ctx.store.touch_node(ctx.index, node_id, event=event)
        ctx.store.upsert_evals(ctx.index, evals)
    ctx.nodes.add(node_id)
    if status == NODE_STATUS_READY:
        ctx.unblock_node(node_id)
    return ctx.result(_response(ctx, node_id, evals))


def node_drain_update(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Start a drain (the node turns ineligible) or cancel it, optionally making the node eligible again."""
    node_id = get_str(cmd, "NodeID", required=True)
    drain = get_struct(DrainStrategy, cmd, "DrainStrategy")
    mark_eligible = get_bool(cmd, "MarkEligible")
    updated_at = get_int(cmd, "UpdatedAt")
    evals = get_evals(cmd)
    event = _event(cmd, updated_at)
    node = _node(ctx, node_id)
    if drain is not None and updated_at:
        # As Nomad's Node.UpdateDrain: a drain keeps the start of the one it replaces; a deadline becomes
        # the time remaining allocations are stopped at.
        if not drain.started_at:
            drain.started_at = node.drain_strategy.started_at if node.drain_strategy is not None else updated_at
        if drain.deadline > 0 and not drain.force_deadline:
            drain.force_deadline = updated_at + drain.deadline
    ctx.watch_evals(evals)
    with ctx.write():
        ctx.store.update_node_drain(ctx.index, node_id, drain, mark_eligible)
        ctx.store.touch_node(ctx.index, node_id, updated_at=updated_at // NS_PER_SECOND if updated_at else None,
                             event=event)
        ctx.store.upsert_evals(ctx.index, evals)
    ctx.nodes.add(node_id)  # the leader's drainer wakes on it: nothing else may change on an idle node
    _unblock_if_eligible(ctx, node)
    return ctx.result(_response(ctx, node_id, evals))


def node_eligibility_update(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    node_id = get_str(cmd, "NodeID", required=True)
    eligibility = get_str(cmd, "Eligibility")
    updated_at = get_int(cmd, "UpdatedAt")
    evals = get_evals(cmd)
    event = _event(cmd, updated_at)
    node = _node(ctx, node_id)
    if eligibility not in (ELIGIBLE, INELIGIBLE):
        raise Rejected(f'invalid scheduling eligibility "{eligibility}"')
    if eligibility == ELIGIBLE and node.drain_strategy is not None:
        raise Rejected("can not set node's scheduling eligibility to eligible while it is draining")
    ctx.watch_evals(evals)
    with ctx.write():
        ctx.store.update_node_eligibility(ctx.index, node_id, eligibility)
        ctx.store.touch_node(ctx.index, node_id, updated_at=updated_at // NS_PER_SECOND if updated_at else None,
                             event=event)
        ctx.store.upsert_evals(ctx.index, evals)
    ctx.nodes.add(node_id)  # the leader's drainer wakes on it: nothing else may change on an idle node
    _unblock_if_eligible(ctx, node)
    return ctx.result(_response(ctx, node_id, evals))


def _unblock_if_eligible(ctx: Context, before: Node) -> None:
    """A node turned eligible may take the work blocked evaluations wait for (Nomad unblocks then)."""
    after = ctx.store.node_by_id(before.id)
    if after is not None and before.scheduling_eligibility != ELIGIBLE and after.scheduling_eligibility == ELIGIBLE:
        ctx.unblock_node(before.id)
