"""Fault schedules: seeded random campaigns of crashes, pauses, partitions and message faults, and applying them."""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

from sim.network import Network
from sim.runtime import SimRuntime

# kind -> what `target` is, and what `magnitude` means
BUILTIN_KINDS = {
    "crash": "agent id; restarted from its factory when the duration ends",
    "pause": "agent id; resumed when the duration ends",
    "isolate": "node id; cut off from every node until healed",
    "partition": "tuple of groups (tuples of node ids); nodes in no group stay connected",
    "partition_ring": "tuple of node ids; each sees only its two ring neighbours",
    "drop": "'*'; magnitude is the extra drop probability",
    "duplicate": "'*'; magnitude is the duplicate probability",
    "reorder": "'*'; magnitude is the reorder jitter in seconds",
    "skew": "agent id; magnitude is the clock offset in seconds, undone when the duration ends",
}
INSTANT_KINDS = {"kill_task"}  # run by a handler the cluster layer registers on the runtime
IMPAIRMENTS = {"drop": "drop_rate", "duplicate": "duplicate_rate", "reorder": "reorder_jitter"}  # Network.impair

# Relative frequencies of what FaultCampaign.random draws; pass weights= to change or exclude (weight 0).
DEFAULT_WEIGHTS: dict[str, float] = {
    "crash_server": 1.0,
    "crash_client": 2.0,
    "pause": 1.0,
    "isolate": 1.0,
    "partition_minority": 1.0,   # a minority of the servers apart from the rest; clients see both sides
    "partition_split": 1.0,      # the whole cluster split: a server minority with some clients, the rest
    "partition_ring": 0.5,       # servers in a ring (4 or 5 servers: more would lose quorum)
    "drop": 1.0,
    "duplicate": 1.0,
    "reorder": 1.0,
    "skew": 1.0,
    "kill_task": 2.0,
}


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One fault starting at `at` (virtual seconds since the simulation began), undone after `duration`.

    A duration of None lasts until the campaign's horizon; instant kinds ignore it.
    """

    at: float
    kind: str
    target: str | tuple
    duration: float | None = None
    magnitude: float | None = None

    def end(self, horizon: float) -> float:
        if self.kind in INSTANT_KINDS or self.kind not in BUILTIN_KINDS:
            return self.at
        return horizon if self.duration is None else min(self.at + self.duration, horizon)


@dataclass
class FaultCampaign:
    """A fault schedule over [0, horizon]: every fault is undone by the horizon."""

    events: list[FaultEvent]
    horizon: float
    servers: tuple[str, ...] = ()
    allow_quorum_loss: bool = False
    notes: list[str] = field(default_factory=list)

    def __iter__(self):
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def describe(self) -> list[str]:
        lines = []
        for e in self.events:
            lasting = "" if e.end(self.horizon) == e.at else f" for {e.end(self.horizon) - e.at:.1f}s"
            size = "" if e.magnitude is None else f" ({e.magnitude:g})"
            lines.append(f"{e.at:9.3f}s {e.kind:<15} {e.target}{lasting}{size}")
        return lines

    def unavailable_servers(self, t: float) -> set[str]:
        """Servers that cannot count toward a quorum at time t (crashed, paused, cut off, minority side)."""
        down: set[str] = set()
        for event in self.events:
            if event.at <= t < event.end(self.horizon):
                down |= _servers_down(event, self.servers)
        return down

    @classmethod
    def random(cls, rng: random.Random, servers: Sequence[str], clients: Sequence[str], horizon: float,
               intensity: float = 1.0, *, allow_quorum_loss: bool = False, weights: Mapping[str, float] | None = None,
               min_duration: float = 5.0, max_duration: float = 60.0, max_skew: float = 5.0) -> FaultCampaign:
        """Draw faults as a Poisson process of `intensity` faults per virtual minute, using only `rng`.

        Faults on one agent never overlap; at no instant are more than a minority of the servers
        crashed, paused, isolated or on a partition's minority side (unless `allow_quorum_loss`).
        Every fault ends by `horizon`.
        """
        drawer = _Drawer(rng, list(servers), list(clients), allow_quorum_loss, max_skew)
        all_weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        kinds = [k for k, w in all_weights.items() if w > 0 and drawer.possible(k)]
        kind_weights = [all_weights[k] for k in kinds]
        campaign = cls([], horizon, tuple(servers), allow_quorum_loss)
        if not kinds or intensity <= 0:
            return campaign
        t = 0.0
        while True:
            t += rng.expovariate(intensity / 60.0)
            if t >= horizon - min_duration:
                break
            kind = rng.choices(kinds, kind_weights)[0]
            duration = min(rng.uniform(min_duration, max_duration), horizon - t)
            for _attempt in range(5):
                event = drawer.draw(kind, t, duration)
                if event is not None and drawer.fits(event, campaign):
                    campaign.events.append(event)
                    break
            else:
                campaign.notes.append(f"{t:.3f}s: no {kind} fits beside the faults already drawn")
        return campaign


def _servers_down(event: FaultEvent, servers: Sequence[str]) -> set[str]:
    if event.kind in ("crash", "pause", "isolate"):
        return {event.target} & set(servers)
    if event.kind == "partition":
        # Every group but the one holding most servers cannot form a quorum on its own.
        sides = [set(group) & set(servers) for group in event.target]
        biggest = max(range(len(sides)), key=lambda i: len(sides[i]), default=0)
        return set().union(*(side for i, side in enumerate(sides) if i != biggest))
    if event.kind == "partition_ring":
        ring = [node for node in event.target if node in servers]
        # A leader reaches its two neighbours: the rest of the ring counts as down (conservatively).
        return set(ring[2:-1]) if len(ring) > 3 else set()
    return set()


class _Drawer:
    """Draws one candidate fault of a kind, and checks it against the campaign so far."""

    def __init__(self, rng: random.Random, servers: list[str], clients: list[str], allow_quorum_loss: bool,
                 max_skew: float):
        self.rng, self.servers, self.clients = rng, servers, clients
        self.allow_quorum_loss = allow_quorum_loss
        self.max_skew = max_skew
        self.budget = len(servers) if allow_quorum_loss else (len(servers) - 1) // 2

    def possible(self, kind: str) -> bool:
        n = len(self.servers)
        if kind in ("crash_server", "partition_minority"):
            return n > 0 and (self.budget > 0)
        if kind == "partition_split":
            return n > 0 and self.budget > 0 and bool(self.clients)
        if kind == "partition_ring":
            return n >= 4 and (n <= 5 or self.allow_quorum_loss)
        if kind in ("crash_client", "kill_task"):
            return bool(self.clients)
        return bool(self.servers or self.clients)

    def draw(self, kind: str, at: float, duration: float) -> FaultEvent | None:
        rng = self.rng
        everyone = self.servers + self.clients
        if kind == "crash_server":
            return FaultEvent(at, "crash", rng.choice(self.servers), duration)
        if kind == "crash_client":
            return FaultEvent(at, "crash", rng.choice(self.clients), duration)
        if kind in ("pause", "isolate"):
            return FaultEvent(at, kind, rng.choice(everyone), duration)
        if kind == "skew":
            return FaultEvent(at, "skew", rng.choice(everyone), duration, rng.uniform(-self.max_skew, self.max_skew))
        if kind == "kill_task":
            return FaultEvent(at, "kill_task", rng.choice(self.clients))
        if kind == "partition_minority":
            minority = rng.sample(self.servers, max(1, self.budget))
            rest = [s for s in self.servers if s not in minority]
            return FaultEvent(at, "partition", (tuple(minority), tuple(rest)), duration)
        if kind == "partition_split":
            minority = rng.sample(self.servers, max(1, self.budget))
            side = set(rng.sample(self.clients, rng.randint(0, len(self.clients))))
            small = tuple(minority) + tuple(c for c in self.clients if c in side)
            big = tuple(s for s in self.servers if s not in minority) + tuple(c for c in self.clients if c not in side)
            return FaultEvent(at, "partition", (small, big), duration)
        if kind == "partition_ring":
            ring = list(self.servers)
            rng.shuffle(ring)
            return FaultEvent(at, "partition_ring", tuple(ring), duration)
        if kind == "drop":
            return FaultEvent(at, "drop", "*", duration, rng.uniform(0.05, 0.3))
        if kind == "duplicate":
            return FaultEvent(at, "duplicate", "*", duration, rng.uniform(0.05, 0.3))
        if kind == "reorder":
            return FaultEvent(at, "reorder", "*", duration, rng.uniform(0.01, 0.2))
        return FaultEvent(at, kind, rng.choice(self.clients or self.servers))  # a kind a handler implements

    def fits(self, event: FaultEvent, campaign: FaultCampaign) -> bool:
        start, end = event.at, event.end(campaign.horizon)
        overlapping = [e for e in campaign.events if e.at <= end and start <= e.end(campaign.horizon)]
        if isinstance(event.target, str) and event.target != "*" and any(e.target == event.target for e in overlapping):
            return False  # one fault per agent at a time keeps every undo unambiguous
        # Servers on no fault's down side are on the same side of every cut, and up: a quorum while they
        # are a majority, however the cuts combine.
        down = _servers_down(event, self.servers)
        if not down:
            return True
        for e in overlapping:
            down |= _servers_down(e, self.servers)
        return len(down) <= self.budget


def apply(campaign: FaultCampaign, runtime: SimRuntime, network: Network) -> list[simpy.Process]:
    """Schedule every fault of `campaign` on the runtime's environment, each undone when it ends."""
    env = runtime.env
    for event in campaign.events:
        if event.kind not in BUILTIN_KINDS and not runtime.has_fault_handler(event.kind):
            raise LookupError(f"campaign has {event.kind!r} faults but no handler is registered for them")
        if event.at < env.now:
            raise ValueError(f"fault at {event.at}s is already past (now {env.now}s)")
    return [env.process(_run_fault(env, event, event.end(campaign.horizon), runtime, network))
            for event in campaign.events]


