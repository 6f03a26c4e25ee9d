"""The SimPy runtime: drives sans-IO agents on a virtual clock, with messages crossing a simulated Network."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import simpy
from simpy.events import NORMAL, Event

from orchestrator.runtime.ports import Agent, AgentReady
from sim.network import LatencySpec, Network, make_sampler

AgentFactory = Callable[[float], Agent]
SendHook = Callable[[float, str, str, Any, tuple[float, ...]], None]  # (env time, src, dst, message, delays)
DeliverHook = Callable[[float, str, str, Any], None]  # (env time, src, dst, message)
FaultHook = Callable[[float, str, Any, dict[str, Any]], None]  # (env time, kind, target, details)

_TICK = object()  # a held tick in an agent's input queue, in place of a (src, message) pair
_MAX_TICKS_AT_ONE_INSTANT = 10_000


class _Call(Event):
    """A pre-triggered event that calls fn(*args) when processed: one per delivery, timer or fsync.

    Cheaper than a SimPy process per message and than a closure per timeout.
    """

    def __init__(self, env: simpy.Environment, delay: float, fn: Callable[..., None], args: tuple):
        self.env = env
        self.callbacks = [_run_call]
        self._value = None
        self._ok = True
        self.fn = fn
        self.args = args
        env.schedule(self, NORMAL, delay)


def _run_call(event: _Call) -> None:
    event.fn(*event.args)


@dataclass(slots=True)
class Counters:
    """What the runtime did; `events` counts every delivery, timer and fsync callback it handled."""

    sent: int = 0           # messages handed to the network (a duplicate counts once)
    delivered: int = 0      # messages an agent received
    dropped: int = 0        # all drops: dropped_network + dropped_down
    dropped_network: int = 0  # unreachable (no route, partitioned) or lost on the way
    dropped_down: int = 0   # reached a crashed agent, or were held by one when it crashed
    duplicated: int = 0     # extra copies the network made
    held: int = 0           # inputs queued because the agent was paused or waiting for its fsync
    ticks: int = 0
    stale_timers: int = 0   # timers superseded by a newer deadline (fired and ignored)
    steps: int = 0          # ready cycles: persist, send, advance
    events: int = 0


class _Slot:
    """The runtime's per-agent state; survives crashes (the agent object does not)."""

    __slots__ = ("agent", "armed", "base", "busy", "factory", "held_step", "id", "incarnation", "last_tick",
                 "machine_down", "on_crash", "on_sync", "paused", "queue", "same_instant_ticks", "skew", "sync",
                 "tick_held", "timer_gen")

    def __init__(self, agent_id: str, factory: AgentFactory, base: float, sync: Callable[[], float] | None,
                 on_sync: Callable[[], None] | None, on_crash: Callable[[], None] | None):
        self.id = agent_id
        self.factory = factory
        self.agent: Agent | None = None
        self.skew = 0.0
        self.base = base  # epoch + skew: the agent's `now` is base + env.now
        self.sync = sync  # draws the fsync delay; None when fsync is instant
        self.on_sync = on_sync
        self.on_crash = on_crash
        self.machine_down = False  # crashed with its host: nothing answers, connections time out
        self.incarnation = 0  # bumped on crash: an fsync completing for a dead incarnation is ignored
        self.timer_gen = 0  # bumped whenever the pending timer is superseded
        self.armed: float | None = None  # the agent-clock deadline the pending timer is for
        self.paused = False
        self.busy = False  # between persist and send, while a virtual fsync runs
        self.held_step: AgentReady | None = None  # an fsync that completed while paused
        self.queue: deque = deque()  # held inputs: (src, message) or (_TICK, None)
        self.tick_held = False
        self.last_tick = -1.0
        self.same_instant_ticks = 0


