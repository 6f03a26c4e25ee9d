"""The server's replicated state machine: applies committed Raft log entries to the state store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.state import StateError, StateStore
from orchestrator.state.persist import dump_store, load_store

from . import allocs, deployments, evals, jobs, nodes
from . import commands as c
from .context import Context
from .result import ApplyResult, Rejected, UnknownCommandError

Handler = Callable[[Context, dict[str, Any]], ApplyResult]

HANDLERS: dict[str, Handler] = {
    c.JOB_REGISTER: jobs.job_register,
    c.JOB_DEREGISTER: jobs.job_deregister,
    c.JOB_STABILITY: jobs.job_stability,
    c.PERIODIC_LAUNCH: jobs.periodic_launch,
    c.EVAL_UPDATE: evals.eval_update,
    c.EVAL_DELETE: evals.eval_delete,
    c.SCHEDULER_CONFIG: evals.scheduler_config,
    c.APPLY_PLAN_RESULTS: allocs.apply_plan_results,
    c.ALLOC_CLIENT_UPDATE: allocs.alloc_client_update,
    c.ALLOC_DESIRED_TRANSITION: allocs.alloc_desired_transition,
    c.ALLOC_STOP: allocs.alloc_stop,
    c.NODE_REGISTER: nodes.node_register,
    c.NODE_DEREGISTER: nodes.node_deregister,
    c.NODE_STATUS_UPDATE: nodes.node_status_update,
    c.NODE_DRAIN_UPDATE: nodes.node_drain_update,
    c.NODE_ELIGIBILITY_UPDATE: nodes.node_eligibility_update,
    c.DEPLOYMENT_STATUS_UPDATE: deployments.deployment_status_update,
    c.DEPLOYMENT_PROMOTE: deployments.deployment_promote,
    c.DEPLOYMENT_ALLOC_HEALTH: deployments.deployment_alloc_health,
    c.DEPLOYMENT_DELETE: deployments.deployment_delete,
}

# What bad input raises in a handler (a refusal, a store check, a payload of the wrong shape), always
# before the handler writes anything: the command is refused and the store stays as it was.
_REFUSALS = (Rejected, StateError, ValueError, TypeError, KeyError, AttributeError, IndexError)


class FSM:
    """Applies commands in log order; every server computes the same store and the same ApplyResults.

    A refused command (ApplyResult.error) changes nothing. An entry that is no command, or of an unknown
    type without IgnoreUnknown, raises a CommandError: the server must stop, as Nomad panics.
    """

    __slots__ = ("store",)

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def apply(self, index: int, data: bytes) -> ApplyResult:
        cmd = c.decode_command(data)
        handler = HANDLERS.get(cmd["Type"])
        if handler is None:
            if cmd.get("IgnoreUnknown") is True:
                return ApplyResult(response={"Index": index}, skipped=True)
            raise UnknownCommandError(f"unknown command type {cmd['Type']!r} at index {index}")
        ctx = Context(self.store, index)
        try:
            return handler(ctx, cmd)
        except _REFUSALS as err:
            if ctx.wrote_anything():
                raise  # a bug halfway through a write: never carry on from half a command
            message = str(err) if isinstance(err, Rejected | StateError) else f"invalid {cmd['Type']}: {err!r}"
            return ApplyResult(response={"Index": index}, error=message)

    def snapshot(self) -> bytes:
        """The whole store as bytes, for a Raft snapshot."""
        return dump_store(self.store)

    def restore(self, data: bytes) -> None:
        """Replace the store's contents with a snapshot's, in place: listeners stay and hear of it."""
        load_store(self.store, data)
