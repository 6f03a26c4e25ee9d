"""A simulated cluster: real servers and clients (the agent's code) on SimPy, with the operator's verbs.

Reads like the seeds: `SimCluster(servers=3, clients=3, seed=7)`, `run_job(hcl)`, `kill_leader()`,
`partition(...)`, `drain(node)`, `run_until(lambda: ..., timeout=60)`, then read the state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import simpy

from orchestrator.client import ClientAgent, ClientConfig, InMemoryClientStateStore
from orchestrator.drivers.simulated import SimulatedDriver
from orchestrator.jobspec import parse_job
from orchestrator.raft import Message
from orchestrator.rpc import RpcRequest, RpcResponse, methods
from orchestrator.scheduler.ids import new_id
from orchestrator.server.config import ServerConfig
from orchestrator.server.messages import PeerLost, PrepareShutdown, ServerJoin, ShutdownReady
from orchestrator.server.server import Server
from orchestrator.state import StateStore
from orchestrator.structs import Allocation, DriverInfo, Node, NodeResources

from .disk import SimDisk
from .invariants import InvariantChecker
from .network import DEFAULT_MESSAGE_SIZE, LatencySpec, Network
from .operator import Call, Operator
from .progress import run_in_chunks
from .runtime import SimRuntime
from .trace import Trace

OPERATOR = "op"
LAN_LATENCY: LatencySpec = ("lognormal", 0.0005, 0.4)


@dataclass(slots=True, kw_only=True)
class ClusterSpec:
    servers: int = 3
    clients: int = 3
    seed: int = 0
    latency: LatencySpec = LAN_LATENCY
    client_cpu: int = 4000
    client_memory: int = 8192
    client_disk: int = 100_000
    datacenter: str = "dc1"
    server_options: dict[str, Any] = field(default_factory=dict)  # ServerConfig fields
    client_options: dict[str, Any] = field(default_factory=dict)  # ClientConfig fields
    check_invariants: bool = True
    # How long a server's fsync takes (a LatencySpec); a crash within it loses that step's writes and messages.
    disk_sync_latency: LatencySpec = 0.0
    # Every link's loss probability and bandwidth (bytes/s; None: unlimited). A message takes size/bandwidth
    # longer per link, its size from `message_size`; it never overtakes an earlier one (links are FIFO), but
    # messages in flight together do not share the bandwidth.
    loss: float = 0.0
    bandwidth: float | None = None


def simulated_node(name: str, node_id: str, spec: ClusterSpec, index: int) -> Node:
    """A client machine as fingerprinting would describe it: Linux, amd64, the drivers the seeds use."""
    attributes = {"kernel.name": "linux", "os.name": "ubuntu", "cpu.arch": "amd64", "nomad.version": "1.0.18",
                  "unique.hostname": name, "unique.network.ip-address": f"10.0.{index // 250}.{index % 250 + 1}",
                  "driver.raw_exec": "1", "driver.exec": "1", "driver.docker": "1"}
    node = Node(id=node_id, secret_id=node_id, name=name, datacenter=spec.datacenter, attributes=attributes,
                node_resources=NodeResources.of(spec.client_cpu, spec.client_memory, spec.client_disk),
                drivers={d: DriverInfo(detected=True, healthy=True) for d in ("raw_exec", "exec", "docker")},
                status="ready")
    node.computed_class = node.compute_class()
    return node


MESSAGE_HEADER = 48  # bytes: a frame's type, ids, term, indexes
ENTRY_HEADER = 24  # bytes per Raft entry besides its data: term, index, type


def message_size(message: Any) -> int:
    """A cheap estimate of `message`'s wire size in bytes, for links with a bandwidth: Raft appends carry their
    entries' data, snapshot installs the snapshot's, anything else a small constant."""
    if type(message) is Message:
        if message.entries:
            return MESSAGE_HEADER + sum(ENTRY_HEADER + len(e.data) for e in message.entries)
        if message.snapshot is not None:
            return MESSAGE_HEADER + len(message.snapshot.data)
        return MESSAGE_HEADER
    if type(message) is RpcRequest or type(message) is RpcResponse:
        return DEFAULT_MESSAGE_SIZE  # RPCs (job specs, allocation lists) unmeasured: that would cost a serialization
    return MESSAGE_HEADER


def _connection_refused(message: Any) -> RpcResponse | None:
    """A crashed agent's host refuses RPC connections at once, as a kill -9'd process's host does."""
    if isinstance(message, RpcRequest):
        return RpcResponse(id=message.id, error="rpc error: connection refused")
    return None