class SimRuntime:
    """Feeds agents their inputs at virtual times and carries out each Ready (persist, sync, send, advance).

    With a nonzero `disk_sync_latency` an agent waits for its virtual fsync between persist and send; its
    inputs queue meanwhile (fed in order, all at once, when the step completes, so they batch into the
    next Ready like a group commit). A crash during that window loses the step: its messages are never
    sent and `advance` never runs. What it persisted is whatever the agent's storage kept: the runtime
    knows no disk, but `add_agent(on_sync=..., on_crash=...)` lets a disk model that loses unsynced writes
    on a crash learn when its fsync completed and when its process died.

    Messages in flight to an agent are dropped if they arrive while it is crashed, held while it is
    paused, and delivered to the new incarnation if it was restarted by the time they arrive.
    """

    def __init__(self, env: simpy.Environment, network: Network, rng: random.Random, epoch: float = 1_790_000_000.0,
                 *, disk_sync_latency: LatencySpec = 0.0):
        self.env = env
        self.network = network
        self.rng = rng
        self.epoch = epoch
        self.disk_sync_latency = disk_sync_latency
        self.counters = Counters()
        self.on_send: list[SendHook] = []
        self.on_deliver: list[DeliverHook] = []
        self.on_fault: list[FaultHook] = []
        self._slots: dict[str, _Slot] = {}
        # What a crashed agent's host answers instead (a kill -9'd process leaves a host that refuses
        # connections at once): bounce(message) -> a reply to send back to the sender, or None for silence.
        self.bounce: Callable[[Any], Any] | None = None
        # What becomes of a message the network lost (or that reached a dead host): RPC runs over TCP, so
        # the party waiting for an answer sees a broken connection instead of silence. on_lost(src, dst,
        # message, unreachable) -> (recipient, sender, reply, delay) or None.
        self.on_lost: Callable[[str, str, Any, bool], tuple[str, str, Any, float] | None] | None = None
        # Requests a dying agent leaves unanswered: their callers' connections break (at once when only the
        # process died, after keepalive when the machine did). on_agent_lost(agent, machine) ->
        # [(caller, reply, delay)].
        self.on_agent_lost: Callable[[Agent, bool], list[tuple[str, Any, float]]] | None = None
        self._fault_handlers: dict[str, Callable[[Any], None]] = {}
        # Endpoints in the same process as an agent (the agent's own shutdown path): what an agent sends
        # them is handed over at once, off the network, as AioRuntime.deliver does.
        self._endpoints: dict[str, Callable[[str, Any], None]] = {}

    # -- clocks and observation ---------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The true virtual unix time (no skew)."""
        return self.epoch + self.env.now

    def clock(self, agent_id: str) -> float:
        """The virtual unix time as `agent_id`'s (possibly skewed) clock reads it."""
        return self._slots[agent_id].base + self.env.now

    @property
    def agents(self) -> dict[str, Agent]:
        """The live agent objects, by id (crashed agents are absent)."""
        return {aid: slot.agent for aid, slot in self._slots.items() if slot.agent is not None}

    @property
    def ids(self) -> list[str]:
        """Every agent id ever added, up or down, in the order added."""
        return list(self._slots)

    def agent(self, agent_id: str) -> Agent | None:
        return self._slots[agent_id].agent

    def is_up(self, agent_id: str) -> bool:
        slot = self._slots.get(agent_id)
        return slot is not None and slot.agent is not None

    def is_paused(self, agent_id: str) -> bool:
        return self._slots[agent_id].paused

    def skew(self, agent_id: str) -> float:
        return self._slots[agent_id].skew

    # -- agents -------------------------------------------------------------------------------------

    def add_agent(self, agent_id: str, factory: AgentFactory, *, disk_sync_latency: LatencySpec | None = None,
                  on_sync: Callable[[], None] | None = None, on_crash: Callable[[], None] | None = None) -> Agent:
        """Register and start an agent: `factory(now)` builds it from whatever its "disk" holds."""
        if agent_id in self._slots:
            raise ValueError(f"agent {agent_id!r} already added")
        spec = self.disk_sync_latency if disk_sync_latency is None else disk_sync_latency
        sync = None if spec == 0 else make_sampler(spec, self.rng)
        slot = self._slots[agent_id] = _Slot(agent_id, factory, self.epoch, sync, on_sync, on_crash)
        self.network.add_node(agent_id)
        self._start(slot)
        return slot.agent  # type: ignore[return-value]

    def crash(self, agent_id: str, *, machine: bool = False) -> None:
        """Kill the process: the agent object, its held inputs, its timer and any step in fsync are lost.
        With `machine`, its host dies too: nothing refuses connections, senders time out."""
        slot = self._slots[agent_id]
        if slot.agent is None:
            return
        slot.machine_down = machine
        farewells = self.on_agent_lost(slot.agent, machine) if self.on_agent_lost is not None else []
        lost = sum(1 for src, _message in slot.queue if src is not _TICK)
        self.counters.dropped += lost
        self.counters.dropped_down += lost
        slot.agent = None
        slot.incarnation += 1
        slot.timer_gen += 1
        slot.armed = None
        slot.queue.clear()
        slot.tick_held = False
        slot.busy = False
        slot.held_step = None
        slot.paused = False  # SIGKILL ends a stopped process too
        if slot.on_crash is not None:
            slot.on_crash()
        self.note_fault("crash", agent_id)
        for caller, reply, delay in farewells:
            target = self._slots.get(caller)
            if target is not None:
                _Call(self.env, delay, self._arrive, (target, agent_id, reply))

    def restart(self, agent_id: str) -> Agent:
        """Start the agent again from its factory; a live agent is crashed first (a hard reboot)."""
        slot = self._slots[agent_id]
        if slot.agent is not None:
            self.crash(agent_id)
        self.note_fault("restart", agent_id)
        self._start(slot)
        return slot.agent  # type: ignore[return-value]

    def pause(self, agent_id: str) -> None:
        """SIGSTOP: inputs, ticks and a completing fsync are held until `resume`."""
        slot = self._slots[agent_id]
        if slot.agent is not None and not slot.paused:
            slot.paused = True
            self.note_fault("pause", agent_id)

    def resume(self, agent_id: str) -> None:
        """SIGCONT: finish a held fsync step, then feed the held inputs in arrival order, now."""
        slot = self._slots[agent_id]
        if slot.agent is None or not slot.paused:
            return
        slot.paused = False
        self.note_fault("resume", agent_id)
        if slot.held_step is not None:
            ready, slot.held_step = slot.held_step, None
            self._complete_step(slot, ready)
        elif not slot.busy:
            self._feed_held(slot)
            self._drain(slot)

    def skew_clock(self, agent_id: str, seconds: float) -> None:
        """Set the agent's clock offset from true virtual time (absolute, not cumulative; 0 undoes it)."""
        slot = self._slots[agent_id]
        slot.skew = float(seconds)
        slot.base = self.epoch + slot.skew
        self.note_fault("skew", agent_id, seconds=slot.skew)
        if slot.agent is not None:
            # The same deadline now falls at another virtual instant: retire the pending timer. An agent
            # in its fsync wait is re-armed when the step completes.
            slot.timer_gen += 1
            slot.armed = None
            if not slot.busy:
                self._arm(slot)

    def kick(self, agent_id: str) -> None:
        """The agent was changed from outside (an operator queued a call): run its Ready loop now."""
        slot = self._slots[agent_id]
        if slot.agent is not None and not slot.paused and not slot.busy:
            self._drain(slot)

    # -- local endpoints -----------------------------------------------------------------------------

    def register(self, endpoint_id: str, endpoint: Callable[[str, Any], None]) -> None:
        """Receive what agents send to `endpoint_id` at once, off the network: endpoint(src, message)."""
        if endpoint_id in self._endpoints or endpoint_id in self._slots:
            raise ValueError(f"endpoint {endpoint_id!r} already registered")
        self._endpoints[endpoint_id] = endpoint

    def unregister(self, endpoint_id: str) -> None:
        self._endpoints.pop(endpoint_id, None)

    def _to_endpoint(self, endpoint_id: str, src: str, message: Any) -> None:
        endpoint = self._endpoints.get(endpoint_id)
        if endpoint is not None:
            endpoint(src, message)

    def deliver(self, src: str, dst: str, message: Any) -> None:
        """Hand `message` to agent `dst` now, as from a local endpoint `src` (no network in between)."""
        self._arrive(self._slots[dst], src, message)

    # -- faults the runtime does not implement -------------------------------------------------------

    def register_fault_handler(self, kind: str, fn: Callable[[Any], None]) -> None:
        """Let a higher layer implement a fault kind (e.g. "kill_task" by the cluster): fn(target)."""
        self._fault_handlers[kind] = fn

    def has_fault_handler(self, kind: str) -> bool:
        return kind in self._fault_handlers

    def inject(self, kind: str, target: Any) -> None:
        """Run the registered handler for `kind` on `target` (LookupError when none is registered)."""
        handler = self._fault_handlers.get(kind)
        if handler is None:
            raise LookupError(f"no fault handler registered for {kind!r}")
        self.note_fault(kind, target)
        handler(target)

    def note_fault(self, kind: str, target: Any, **details: Any) -> None:
        """Tell the on_fault hooks (trace, checkers) a fault started or ended."""
        for hook in self.on_fault:
            hook(self.env.now, kind, target, details)

    # -- driving --------------------------------------------------------------------------------------

    def _start(self, slot: _Slot) -> None:
        slot.agent = slot.factory(slot.base + self.env.now)
        slot.machine_down = False
        slot.last_tick = -1.0
        slot.same_instant_ticks = 0
        self._drain(slot)

    def _arrive(self, slot: _Slot, src: str, message: Any) -> None:
        self.counters.events += 1
        agent = slot.agent
        if agent is None:
            self.counters.dropped += 1
            self.counters.dropped_down += 1
            if slot.machine_down:
                self._lost(src, slot.id, message, True)
                return
            reply = self.bounce(message) if self.bounce is not None else None
            if reply is not None:
                self._send(slot, [(src, reply)])
            return
        if slot.paused or slot.busy:
            slot.queue.append((src, message))
            self.counters.held += 1
            return
        self._receive(slot, src, message)
        self._drain(slot)

    def _receive(self, slot: _Slot, src: str, message: Any) -> None:
        now = self.env.now
        self.counters.delivered += 1
        for hook in self.on_deliver:
            hook(now, src, slot.id, message)
        slot.agent.receive(slot.base + now, src, message)  # type: ignore[union-attr]

    def _timer(self, slot: _Slot, generation: int) -> None:
        self.counters.events += 1
        if generation != slot.timer_gen:
            self.counters.stale_timers += 1
            return
        slot.armed = None
        if slot.paused or slot.busy:
            if not slot.tick_held:
                slot.tick_held = True
                slot.queue.append((_TICK, None))
                self.counters.held += 1
            return
        self._tick(slot)
        self._drain(slot)

    def _tick(self, slot: _Slot) -> None:
        now = self.env.now
        # An agent whose deadline never moves past `now` would spin the simulation at one instant forever.
        if now == slot.last_tick:
            slot.same_instant_ticks += 1
            if slot.same_instant_ticks > _MAX_TICKS_AT_ONE_INSTANT:
                raise RuntimeError(f"agent {slot.id} keeps asking for a tick at {slot.base + now}: "
                                   "next_deadline() does not move past now")
        else:
            slot.last_tick, slot.same_instant_ticks = now, 0
        self.counters.ticks += 1
        slot.agent.tick(slot.base + now)  # type: ignore[union-attr]

    def _feed_held(self, slot: _Slot) -> None:
        """Feed every held input in order; the caller drains once after, so they share one Ready."""
        queue = slot.queue
        while queue:
            src, message = queue.popleft()
            if src is _TICK:
                slot.tick_held = False
                self._tick(slot)
            else:
                self._receive(slot, src, message)

    def _drain(self, slot: _Slot) -> None:
        """The Ready loop: persist, (fsync), send, advance, until the agent has nothing more to do."""
        agent = slot.agent
        while (ready := agent.ready()) is not None:  # type: ignore[union-attr]
            agent.persist(ready)  # type: ignore[union-attr]
            if slot.sync is not None:
                delay = slot.sync()
                if delay > 0:
                    slot.busy = True
                    _Call(self.env, delay, self._synced, (slot, slot.incarnation, ready))
                    return
            self.counters.steps += 1
            if slot.on_sync is not None:
                slot.on_sync()
            self._send(slot, ready.messages)
            agent.advance(slot.base + self.env.now, ready)  # type: ignore[union-attr]
        self._arm(slot)

    def _synced(self, slot: _Slot, incarnation: int, ready: AgentReady) -> None:
        self.counters.events += 1
        if incarnation != slot.incarnation:
            return  # the agent crashed during its fsync: the step is lost
        if slot.paused:
            slot.held_step = ready
            return
        self._complete_step(slot, ready)

    def _complete_step(self, slot: _Slot, ready: AgentReady) -> None:
        slot.busy = False
        self.counters.steps += 1
        if slot.on_sync is not None:
            slot.on_sync()
        self._send(slot, ready.messages)
        slot.agent.advance(slot.base + self.env.now, ready)  # type: ignore[union-attr]
        self._feed_held(slot)
        self._drain(slot)

    def _send(self, slot: _Slot, messages: list[tuple[str, Any]]) -> None:
        env, network, counters, slots = self.env, self.network, self.counters, self._slots
        now = env.now
        src = slot.id
        endpoints = self._endpoints
        for dst, message in messages:
            if endpoints and dst in endpoints:
                # After the sender's step completes (never inside it: the endpoint may stop the sender).
                _Call(env, 0.0, self._to_endpoint, (dst, src, message))
                continue
            counters.sent += 1
            unreachable_before = network.dropped_unreachable
            delays = network.deliveries(src, dst, message, now)
            for hook in self.on_send:
                hook(now, src, dst, message, delays)
            target = slots.get(dst)
            if not delays or target is None:
                counters.dropped += 1
                counters.dropped_network += 1
                if self.on_lost is not None:
                    self._lost(src, dst, message, network.dropped_unreachable != unreachable_before)
                continue
            if len(delays) > 1:
                counters.duplicated += len(delays) - 1
            for delay in delays:
                _Call(env, delay, self._arrive, (target, src, message))

    def _lost(self, src: str, dst: str, message: Any, unreachable: bool) -> None:
        if self.on_lost is None:
            return
        outcome = self.on_lost(src, dst, message, unreachable)
        if outcome is None:
            return
        recipient, sender, reply, delay = outcome
        target = self._slots.get(recipient)
        if target is not None:
            _Call(self.env, delay, self._arrive, (target, sender, reply))

    def _arm(self, slot: _Slot) -> None:
        """Keep exactly one live timer, for the agent's current next_deadline()."""
        deadline = slot.agent.next_deadline()  # type: ignore[union-attr]
        if deadline == slot.armed:
            return
        if deadline is not None and slot.armed is not None and deadline > slot.armed:
            # A deadline that moved later (a follower hearing its leader) keeps the earlier timer: its tick
            # comes early, which the Agent contract allows, and re-arms then. Far fewer events than a new
            # timer per message, each of which would fire later only to be ignored.
            return
        slot.timer_gen += 1  # whatever timer is pending is now stale
        slot.armed = deadline
        if deadline is None:
            return
        delay = deadline - slot.base - self.env.now
        _Call(self.env, delay if delay > 0 else 0.0, self._timer, (slot, slot.timer_gen))
