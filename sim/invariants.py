"""Safety and liveness checks every simulated run is held to: Raft's guarantees and the cluster's."""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.raft import Entry
from orchestrator.rpc import methods
from orchestrator.scheduler.fit import allocs_fit

if TYPE_CHECKING:
    from .cluster import SimCluster


@dataclass(frozen=True, slots=True)
class Violation:
    at: float  # virtual seconds
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"[t={self.at:.3f}s] {self.rule}: {self.detail}"


class InvariantChecker:
    """Observes every server's applies and elections as they happen (the Server's `observer` hook), and
    checks the cluster's state on demand. Violations are collected, never raised, so a run reports all."""

    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self.violations: list[Violation] = []
        self.leaders: dict[int, str] = {}  # term -> the server that led it
        self.applied: dict[int, tuple[int, int]] = {}  # index -> (term, crc of data), first seen
        self.highest_applied = 0
        # Every job registration the operator saw acknowledged: job key -> (the write's index, the job's
        # JobModifyIndex then). Filled from the operator's calls at each check, so scenarios and fuzz
        # campaigns are covered alike; an acknowledged purge forgets the job.
        self.acknowledged_jobs: dict[tuple[str, str], tuple[int, int]] = {}
        self._calls_recorded: set[int] = set()  # positions in the operator's calls already recorded

    def _violate(self, rule: str, detail: str) -> None:
        self.violations.append(Violation(self.cluster.now, rule, detail))

    # -- the Server observer hooks ----------------------------------------------------------------------

    def on_leader(self, server_id: str, term: int, raft: Any) -> None:
        """Election safety: one leader per term; leader completeness: it holds every committed entry."""
        holder = self.leaders.setdefault(term, server_id)
        if holder != server_id:
            self._violate("election safety", f"term {term} has two leaders: {holder} and {server_id}")
        committed = self.highest_applied
        if committed == 0:
            return
        if raft.last_index < committed:
            self._violate("leader completeness", f"{server_id} leads term {term} with last index "
                                                 f"{raft.last_index} < committed {committed}")
            return
        seen = self.applied.get(committed)
        try:
            term_there = raft.log_term(committed)
        except Exception:
            return
        if seen is not None and term_there != seen[0]:
            self._violate("leader completeness", f"{server_id} has term {term_there} at committed index "
                                                 f"{committed}, applied elsewhere with term {seen[0]}")

    def on_apply(self, server_id: str, entry: Entry) -> None:
        """State machine safety: every server applies the same entry at each index."""
        digest = (entry.term, zlib.crc32(entry.data))
        seen = self.applied.setdefault(entry.index, digest)
        if seen != digest:
            self._violate("state machine safety", f"{server_id} applied term {entry.term} at index "
                                                  f"{entry.index}; another server applied term {seen[0]}")
        if entry.index > self.highest_applied:
            self.highest_applied = entry.index

    # -- checks over the cluster's state ----------------------------------------------------------------

    def record_acknowledged(self) -> None:
        """Note the job registrations (and purges) the operator got a success for since the last check."""
        calls = self.cluster.operator.calls
        for position, call in enumerate(calls):
            if position in self._calls_recorded or not call.done:
                continue
            self._calls_recorded.add(position)
            if not call.ok or not isinstance(call.result, dict):
                continue
            index = int(call.result.get("Index") or 0)
            if call.method == methods.JOB_REGISTER:
                job = call.args["Job"]
                key = (job.get("Namespace") or "default", job["ID"])
                modify_index = int(call.result.get("JobModifyIndex") or 0)
                seen = self.acknowledged_jobs.get(key, (0, 0))
                self.acknowledged_jobs[key] = (max(seen[0], index), max(seen[1], modify_index))
            elif call.method == methods.JOB_DEREGISTER and call.args.get("Purge"):
                key = (call.args.get("Namespace") or "default", call.args["JobID"])
                if key in self.acknowledged_jobs and self.acknowledged_jobs[key][0] < index:
                    del self.acknowledged_jobs[key]

    def check_state(self) -> None:
        """No node overcommitted, no allocation counted twice, no acknowledged job lost."""
        cluster = self.cluster
        self.record_acknowledged()
        try:
            state = cluster.state()
        except RuntimeError:
            return
        for node in state.nodes():
            allocs = state.allocs_by_node(node.id)
            fit = allocs_fit(node, allocs)
            if not fit.fit:
                self._violate("no overcommit", f"node {node.name} exhausted on {fit.dimension}")
        running_on: dict[str, list[str]] = defaultdict(list)
        for client_id, client in cluster.clients().items():
            for alloc_id in client.running_allocs():
                running_on[alloc_id].append(client_id)
        for alloc_id, clients in running_on.items():
            if len(clients) > 1:
                self._violate("no double counting", f"allocation {alloc_id} runs on {clients}")
            alloc = state.alloc_by_id(alloc_id)
            if alloc is not None and cluster.node_agent.get(alloc.node_id) not in clients:
                self._violate("no double counting", f"allocation {alloc_id} of node {alloc.node_id} runs on "
                                                    f"{clients}")
        for (namespace, job_id), (index, modify_index) in self.acknowledged_jobs.items():
            if state.latest_index() < index:
                continue  # this state has not caught up with the write yet
            job = state.job_by_id(namespace, job_id)
            if job is None:
                self._violate("no committed job lost", f"job {job_id} acknowledged at index {index} is gone")
            elif job.job_modify_index < modify_index:
                self._violate("no committed job lost", f"job {job_id} has JobModifyIndex {job.job_modify_index}"
                                                       f" < {modify_index}, acknowledged at index {index}")

    def check_logs(self) -> None:
        """Log matching: where two live servers' logs hold the same term at an index, all before agrees."""
        servers = list(self.cluster.servers().values())
        for i, a in enumerate(servers):
            for b in servers[i + 1:]:
                top = min(a.raft.last_index, b.raft.last_index)
                bottom = max(a.storage.first_index(), b.storage.first_index())
                for index in range(top, bottom - 1, -1):
                    ta, tb = a.raft.entry_term(index), b.raft.entry_term(index)
                    if ta is None or tb is None:
                        break  # compacted on one side
                    if ta == tb:
                        ea = a.storage.entries(bottom, index + 1) if index >= bottom else []
                        eb = b.storage.entries(bottom, index + 1) if index >= bottom else []
                        if [(e.term, e.data) for e in ea] != [(e.term, e.data) for e in eb]:
                            self._violate("log matching", f"{a.id} and {b.id} agree on term {ta} at {index} "
                                                          "but differ before it")
                        break

    def check_converged(self, job_ids: list[str]) -> None:
        """Liveness after faults heal: each job runs exactly its desired count."""
        for job_id in job_ids:
            if not self.cluster.converged(job_id):
                running = len(self.cluster.running(job_id))
                self._violate("convergence", f"job {job_id} did not converge (running {running})")

    def check_all(self, job_ids: list[str] | None = None) -> list[Violation]:
        self.check_state()
        self.check_logs()
        if job_ids:
            self.check_converged(job_ids)
        return self.violations
