"""What the HTTP API (and anything else in the agent process) may ask of the running agent.

The API never touches the runtime or the sans-IO server directly: it awaits these methods, so it can be
tested against a small fake and runs unchanged whether the agent is a server, a client or both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.state import StateReader
from orchestrator.structs import Node


class RpcError(Exception):
    """A server answered an RPC with an error (Nomad's error text in `str(exc)`), or none answered in time.

    `no_leader` is set for "No cluster leader" (the API answers 500); `not_found` for unknown objects
    (404); everything else from a write handler is a bad request (400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.no_leader = "No cluster leader" in message or "leadership lost" in message
        self.not_found = "not found" in message


@dataclass(slots=True)
class QueryMeta:
    """What Nomad returns with every read: X-Nomad-Index, X-Nomad-KnownLeader, X-Nomad-LastContact."""

    index: int = 0
    known_leader: bool = False
    last_contact_ms: int = 0


@dataclass(slots=True)
class Member:
    """A server as the membership protocol (serf's place) sees it: `yurt server members` prints these."""

    name: str  # "<node name>.<region>", as Nomad's serf member names
    addr: str  # IP of the serf (membership) port
    port: int  # serf port (4648)
    status: str  # "alive", "failed", "left"
    tags: dict[str, str] = field(default_factory=dict)  # role, region, dc, port (rpc), build, vsn, expect...


@dataclass(frozen=True, slots=True)
class LocalTask:
    """One task of an allocation this agent's client runs, as the /v1/client routes see it."""

    state: str  # Nomad's task state: "pending", "running", "dead"
    started: bool  # it ran at least once, so it may have logs
    pid: int | None  # its process group while running, for drivers that run processes (raw_exec); else None
    handle: str | None = None  # its driver handle while it has one (docker's stats come through it)


@dataclass(frozen=True, slots=True)
class LocalAlloc:
    """An allocation this agent's client runs (or ran and still keeps): its directory and its tasks."""

    id: str
    task_group: str
    dir: Path | None  # <alloc dir>/<alloc id>; None when it is gone from disk
    tasks: dict[str, LocalTask]


class AgentHandle(Protocol):
    """The running agent, as the HTTP API sees it."""

    name: str  # node name (`-node` / `name`), e.g. "s1"
    region: str
    datacenter: str

    async def rpc(self, method: str, args: dict[str, Any], *, timeout: float = 30.0) -> Any:
        """Call `method` (orchestrator.rpc.methods) on the local server, which forwards to the leader as
        needed; the result dict, or RpcError. A client-only agent sends it to one of its servers."""
        ...

    async def state(self, *, stale: bool = False) -> tuple[StateReader, QueryMeta]:
        """The state to serve a read from. Not stale: linearizable (a read index from the leader, then this
        server's state once it applied that index; RpcError when there is no leader). Stale: this
        server's state as it is. The reader must not be kept across awaits (take a snapshot)."""
        ...

    async def wait_for(self, tables: Iterable[str], min_index: int, timeout: float) -> int:
        """A blocking query's wait: return once any of `tables` (orchestrator.state table names) has an
        index above `min_index`, or `timeout` seconds passed; the current max index of those tables."""
        ...

    def leader_address(self) -> str:
        """The leader's RPC address ("127.0.0.1:4647"), "" when unknown: /v1/status/leader."""
        ...

    def peers(self) -> list[str]:
        """The Raft voters' RPC addresses: /v1/status/peers."""
        ...

    def raft_configuration(self) -> dict[str, Any]:
        """/v1/operator/raft/configuration: {"Servers": [{ID, Node, Address, Leader, Voter, RaftProtocol}],
        "Index"}."""
        ...

    def members(self) -> list[Member]:
        ...

    async def join(self, addresses: list[str]) -> int:
        """`server join`: contact these serf addresses; how many were reached."""
        ...

    async def force_leave(self, node: str) -> None:
        ...

    def self_info(self) -> dict[str, Any]:
        """/v1/agent/self: {"config": {...}, "member": {...}, "stats": {...}}."""
        ...

    def metrics(self) -> dict[str, Any]:
        """/v1/metrics: {"Timestamp", "Gauges": [...], "Counters": [...], "Samples": [...]}."""
        ...

    def events(self, topics: dict[str, list[str]], index: int) -> AsyncIterator[dict[str, Any]]:
        """/v1/event/stream: events {Topic, Type, Key, Namespace, Index, Payload} from `index` on."""
        ...

    # -- the local client (/v1/client): agents without one answer 501, so these may be absent ------------

    def client_node(self) -> Node | None:
        """The node this agent's client fingerprinted and registered; None when the agent runs no client."""
        ...

    def local_alloc(self, alloc_id: str) -> LocalAlloc | None:
        """An allocation this agent's client runs, by full ID; None when it is not on this client."""
        ...

    def signal_task(self, alloc_id: str, task: str, sig: int) -> bool:
        """Send `sig` to a running task of a local allocation (its whole process group for raw_exec);
        False when the task is not running or its driver cannot signal."""
        ...
