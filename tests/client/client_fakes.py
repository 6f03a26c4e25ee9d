"""A dict-based fake of the servers' client-protocol endpoints and a tiny event loop for client tests."""

from __future__ import annotations

from random import Random
from typing import Any

from orchestrator.client.agent import ClientAgent, ClientConfig
from orchestrator.client.allocrunner import AllocRunner
from orchestrator.client.state import InMemoryClientStateStore
from orchestrator.drivers.simulated import SimulatedDriver
from orchestrator.rpc.messages import RpcRequest, RpcResponse, methods
from orchestrator.structs import Allocation, Node, encode, job_from_api

NODE_ID = "node-1"


def make_job(job_id: str = "web", *, job_type: str = "service", tasks: dict[str, dict] | None = None,
             restart: dict | None = None, update: dict | None = None, group_meta: dict | None = None):
    """A canonical job with one group "g"; `tasks` maps task name to its meta (workload keys)."""
    tasks = tasks or {"t": {}}
    group: dict[str, Any] = {"Name": "g", "Count": 1,
                             "Tasks": [{"Name": name, "Driver": "simulated", "Meta": meta}
                                       for name, meta in tasks.items()]}
    if restart is not None:
        group["RestartPolicy"] = restart
    if update is not None:
        group["Update"] = update
    if group_meta:
        group["Meta"] = group_meta
    return job_from_api({"ID": job_id, "Type": job_type, "TaskGroups": [group]})


def make_alloc(alloc_id: str, job, *, node_id: str = NODE_ID, deployment_id: str = "", index: int = 1) -> Allocation:
    return Allocation(id=alloc_id, name=f"{job.id}.g[0]", node_id=node_id, job_id=job.id, job=job, task_group="g",
                      deployment_id=deployment_id, create_index=index, modify_index=index,
                      alloc_modify_index=index)


class FakeServers:
    """Answers the client protocol of orchestrator.rpc.messages from dicts; `down` servers never answer."""

    def __init__(self, ids: tuple[str, ...] = ("s1", "s2", "s3"), leader: str = "s1", ttl: float = 10.0):
        self.ids = list(ids)
        self.leader = leader
        self.ttl = ttl
        self.down: set[str] = set()
        self.index = 10
        self.nodes: dict[str, dict] = {}
        self.allocs: dict[str, dict] = {}  # alloc id -> API dict
        self.node_index: dict[str, int] = {}
        self.log: list[tuple[float, str, RpcRequest]] = []
        self.client_updates: list[tuple[float, list[dict]]] = []
        self.blocked: list[tuple[float, str, RpcRequest]] = []  # (give up at, server, request)
        self.fail_methods: dict[str, str] = {}  # method -> error text to answer with

    # -- test controls --------------------------------------------------------------------------------

    def _bump(self, node_id: str) -> int:
        self.index += 1
        self.node_index[node_id] = self.index
        return self.index

    def place(self, alloc: Allocation) -> None:
        index = self._bump(alloc.node_id)
        alloc.create_index = alloc.modify_index = alloc.alloc_modify_index = index
        self.allocs[alloc.id] = encode(alloc)

    def set_desired(self, alloc_id: str, desired: str, *, migrate: bool = False) -> None:
        data = dict(self.allocs[alloc_id])
        index = self._bump(data["NodeID"])
        data.update(DesiredStatus=desired, ModifyIndex=index, AllocModifyIndex=index,
                    DesiredTransition={"Migrate": migrate or None})
        self.allocs[alloc_id] = data

    def gc(self, alloc_id: str) -> None:
        data = self.allocs.pop(alloc_id)
        self._bump(data["NodeID"])

    def requests(self, method: str) -> list[tuple[float, str, RpcRequest]]:
        return [r for r in self.log if r[2].method == method]

    # -- the endpoints --------------------------------------------------------------------------------

    def handle(self, now: float, server: str, req: RpcRequest) -> RpcResponse | None:
        """The answer, or None when the server is down or the query blocks."""
        if server in self.down:
            return None
        self.log.append((now, server, req))
        if req.method in self.fail_methods:
            return self._reply(req, error=self.fail_methods[req.method])
        args = req.args
        if req.method == methods.NODE_REGISTER:
            node = args["Node"]
            self.nodes[node["ID"]] = node
            self.node_index.setdefault(node["ID"], self.index)
            return self._reply(req, {"HeartbeatTTL": self.ttl, "Index": self.index, "Servers": self.ids})
        if req.method == methods.NODE_UPDATE_STATUS:
            if args["NodeID"] not in self.nodes:
                return self._reply(req, error="node not found")
            return self._reply(req, {"HeartbeatTTL": self.ttl, "Index": self.index, "Servers": self.ids})
        if req.method == methods.NODE_GET_CLIENT_ALLOCS:
            if self.node_index.get(args["NodeID"], 0) > args["MinQueryIndex"]:
                return self._alloc_list(req)
            self.blocked.append((now + args["MaxQueryTime"], server, req))
            return None
        if req.method == methods.ALLOC_GET_ALLOCS:
            allocs = [self.allocs[i] for i in args["AllocIDs"] if i in self.allocs]
            return self._reply(req, {"Allocs": allocs, "Index": self.index})
        if req.method == methods.NODE_UPDATE_ALLOC:
            self.client_updates.append((now, args["Alloc"]))
            self.index += 1
            for update in args["Alloc"]:
                if update["ID"] in self.allocs:
                    self.allocs[update["ID"]] = {**self.allocs[update["ID"]], **update, "ModifyIndex": self.index}
            return self._reply(req, {"Index": self.index})
        return self._reply(req, error=f"unknown method {req.method}")

    def wake(self, now: float) -> list[tuple[str, RpcResponse]]:
        """Blocked queries that can be answered at `now`: (server, response)."""
        out, still = [], []
        for give_up, server, req in self.blocked:
            if server in self.down:
                continue  # the server went down with the query
            if self.node_index.get(req.args["NodeID"], 0) > req.args["MinQueryIndex"] or now >= give_up:
                out.append((server, self._alloc_list(req)))
            else:
                still.append((give_up, server, req))
        self.blocked = still
        return out

    def next_wakeup(self) -> float | None:
        return min((b[0] for b in self.blocked), default=None)

    def _alloc_list(self, req: RpcRequest) -> RpcResponse:
        node_id = req.args["NodeID"]
        listed = {i: a["AllocModifyIndex"] for i, a in self.allocs.items() if a["NodeID"] == node_id}
        return self._reply(req, {"Allocs": listed, "Index": self.node_index.get(node_id, 0)})

    def _reply(self, req: RpcRequest, result: Any = None, error: str = "") -> RpcResponse:
        return RpcResponse(id=req.id, result=result, error=error, index=self.index,
                           leader="" if self.leader in self.down else self.leader)


