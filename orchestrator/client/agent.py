"""The sans-IO client agent: registers its node, heartbeats, watches its allocations and runs them."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Protocol

from orchestrator.rpc.messages import RpcRequest, RpcResponse, methods
from orchestrator.runtime.ports import AgentReady
from orchestrator.structs import Allocation, DecodeError, Node, TaskState, decode, encode

from .allocrunner import AllocRunner
from .rpc import Call, CallTracker, ServerList
from .state import ClientStateBatch, ClientStateStore, InMemoryClientStateStore
from .task_driver import TaskDriver

REGISTER, HEARTBEAT, WATCH, PULL, UPDATE = "register", "heartbeat", "watch", "pull", "update"
NODE_NOT_FOUND = "not found"


@dataclass(frozen=True, slots=True)
class RegisterNow:
    """From the agent process: a server is ready to take writes (the local one just got a leader), so an
    unregistered client retries at once instead of after its registration back-off."""


@dataclass(frozen=True, slots=True)
class NodeChanged:
    """From the agent process: the node's fingerprint changed (a slow driver was detected after the first
    registration): the client registers the new node, as Nomad's client does on fingerprint updates."""

    node: Node


@dataclass(frozen=True, slots=True)
class RestartTask:
    """From the agent process (`PUT /v1/client/allocation/:id/restart`): restart a task of an allocation this
    client runs, or every running task of it when `task` is empty. Not an attempt of the restart policy."""

    alloc_id: str
    task: str = ""


@dataclass(frozen=True, slots=True)
class CollectGarbage:
    """From the agent process (`/v1/client/gc`, `/v1/client/allocation/:id/gc`, disk pressure): forget terminal
    allocations now, whatever gc_max_allocs says: one of them when `alloc_id` is set, the `oldest` N when set,
    else all."""

    alloc_id: str = ""
    oldest: int = 0


class ClientRng(Protocol):
    def random(self) -> float: ...
    def randrange(self, stop: int, /) -> int: ...
    def uniform(self, a: float, b: float, /) -> float: ...


@dataclass(slots=True)
class ClientConfig:
    servers: list[str]
    rpc_timeout: float = 10.0
    update_interval: float = 0.2  # Nomad batches allocation updates for ~200 ms
    max_query_time: float = 300.0  # of the Node.GetClientAllocs blocking query
    register_retry: float = 15.0  # plus up to as much again of stagger, as Nomad's registerRetryIntv
    # Nomad waits the full register_retry after the first failure, so a client started beside its servers is
    # ready 15-30 s later; yurt starts at this and doubles per failed round up to register_retry.
    register_retry_min: float = 0.5
    alloc_sync_retry: float = 5.0  # after a failed Node.UpdateAlloc (plus stagger), as Nomad
    watch_retry: float = 5.0  # after every server failed the allocation watch (plus stagger)
    max_kill_timeout: float = 30.0  # caps a task's kill_timeout, as the client's max_kill_timeout
    gc_max_allocs: int = 50  # beyond this many allocations kept, the oldest terminal ones are collected
    # Nomad sends its batched updates on a 200 ms ticker. With this set, a change after a quiet spell of
    # update_interval goes out at once (later ones are still batched): a task is seen running sooner.
    update_at_once_when_idle: bool = False


