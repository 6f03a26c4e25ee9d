"""Evaluation commands (upsert, garbage collection) and the operator's scheduler configuration."""

from __future__ import annotations

from typing import Any

from .context import Context, get_bool, get_dict, get_evals, get_strs
from .result import ApplyResult, Rejected


def eval_update(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Upsert evaluations (a scheduler's status update, a leader's new ones); the store records their
    queued allocations in the job summary and cancels the blocked ones a successful one made pointless."""
    evals = get_evals(cmd)
    ctx.watch_evals(evals)
    with ctx.write():
        ctx.store.upsert_evals(ctx.index, evals)
    return ctx.result()


def eval_delete(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Garbage collection: evaluations and allocations by ID; IDs already gone are ignored."""
    eval_ids = get_strs(cmd, "Evals")
    alloc_ids = get_strs(cmd, "Allocs")
    ctx.watch_allocs(alloc_ids)
    with ctx.write():
        ctx.store.delete_evals(ctx.index, eval_ids, alloc_ids)
    return ctx.result()


def scheduler_config(ctx: Context, cmd: dict[str, Any]) -> ApplyResult:
    """Store the scheduler configuration; with CAS, only over the ModifyIndex the operator read."""
    config = get_dict(cmd, "Config")
    cas = get_bool(cmd, "CAS")
    cas_index = config.get("ModifyIndex") or 0
    if cas and (isinstance(cas_index, bool) or not isinstance(cas_index, int)):
        raise Rejected(f"Config.ModifyIndex: expected an integer, got {cas_index!r}")
    with ctx.write():
        updated = ctx.store.set_scheduler_config(ctx.index, config, cas_index=cas_index if cas else None)
    return ctx.result({"Updated": updated})