# How long until a broken RPC connection is noticed: a lost packet breaks it quickly (retransmissions
# give up, the peer resets); a dead or unreachable host only by keepalive (yamux's default 30 s).
LOSS_DETECT = 1.0
KEEPALIVE_DETECT = 30.0


def _connection_broken(src: str, dst: str, message: Any, unreachable: bool) -> tuple[str, str, Any, float] | None:
    """The waiting side of a lost RPC message sees the connection break (RPC runs over TCP)."""
    delay = KEEPALIVE_DETECT if unreachable else LOSS_DETECT
    if isinstance(message, RpcRequest):
        return src, dst, RpcResponse(id=message.id, error="rpc error: connection reset"), delay
    if isinstance(message, RpcResponse):
        return dst, src, RpcResponse(id=message.id, error="rpc error: connection reset"), delay
    return None


def _callers_cut_off(agent: Any, machine: bool) -> list[tuple[str, Any, float]]:
    """Whoever waits on a request the dying agent holds sees its connection break; when only the process
    died, the other servers see their connections to it close (what the agent's transport reports)."""
    unanswered = agent.unanswered() if hasattr(agent, "unanswered") else []
    delay = KEEPALIVE_DETECT if machine else LOSS_DETECT / 100
    out: list[tuple[str, Any, float]] = [
        (src, RpcResponse(id=request_id, error="rpc error: connection reset"), delay)
        for src, request_id in unanswered]
    if isinstance(agent, Server) and not machine:
        out.extend((peer, PeerLost(peer=agent.id), delay) for peer in sorted(agent.known_servers - {agent.id}))
    return out