class Loop:
    """Drives one ClientAgent against FakeServers on a virtual clock, with zero network latency."""

    def __init__(self, servers: FakeServers | None = None, *, seed: int = 1, now: float = 1_000_000.0,
                 config: ClientConfig | None = None, driver: SimulatedDriver | None = None,
                 restore: InMemoryClientStateStore | None = None):
        self.servers = servers or FakeServers()
        self.now = now
        self.rng = Random(seed)
        self.driver = driver or SimulatedDriver(Random(seed + 1))
        self.store = restore or InMemoryClientStateStore()
        self.config = config or ClientConfig(servers=list(self.servers.ids))
        node = Node(id=NODE_ID, name="n1")
        if restore is not None:
            self.agent = ClientAgent(node, self.config, self.driver, self.rng, restore=restore)
        else:
            self.agent = ClientAgent(node, self.config, self.driver, self.rng, store=self.store)
        self.sent: list[tuple[float, str, RpcRequest]] = []

    def drain(self) -> None:
        for _ in range(1000):
            ready = self.agent.ready()
            if ready is None:
                return
            self.agent.persist(ready)
            self.agent.advance(self.now, ready)
            for dst, message in ready.messages:
                self.sent.append((self.now, dst, message))
                response = self.servers.handle(self.now, dst, message)
                if response is not None:
                    self.agent.receive(self.now, dst, response)
        raise AssertionError("the agent never ran out of work")

    def run_until(self, until: float) -> None:
        for _ in range(200_000):
            for server, response in self.servers.wake(self.now):
                self.agent.receive(self.now, server, response)
            self.drain()
            times = [t for t in (self.agent.next_deadline(), self.servers.next_wakeup()) if t is not None]
            t = min(times, default=until)
            if t > until:
                self.now = until
                return
            self.now = max(self.now, t)
            for server, response in self.servers.wake(self.now):
                self.agent.receive(self.now, server, response)
            self.agent.tick(self.now)
        raise AssertionError("no progress: the agent keeps asking to be ticked")

    def restarted(self, *, crash: bool = False) -> Loop:
        """The client agent restarted on the same machine (same driver), or the machine crashed (new driver)."""
        driver = SimulatedDriver(Random(99)) if crash else self.driver
        loop = Loop(self.servers, seed=7, now=self.now, config=self.config, driver=driver, restore=self.store)
        self.servers.blocked.clear()  # the old agent's blocking query died with it
        return loop

    def sent_of(self, method: str) -> list[tuple[float, str, RpcRequest]]:
        return [s for s in self.sent if s[2].method == method]

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

BENCH_T0 = 1_700_000_000.0


class RunnerBench:
    """One AllocRunner on a simulated driver, stepped through virtual time (allocation-level tests)."""

    def __init__(self, job, *, deployment_id: str = "", seed: int = 1):
        self.driver = SimulatedDriver(Random(seed))
        self.alloc = make_alloc("alloc-1", job, deployment_id=deployment_id)
        self.runner = AllocRunner(self.alloc, self.driver, Random(seed + 1))
        self.now = BENCH_T0
        self.runner.run(self.now)

    def advance(self, seconds: float) -> None:
        until = self.now + seconds
        while True:
            times = [t for t in (self.driver.next_deadline(), self.runner.next_deadline()) if t is not None]
            if not times or min(times) > until:
                self.now = until
                return
            self.now = max(self.now, min(times))
            handles = self.runner.handles()
            for result in self.driver.poll(self.now):
                self.runner.on_exit(self.now, handles[result.handle], result)
            self.runner.tick(self.now)

    def events(self, task: str = "t") -> list[tuple[str, str]]:
        return [(e.type, e.display_message) for e in self.runner.tasks[task].state.events]
