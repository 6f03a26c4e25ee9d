"""Shared by the endpoint modules: the Reply and WriteOp handlers return, argument helpers, and the reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.fsm import ApplyResult
from orchestrator.rpc import methods
from orchestrator.structs import Job, encode

if TYPE_CHECKING:
    from .server import Server


@dataclass(slots=True)
class Reply:
    result: Any = None
    error: str = ""


@dataclass(slots=True)
class WriteOp:
    """A command to propose, and the answer to give once it is applied (`respond(apply_result)`)."""

    command: bytes
    respond: Callable[[ApplyResult, int], Any]
    after_apply: Callable[[ApplyResult], None] | None = None


Handler = Callable[["Server", dict[str, Any], float], "Reply | WriteOp"]


def ns(now: float) -> int:
    """The leader's time as the unix nanoseconds commands carry."""
    return int(now * 1e9)


def index_only(result: ApplyResult, index: int) -> dict[str, Any]:
    return {"Index": index}


def namespace_of(args: dict[str, Any]) -> str:
    return str(args.get("Namespace") or "default")


def job_of(server: Server, args: dict[str, Any]) -> tuple[str, Job | None]:
    """The JobID named in the request, and the job registered under it (None if there is none)."""
    job_id = str(args.get("JobID") or "")
    return job_id, server.store.job_by_id(namespace_of(args), job_id) if job_id else None


def as_int(value: Any) -> int | None:
    """An integer argument (JSON numbers may arrive as integral floats); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def multierror(errors: list[str]) -> str:
    """Go's multierror text, as Nomad returns several failures at once."""
    noun = "error" if len(errors) == 1 else "errors"
    return f"{len(errors)} {noun} occurred:\n" + "".join(f"\t* {e}\n" for e in errors) + "\n"


# -- reads (any server, stale allowed) -------------------------------------------------------------------


def client_allocs(server: Server, node_id: str) -> dict[str, Any]:
    """Node.GetClientAllocs' answer: each allocation's AllocModifyIndex, and the node's allocs index."""
    allocs = {a.id: a.alloc_modify_index for a in server.store.allocs_by_node(node_id)}
    return {"Allocs": allocs, "Index": server.node_alloc_index(node_id)}


def get_allocs(server: Server, args: dict[str, Any]) -> Reply:
    found = []
    for alloc_id in args.get("AllocIDs") or ():
        alloc = server.store.alloc_by_id(str(alloc_id))
        if alloc is not None:
            found.append(encode(alloc))
    return Reply({"Allocs": found, "Index": server.store.latest_index()})


def get_job(server: Server, args: dict[str, Any]) -> Reply:
    job = server.store.job_by_id(str(args.get("Namespace") or "default"), str(args.get("JobID", "")))
    return Reply({"Job": encode(job) if job is not None else None, "Index": server.store.latest_index()})


def get_node(server: Server, args: dict[str, Any]) -> Reply:
    node = server.store.node_by_id(str(args.get("NodeID", "")))
    return Reply({"Node": encode(node) if node is not None else None, "Index": server.store.latest_index()})


def get_alloc(server: Server, args: dict[str, Any]) -> Reply:
    alloc = server.store.alloc_by_id(str(args.get("AllocID", "")))
    return Reply({"Alloc": encode(alloc) if alloc is not None else None, "Index": server.store.latest_index()})


def read_index(server: Server, args: dict[str, Any]) -> Reply:
    return Reply({"Index": server.raft.applied_index})


ReadHandler = Callable[["Server", dict[str, Any]], Reply]
CONSISTENT_READS: dict[str, ReadHandler] = {
    methods.STATUS_READ_INDEX: read_index,
    methods.JOB_GET: get_job,
    methods.NODE_GET: get_node,
    methods.ALLOC_GET: get_alloc,
}
