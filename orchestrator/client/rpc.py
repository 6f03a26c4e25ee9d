"""The client's side of RPC: which server to ask, and the requests it is waiting on (with local timeouts)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.rpc.messages import RpcRequest, RpcResponse, methods


class ListRng(Protocol):
    def randrange(self, stop: int, /) -> int: ...


class ServerList:
    """Known servers, primary first, plus the leader when a response named it.

    Like Nomad's client server manager, a server that failed a request moves to the back of the list;
    unlike it, writes go straight to the leader when known (saving the servers a forwarding hop).
    """

    def __init__(self, servers: list[str], rng: ListRng):
        if not servers:
            raise ValueError("a client needs at least one server")
        self.rng = rng
        self.servers = self._rotated(list(servers))
        self.leader = ""
        # A leader that just failed us is not taken back on another server's word for a while: its
        # followers keep naming it until they notice it is gone.
        self._distrusted: dict[str, float] = {}

    def _rotated(self, servers: list[str]) -> list[str]:
        start = self.rng.randrange(len(servers))  # spread clients over the servers
        return servers[start:] + servers[:start]

    @property
    def primary(self) -> str:
        return self.servers[0]

    def target(self, method: str) -> str:
        return self.leader if self.leader and method in methods.WRITES else self.primary

    def failed(self, now: float, server: str, hold: float) -> None:
        if server == self.leader:
            self.leader = ""
            self._distrusted[server] = now + hold
        if server in self.servers and len(self.servers) > 1:
            self.servers.remove(server)
            self.servers.append(server)

    def learn(self, now: float, leader: str, servers: list[str] | None) -> None:
        if servers and set(servers) != set(self.servers):
            primary = self.primary
            fresh = self._rotated(list(dict.fromkeys(servers)))
            if primary in fresh:
                fresh.remove(primary)
                fresh.insert(0, primary)
            self.servers = fresh
        if leader and leader != self.leader and self._distrusted.get(leader, 0.0) <= now:
            self._distrusted.pop(leader, None)
            self.leader = leader

    def __len__(self) -> int:
        return len(self.servers)


@dataclass(slots=True)
class Call:
    """A request in flight: what it was for, where it went, and when the client gives up on it."""

    id: int
    kind: str
    method: str
    server: str
    sent_at: float
    deadline: float
    payload: Any = None


class CallTracker:
    """Request ids, the outbox, and local deadlines: a request unanswered by its deadline is failed here,
    and a response that arrives after that (or twice) is ignored."""

    def __init__(self, src: str, first_id: int = 0):
        self.src = src
        self.outbox: list[tuple[str, RpcRequest]] = []
        self.pending: dict[int, Call] = {}
        self._deadlines: list[tuple[float, int]] = []
        # A restarted agent starts its ids elsewhere (the caller draws `first_id`), so an answer meant for
        # its previous life can never be taken for one of its own requests.
        self._next_id = first_id

    def send(self, now: float, kind: str, server: str, method: str, args: dict[str, Any], timeout: float,
             payload: Any = None) -> Call:
        self._next_id += 1
        call = Call(self._next_id, kind, method, server, now, now + timeout, payload)
        self.pending[call.id] = call
        heapq.heappush(self._deadlines, (call.deadline, call.id))
        self.outbox.append((server, RpcRequest(id=call.id, src=self.src, method=method, args=args)))
        return call

    def answer(self, response: RpcResponse) -> Call | None:
        return self.pending.pop(response.id, None)

    def expired(self, now: float) -> list[Call]:
        out = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, call_id = heapq.heappop(heap)
            call = self.pending.pop(call_id, None)
            if call is not None:
                out.append(call)
        return out

    def cancel(self, kind: str) -> None:
        """Forget requests of one kind: their answers will be ignored."""
        for call_id in [c.id for c in self.pending.values() if c.kind == kind]:
            del self.pending[call_id]

    def in_flight(self, kind: str) -> bool:
        return any(c.kind == kind for c in self.pending.values())

    def next_deadline(self) -> float | None:
        heap = self._deadlines
        while heap and heap[0][1] not in self.pending:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def take_outbox(self) -> list[tuple[str, RpcRequest]]:
        out, self.outbox = self.outbox, []
        return out
