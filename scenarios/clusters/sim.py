"""The simulator's Cluster: a SimCluster on a virtual clock, answering with the HTTP API's JSON shapes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from orchestrator.api.views import alloc_list_stub, job_view, node_list_stub
from orchestrator.jobspec import JobspecError
from orchestrator.server.server import Server
from orchestrator.state import StateStore
from scenarios.cluster import Cluster, ClusterError
from sim.cluster import ClusterSpec, SimCluster

log = logging.getLogger(__name__)

NAMESPACE = "default"


class SimulatedCluster(Cluster):
    """`servers` servers ("s1".."sN") and `clients` clients ("c1".."cM", also their Node.Name) in one SimPy
    world; `options` are further `ClusterSpec` fields (latency, server_options, check_invariants...).

    Reads go straight to a live server's state store (no RPC), rendered by the API's own view functions, so
    they cost no virtual time; writes go through the simulator's operator agent, which reaches every server
    whatever the partitions, as a test harness's HTTP client would.
    """

    kind = "sim"

    def __init__(self, seed: int = 0, servers: int = 3, clients: int = 2, **options: Any) -> None:
        self.sim = SimCluster(ClusterSpec(servers=servers, clients=clients, seed=seed, **options))
        self.servers = tuple(self.sim.server_ids)
        self.clients = tuple(self.sim.client_ids)

    # -- time -------------------------------------------------------------------------------------------

    def now(self) -> float:
        return self.sim.now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.sim.run(seconds)

    def wait_for(self, check: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
        # run_until steps the SimPy environment directly: the same polling as the base class, less overhead.
        answer: Any = None

        def probe() -> bool:
            nonlocal answer
            answer = check()
            return bool(answer)

        # A zero interval would never advance the virtual clock.
        took = self.sim.run_until(probe, timeout, poll=max(interval, 0.001))
        return answer if took is not None else None

    # -- views ------------------------------------------------------------------------------------------

    def _live_servers(self) -> dict[str, Server]:
        # A SIGSTOPped server would not answer an HTTP request either.
        return {sid: s for sid, s in self.sim.servers().items() if not self.sim.runtime.is_paused(sid)}

    def _store(self) -> StateStore | None:
        """The leader's store (what a consistent read returns), else the most advanced live server's."""
        leader = self.sim.leader()
        if leader is not None:
            return leader.store
        live = list(self._live_servers().values())
        if not live:
            return None
        return max(live, key=lambda s: s.raft.applied_index).store

    def leader_views(self) -> dict[str, str | None]:
        # What `GET /v1/status/leader` answers on each server: its Raft leader, established or not.
        return {sid: server.leader_id() for sid, server in self._live_servers().items()}

    def nodes(self) -> list[dict[str, Any]]:
        store = self._store()
        return [node_list_stub(n) for n in store.nodes()] if store is not None else []

    def allocations(self, job_id: str) -> list[dict[str, Any]]:
        store = self._store()
        if store is None:
            return []
        # As the HTTP handler without `?all=true`: only the current registration's allocations, by ID.
        allocs = store.allocs_by_job(NAMESPACE, job_id, any_create_index=False)
        return [alloc_list_stub(a) for a in sorted(allocs, key=lambda a: a.id)]

    def job(self, job_id: str) -> dict[str, Any] | None:
        store = self._store()
        job = store.job_by_id(NAMESPACE, job_id) if store is not None else None
        return job_view(job) if job is not None else None

    def jobs(self) -> list[str]:
        store = self._store()
        return [j.id for j in store.jobs(NAMESPACE)] if store is not None else []

    # -- writes -----------------------------------------------------------------------------------------

    def run_job(self, hcl: str, *, timeout: float = 5.0, via: str | None = None) -> bool:
        avoid = tuple(s for s in self.servers if s != via) if via is not None else ()
        try:
            # The operator retries on another server until `timeout`, as `job run` against a dead agent would fail
            # and the harness try the next one; the call's own deadline stops those retries when we give up.
            call = self.sim.run_job(hcl, timeout=timeout, avoid=avoid)
        except JobspecError as err:
            # `yurt job run` exits 1 on a bad jobspec; keep the why for whoever reads the scenario's log.
            log.warning("run_job: invalid jobspec: %s", err)
            return False
        if call.done and call.error:
            log.info("run_job: %s", call.error)
        return call.ok

    def drain(self, node: str, deadline: float) -> bool:
        self._check(node, self.clients, "client")
        call = self.sim.drain(node, deadline=deadline)
        if call.error:
            log.info("drain %s: %s", node, call.error)
        return call.ok

    # -- faults -----------------------------------------------------------------------------------------

    def _check(self, name: str, names: tuple[str, ...], role: str) -> None:
        if name not in names:
            raise ClusterError(f"no {role} named {name!r} (known: {', '.join(names)})")

    def kill_server(self, name: str) -> None:
        self._check(name, self.servers, "server")
        # A process kill, not a machine loss: its host refuses connections and its peers see them close.
        self.sim.crash(name)
        self.mark_fault()

    def start_server(self, name: str) -> None:
        self._check(name, self.servers + self.clients, "agent")
        # Starting an agent that already runs changes nothing (runtime.restart would hard-reboot it).
        if not self.sim.runtime.is_up(name):
            self.sim.restart(name)

    def partition(self, *groups: tuple[str, ...] | list[str]) -> None:
        known = self.servers + self.clients
        for group in groups:
            for name in group:
                self._check(name, known, "agent")
        # The operator agent is in no group, so it still reaches every server (unlisted nodes reach all).
        self.sim.partition(*groups)
        self.mark_fault()

    def heal(self) -> None:
        self.sim.heal()
        self.mark_fault()

    def kill_task(self, alloc_id: str, task: str) -> None:
        for client_id in self.clients:
            driver = self.sim.drivers[client_id]
            handle = self._task_handle(client_id, alloc_id, task)
            if handle is not None:
                driver.kill(self.sim.runtime.clock(client_id), handle)
                self.mark_fault()
                self.sim.runtime.kick(client_id)  # the client polls its driver now, as on SIGCHLD
                return
        raise ClusterError(f"no running task {task!r} of allocation {alloc_id}")

    def _task_handle(self, client_id: str, alloc_id: str, task: str) -> str | None:
        """The driver handle running `task` of `alloc_id` on `client_id`, if that machine runs it."""
        handles = sorted(self.sim.drivers[client_id].running_handles())
        agent = self.sim.clients().get(client_id)
        if agent is not None:
            return next((h for h in handles if agent.handle_owner(h) == (alloc_id, task)), None)
        # The client's agent is down but its tasks run on: the simulated driver names each handle
        # "sim-<alloc id[:8]>-<task>-<seq>".
        prefix = f"sim-{alloc_id[:8]}-{task}-"
        return next((h for h in handles if h.startswith(prefix) and h[len(prefix):].isdigit()), None)

    def lose_client(self, name: str) -> None:
        self._check(name, self.clients, "client")
        # The machine dies silently: no connection is refused, servers notice only missed heartbeats.
        self.sim.crash_machine(name)
        self.mark_fault()

    def stop_all(self) -> None:
        # A crash keeps what each agent synced, which is what a clean stop keeps: the servers' Raft logs and
        # snapshots, the clients' state stores; clients' tasks keep running, as Nomad leaves them on stop.
        for name in self.servers + self.clients:
            self.sim.crash(name)

    def start_all(self) -> None:
        for name in self.servers + self.clients:
            if not self.sim.runtime.is_up(name):
                self.sim.restart(name)

    def close(self) -> None:
        # Nothing outside this process was created; the simulation is simply dropped with the object.
        return None

    # -- sim-only ---------------------------------------------------------------------------------------

    def violations(self) -> list[str]:
        """What the simulator's invariant checker saw so far (empty when checking is off)."""
        checker = self.sim.checker
        return [str(v) for v in checker.violations] if checker is not None else []
