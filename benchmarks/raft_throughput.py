"""Raft throughput in simulation: commits per virtual second (the protocol over a fixed-latency link) and
per wall second (the cost of the Raft code itself).

    python benchmarks/raft_throughput.py [--nodes 3] [--latency-ms 1] [--entries 50000] [--window 512]
                                         [--size 256] [--json]

Bare RaftNodes (no FSM) as agents on the SimPy runtime; a client keeps up to `window` proposals of
`size` bytes outstanding on the leader, proposing more as entries commit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from random import Random
from typing import Any

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.raft import (
    MemoryStorage,
    Message,
    RaftConfig,
    RaftNode,
    Role,
    persist,
)
from orchestrator.runtime.ports import AgentReady
from sim.network import Network
from sim.runtime import SimRuntime

TICK = 0.1


class RaftAgent:
    """A RaftNode as an Agent; the leader proposes from a bounded window (the load generator)."""

    def __init__(self, node_id: str, voters: list[str], seed: int, now: float, opts: argparse.Namespace):
        self.id = node_id
        self.storage = MemoryStorage()
        self.raft = RaftNode(RaftConfig(id=node_id, heartbeat_ticks=2), self.storage, Random(f"{seed}/{node_id}"))
        self.raft.bootstrap(voters)
        self.next_tick = now + TICK
        self.opts = opts
        self.proposed = 0
        self.committed = 0
        self.first_commit_at: float | None = None
        self.done_at: float | None = None
        self.payload = b"x" * opts.size

    def _fill(self, now: float) -> None:
        if self.raft.role is not Role.LEADER:
            return
        while self.proposed < self.opts.entries and self.proposed - self.committed < self.opts.window:
            self.raft.propose(self.payload)
            self.proposed += 1

    def tick(self, now: float) -> None:
        while now >= self.next_tick:
            self.raft.tick()
            self.next_tick += TICK
        self._fill(now)

    def receive(self, now: float, src: str, message: Any) -> None:
        if isinstance(message, Message):
            self.raft.step(message)

    def ready(self) -> AgentReady | None:
        if not self.raft.has_ready():
            return None
        rd = self.raft.ready()
        return AgentReady(messages=[(m.dst, m) for m in rd.messages], persist=rd)

    def persist(self, ready: AgentReady) -> None:
        persist(self.storage, ready.persist)

    def advance(self, now: float, ready: AgentReady) -> None:
        rd = ready.persist
        mine = sum(1 for e in rd.committed_entries if e.data)
        self.raft.advance(rd)
        if self.raft.role is Role.LEADER and mine:
            if self.first_commit_at is None:
                self.first_commit_at = now
            self.committed += mine
            if self.committed >= self.opts.entries and self.done_at is None:
                self.done_at = now
        self._fill(now)

    def next_deadline(self) -> float | None:
        return self.next_tick + (self.raft.ticks_until_due() - 1) * TICK


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=1.0)
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()

    env = simpy.Environment()
    ids = [f"n{i + 1}" for i in range(opts.nodes)]
    network = Network(Random(opts.seed)).full_mesh(ids, latency=opts.latency_ms / 1000.0)
    runtime = SimRuntime(env, network, Random(opts.seed))
    agents: dict[str, RaftAgent] = {}
    for node_id in ids:
        def build(now: float, node_id: str = node_id) -> RaftAgent:
            agents[node_id] = RaftAgent(node_id, ids, opts.seed, now, opts)
            return agents[node_id]
        runtime.add_agent(node_id, build)
    wall_started = time.perf_counter()
    while not any(a.done_at for a in agents.values()) and env.now < 3600:
        env.run(until=env.now + 1.0)
    wall = time.perf_counter() - wall_started
    leader = next(a for a in agents.values() if a.done_at)
    virtual = leader.done_at - leader.first_commit_at
    figures = {
        "nodes": opts.nodes, "latency_ms": opts.latency_ms, "entries": opts.entries, "window": opts.window,
        "entry_bytes": opts.size,
        "commits_per_virtual_second": round(opts.entries / virtual) if virtual > 0 else None,
        "commits_per_wall_second": round(opts.entries / wall),
        "virtual_seconds": round(virtual, 3), "wall_seconds": round(wall, 2),
        "messages": runtime.counters.delivered,
    }
    print(f"{opts.nodes} nodes, {opts.latency_ms} ms links, window {opts.window}: {opts.entries} commits in "
          f"{virtual:.2f} virtual s ({figures['commits_per_virtual_second']}/s) and {wall:.2f} wall s "
          f"({figures['commits_per_wall_second']}/s of Raft code)")
    if opts.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
