"""Toy sans-IO agents for the simulator's tests and micro-benchmark: scripted senders, counters, heartbeats."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import simpy

from orchestrator.rpc.messages import RpcRequest, RpcResponse, methods
from orchestrator.runtime.ports import AgentReady
from sim.network import Network
from sim.runtime import SimRuntime
from sim.trace import Trace

EPOCH = 1_790_000_000.0


@dataclass(frozen=True, slots=True)
class Note:
    """A toy message; `type` and `id` show up in trace summaries."""

    type: str
    id: int = 0


class Scripted:
    """Sends planned messages at planned offsets from its start, echoes pings, and records every input."""

    def __init__(self, agent_id: str, now: float, plan: list[tuple[float, str, Any]] = (), echo: bool = False):
        self.id = agent_id
        self.started = now
        self.plan = sorted(((now + offset, dst, msg) for offset, dst, msg in plan), key=lambda p: p[0])
        self.echo = echo
        self.inbox: list[tuple[float, str, Any]] = []
        self.ticks: list[float] = []
        self.log: list[tuple[str, float]] = []  # ("persist" | "advance", now)
        self.outbox: list[tuple[str, Any]] = []

    def tick(self, now: float) -> None:
        self.ticks.append(now)
        while self.plan and self.plan[0][0] <= now:
            _, dst, msg = self.plan.pop(0)
            self.outbox.append((dst, msg))

    def receive(self, now: float, src: str, message: Any) -> None:
        self.inbox.append((now, src, message))
        if self.echo and isinstance(message, Note) and message.type == "ping":
            self.outbox.append((src, Note("pong", message.id)))

    def ready(self) -> AgentReady | None:
        if not self.outbox:
            return None
        messages, self.outbox = self.outbox, []
        return AgentReady(messages=messages)

    def persist(self, ready: AgentReady) -> None:
        self.log.append(("persist", len(ready.messages)))

    def advance(self, now: float, ready: AgentReady) -> None:
        self.log.append(("advance", now))

    def next_deadline(self) -> float | None:
        return self.plan[0][0] if self.plan else None


class Counter:
    """Counts its ticks (one per `interval`), persisting the count to the `disk` its factory closes over."""

    def __init__(self, agent_id: str, now: float, disk: dict[str, Any], interval: float = 1.0, peer: str | None = None):
        self.id = agent_id
        self.disk = disk
        disk["boots"] = disk.get("boots", 0) + 1
        self.count = disk.get("count", 0)
        self.interval = interval
        self.peer = peer
        self.deadline = now + interval
        self.dirty = False
        self.outbox: list[tuple[str, Any]] = []

    def tick(self, now: float) -> None:
        if now >= self.deadline:
            self.count += 1
            self.dirty = True
            self.deadline += self.interval
            if self.peer:
                self.outbox.append((self.peer, Note("count", self.count)))

    def receive(self, now: float, src: str, message: Any) -> None:
        pass

    def ready(self) -> AgentReady | None:
        if not self.dirty and not self.outbox:
            return None
        messages, self.outbox = self.outbox, []
        return AgentReady(messages=messages, persist=self.count)

    def persist(self, ready: AgentReady) -> None:
        self.disk["count"] = ready.persist

    def advance(self, now: float, ready: AgentReady) -> None:
        self.dirty = False

    def next_deadline(self) -> float | None:
        return self.deadline


class HeartbeatServer:
    """Answers every request at once with a response carrying a growing index; needs no timer."""

    def __init__(self, agent_id: str, now: float):
        self.id = agent_id
        self.index = 0
        self.outbox: list[tuple[str, Any]] = []

    def tick(self, now: float) -> None:
        pass

    def receive(self, now: float, src: str, message: Any) -> None:
        if isinstance(message, RpcRequest):
            self.index += 1
            self.outbox.append((src, RpcResponse(id=message.id, result={"HeartbeatTTL": 20.0},
                                                 index=self.index, leader=self.id)))

    def ready(self) -> AgentReady | None:
        if not self.outbox:
            return None
        messages, self.outbox = self.outbox, []
        return AgentReady(messages=messages)

    def persist(self, ready: AgentReady) -> None:
        pass

    def advance(self, now: float, ready: AgentReady) -> None:
        pass

    def next_deadline(self) -> float | None:
        return None


class HeartbeatClient:
    """Heartbeats one server every ~`interval` s; on no answer within `timeout` it tries the next server."""

    def __init__(self, agent_id: str, now: float, servers: list[str], rng: random.Random,
                 interval: float = 20.0, timeout: float = 5.0):
        self.id = agent_id
        self.servers = servers
        self.rng = rng
        self.interval = interval
        self.timeout = timeout
        self.server = rng.randrange(len(servers))
        self.seq = 0
        self.waiting: int | None = None
        self.next_beat = now + rng.uniform(0, interval)
        self.give_up_at: float | None = None
        self.acked = 0
        self.outbox: list[tuple[str, Any]] = []

    def _beat(self, now: float) -> None:
        self.seq += 1
        self.waiting = self.seq
        self.give_up_at = now + self.timeout
        self.outbox.append((self.servers[self.server], RpcRequest(
            id=self.seq, src=self.id, method=methods.NODE_UPDATE_STATUS, args={"NodeID": self.id, "Status": "ready"})))

    def tick(self, now: float) -> None:
        if self.give_up_at is not None and now >= self.give_up_at:
            self.server = (self.server + 1) % len(self.servers)
            self._beat(now)
        elif self.waiting is None and now >= self.next_beat:
            self._beat(now)

    def receive(self, now: float, src: str, message: Any) -> None:
        if isinstance(message, RpcResponse) and message.id == self.waiting:
            self.acked += 1
            self.waiting = self.give_up_at = None
            self.next_beat = now + self.interval * self.rng.uniform(0.9, 1.1)

    def ready(self) -> AgentReady | None:
        if not self.outbox:
            return None
        messages, self.outbox = self.outbox, []
        return AgentReady(messages=messages)

    def persist(self, ready: AgentReady) -> None:
        pass

    def advance(self, now: float, ready: AgentReady) -> None:
        pass

    def next_deadline(self) -> float | None:
        return self.give_up_at if self.give_up_at is not None else self.next_beat


def heartbeat_cluster(seed: int, clients: int, servers: int = 3, latency: Any = ("lognormal", 0.002, 0.5),
                      **runtime_options: Any) -> tuple[simpy.Environment, SimRuntime, Network, Trace]:
    """Servers meshed, clients starred onto them, a trace attached; every draw derives from `seed`."""
    rng = random.Random(seed)
    env = simpy.Environment()
    server_ids = [f"server-{i}" for i in range(servers)]
    client_ids = [f"client-{i:04d}" for i in range(clients)]
    network = Network(rng).star(server_ids, client_ids, latency=latency)
    runtime = SimRuntime(env, network, rng, epoch=EPOCH, **runtime_options)
    trace = Trace().attach(runtime)
    for sid in server_ids:
        runtime.add_agent(sid, lambda now, sid=sid: HeartbeatServer(sid, now))
    for cid in client_ids:
        client_rng = random.Random(f"{seed}:{cid}")  # seeded per client, kept across restarts
        runtime.add_agent(cid, lambda now, cid=cid, r=client_rng: HeartbeatClient(cid, now, server_ids, r))
    return env, runtime, network, trace
