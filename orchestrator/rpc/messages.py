"""RPC envelopes exchanged between agents (client to server, server to server), and the method names.

Arguments and results are plain dicts in Nomad's API JSON shape (`structs.encode` output), so the asyncio
runtime can msgpack them unchanged and the simulator can pass them by reference; nobody mutates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class RpcRequest:
    """`method` called with `args` by agent `src`; `id` is unique among the requests `src` has open."""

    id: int
    src: str
    method: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RpcResponse:
    """The answer to request `id`: `result` on success, else a non-empty `error` (Nomad's error text)."""

    id: int
    result: Any = None
    error: str = ""
    # Server-side view piggybacked on every answer, as Nomad's QueryMeta: lets clients find the leader.
    index: int = 0
    leader: str = ""


class methods:
    """The RPC methods a server answers; writes are forwarded to the leader, reads may be stale."""

    # Client protocol. Results are dicts; times in seconds (floats) unless the key ends in Time/At (unix ns).
    # Node.Register     args {Node}                 -> {HeartbeatTTL, Index, Servers: [server ids]}
    # Node.UpdateStatus args {NodeID, Status}       -> {HeartbeatTTL, Index, Servers}; error "node not found"
    #                                                  when the servers lost it (the client registers again)
    # Node.GetClientAllocs args {NodeID, MinQueryIndex, MaxQueryTime (s)} -> {Allocs: {alloc id: AllocModifyIndex},
    #                   Index}; a blocking query: answered when the node's allocations change past
    #                   MinQueryIndex or after MaxQueryTime; served by any server (stale reads allowed)
    # Alloc.GetAllocs   args {AllocIDs}             -> {Allocs: [Allocation API dicts, Job included], Index}
    # Node.UpdateAlloc  args {Alloc: [client-side alloc updates: ID, ClientStatus, ClientDescription,
    #                   TaskStates, DeploymentStatus]} -> {Index}
    NODE_REGISTER = "Node.Register"
    NODE_UPDATE_STATUS = "Node.UpdateStatus"
    NODE_GET_CLIENT_ALLOCS = "Node.GetClientAllocs"
    ALLOC_GET_ALLOCS = "Alloc.GetAllocs"
    NODE_UPDATE_ALLOC = "Node.UpdateAlloc"
    NODE_UPDATE_DRAIN = "Node.UpdateDrain"       # args: NodeID, DrainStrategy|None, MarkEligible
    NODE_UPDATE_ELIGIBILITY = "Node.UpdateEligibility"  # args: NodeID, Eligibility
    NODE_DEREGISTER = "Node.Deregister"          # args: NodeID
    JOB_REGISTER = "Job.Register"                # args: Job, EnforceIndex, JobModifyIndex -> EvalID, ...
    JOB_DEREGISTER = "Job.Deregister"            # args: Namespace, JobID, Purge -> EvalID
    JOB_SCALE = "Job.Scale"                      # args: Namespace, JobID, Group, Count
    ALLOC_STOP = "Alloc.Stop"                    # args: AllocID -> EvalID
    STATUS_LEADER = "Status.Leader"              # -> leader id ("" when unknown)
    # Reads of one object: {Namespace, JobID} / {NodeID} / {AllocID} -> {Job|Node|Alloc: dict or None, Index}.
    # Linearizable unless AllowStale: served by the leader after a Raft read index, so a read made after
    # a write was acknowledged sees it. With AllowStale any server answers from its own state.
    # A linearizable read on any server (etcd's follower read): the leader confirms its leadership and
    # answers its commit index {Index}; the caller then serves the read from a state that applied it.
    STATUS_READ_INDEX = "Status.ReadIndex"
    JOB_GET = "Job.GetJob"
    NODE_GET = "Node.GetNode"
    ALLOC_GET = "Alloc.GetAlloc"

    # The rest of Nomad's job, node, deployment and operator RPCs (the HTTP API's writes). Args and results
    # use Nomad's request/response field names; every result has "Index" (the Raft index it was applied at).
    JOB_REVERT = "Job.Revert"              # {Namespace, JobID, JobVersion, EnforcePriorVersion?} -> {EvalID, ...}
    JOB_STABLE = "Job.Stable"              # {Namespace, JobID, JobVersion, Stable} -> {Index}
    JOB_EVALUATE = "Job.Evaluate"          # {Namespace, JobID, EvalOptions: {ForceReschedule}} -> {EvalID, ...}
    JOB_DISPATCH = "Job.Dispatch"          # {Namespace, JobID, Payload (base64), Meta} -> {DispatchedJobID,
    #                                        EvalID, EvalCreateIndex, JobCreateIndex, Index}
    JOB_PERIODIC_FORCE = "Job.PeriodicForce"  # {Namespace, JobID} -> {EvalID, EvalCreateIndex, Index}
    JOB_PLAN = "Job.Plan"                  # {Job, Diff} -> Nomad's JobPlanResponse: {Annotations, FailedTGAllocs,
    #                                        JobModifyIndex, CreatedEvals, Diff, NextPeriodicLaunch, Warnings, Index}
    NODE_EVALUATE = "Node.Evaluate"        # {NodeID} -> {EvalIDs, EvalCreateIndex, Index}
    NODE_PURGE = "Node.Purge"              # {NodeID} -> {Index}
    DEPLOYMENT_PROMOTE = "Deployment.Promote"  # {DeploymentID, All, Groups} -> {EvalID, Index}
    DEPLOYMENT_FAIL = "Deployment.Fail"    # {DeploymentID} -> {EvalID, Index}
    DEPLOYMENT_PAUSE = "Deployment.Pause"  # {DeploymentID, Pause} -> {Index}
    SYSTEM_GC = "System.GarbageCollect"    # {} -> {Index}
    OPERATOR_RAFT_REMOVE_PEER = "Operator.RaftRemovePeer"  # {Address} or {ID} -> {Index}

    WRITES = frozenset({NODE_REGISTER, NODE_UPDATE_STATUS, NODE_UPDATE_ALLOC, NODE_UPDATE_DRAIN,
                        NODE_UPDATE_ELIGIBILITY, NODE_DEREGISTER, JOB_REGISTER, JOB_DEREGISTER, JOB_SCALE,
                        ALLOC_STOP, JOB_REVERT, JOB_STABLE, JOB_EVALUATE, JOB_DISPATCH, JOB_PERIODIC_FORCE,
                        JOB_PLAN, NODE_EVALUATE, NODE_PURGE, DEPLOYMENT_PROMOTE, DEPLOYMENT_FAIL, DEPLOYMENT_PAUSE,
                        SYSTEM_GC, OPERATOR_RAFT_REMOVE_PEER})
