"""The agent process: a server (Raft, FSM, leader loops) and/or a client (fingerprinted node, real task
drivers) on the asyncio runtime, reachable over TCP RPC, discovered through the membership protocol, and
served over Nomad's HTTP API.

`Agent` is also the `AgentHandle` the HTTP API talks to.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import random
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from orchestrator import __version__
from orchestrator.api.events import EventBroker
from orchestrator.api.http import bound_port, serve
from orchestrator.client import ClientAgent, InMemoryClientStateStore, NodeChanged, RegisterNow
from orchestrator.client.agent import CollectGarbage, RestartTask
from orchestrator.client.allocdir import TaskPreparer, alloc_dir_of
from orchestrator.client.fingerprint import NodeSpec, fingerprint_node, node_identity, with_drivers
from orchestrator.client.state_file import FileClientStateStore
from orchestrator.drivers.registry import FACTORIES, SLOW_DRIVERS, DriverContext, DriverSet, load_driver, load_drivers
from orchestrator.raft import MemoryStorage
from orchestrator.rpc import methods
from orchestrator.runtime.aio import AioRuntime, LocalCaller, Transport
from orchestrator.runtime.aio.membership import Membership
from orchestrator.runtime.aio.storage import FileStorage
from orchestrator.server.messages import PeerLost, PrepareShutdown, ServerJoin, ServerLeft, ShutdownReady
from orchestrator.server.server import Server
from orchestrator.state import StateReader
from orchestrator.structs import Node

from .config import AgentConfig, advertised, gc_thresholds, to_client_config, to_server_config
from .handle import LocalAlloc, LocalTask, Member, QueryMeta, RpcError

log = logging.getLogger("yurt.agent")


def disk_pressure(path: Path, disk_threshold: float, inode_threshold: float) -> str:
    """Why the filesystem holding `path` is too full ("" when it is not): used percentages over thresholds."""
    try:
        stats = os.statvfs(path)
    except OSError:
        return ""
    if stats.f_blocks:
        used = 100.0 * (stats.f_blocks - stats.f_bfree) / stats.f_blocks
        if used > disk_threshold:
            return f"disk usage {used:.1f}% over {disk_threshold:g}%"
    if stats.f_files:
        used = 100.0 * (stats.f_files - stats.f_ffree) / stats.f_files
        if used > inode_threshold:
            return f"inode usage {used:.1f}% over {inode_threshold:g}%"
    return ""


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0].strip("[]")


DEV_REGISTER_RETRY = 1.0  # Nomad's devModeRetryIntv: a dev client retries registering every second
DRIVER_CHECK_INTERVAL = 30.0  # how often drivers are fingerprinted again (Nomad checks driver health every 30 s)


def _warm_up() -> None:
    # The schedulers (and numpy) load on first use so that the agent starts fast; a server with a local client
    # will schedule soon, so once it has a leader they are imported in the background, not by the first job.
    importlib.import_module("orchestrator.scheduler.generic")
    importlib.import_module("orchestrator.scheduler.system")


LEADERSHIP_HANDOVER_TIMEOUT = 1.5  # seconds a stopping leader waits for its successor before it stops anyway


class Agent:
    """One agent process: a server, a client, or both (-dev)."""

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
        # The client, when enabled: its sans-IO agent, drivers, and where allocations live on disk.
        self.client: ClientAgent | None = None
        self.drivers: DriverSet | None = None
        self.alloc_root: Path | None = None
        self.state_dir: Path | None = None  # None: the client's state is kept in memory (-dev)
        self._scratch: Path | None = None  # -dev without a data dir: removed on shutdown
        self._late_drivers: asyncio.Task[Any] | None = None
        self._driver_checks: asyncio.Task[Any] | None = None
        self._disk_gc: asyncio.Task[Any] | None = None
        self._warming = False

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
        if config.client.enabled:
            self._start_client()  # after the API: fingerprinting must not delay its first answers

    async def _start_server(self) -> None:
        config = self.config
        storage: MemoryStorage | FileStorage
        sync = None
        # -dev keeps its state in memory unless given a data dir: `-dev -data-dir DIR` keeps everything there.
        if config.data_dir:
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
        # The server's fsync runs on the loop, as hashicorp/raft's runs in its own goroutine: a millisecond in
        # which inputs pile up and join the next Ready (a bigger group commit). Through a worker thread the
        # hand-offs cost more CPU than the wait (registrations/s ~9% lower, followers' CPU ~10% higher).
        self.runtime.add_agent(server, sync=sync, blocking_sync=False)
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

    # -- the client ---------------------------------------------------------------------------------------

    def _start_client(self) -> None:
        """Fingerprint the node, load the drivers, and run a ClientAgent on the runtime next to the server
        (its RPCs go to the local server, or to `client { servers }` over the transport)."""
        config, block = self.config, self.config.client
        assert self.runtime is not None
        runtime, loop = self.runtime, self.runtime.loop
        data_dir = Path(config.data_dir) if config.data_dir else None
        state_dir = Path(block.state_dir) if block.state_dir else (data_dir / "client" if data_dir else None)
        if block.alloc_dir:
            alloc_root = Path(block.alloc_dir)
        elif data_dir is not None:
            alloc_root = data_dir / "alloc"
        else:  # -dev without a data dir: a scratch directory, as Nomad's /tmp/NomadClient*
            self._scratch = Path(tempfile.mkdtemp(prefix="YurtClient"))
            alloc_root = self._scratch / "alloc"
        alloc_root.mkdir(parents=True, exist_ok=True)
        self.alloc_root, self.state_dir = alloc_root, state_dir
        log.info("client: using alloc directory %s", alloc_root)
        node_id, secret_id = node_identity(state_dir)
        preparer = TaskPreparer(alloc_root, config.region)

        def context(name: str) -> DriverContext:
            plugin = config.plugins.get(name)
            settings = dict(plugin.config) if plugin is not None else {}
            if name == "raw_exec" and block.options.get("driver.raw_exec.enable", "").lower() in ("1", "true"):
                settings.setdefault("enabled", True)  # the legacy client option, still set by -dev
            # Drivers may record exits from their own threads: the wake goes through the loop.
            return DriverContext(loop, preparer, lambda: loop.call_soon_threadsafe(runtime.wake, node_id),
                                 settings, config.dev_mode)

        store: FileClientStateStore | InMemoryClientStateStore
        store = FileClientStateStore(state_dir) if state_dir is not None else InMemoryClientStateStore()
        restore = store if isinstance(store, FileClientStateStore) and store.has_state() else None
        # Slow drivers (docker: its SDK, the engine's answers) are fingerprinted after the node registers,
        # unless the client restores tasks: then every driver must be there to reattach to its own.
        late = [] if restore is not None else [n for n in SLOW_DRIVERS if n in FACTORIES]
        self.drivers = load_drivers(context, [n for n in FACTORIES if n not in late])
        infos, attributes = self.drivers.fingerprint()
        reserved = block.reserved
        spec = NodeSpec(name=config.name, datacenter=config.datacenter, node_class=block.node_class,
                        meta=dict(block.meta), http_addr=advertised(config, "http"), data_dir=str(alloc_root),
                        network_interface=block.network_interface,
                        network_speed=int(block.other.get("network_speed") or 0),
                        cpu_total_compute=block.cpu_total_compute, memory_total_mb=block.memory_total_mb,
                        reserved_cpu=reserved.cpu, reserved_memory=reserved.memory, reserved_disk=reserved.disk,
                        reserved_ports=reserved.reserved_ports,
                        host_volumes={n: (v.path, v.read_only) for n, v in block.host_volumes.items()})
        node = fingerprint_node(spec, node_id, secret_id, infos, attributes)
        preparer.node = node
        log.info("client: node %s; drivers %s", node_id,
                 ",".join(sorted(n for n, i in infos.items() if i.detected and i.healthy)) or "none")
        client_config = to_client_config(config)
        client_config.update_at_once_when_idle = True
        client_config.gc_max_allocs = config.client.gc_max_allocs
        if config.dev_mode:
            client_config.register_retry = DEV_REGISTER_RETRY

        def forget(alloc_id: str) -> None:
            loop.run_in_executor(None, preparer.destroy, alloc_id)  # rmtree off the loop

        self.client = ClientAgent(node, client_config, self.drivers, random.Random(), agent_id=node_id, store=store,
                                  restore=restore, on_forget=forget)
        sync = store.sync if isinstance(store, FileClientStateStore) else None
        runtime.add_agent(self.client, sync=sync)
        if self.server is not None:
            self.server.apply_listeners.append(self._nudge_client)
        if late:
            self._late_drivers = asyncio.create_task(self._load_late_drivers(late, context, preparer))
        self._driver_checks = asyncio.create_task(self._watch_drivers(preparer))
        self._disk_gc = asyncio.create_task(self._watch_disk(alloc_root))

    async def _watch_disk(self, alloc_root: Path) -> None:
        """Nomad's client GC by disk and inode usage: while the alloc dir's filesystem is fuller than its
        thresholds, the oldest terminal allocation is collected, one per second; checked every gc_interval."""
        block = self.config.client
        while self.client is not None and self.runtime is not None:
            pressed = await asyncio.to_thread(disk_pressure, alloc_root, block.gc_disk_usage_threshold,
                                              block.gc_inode_usage_threshold)
            if pressed:
                log.info("client: %s; collecting the oldest terminal allocation", pressed)
                self.runtime.deliver(f"agent-{self.name}", self.client.id, CollectGarbage(oldest=1))
            await asyncio.sleep(1.0 if pressed else block.gc_interval)

    async def _load_late_drivers(self, names: list[str], context: Any, preparer: TaskPreparer) -> None:
        """Load and fingerprint slow drivers off the loop, then register the node again with them."""
        assert self.drivers is not None
        for name in names:
            driver = await asyncio.to_thread(load_driver, name, context(name))
            if driver is not None:
                self.drivers.add(driver)
                await self._refingerprint(preparer)

    async def _watch_drivers(self, preparer: TaskPreparer) -> None:
        """Nomad checks its drivers' health periodically: an engine that stops (or comes back) changes the
        node the servers schedule on, here within DRIVER_CHECK_INTERVAL."""
        while self.client is not None:
            await asyncio.sleep(DRIVER_CHECK_INTERVAL)
            await self._refingerprint(preparer)

    async def _refingerprint(self, preparer: TaskPreparer) -> None:
        """Fingerprint the drivers off the loop; register the node again when what the servers see changed."""
        if self.drivers is None or self.client is None or self.runtime is None:
            return
        infos, attributes = await asyncio.to_thread(self.drivers.fingerprint)
        node = with_drivers(self.client.node, infos, attributes)
        if node is None:
            return
        for name, info in infos.items():
            before = self.client.node.drivers.get(name)
            if before is not None and (before.healthy, before.detected) != (info.healthy, info.detected):
                log.info("client: driver %s is now %s: %s", name, "healthy" if info.healthy else "unhealthy",
                         info.health_description)
        preparer.node = node
        self.runtime.deliver(f"agent-{self.name}", self.client.id, NodeChanged(node))

    def _nudge_client(self, index: int, result: Any) -> None:
        # The local server applies entries only once it has a leader: an unregistered client need not wait
        # out its registration back-off (Node.Register failed with "No cluster leader" at start-up).
        client, runtime = self.client, self.runtime
        if client is None or runtime is None:
            return
        if not client.registered:
            runtime.deliver(f"agent-{self.name}", client.id, RegisterNow())
        if not self._warming:
            self._warming = True
            runtime.loop.run_in_executor(None, _warm_up)

    def alloc_dir(self, alloc_id: str) -> Path | None:
        """`<alloc dir>/<alloc id>` of an allocation this client ran (logs in alloc/logs/), None if none."""
        return alloc_dir_of(self.alloc_root, alloc_id) if self.alloc_root is not None else None

    def task_handles(self, alloc_id: str) -> dict[str, str]:
        """Task name -> driver handle of the allocation's running tasks on this client (for the DriverSet's
        `pid` and `signal`); empty when this client does not run it."""
        runner = self.client.allocations().get(alloc_id) if self.client is not None else None
        return {name: t.handle for name, t in runner.tasks.items() if t.handle} if runner is not None else {}

    def client_node(self) -> Node | None:
        return self.client.node if self.client is not None else None

    def local_alloc(self, alloc_id: str) -> LocalAlloc | None:
        runner = self.client.allocations().get(alloc_id) if self.client is not None else None
        if runner is None:
            return None
        drivers = self.drivers
        tasks = {name: LocalTask(state=t.state.state or "pending", started=t.state.started_at is not None,
                                 pid=drivers.pid(t.handle) if t.handle and drivers is not None else None,
                                 handle=t.handle or None)
                 for name, t in runner.tasks.items()}
        return LocalAlloc(alloc_id, runner.alloc.task_group, self.alloc_dir(alloc_id), tasks)

    def restart_task(self, alloc_id: str, task: str = "") -> bool:
        """Ask the client to restart a task (every running one when `task` is empty) with its kill signal,
        outside its restart policy; False when this agent runs no client."""
        if self.client is None or self.runtime is None:
            return False
        return self.runtime.deliver(f"agent-{self.name}", self.client.id, RestartTask(alloc_id, task))

    def collect_garbage(self, alloc_id: str = "") -> bool:
        """Ask the client to forget its terminal allocations now (one when `alloc_id` is set); False when this
        agent runs no client."""
        if self.client is None or self.runtime is None:
            return False
        return self.runtime.deliver(f"agent-{self.name}", self.client.id, CollectGarbage(alloc_id))

    def signal_task(self, alloc_id: str, task: str, sig: int) -> bool:
        handle = self.task_handles(alloc_id).get(task)
        return handle is not None and self.drivers is not None and self.drivers.signal(handle, sig)

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

    async def hand_over_leadership(self, timeout: float = LEADERSHIP_HANDOVER_TIMEOUT) -> str:
        """Before a graceful stop: a leading server hands its leadership to its most caught-up follower, so
        the cluster has a leader again within a round trip, not after an election timeout. At most `timeout`
        seconds; returns the server it handed over to ("" when this agent did not lead, or time ran out)."""
        runtime, server = self.runtime, self.server
        if runtime is None or server is None or server.id not in runtime.runners:
            return ""
        endpoint = f"shutdown-{self.name}-{secrets.token_hex(4)}"
        answered: asyncio.Future[ShutdownReady] = asyncio.get_running_loop().create_future()

        def on_answer(_src: str, message: Any) -> None:
            if isinstance(message, ShutdownReady) and not answered.done():
                answered.set_result(message)
        runtime.register(endpoint, on_answer)
        try:
            runtime.deliver(endpoint, server.id, PrepareShutdown(timeout=timeout))
            ready = await asyncio.wait_for(answered, timeout + 0.5)
        except TimeoutError:
            return ""
        finally:
            runtime.unregister(endpoint)
        if ready.transferred_to:
            log.info("server: handed leadership to %s before shutting down", ready.transferred_to)
        return ready.transferred_to

    async def shutdown(self, *, leave: bool) -> None:
        await self.hand_over_leadership()
        if self._join_task is not None:
            self._join_task.cancel()
        if self._late_drivers is not None:
            self._late_drivers.cancel()
        if self._disk_gc is not None:
            self._disk_gc.cancel()
        if self._driver_checks is not None:
            self._driver_checks.cancel()
        if self.membership is not None:
            await (self.membership.leave() if leave else self.membership.stop())
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if self.caller is not None:
            self.caller.close()
        if self.runtime is not None:
            await self.runtime.stop()
        if self.drivers is not None:
            # -dev leaves nothing behind; a real client leaves its tasks running and reattaches on restart.
            # The client is stopped first: it must not take these exits for failures (with -dev -data-dir,
            # the next start finds its tasks gone and starts them again, as after a machine restart).
            await self.drivers.shutdown(kill=self.config.dev_mode)
        if self.transport is not None:
            await self.transport.close()
        storage = self.server.storage if self.server is not None else None
        if isinstance(storage, FileStorage):
            storage.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

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

    def http_address(self) -> str:
        """The advertised HTTP address, as clients put it on their node (where other agents forward to)."""
        return advertised(self.config, "http")

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
                       "Client": {"Enabled": config.client.enabled,
                                  "AllocDir": str(self.alloc_root) if self.alloc_root is not None else "",
                                  "StateDir": str(self.state_dir) if self.state_dir is not None else ""},
                       "Version": {"Version": __version__},
                       "DevMode": config.dev_mode},
            "member": ({"Name": member.name, "Addr": member.addr, "Port": member.port, "Status": member.status,
                        "Tags": member.tags} if member else {}),
            "stats": {"raft": {"state": server.raft.role.value.capitalize() if server else "",
                               "term": str(server.raft.term) if server else "0",
                               "commit_index": str(server.raft.commit_index) if server else "0",
                               "applied_index": str(server.raft.applied_index) if server else "0",
                               "num_peers": str(max(0, len(server.raft.voters) - 1)) if server else "0"},
                      "nomad": {"leader": str(bool(server and server.is_leader)).lower(),
                                "known_regions": "1", "server": str(server is not None).lower()},
                      **({"client": self._client_stats()} if self.client is not None else {})},
        }

    def _client_stats(self) -> dict[str, str]:
        """Nomad's `stats.client` of /v1/agent/self (`node status -self` reads the node ID from it)."""
        client = self.client
        assert client is not None
        stats = client.stats()
        return {"node_id": client.node.id, "known_servers": ",".join(stats["servers"]),
                "num_allocations": str(stats["allocs"]), "heartbeat_ttl": f"{stats['heartbeat_ttl']:g}s",
                "last_heartbeat": "0"}

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
        return self.event_broker.subscribe(topics or None, index)