class SimCluster:
    """N servers, M clients and an operator on one simulated LAN; everything seeded from `spec.seed`."""

    def __init__(self, spec: ClusterSpec | None = None, **overrides: Any) -> None:
        spec = spec or ClusterSpec(**overrides)
        self.spec = spec
        self.rng = Random(spec.seed)
        self.env = simpy.Environment()
        # Called with the virtual seconds done while run()/run_until() advance (a progress bar); None: never.
        self.on_progress: Callable[[float], None] | None = None
        self.network = Network(Random(self.rng.getrandbits(64)), size_of=message_size)
        self.runtime = SimRuntime(self.env, self.network, Random(self.rng.getrandbits(64)))
        self.trace = Trace().attach(self.runtime)
        self.server_ids = [f"s{i + 1}" for i in range(spec.servers)]
        self.client_ids = [f"c{i + 1}" for i in range(spec.clients)]
        self.network.star(self.server_ids, [*self.client_ids, OPERATOR], latency=spec.latency, loss=spec.loss,
                          bandwidth=spec.bandwidth)
        self.checker = InvariantChecker(self) if spec.check_invariants else None
        self.disks: dict[str, SimDisk] = {}
        self.client_stores: dict[str, InMemoryClientStateStore] = {}
        self.drivers: dict[str, SimulatedDriver] = {}
        self.nodes: dict[str, Node] = {}
        self.node_agent: dict[str, str] = {}  # node id -> client agent id
        self._incarnations: dict[str, int] = {}
        for server_id in self.server_ids:
            disk = self.disks[server_id] = SimDisk()
            self.runtime.add_agent(server_id, self._server_factory(server_id), on_sync=disk.sync,
                                   on_crash=disk.crash, disk_sync_latency=spec.disk_sync_latency)
        for index, client_id in enumerate(self.client_ids):
            node = simulated_node(client_id, new_id(self.rng), spec, index)
            self.nodes[client_id] = node
            self.node_agent[node.id] = client_id
            self.client_stores[client_id] = InMemoryClientStateStore()
            self.drivers[client_id] = SimulatedDriver(Random(self.rng.getrandbits(64)))
            self.runtime.add_agent(client_id, self._client_factory(client_id))
        self.operator = Operator(OPERATOR, self.server_ids, Random(self.rng.getrandbits(64)))
        self.runtime.add_agent(OPERATOR, lambda now: self.operator)
        self.runtime.register_fault_handler("kill_task", self.kill_task)
        self.runtime.bounce = _connection_refused
        self.runtime.on_lost = _connection_broken
        self.runtime.on_agent_lost = _callers_cut_off

    # -- agents -----------------------------------------------------------------------------------------

    def _seeded(self, agent_id: str) -> Random:
        n = self._incarnations[agent_id] = self._incarnations.get(agent_id, 0) + 1
        return Random(f"{self.spec.seed}/{agent_id}/{n}")

    def _server_factory(self, server_id: str) -> Callable[[float], Server]:
        def build(now: float) -> Server:
            config = ServerConfig(id=server_id, bootstrap_expect=len(self.server_ids), **self.spec.server_options)
            server = Server(config, self.disks[server_id], self._seeded(server_id), now)
            if self.checker is not None:
                server.observer = self.checker
            server.receive(now, server_id, ServerJoin(servers=tuple(self.server_ids)))
            return server
        return build

    def _client_factory(self, client_id: str) -> Callable[[float], ClientAgent]:
        def build(now: float) -> ClientAgent:
            config = ClientConfig(servers=list(self.server_ids), **self.spec.client_options)
            store = self.client_stores[client_id]
            restore = store if (store.node or store.allocs) else None
            return ClientAgent(self.nodes[client_id], config, self.drivers[client_id], self._seeded(client_id),
                               agent_id=client_id, store=store, restore=restore)
        return build

    # -- time -------------------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Virtual seconds since the simulation started."""
        return float(self.env.now)

    def run(self, seconds: float) -> None:
        until = self.env.now + seconds
        if self.on_progress is None:
            self.env.run(until=until)
        else:
            run_in_chunks(self.env, until, self.on_progress)

    def run_until(self, predicate: Callable[[], bool], timeout: float, poll: float = 0.05) -> float | None:
        """Advance until `predicate()` holds (checked every `poll` virtual seconds): the virtual time it took,
        or None when `timeout` passed first."""
        start = self.env.now
        on_progress = self.on_progress
        while True:
            if predicate():
                return self.env.now - start
            if self.env.now - start >= timeout:
                return None
            self.env.run(until=self.env.now + poll)
            if on_progress is not None:
                on_progress(self.env.now)

    # -- views ------------------------------------------------------------------------------------------

    def servers(self) -> dict[str, Server]:
        return {sid: a for sid in self.server_ids if (a := self.runtime.agent(sid)) is not None}  # type: ignore[misc]

    def clients(self) -> dict[str, ClientAgent]:
        return {cid: a for cid in self.client_ids if (a := self.runtime.agent(cid)) is not None}  # type: ignore[misc]

    def leader(self) -> Server | None:
        """The server whose leadership is established; the newest term wins while an old one lingers."""
        leaders = [s for s in self.servers().values() if s.is_leader and not self.runtime.is_paused(s.id)]
        return max(leaders, key=lambda s: s.raft.term) if leaders else None

    def leader_id(self) -> str | None:
        leader = self.leader()
        return leader.id if leader else None

    def state(self) -> StateStore:
        """The leader's state store, else the most advanced live server's."""
        leader = self.leader()
        if leader is not None:
            return leader.store
        servers = list(self.servers().values())
        if not servers:
            raise RuntimeError("no server is up")
        return max(servers, key=lambda s: s.raft.applied_index).store

    def allocs(self, job_id: str, namespace: str = "default") -> list[Allocation]:
        return self.state().allocs_by_job(namespace, job_id)

    def running(self, job_id: str, namespace: str = "default") -> list[Allocation]:
        return [a for a in self.allocs(job_id, namespace) if a.desired_status == "run" and a.client_status == "running"]

    def converged(self, job_id: str, namespace: str = "default") -> bool:
        """Every group of the job has exactly `count` allocations running and no more to place."""
        state = self.state()
        job = state.job_by_id(namespace, job_id)
        if job is None:
            return False
        running = self.running(job_id, namespace)
        return all(sum(1 for a in running if a.task_group == group.name) == group.count for group in job.task_groups)

    # -- the operator's verbs ---------------------------------------------------------------------------

    def call(self, method: str, args: dict[str, Any], *, timeout: float = 60.0, avoid: tuple[str, ...] = ()) -> Call:
        call = self.operator.call(self.runtime.now, method, args, timeout=timeout, avoid=avoid)
        self.runtime.kick(OPERATOR)
        return call

    def wait(self, call: Call, timeout: float = 60.0) -> Call:
        self.run_until(lambda: call.done, timeout, poll=0.01)
        return call

    def run_job(self, source: str | Path, *, variables: dict[str, str] | None = None, wait: bool = True,
                timeout: float = 60.0, avoid: tuple[str, ...] = ()) -> Call:
        """`yurt job run`: parse HCL (a path or the text itself) and register it through any server but those in
        `avoid`, retried on others for up to `timeout` virtual seconds. JobspecError when the HCL is invalid."""
        if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith(".hcl")):
            path = Path(source)
            job = parse_job(path.read_text(), str(path), variables=variables)
        else:
            job = parse_job(str(source), "<scenario>", variables=variables)
        call = self.call(methods.JOB_REGISTER, {"Job": job}, timeout=timeout, avoid=avoid)
        return self.wait(call, timeout) if wait else call

    def stop_job(self, job_id: str, *, purge: bool = False) -> Call:
        return self.wait(self.call(methods.JOB_DEREGISTER, {"Namespace": "default", "JobID": job_id, "Purge": purge}))

    def scale(self, job_id: str, group: str, count: int) -> Call:
        return self.wait(self.call(methods.JOB_SCALE, {"Namespace": "default", "JobID": job_id, "Group": group,
                                                       "Count": count}))

    def drain(self, client_id: str, *, deadline: float = 3600.0, ignore_system: bool = False) -> Call:
        """`yurt node drain -enable -deadline D [-ignore-system]`; deadline < 0 forces at once."""
        strategy = {"DrainSpec": {"Deadline": int(deadline * 1e9), "IgnoreSystemJobs": ignore_system}}
        node_id = self.nodes[client_id].id
        return self.wait(self.call(methods.NODE_UPDATE_DRAIN, {"NodeID": node_id, "DrainStrategy": strategy,
                                                               "MarkEligible": False}))

    # -- faults -----------------------------------------------------------------------------------------

    def crash(self, agent_id: str) -> None:
        """kill -9 of the agent process (a client's tasks keep running, as Nomad's do)."""
        self.runtime.crash(agent_id)

    def crash_machine(self, client_id: str) -> None:
        """The client's machine dies: its agent and every task on it."""
        self.runtime.crash(client_id, machine=True)
        self.drivers[client_id] = SimulatedDriver(Random(self.rng.getrandbits(64)))
        self.client_stores[client_id] = InMemoryClientStateStore()

    def restart(self, agent_id: str) -> None:
        self.runtime.restart(agent_id)

    def kill_leader(self, *, machine: bool = False) -> str:
        """kill -9 of the leader's process (its peers see its connections close); with `machine`, its whole
        host dies silently and the survivors find out only by Raft's election timeout."""
        leader = self.leader_id()
        if leader is None:
            raise RuntimeError("no leader to kill")
        self.runtime.crash(leader, machine=machine)
        return leader

    def stop_gracefully(self, server_id: str, *, timeout: float = 2.0) -> None:
        """SIGTERM of a server agent: the agent's shutdown path, as `yurt agent` runs it. The server is asked
        to prepare (a leader hands its leadership over), and its process exits once it answers, or after
        `timeout` (and a little) whatever happens. Returns at once; the stop unfolds in virtual time."""
        if not self.runtime.is_up(server_id):
            return
        endpoint = f"shutdown:{server_id}"
        incarnation = self._incarnations.get(server_id)
        state = {"done": False}

        def exit_process(_src: str = "", message: Any = None) -> None:
            if state["done"] or (message is not None and not isinstance(message, ShutdownReady)):
                return
            state["done"] = True
            self.runtime.unregister(endpoint)
            if self._incarnations.get(server_id) == incarnation and self.runtime.is_up(server_id):
                self.runtime.note_fault("stop", server_id, transferred_to=getattr(message, "transferred_to", ""))
                self.runtime.crash(server_id)  # the process exits: its connections close, as after a kill

        self.runtime.register(endpoint, exit_process)
        self.env.timeout(timeout + 0.5).callbacks.append(lambda _event: exit_process())
        self.runtime.deliver(endpoint, server_id, PrepareShutdown(timeout=timeout))

    def stop_leader(self, *, timeout: float = 2.0) -> str:
        """SIGTERM of the leader's agent (see stop_gracefully): it hands over before it goes."""
        leader = self.leader_id()
        if leader is None:
            raise RuntimeError("no leader to stop")
        self.stop_gracefully(leader, timeout=timeout)
        return leader

    def partition(self, *groups: list[str] | tuple[str, ...]):
        return self.network.partition(*[tuple(g) for g in groups])

    def isolate(self, agent_id: str):
        return self.network.isolate(agent_id)

    def heal(self) -> None:
        self.network.heal()

    def kill_task(self, target: Any = None) -> str | None:
        """kill -9 of one running task: on client `target` (an agent id), else on a client drawn at random.
        Returns the allocation id it belonged to, or None when nothing runs there."""
        clients = self.clients()
        if not clients:
            return None
        client_id = target if isinstance(target, str) and target in clients else self.rng.choice(sorted(clients))
        driver = self.drivers[client_id]
        handles = sorted(driver.running_handles())
        if not handles:
            return None
        handle = self.rng.choice(handles)
        driver.kill(self.runtime.clock(client_id), handle)
        self.runtime.kick(client_id)
        agent = clients[client_id]
        owner = agent.handle_owner(handle)
        return owner[0] if owner else None