class ClientAgent:
    """Nomad's client as an Agent (see orchestrator.runtime.ports): no clock, no sockets, no threads."""

    def __init__(self, node: Node, config: ClientConfig, driver: TaskDriver, rng: ClientRng, *,
                 agent_id: str | None = None, store: ClientStateStore | None = None,
                 restore: ClientStateStore | None = None, on_forget: Callable[[str], None] | None = None):
        self.id = agent_id or node.id
        self.node = node
        self.config = config
        self.driver = driver
        self.rng = rng
        self.store: ClientStateStore = restore or store or InMemoryClientStateStore()
        self._restore = restore is not None
        self.on_forget = on_forget  # told the id of each allocation forgotten (its directory may go)
        self.servers = ServerList(config.servers, rng)
        self.calls = CallTracker(self.id, first_id=rng.randrange(1 << 48))
        self._register_args = {"Node": encode(replace(node, status="ready"))}
        self._booted = False
        self._ready: AgentReady | None = None
        # Registration and heartbeats.
        self.registered = False
        self.heartbeat_ttl = 0.0
        self._last_contact: float | None = None
        self._register_at: float | None = 0.0
        self._heartbeat_at: float | None = None
        self._streak: dict[str, int] = {}
        self._register_rounds = 0  # failed registration rounds in a row: the backoff doubles with each
        # Allocations.
        self.runners: dict[str, AllocRunner] = {}
        self.alloc_index = 0
        self._synced = False  # processed one full allocation list since (re)registration
        self._watch_at: float | None = None
        self._ignored: dict[str, int] = {}  # terminal on arrival: never run; id -> AllocModifyIndex
        self._forgetting: set[str] = set()  # no longer listed by the servers: killed, then forgotten
        self._terminal_since: dict[str, float] = {}  # terminal allocations kept, oldest first: GC order
        self._handles: dict[str, tuple[str, str]] = {}  # driver handle -> (alloc id, task name)
        self._timers: list[tuple[float, str]] = []  # (deadline, alloc id), stale entries skipped
        self._scheduled: dict[str, float] = {}
        # Batched Node.UpdateAlloc and persistence.
        self._report: set[str] = set()
        self._flush_at: float | None = None
        self._last_flush = float("-inf")
        self._persist_runners: set[str] = set()
        self._persist_allocs: dict[str, dict[str, Any]] = {}
        self._persist_deleted: list[str] = []
        self._persist_node = False
        self.counters = {"register": 0, "heartbeat": 0, "update_alloc": 0, "rpc_failures": 0}

    # -- the Agent protocol ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self._boot(now)
        for call in self.calls.expired(now):
            self._failed(now, call, "rpc error: timeout")
        driver_deadline = self.driver.next_deadline()
        if driver_deadline is not None and driver_deadline <= now:
            self._poll_driver(now)
        timers = self._timers
        while timers and timers[0][0] <= now:
            at, alloc_id = heapq.heappop(timers)
            if self._scheduled.get(alloc_id) != at:
                continue
            del self._scheduled[alloc_id]
            runner = self.runners.get(alloc_id)
            if runner is not None:
                runner.tick(now)
                self._after_runner(now, runner)
        if self._register_at is not None and self._register_at <= now:
            self._send_register(now)
        if self._heartbeat_at is not None and self._heartbeat_at <= now:
            self._send_heartbeat(now)
        if self._watch_at is not None and self._watch_at <= now:
            self._send_watch(now)
        if self._flush_at is not None and self._flush_at <= now:
            self._flush(now)

    def receive(self, now: float, src: str, message: Any) -> None:
        self._boot(now)
        if isinstance(message, RpcResponse):
            call = self.calls.answer(message)
            if call is None:
                return  # timed out locally already, or cancelled: late answers are ignored
            result = message.result if isinstance(message.result, dict) else {}
            self.servers.learn(now, message.leader, result.get("Servers"))
            if message.error:
                self._failed(now, call, message.error)
                return
            try:
                self._succeeded(now, call, result)
            except (DecodeError, TypeError, ValueError, KeyError, AttributeError) as exc:
                # A malformed answer is the server's fault, never a reason for the client to stop.
                self._failed(now, call, f"malformed response to {call.method}: {exc}")
                return
            self._streak.pop(call.kind, None)
        elif isinstance(message, RpcRequest):
            error = f"rpc: can't find method {message.method}"
            self.calls.outbox.append((src, RpcResponse(id=message.id, error=error)))
        elif isinstance(message, RegisterNow) and not self.registered and not self.calls.in_flight(REGISTER):
            self._register_at = now
            self._streak.pop(REGISTER, None)
        elif isinstance(message, RestartTask):
            self.restart_task(now, message.alloc_id, message.task or None)
        elif isinstance(message, CollectGarbage):
            self._collect(now, only=message.alloc_id or None, forced=True, limit=message.oldest or None)
        elif isinstance(message, NodeChanged) and message.node.id == self.node.id:
            self.node = message.node
            self._register_args = {"Node": encode(replace(message.node, status="ready"))}
            if self.registered or self.calls.in_flight(REGISTER):
                self._register_at = now  # a registration in flight carries the old node: send the new one too

    def ready(self) -> AgentReady | None:
        if self._ready is None:
            batch = self._take_batch()
            if not self.calls.outbox and batch is None:
                return None
            self._ready = AgentReady(messages=self.calls.take_outbox(), persist=batch)
        return self._ready

    def persist(self, ready: AgentReady) -> None:
        if ready.persist is not None:
            self.store.write(ready.persist)

    def advance(self, now: float, ready: AgentReady) -> None:
        self._ready = None

    def next_deadline(self) -> float | None:
        if not self._booted:
            return 0.0
        timers = self._timers
        while timers and self._scheduled.get(timers[0][1]) != timers[0][0]:
            heapq.heappop(timers)
        candidates = [self._register_at, self._heartbeat_at, self._watch_at, self._flush_at,
                      self.calls.next_deadline(), self.driver.next_deadline(), timers[0][0] if timers else None]
        return min((t for t in candidates if t is not None), default=None)

    def restart_task(self, now: float, alloc_id: str, task: str | None = None) -> list[str]:
        """Restart a task (every running one when `task` is None) of a running allocation: the task is stopped
        with its kill signal and timeout and started again once it exited. The names of the tasks restarted."""
        self._boot(now)
        runner = self.runners.get(alloc_id)
        if runner is None or alloc_id in self._forgetting:
            return []
        names = runner.restart(now, task)
        self._after_runner(now, runner)
        return names

    # -- views for tests, invariant checks and the simulator -----------------------------------------

    def allocations(self) -> MappingProxyType[str, AllocRunner]:
        return MappingProxyType(self.runners)

    def handle_owner(self, handle: str) -> tuple[str, str] | None:
        """(alloc id, task name) of a driver handle this client runs."""
        return self._handles.get(handle)

    def running_allocs(self) -> list[str]:
        return [i for i, r in self.runners.items() if not r.terminal()]

    def task_states(self, alloc_id: str) -> dict[str, TaskState]:
        runner = self.runners.get(alloc_id)
        return {name: t.state for name, t in runner.tasks.items()} if runner is not None else {}

    def stats(self) -> dict[str, Any]:
        running_tasks = sum(t.state.state == "running" for r in self.runners.values() for t in r.tasks.values())
        return {"registered": self.registered, "heartbeat_ttl": self.heartbeat_ttl, "alloc_index": self.alloc_index,
                "allocs": len(self.runners), "allocs_running": len(self.running_allocs()),
                "tasks_running": running_tasks, "pending_requests": len(self.calls.pending),
                "leader": self.servers.leader, "servers": list(self.servers.servers), **self.counters}

    # -- boot and restore -----------------------------------------------------------------------------

    def _boot(self, now: float) -> None:
        if self._booted:
            return
        self._booted = True
        self._register_at = now
        if not self._restore:
            return
        snapshot = self.store.load()
        self.alloc_index = int(snapshot.node.get("AllocIndex", 0))
        self._synced = self.alloc_index > 0
        for alloc_id, data in snapshot.allocs.items():
            runner = AllocRunner(decode(Allocation, data), self.driver, self.rng,
                                 max_kill_timeout=self.config.max_kill_timeout)
            self.runners[alloc_id] = runner
            runner.restore(now, snapshot.runners.get(alloc_id, {}))
            self._after_runner(now, runner)

    # -- requests and their outcomes ------------------------------------------------------------------

    def _send(self, now: float, kind: str, method: str, args: dict[str, Any], *, server: str | None = None,
              timeout: float | None = None, payload: Any = None) -> Call:
        target = server or self.servers.target(method)
        return self.calls.send(now, kind, target, method, args, timeout or self.config.rpc_timeout, payload)

    def _send_register(self, now: float) -> None:
        self._register_at = None
        self.counters["register"] += 1
        self._send(now, REGISTER, methods.NODE_REGISTER, self._register_args)

    def _send_heartbeat(self, now: float) -> None:
        self._heartbeat_at = None
        self.counters["heartbeat"] += 1
        self._send(now, HEARTBEAT, methods.NODE_UPDATE_STATUS, {"NodeID": self.node.id, "Status": "ready"})

    def _send_watch(self, now: float) -> None:
        self._watch_at = None
        args = {"NodeID": self.node.id, "MinQueryIndex": self.alloc_index, "MaxQueryTime": self.config.max_query_time}
        # Servers add up to 1/16 of jitter to a blocking query's wait, as Nomad's do.
        timeout = self.config.max_query_time * 17 / 16 + self.config.rpc_timeout
        self._send(now, WATCH, methods.NODE_GET_CLIENT_ALLOCS, args, server=self.servers.primary, timeout=timeout)

    def _succeeded(self, now: float, call: Call, result: dict[str, Any]) -> None:
        kind = call.kind
        if kind in (REGISTER, HEARTBEAT):
            self.heartbeat_ttl = float(result.get("HeartbeatTTL") or self.heartbeat_ttl or 10.0)
            self._heartbeat_at = now + self.heartbeat_ttl
            self._last_contact = now
            if kind == REGISTER:
                self.registered = True
                self._register_rounds = 0
                if self._watch_at is None and not self.calls.in_flight(WATCH) and not self.calls.in_flight(PULL):
                    self._watch_at = now
                if self._report:
                    self._arm_flush(now)
        elif kind == WATCH:
            self._on_alloc_list(now, call, result)
        elif kind == PULL:
            self._on_allocs_pulled(now, call, result)
        elif kind == UPDATE:
            if self._report:
                self._arm_flush(now)
            if len(self.runners) > self.config.gc_max_allocs:
                self._collect(now)  # the allocations just acknowledged may be collected now

    def _failed(self, now: float, call: Call, error: str) -> None:
        self.counters["rpc_failures"] += 1
        kind = call.kind
        lost_node = NODE_NOT_FOUND in error.lower()
        if not lost_node:
            self.servers.failed(now, call.server, hold=2 * self.config.rpc_timeout)
        if kind == REGISTER:
            self._register_at = self._retry_at(now, kind, self._register_backoff)
        elif kind == HEARTBEAT:
            if lost_node:
                self._reregister(now)
            else:
                self._heartbeat_at = self._retry_at(now, kind, lambda: self._heartbeat_backoff(now))
        elif kind in (WATCH, PULL):
            # The list is asked for again (a failed pull leaves the index where it was).
            self._watch_at = self._retry_at(now, WATCH, lambda: self._stagger(self.config.watch_retry))
        elif kind == UPDATE:
            self._report.update(i for i in call.payload if i in self.runners and i not in self._forgetting)
            self._flush_at = self._retry_at(now, kind, lambda: self._stagger(self.config.alloc_sync_retry))

    def _retry_at(self, now: float, kind: str, backoff: Callable[[], float]) -> float:
        """At once on the next server while some server has not been tried in this round; then back off."""
        streak = self._streak.get(kind, 0) + 1
        if streak < len(self.servers):
            self._streak[kind] = streak
            return now
        self._streak.pop(kind, None)
        return now + backoff()

    def _register_backoff(self) -> float:
        self._register_rounds += 1
        config = self.config
        base = min(config.register_retry, config.register_retry_min * 2 ** (self._register_rounds - 1))
        return self._stagger(base)

    def _stagger(self, base: float) -> float:
        return base + self.rng.uniform(0.0, base)

    def _heartbeat_backoff(self, now: float) -> float:
        """Nomad's getHeartbeatRetryIntv: spread retries over what is left of the TTL, within [1 s, 30 s]."""
        if self._last_contact is None:
            return self._stagger(self.config.register_retry)
        left = self._last_contact + self.heartbeat_ttl - now
        if left < -30.0:
            left = -left
        elif left < 0.0:
            return 1.0 + self.rng.uniform(0.0, 1.0)
        stagger = self.rng.uniform(0.0, left)
        if stagger < 1.0:
            return 1.0 + self.rng.uniform(0.0, 1.0)
        return 25.0 + self.rng.uniform(0.0, 5.0) if stagger > 30.0 else stagger

    def _reregister(self, now: float) -> None:
        """The servers lost this node (state reset, or it was garbage collected): register afresh and
        list the allocations from index 0, since the servers' indexes may have started over."""
        self.registered = False
        self._heartbeat_at = None
        self._register_at = now
        self.calls.cancel(WATCH)
        self.calls.cancel(PULL)
        self._watch_at = None
        self.alloc_index = 0
        self._synced = False
        self._persist_node = True

    # -- watching allocations -------------------------------------------------------------------------

    def _on_alloc_list(self, now: float, call: Call, result: dict[str, Any]) -> None:
        index = int(result.get("Index") or 0)
        listed: dict[str, int] = result.get("Allocs") or {}
        if self._synced and index <= self.alloc_index:
            # Nothing new (the query timed out, or a stale server answered): ask again, but not in a
            # tight loop if a server answers at once.
            self._watch_at = now if now - call.sent_at >= 1.0 else now + 1.0
            return
        for alloc_id in [i for i in self.runners if i not in listed]:
            self._remove(now, alloc_id)
        for alloc_id in [i for i in self._ignored if i not in listed]:
            del self._ignored[alloc_id]
        pull = []
        for alloc_id, modify_index in listed.items():
            runner = self.runners.get(alloc_id)
            if runner is not None:
                if modify_index > runner.alloc.alloc_modify_index and alloc_id not in self._forgetting:
                    pull.append(alloc_id)
            elif modify_index > self._ignored.get(alloc_id, -1):
                pull.append(alloc_id)
        if pull:
            # The same server answers the pull, so the allocations are at least as new as its list.
            self._send(now, PULL, methods.ALLOC_GET_ALLOCS, {"AllocIDs": sorted(pull)}, server=call.server,
                       payload=(index, listed))
            return
        self._set_index(index)
        self._watch_at = now

    def _on_allocs_pulled(self, now: float, call: Call, result: dict[str, Any]) -> None:
        index, listed = call.payload
        behind = False
        for data in result.get("Allocs") or []:
            if not data:
                continue
            alloc = decode(Allocation, data)
            behind |= alloc.alloc_modify_index < listed.get(alloc.id, 0)
            self._apply_alloc(now, alloc, data)
        if behind:
            self._watch_at = now + 1.0  # keep the old index: the next list shows these again
            return
        self._set_index(index)
        self._watch_at = now

    def _set_index(self, index: int) -> None:
        self._synced = True
        if index != self.alloc_index:
            self.alloc_index = index
            self._persist_node = True

    def _apply_alloc(self, now: float, alloc: Allocation, data: dict[str, Any]) -> None:
        runner = self.runners.get(alloc.id)
        if runner is None:
            if alloc.node_id and alloc.node_id != self.node.id:
                return
            if alloc.terminal() or alloc.desired_transition.should_migrate():
                self._ignored[alloc.id] = alloc.alloc_modify_index  # stopped before it ever ran here
                return
            runner = AllocRunner(alloc, self.driver, self.rng, max_kill_timeout=self.config.max_kill_timeout)
            self.runners[alloc.id] = runner
            runner.run(now)
        elif alloc.alloc_modify_index < runner.alloc.alloc_modify_index:
            return
        else:
            runner.update(now, alloc)
        self._persist_allocs[alloc.id] = data
        self._after_runner(now, runner)

    def _remove(self, now: float, alloc_id: str) -> None:
        """The servers no longer list the allocation (garbage collected): stop it, then forget it."""
        runner = self.runners[alloc_id]
        self._report.discard(alloc_id)
        if runner.terminal():
            self._forget(alloc_id)
            return
        self._forgetting.add(alloc_id)
        runner.kill(now)
        self._after_runner(now, runner)

    def _forget(self, alloc_id: str) -> None:
        runner = self.runners.pop(alloc_id)
        for handle in runner.handles():
            self._handles.pop(handle, None)
        self._scheduled.pop(alloc_id, None)
        self._forgetting.discard(alloc_id)
        self._report.discard(alloc_id)
        self._persist_runners.discard(alloc_id)
        self._persist_allocs.pop(alloc_id, None)
        self._persist_deleted.append(alloc_id)
        self._terminal_since.pop(alloc_id, None)
        if self.on_forget is not None:
            self.on_forget(alloc_id)

    # -- running allocations --------------------------------------------------------------------------

    def _poll_driver(self, now: float) -> None:
        for result in self.driver.poll(now):
            owner = self._handles.pop(result.handle, None)
            runner = self.runners.get(owner[0]) if owner is not None else None
            if runner is None:
                continue  # an allocation already forgotten
            runner.on_exit(now, owner[1], result)
            self._after_runner(now, runner)

    def _after_runner(self, now: float, runner: AllocRunner) -> None:
        """Collect what a runner changed: handles, the batched update, persistence and its next timer."""
        alloc_id = runner.id
        for handle, task_name in runner.handles().items():
            self._handles[handle] = (alloc_id, task_name)
        if runner.changed:
            runner.changed = False
            self._persist_runners.add(alloc_id)
            if alloc_id not in self._forgetting:
                self._report.add(alloc_id)
                self._arm_flush(now)
        if alloc_id in self._forgetting and runner.terminal():
            self._forget(alloc_id)
            return
        deadline = runner.next_deadline()
        if deadline is None:
            self._scheduled.pop(alloc_id, None)
        elif self._scheduled.get(alloc_id) != deadline:
            self._scheduled[alloc_id] = deadline
            heapq.heappush(self._timers, (deadline, alloc_id))
        if runner.terminal():
            self._terminal_since.setdefault(alloc_id, now)
        else:
            self._terminal_since.pop(alloc_id, None)  # cannot happen today; keeps GC from taking a live one
        if len(self.runners) > self.config.gc_max_allocs:
            self._collect(now)

    def _collect(self, now: float, *, only: str | None = None, forced: bool = False, limit: int | None = None) -> None:
        """Nomad's client GC by gc_max_allocs: forget the oldest terminal allocations (their directories go
        through on_forget) until no more than gc_max_allocs are kept (`forced`: all of them, or just `only`).
        An allocation whose final state the servers have not acknowledged yet is kept until they have;
        running ones are never collected."""
        unsent = set(self._report)
        for call in self.calls.pending.values():
            if call.kind == UPDATE:
                unsent.update(call.payload)
        excess = len(self.runners) if forced else len(self.runners) - self.config.gc_max_allocs
        if limit is not None:
            excess = min(excess, limit)
        for alloc_id in sorted(self._terminal_since, key=self._terminal_since.__getitem__):
            if excess <= 0:
                return
            if only is not None and alloc_id != only:
                continue
            runner = self.runners.get(alloc_id)
            if runner is None or alloc_id in unsent or not runner.terminal():
                continue
            # Still listed by the servers: remembered as ignored so that it is not pulled and run again.
            self._ignored[alloc_id] = runner.alloc.alloc_modify_index
            self._forget(alloc_id)
            excess -= 1

    # -- batched updates and persistence --------------------------------------------------------------

    def _arm_flush(self, now: float) -> None:
        if self._flush_at is None and self.registered and not self.calls.in_flight(UPDATE):
            interval = self.config.update_interval
            idle = self.config.update_at_once_when_idle and now - self._last_flush >= interval
            self._flush_at = now if idle else now + interval

    def _flush(self, now: float) -> None:
        self._flush_at = None
        ids = sorted(i for i in self._report if i in self.runners)
        self._report.clear()
        if not ids:
            return
        self._last_flush = now
        self.counters["update_alloc"] += 1
        updates = [self.runners[i].client_update() for i in ids]
        self._send(now, UPDATE, methods.NODE_UPDATE_ALLOC, {"Alloc": updates}, payload=ids)

    def _take_batch(self) -> ClientStateBatch | None:
        if not (self._persist_node or self._persist_runners or self._persist_allocs or self._persist_deleted):
            return None
        batch = ClientStateBatch(
            node={"NodeID": self.node.id, "AllocIndex": self.alloc_index} if self._persist_node else None,
            allocs=self._persist_allocs,
            runners={i: self.runners[i].dump() for i in self._persist_runners if i in self.runners},
            deleted=self._persist_deleted)
        self._persist_node = False
        self._persist_runners = set()
        self._persist_allocs = {}
        self._persist_deleted = []
        return batch