def _run_fault(env: simpy.Environment, event: FaultEvent, end: float, runtime: SimRuntime,
               network: Network) -> Generator[simpy.Event, Any, None]:
    yield env.timeout(event.at - env.now)
    undo = start_fault(event, runtime, network)
    if undo is not None:
        yield env.timeout(max(0.0, end - env.now))
        undo()


def start_fault(event: FaultEvent, runtime: SimRuntime, network: Network) -> Callable[[], None] | None:
    """Begin one fault now; returns what undoes it (None for instant faults)."""
    kind, target = event.kind, event.target
    if kind == "crash":
        runtime.crash(target)
        return lambda: None if runtime.is_up(target) else runtime.restart(target)
    if kind == "pause":
        runtime.pause(target)
        return lambda: runtime.resume(target)
    if kind == "skew":
        before = runtime.skew(target)
        runtime.skew_clock(target, event.magnitude or 0.0)
        return lambda: runtime.skew_clock(target, before)
    if kind in ("isolate", "partition", "partition_ring"):
        if kind == "isolate":
            cut = network.isolate(target)
        elif kind == "partition":
            cut = network.partition(*target)
        else:
            cut = network.partition_ring(target)
        runtime.note_fault(kind, target)

        def heal() -> None:
            network.heal(cut)
            runtime.note_fault("heal", target)
        return heal
    if kind in IMPAIRMENTS:
        magnitude = event.magnitude or 0.0
        window = network.impair(**{IMPAIRMENTS[kind]: magnitude})
        runtime.note_fault(kind, target, magnitude=magnitude)

        def restore() -> None:
            network.restore(window)
            runtime.note_fault(f"end_{kind}", target)
        return restore
    runtime.inject(kind, target)
    return None
