"""The agent process: a server (Raft, FSM, leader loops) on the asyncio runtime, reachable over TCP RPC,
discovered through the membership protocol, and served over Nomad's HTTP API.

`Agent` is also the `AgentHandle` the HTTP API talks to.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from orchestrator import __version__
from orchestrator.api.events import EventBroker
from orchestrator.api.http import bound_port, serve
from orchestrator.raft import MemoryStorage
from orchestrator.rpc import methods
from orchestrator.runtime.aio import AioRuntime, LocalCaller, Transport
from orchestrator.runtime.aio.membership import Membership
from orchestrator.runtime.aio.storage import FileStorage
from orchestrator.server.messages import PeerLost, ServerJoin, ServerLeft
from orchestrator.server.server import Server
from orchestrator.state import StateReader

from .config import AgentConfig, advertised, gc_thresholds, to_server_config
from .handle import Member, QueryMeta, RpcError

log = logging.getLogger("yurt.agent")


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0].strip("[]")


class Agent:
    """One agent process (server mode; client agents arrive with their drivers)."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.name = config.name
        self.region = config.region
        self.datacenter = config.datacenter
        self.rpc_address = advertised(config, "rpc")
        self.serf_address = advertised(config, "serf")
        self.started = time.time()
        self.server: Server | None = None
        self.runtime: AioRuntime | None = None
        self.transport: Transport | None = None
        self.membership: Membership | None = None
        self.caller: LocalCaller | None = None
        self.event_broker = EventBroker()
        self.http_runner: Any = None
        self.http_port = config.ports.http
        # Set (and replaced) after every applied command: what reads and blocking queries wait on.
        self._applied = asyncio.Event()
        self._join_task: asyncio.Task[Any] | None = None
        self.fatal = asyncio.Event()  # set when the agent must stop (retry_join gave up)

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        bind = config.addresses.rpc or config.bind_addr
        self.transport = Transport(bind, config.ports.rpc, local_id=self.rpc_address)
        await self.transport.start()
        self.runtime = AioRuntime(loop, self.transport)
        if config.server.enabled:
            await self._start_server()
        self.caller = LocalCaller(self.runtime, f"api-{self.name}-{secrets.token_hex(4)}")
        http_bind = config.addresses.http or config.bind_addr
        self.http_runner = await serve(self, http_bind, config.ports.http)
        self.http_port = bound_port(self.http_runner)

    async def _start_server(self) -> None:
        config = self.config
        storage: MemoryStorage | FileStorage
        sync = None
        if config.data_dir and not config.dev_mode:
            storage = FileStorage(Path(config.data_dir) / "server" / "raft")
            sync = storage.sync
        else:
            storage = MemoryStorage()
        assert self.runtime is not None
        server_config = to_server_config(config)
        server = Server(server_config, storage, random.Random(), self.runtime.now())
        server.apply_listeners.append(self.event_broker.listener(server.store))
        server.apply_listeners.append(self._notify_applied)
        if server.leader is not None:
            server.leader.housekeeping.thresholds = gc_thresholds(config)
        self.server = server
        self.runtime.add_agent(server, sync=sync)
        runtime = self.runtime
        assert self.transport is not None
        # A fellow server's connections closing means its process is gone: the server may elect at once.
        self.transport.on_peer_lost = lambda peer: runtime.deliver(peer, server.id, PeerLost(peer=peer))
        tags = {"role": "nomad", "region": config.region, "dc": config.datacenter,
                "port": str(config.ports.rpc), "rpc_addr": _host(self.rpc_address), "build": __version__,
                "vsn": "1", "expect": str(config.server.bootstrap_expect), "id": server.id}
        serf_bind = config.addresses.serf or config.bind_addr
        self.membership = Membership(f"{config.name}.{config.region}", serf_bind, config.ports.serf, tags,
                                     advertise_host=_host(self.serf_address))
        self.membership.on_change(self._members_changed)
        await self.membership.start()
        joins = [*config.server.server_join.start_join, *config.server.server_join.retry_join]
        if joins:
            join = config.server.server_join
            self._join_task = asyncio.create_task(
                self.membership.retry_join(joins, interval=join.retry_interval, max_attempts=join.retry_max))
            self._join_task.add_done_callback(self._join_done)

    def _join_done(self, task: asyncio.Task[Any]) -> None:
        # Nomad exits when retry_join runs out of attempts: a server that never found its peers is useless.
        if not task.cancelled() and task.exception() is not None:
            log.error("agent: retry_join failed: %s", task.exception())
            self.fatal.set()

    def _members_changed(self, members: list[Any]) -> None:
        """Servers alive in this region, as Raft ids (their RPC addresses), go to the server: bootstrap
        once `bootstrap_expect` know each other, and the leader adds new voters."""
        if self.server is None or self.runtime is None:
            return
        ours = [m for m in members if m.tags.get("role") == "nomad" and m.tags.get("region") == self.region
                and m.tags.get("id")]
        alive = tuple(sorted(m.tags["id"] for m in ours if m.status == "alive"))
        left = tuple(sorted(m.tags["id"] for m in ours if m.status == "left"))
        if alive:
            self.runtime.deliver(self.server.id, self.server.id, ServerJoin(servers=alive))
        if left:
            self.runtime.deliver(self.server.id, self.server.id, ServerLeft(servers=left))

    def _notify_applied(self, index: int, result: Any) -> None:
        # Runs inside the runtime's advance, on the loop's thread: waking waiters is a plain set().
        applied, self._applied = self._applied, asyncio.Event()
        applied.set()

    async def _wait_until(self, predicate: Any, timeout: float) -> bool:
        """Wait until `predicate()` holds after some apply, or `timeout` seconds; whether it holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._applied.wait(), remaining)
            except TimeoutError:
                return predicate()
        return True

    async def run_until_stopped(self, stop: asyncio.Event) -> int:
        """Serve until `stop` is set (a signal) or the server fails; the process's exit code."""
        assert self.runtime is not None
        waiter = asyncio.ensure_future(self.runtime.wait())
        stopper = asyncio.ensure_future(stop.wait())
        fatal = asyncio.ensure_future(self.fatal.wait())
        done, _ = await asyncio.wait({waiter, stopper, fatal}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if waiter in done and waiter.exception() is not None:
            log.error("agent: stopping after a fatal error: %s", waiter.exception())
            code = 1
        if fatal in done:
            code = 1
        for task in (waiter, stopper, fatal):
            task.cancel()
        return code

    async def shutdown(self, *, leave: bool) -> None:
        if self._join_task is not None:
            self._join_task.cancel()
        if self.membership is not None:
            await (self.membership.leave() if leave else self.membership.stop())
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if self.caller is not None:
            self.caller.close()
        if self.runtime is not None:
            await self.runtime.stop()
        if self.transport is not None:
            await self.transport.close()
        storage = self.server.storage if self.server is not None else None
        if isinstance(storage, FileStorage):
            storage.close()

    # -- AgentHandle ----------------------------------------------------------------------------------------

    async def rpc(self, method: str, args: dict[str, Any], *, timeout: float = 30.0) -> Any:
        assert self.caller is not None
        target = self.server.id if self.server is not None else self._a_server()
        return await self.caller.call(target, method, args, timeout=timeout)

    def _a_server(self) -> str:
        servers = self.config.client.servers
        if not servers:
            raise RpcError("No cluster leader")
        return servers[0]

    async def state(self, *, stale: bool = False) -> tuple[StateReader, QueryMeta]:
        server = self._require_server()
        if not stale:
            answer = await self.rpc(methods.STATUS_READ_INDEX, {})
            await self._wait_applied(int(answer.get("Index", 0)))
        return server.store.snapshot(), self._meta()

    async def _wait_applied(self, index: int, timeout: float = 10.0) -> None:
        server = self._require_server()
        if not await self._wait_until(lambda: server.raft.applied_index >= index, timeout):
            raise RpcError(f"timed out waiting for index {index} to be applied")

    async def wait_for(self, tables: Iterable[str], min_index: int, timeout: float) -> int:
        server = self._require_server()
        names = list(tables)

        def current() -> int:
            return max((server.store.table_index(t) for t in names), default=0)

        await self._wait_until(lambda: current() > min_index, timeout)
        return current()

    def _meta(self) -> QueryMeta:
        server = self._require_server()
        leader = server.raft.leader_id
        return QueryMeta(index=server.store.latest_index(), known_leader=leader is not None, last_contact_ms=0)

    def _require_server(self) -> Server:
        if self.server is None:
            raise RpcError("No cluster leader")  # a client-only agent has no state of its own (yet)
        return self.server

    def leader_address(self) -> str:
        return (self.server.raft.leader_id or "") if self.server is not None else ""

    def peers(self) -> list[str]:
        return sorted(self.server.raft.voters) if self.server is not None else []

    def raft_configuration(self) -> dict[str, Any]:
        server = self._require_server()
        names = {m.tags.get("id"): m.name for m in (self.membership.members() if self.membership else [])}
        leader = server.raft.leader_id
        return {"Servers": [{"ID": peer, "Node": names.get(peer, peer), "Address": peer, "Leader": peer == leader,
                             "Voter": True, "RaftProtocol": "2"} for peer in sorted(server.raft.voters)],
                "Index": server.raft.commit_index}

    def members(self) -> list[Member]:
        if self.membership is None:
            return []
        return [Member(m.name, m.addr, m.port, m.status, dict(m.tags)) for m in self.membership.members()]

    async def join(self, addresses: list[str]) -> int:
        if self.membership is None:
            return 0
        return await self.membership.join(addresses)

    async def force_leave(self, node: str) -> None:
        if self.membership is not None:
            self.membership.force_leave(node)

    def self_info(self) -> dict[str, Any]:
        config = self.config
        member = next((m for m in self.members() if m.name == f"{config.name}.{config.region}"), None)
        server = self.server
        return {
            "config": {"Region": config.region, "Datacenter": config.datacenter, "NodeName": config.name,
                       "DataDir": config.data_dir or "", "BindAddr": config.bind_addr,
                       "Ports": {"HTTP": config.ports.http, "RPC": config.ports.rpc, "Serf": config.ports.serf},
                       "Server": {"Enabled": config.server.enabled,
                                  "BootstrapExpect": config.server.bootstrap_expect},
                       "Client": {"Enabled": config.client.enabled}, "Version": {"Version": __version__},
                       "DevMode": config.dev_mode},
            "member": ({"Name": member.name, "Addr": member.addr, "Port": member.port, "Status": member.status,
                        "Tags": member.tags} if member else {}),
            "stats": {"raft": {"state": server.raft.role.value.capitalize() if server else "",
                               "term": str(server.raft.term) if server else "0",
                               "commit_index": str(server.raft.commit_index) if server else "0",
                               "applied_index": str(server.raft.applied_index) if server else "0",
                               "num_peers": str(max(0, len(server.raft.voters) - 1)) if server else "0"},
                      "nomad": {"leader": str(bool(server and server.is_leader)).lower(),
                                "known_regions": "1", "server": str(server is not None).lower()}},
        }

    def metrics(self) -> dict[str, Any]:
        server = self.server
        gauges = []
        if server is not None:
            gauges = [{"Name": "nomad.raft.commit_index", "Value": server.raft.commit_index, "Labels": {}},
                      {"Name": "nomad.raft.applied_index", "Value": server.raft.applied_index, "Labels": {}},
                      {"Name": "nomad.raft.term", "Value": server.raft.term, "Labels": {}},
                      {"Name": "nomad.state.latest_index", "Value": server.store.latest_index(), "Labels": {}}]
            if server.leader is not None:
                stats = server.leader.broker.stats()
                gauges += [{"Name": "nomad.broker.total_ready", "Value": stats.total_ready, "Labels": {}},
                           {"Name": "nomad.broker.total_unacked", "Value": stats.total_unacked, "Labels": {}},
                           {"Name": "nomad.blocked_evals.total_blocked",
                            "Value": server.leader.blocked.stats().total_blocked, "Labels": {}}]
        counters = [{"Name": "nomad.fsm.applied", "Count": server.applied_commands if server else 0, "Labels": {}}]
        return {"Timestamp": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime()), "Gauges": gauges,
                "Counters": counters, "Samples": []}

    def events(self, topics: dict[str, list[str]], index: int) -> AsyncIterator[dict[str, Any]]:
        return self.events_broker_subscribe(topics, index)

    def events_broker_subscribe(self, topics: dict[str, list[str]], index: int) -> AsyncIterator[dict[str, Any]]:
        return self.event_broker.subscribe(topics or None, index)
