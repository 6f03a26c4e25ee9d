"""An AgentHandle over tests/server/loop.py's synchronous cluster, and helpers to serve it to tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from orchestrator.agent.handle import Member, QueryMeta, RpcError
from orchestrator.api.events import EventBroker
from orchestrator.api.http import make_app
from orchestrator.jobspec import parse_job
from orchestrator.rpc import methods
from orchestrator.state import Namespace, StateReader, StateStore
from orchestrator.structs import encode
from tests.scheduler.builders import make_node
from tests.server.loop import Loop

JOB_HCL = """
job "web" {
  datacenters = ["dc1"]
  group "g" {
    count = 2
    task "t" {
      driver = "raw_exec"
      config { command = "/bin/sleep" }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"""


def job_dict(job_id: str = "web", hcl: str = JOB_HCL, **changes: Any) -> dict[str, Any]:
    job = parse_job(hcl.replace('job "web"', f'job "{job_id}"'), "web.hcl")
    job.update(changes)
    return job


def rpc_address(sid: str) -> str:
    """s1 -> 127.0.0.1:4647, s2 -> 127.0.0.1:5647... as the reference's local three-server cluster."""
    return f"127.0.0.1:{4647 + 1000 * (int(sid[1:]) - 1)}"


class FakeAgent:
    """The running agent, as the API sees it, over real Servers on a perfect network and a manual clock.

    `local` is the server this agent is (a follower when there are three, so writes are forwarded). Waits
    move the cluster's clock on in `step` seconds, yielding to the event loop between steps so that a
    request arriving meanwhile (the write a blocking query waits for) is served.
    """

    name = "s1"
    region = "global"
    datacenter = "dc1"

    def __init__(self, servers: int = 1, *, elect: bool = True, step: float = 0.5) -> None:
        self.loop = Loop(servers)
        self.step = step
        if elect:
            self.loop.elect()
        leader = self.loop.leader()
        followers = [sid for sid in self.loop.ids if leader is None or sid != leader.id]
        self.local = followers[0] if servers > 1 and followers else self.loop.ids[0]
        self.name = self.local
        self.broker = EventBroker()
        server = self.loop.servers[self.local]
        server.apply_listeners.append(self.broker.listener(server.store))
        self.heartbeating: set[str] = set()  # nodes this fake keeps alive, as their clients would
        self._last_heartbeat = self.loop.now
        self.joined: list[str] = []
        self.left: list[str] = []
        self.rpc_calls: list[tuple[str, dict[str, Any]]] = []

    # -- the cluster's clock ---------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock on (schedulers, deployments and Raft run), heartbeating the registered nodes."""
        end = self.loop.now + seconds
        while self.loop.now < end:
            self.loop.advance(min(self.step, end - self.loop.now))
            if self.heartbeating and self.loop.now - self._last_heartbeat >= 5.0:
                self._last_heartbeat = self.loop.now
                for node_id in sorted(self.heartbeating):
                    self.loop.call(self.local, methods.NODE_UPDATE_STATUS, {"NodeID": node_id, "Status": "ready"})

    def _store(self) -> StateStore:
        leader = self.loop.leader()
        return leader.store if leader is not None else self.loop.servers[self.local].store

    # -- test helpers ----------------------------------------------------------------------------------

    def register_node(self, i: int = 1) -> str:
        node = make_node(i)
        reply = self.loop.call(self.local, methods.NODE_REGISTER, {"Node": encode(node)})
        assert reply is not None and not reply.error, reply
        self.heartbeating.add(node.id)
        return node.id

    def register_job(self, job_id: str = "web", **changes: Any) -> dict[str, Any]:
        reply = self.loop.call(self.local, methods.JOB_REGISTER, {"Job": job_dict(job_id, **changes)})
        assert reply is not None and not reply.error, reply
        return reply.result

    def add_namespace(self, name: str) -> None:
        """Namespaces have no RPC yet: put one straight into every server's store, at its current index."""
        for server in self.loop.servers.values():
            server.store.upsert_namespace(server.store.latest_index(), Namespace(name))

    def run_allocs(self, status: str = "running") -> None:
        """Report every pending allocation as `status`, as its client would."""
        events = [{"Type": "Received", "Time": 1795343094288000000, "DisplayMessage": "Task received by client"},
                  {"Type": "Started", "Time": 1795343094354000000, "DisplayMessage": "Task started by client"}]
        started = {"State": "running", "Failed": False, "Restarts": 0, "StartedAt": "2026-11-22T10:24:54.354385785Z",
                   "Events": events}
        updates = [{"ID": a.id, "ClientStatus": status, "ClientDescription": "Tasks are running",
                    "TaskStates": {task.name: started for task in a.job.group(a.task_group).tasks}}
                   for a in self._store().allocs() if a.client_status == "pending" and a.job is not None]
        if updates:
            reply = self.loop.call(self.local, methods.NODE_UPDATE_ALLOC, {"Alloc": updates})
            assert reply is not None and not reply.error, reply

    # -- AgentHandle -----------------------------------------------------------------------------------

    async def rpc(self, method: str, args: dict[str, Any], *, timeout: float = 30.0) -> Any:
        self.rpc_calls.append((method, args))
        response = self.loop.call(self.local, method, args, wait=min(timeout, 10.0))
        if response is None:
            raise RpcError("rpc error: timed out waiting for a response")
        if response.error:
            raise RpcError(response.error)
        return response.result

    async def state(self, *, stale: bool = False) -> tuple[StateReader, QueryMeta]:
        leader = self.loop.leader()
        if stale:
            store = self.loop.servers[self.local].store
        elif leader is None:
            raise RpcError("No cluster leader")
        else:
            store = leader.store
        snapshot = store.snapshot()
        return snapshot, QueryMeta(index=snapshot.latest_index(), known_leader=leader is not None)

    async def wait_for(self, tables: Iterable[str], min_index: int, timeout: float) -> int:
        tables = tuple(tables)
        waited = 0.0
        while True:
            store = self._store()
            current = max(store.table_index(t) for t in tables)
            if current > min_index or waited >= timeout:
                return current
            await asyncio.sleep(0.002)  # let a request that arrived meanwhile be served
            self.advance(self.step)
            waited += self.step

    def leader_address(self) -> str:
        leader = self.loop.leader()
        return rpc_address(leader.id) if leader is not None else ""

    def peers(self) -> list[str]:
        return sorted(rpc_address(sid) for sid in self.loop.ids)

    def raft_configuration(self) -> dict[str, Any]:
        leader = self.loop.leader()
        servers = [{"ID": rpc_address(sid), "Node": f"{sid}.global", "Address": rpc_address(sid),
                    "Leader": leader is not None and leader.id == sid, "Voter": True, "RaftProtocol": "2"}
                   for sid in self.loop.ids]
        return {"Servers": servers, "Index": leader.raft.applied_index if leader is not None else 0}

    def members(self) -> list[Member]:
        out = []
        for sid in self.loop.ids:
            rpc_port = int(rpc_address(sid).rsplit(":", 1)[1])
            tags = {"role": "nomad", "region": "global", "dc": "dc1", "port": str(rpc_port), "build": "1.0.18",
                    "vsn": "1", "mvn": "1", "raft_vsn": "2", "expect": str(len(self.loop.ids)), "id": sid,
                    "bootstrap": "1" if len(self.loop.ids) == 1 else "0", "rpc_addr": "127.0.0.1"}
            out.append(Member(name=f"{sid}.global", addr="127.0.0.1", port=rpc_port + 1, status="alive", tags=tags))
        return out

    async def join(self, addresses: list[str]) -> int:
        if any(a.startswith("unreachable") for a in addresses):
            raise RuntimeError("1 error occurred:\n\t* Failed to join unreachable: dial tcp: no such host\n\n")
        self.joined.extend(addresses)
        return len(addresses)

    async def force_leave(self, node: str) -> None:
        self.left.append(node)

    def self_info(self) -> dict[str, Any]:
        return {"config": {"Region": self.region, "Datacenter": self.datacenter, "NodeName": self.name,
                           "Version": {"Version": "1.0.18", "VersionPrerelease": "", "Revision": ""}},
                "member": {"Name": f"{self.name}.global", "Addr": "127.0.0.1", "Port": 4648, "Status": "alive"},
                "stats": {"nomad": {"leader": str(self.loop.leader() is not None).lower(), "server": "true"}}}

    def metrics(self) -> dict[str, Any]:
        return {"Timestamp": "2026-11-22 10:25:30 +0000 UTC",
                "Gauges": [{"Name": "nomad.runtime.num_goroutines", "Value": 42.0, "Labels": {}},
                           {"Name": "nomad.client.allocated.cpu", "Value": 250.0,
                            "Labels": {"node_id": "n1", "datacenter": "dc1"}}],
                "Counters": [{"Name": "nomad.rpc.request", "Count": 3, "Rate": 0.3, "Sum": 3.0, "Min": 1.0,
                              "Max": 1.0, "Mean": 1.0, "Stddev": 0.0, "Labels": {}}],
                "Samples": [{"Name": "nomad.raft.apply", "Count": 2, "Rate": 0.2, "Sum": 1.5, "Min": 0.5,
                             "Max": 1.0, "Mean": 0.75, "Stddev": 0.35, "Labels": {}}]}

    def events(self, topics: dict[str, list[str]], index: int) -> AsyncIterator[dict[str, Any]]:
        return self.broker.subscribe(topics, index)


Scenario = Callable[[TestClient, FakeAgent], Awaitable[None]]


def run_api(scenario: Scenario, fake: FakeAgent | None = None, **app_options: Any) -> FakeAgent:
    """Run `scenario(client, fake)` against make_app(fake) on aiohttp's test server; the fake after it."""
    fake = fake or FakeAgent()

    async def main() -> None:
        async with TestClient(TestServer(make_app(fake, **app_options))) as client:
            await scenario(client, fake)

    asyncio.run(main())
    return fake
