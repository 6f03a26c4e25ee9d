"""The simulated network: a networkx graph of agents whose edges carry latency, loss and bandwidth."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import networkx as nx

LatencySpec = Any  # seconds (a number), ("uniform", lo, hi), ("lognormal", median, sigma), ("normal", mean, sd)
DEFAULT_MESSAGE_SIZE = 512  # bytes; only used by links that declare a bandwidth


def constant_size(size: int = DEFAULT_MESSAGE_SIZE) -> Callable[[Any], int]:
    """A message-size estimator that ignores the message: the cheap default."""
    return lambda _message: size


def make_sampler(spec: LatencySpec, rng: random.Random) -> Callable[[], float]:
    """A function drawing one delay (seconds, never negative) from `spec`, using only `rng`."""
    if callable(spec):
        return lambda: max(0.0, float(spec(rng)))
    if isinstance(spec, int | float):
        value = float(spec)
        if value < 0:
            raise ValueError(f"latency must not be negative, got {spec!r}")
        return lambda: value
    kind, *args = spec
    if kind == "constant":
        return make_sampler(args[0], rng)
    if kind == "uniform":
        lo, hi = (float(a) for a in args)
        if not 0 <= lo <= hi:
            raise ValueError(f"uniform latency needs 0 <= lo <= hi, got {spec!r}")
        return lambda: rng.uniform(lo, hi)
    if kind == "lognormal":
        median, sigma = (float(a) for a in args)
        mu = math.log(median)
        return lambda: rng.lognormvariate(mu, sigma)
    if kind == "normal":
        mean, sd = (float(a) for a in args)
        return lambda: max(0.0, rng.gauss(mean, sd))
    raise ValueError(f"unknown latency distribution {kind!r} in {spec!r}")


def typical_latency(spec: LatencySpec) -> float:
    """A representative delay of `spec` (its constant, midpoint, median or mean): the routing weight."""
    if callable(spec):
        return 0.0
    if isinstance(spec, int | float):
        return float(spec)
    kind, *args = spec
    if kind == "constant":
        return float(args[0])
    if kind == "uniform":
        return (float(args[0]) + float(args[1])) / 2
    return max(0.0, float(args[0]))  # lognormal median, normal mean


class Link:
    """One edge's compiled parameters; a route is a tuple of these, so sending needs no graph look-up."""

    __slots__ = ("bandwidth", "constant", "latency", "loss", "sample")

    def __init__(self, latency: LatencySpec, loss: float, bandwidth: float | None, rng: random.Random):
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"loss must be a probability, got {loss!r}")
        if bandwidth is not None and bandwidth <= 0:
            raise ValueError(f"bandwidth must be positive bytes/s, got {bandwidth!r}")
        self.latency = latency
        self.loss = float(loss)
        self.bandwidth = bandwidth
        # A constant latency skips the sampler call: most simulated LANs are constant.
        self.constant = float(latency) if isinstance(latency, int | float) else None
        self.sample = make_sampler(latency, rng)


class Cut:
    """A partition in force (the handle `heal` takes): which node pairs it keeps apart, end to end."""

    def __init__(self, kind: str, groups: tuple[tuple[str, ...], ...]):
        self.kind = kind
        self.groups = groups

    def separates(self, a: str, b: str) -> bool:
        raise NotImplementedError

    def touches(self, node: str) -> bool:
        return any(node in group for group in self.groups)

    def __repr__(self) -> str:
        return f"Cut({self.kind}, {self.groups})"


class GroupCut(Cut):
    """Nodes in different groups are apart; a node in no group still reaches everyone."""

    def __init__(self, kind: str, groups: tuple[tuple[str, ...], ...]):
        super().__init__(kind, groups)
        self._label = {node: i for i, group in enumerate(groups) for node in group}

    def separates(self, a: str, b: str) -> bool:
        la, lb = self._label.get(a), self._label.get(b)
        return la is not None and lb is not None and la != lb

    def touches(self, node: str) -> bool:
        return node in self._label


class IsolateCut(Cut):
    """One node is apart from every other node, listed or not."""

    def __init__(self, node: str):
        super().__init__("isolate", ((node,),))
        self.node = node

    def separates(self, a: str, b: str) -> bool:
        return a != b and (a == self.node or b == self.node)


class RingCut(Cut):
    """Each listed node reaches only its two ring neighbours among the listed; others are unaffected."""

    def __init__(self, ids: tuple[str, ...]):
        super().__init__("ring", (ids,))
        n = len(ids)
        self._neighbours = {node: {ids[(i - 1) % n], ids[(i + 1) % n]} for i, node in enumerate(ids)}

    def separates(self, a: str, b: str) -> bool:
        seen = self._neighbours.get(a)
        return seen is not None and b in self._neighbours and a != b and b not in seen

    def touches(self, node: str) -> bool:
        return node in self._neighbours


class Impairment:
    """A message-fault window in force (the handle `restore` takes)."""

    __slots__ = ("drop_rate", "duplicate_rate", "reorder_jitter")

    def __init__(self, drop_rate: float, duplicate_rate: float, reorder_jitter: float):
        self.drop_rate, self.duplicate_rate, self.reorder_jitter = drop_rate, duplicate_rate, reorder_jitter


_UNKNOWN = object()


class Network:
    """Routes messages between agent ids and says when (if ever) each arrives; it never holds a clock.

    Partitions are end to end: a pair a partition separates cannot talk even through a relay (with
    shortest-path routing an unlisted node would otherwise bridge the groups), and the edges between
    separated nodes are cut from the graph so routes between other nodes avoid them too.
    """

    def __init__(self, rng: random.Random, graph: nx.Graph | None = None, *,
                 size_of: Callable[[Any], int] | None = None, fifo: bool = True, duplicate_delay: float = 0.05):
        self.rng = rng
        self.graph = graph if graph is not None else nx.Graph()
        self.size_of = size_of or constant_size()
        # Like the TCP links the asyncio runtime uses, a link delivers in order unless reordering is
        # injected: random per-message latency alone does not let messages overtake each other.
        self.fifo = fifo
        self.duplicate_delay = duplicate_delay  # a duplicate arrives up to this much after the original
        self.cuts: list[Cut] = []
        self._cut_edges: dict[tuple[str, str], dict[str, Any]] = {}
        self._routes: dict[str, dict[str, tuple[Link, ...] | None]] = {}
        self._paths: dict[str, dict[str, list[str]]] = {}  # shortest paths by source, for non-adjacent pairs
        self._last_arrival: dict[tuple[str, str], float] = {}
        self._impairments: list[Impairment] = []
        self._base = Impairment(0.0, 0.0, 0.0)
        self._drop = self._dup = self._jitter = 0.0
        self.dropped_unreachable = 0
        self.dropped_lost = 0
        self.duplicated = 0
        for u, v, data in self.graph.edges(data=True):
            self._compile(u, v, data)

    # -- building ----------------------------------------------------------------------------------

    def add_node(self, node: str, **attrs: Any) -> None:
        if node not in self.graph:
            self.graph.add_node(node, **attrs)
            self._forget_routes()

    def connect(self, a: str, b: str, latency: LatencySpec = 0.001, loss: float = 0.0,
                bandwidth: float | None = None) -> None:
        """Add (or replace) the edge a-b; if a partition separates a and b it stays cut until healed."""
        data = {"latency": latency, "loss": loss, "bandwidth": bandwidth}
        self._compile(a, b, data)
        if self._separated(a, b):
            self.graph.add_node(a)
            self.graph.add_node(b)
            self._cut_edges[(a, b)] = data
            self._cut_edges.pop((b, a), None)
        else:
            self.graph.add_edge(a, b, **data)
        self._forget_routes()

    def set_link(self, a: str, b: str, **changes: Any) -> None:
        """Change some of an existing edge's latency/loss/bandwidth, cut or not."""
        data = self.link_data(a, b)
        if data is None:
            raise KeyError(f"no edge {a}-{b}")
        merged = {k: data[k] for k in ("latency", "loss", "bandwidth")} | changes
        self.connect(a, b, **merged)

    def link_data(self, a: str, b: str) -> dict[str, Any] | None:
        if self.graph.has_edge(a, b):
            return self.graph.edges[a, b]
        return self._cut_edges.get((a, b), self._cut_edges.get((b, a)))

    def full_mesh(self, ids: Iterable[str], **edge: Any) -> Network:
        ids = list(ids)
        for node in ids:
            self.add_node(node)
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                self.connect(a, b, **edge)
        return self

    def star(self, servers: Iterable[str], clients: Iterable[str], *, server_edge: Mapping[str, Any] | None = None,
             **edge: Any) -> Network:
        """Servers fully meshed (with `server_edge`, default `edge`); every client linked to every server."""
        servers = list(servers)
        self.full_mesh(servers, **(edge if server_edge is None else dict(server_edge)))
        for client in clients:
            self.add_node(client)
            for server in servers:
                self.connect(client, server, **edge)
        return self

    def datacenters(self, groups: Mapping[str, Iterable[str]], *, wan_latency: LatencySpec, wan_loss: float = 0.0,
                    wan_bandwidth: float | None = None, access_latency: LatencySpec = 0.0005) -> list[str]:
        """Join datacenters over a WAN: one gateway node per datacenter, gateways linked pairwise.

        Each member gets an access edge to its gateway; the caller lays out each datacenter's LAN (star,
        full_mesh). Adjacent nodes always use their direct edge, so only cross-datacenter pairs route via
        the gateways (member, gateway, WAN, gateway, member). Returns the gateway ids ("gw:<dc>").
        """
        gateways = []
        for dc, members in groups.items():
            gateway = f"gw:{dc}"
            self.add_node(gateway, gateway=True)
            for member in members:
                self.add_node(member)
                self.connect(member, gateway, latency=access_latency)
            gateways.append(gateway)
        for i, a in enumerate(gateways):
            for b in gateways[i + 1:]:
                self.connect(a, b, latency=wan_latency, loss=wan_loss, bandwidth=wan_bandwidth)
        return gateways

    def _compile(self, a: str, b: str, data: dict[str, Any]) -> None:
        data.setdefault("latency", 0.001)  # a graph handed in may carry no attributes at all
        data["link"] = Link(data["latency"], data.get("loss", 0.0), data.get("bandwidth"), self.rng)
        data["weight"] = typical_latency(data["latency"])

    # -- partitions --------------------------------------------------------------------------------

    def partition(self, *groups: Iterable[str]) -> Cut:
        """Cut every edge between nodes of different groups; nodes not listed stay connected to all."""
        return self._apply(GroupCut("partition", tuple(tuple(g) for g in groups)))

    def isolate(self, node: str) -> Cut:
        return self._apply(IsolateCut(node))

    def partition_minority(self, servers: Iterable[str], minority: Iterable[str] | None = None) -> Cut:
        """Split `servers` into a largest minority (drawn from the rng unless given) and the majority."""
        servers = list(servers)
        chosen = list(minority) if minority is not None else self.rng.sample(servers, (len(servers) - 1) // 2)
        rest = [s for s in servers if s not in chosen]
        return self._apply(GroupCut("minority", (tuple(chosen), tuple(rest))))

    def partition_ring(self, ids: Iterable[str]) -> Cut:
        return self._apply(RingCut(tuple(ids)))

    def heal(self, cut: Cut | None = None) -> None:
        """Lift one partition (or all of them) and restore the edges no remaining partition cuts."""
        if cut is None:
            self.cuts.clear()
        elif cut in self.cuts:
            self.cuts.remove(cut)
        else:
            return
        for (a, b), data in list(self._cut_edges.items()):
            if not self._separated(a, b):
                del self._cut_edges[(a, b)]
                self.graph.add_edge(a, b, **data)
        self._forget_routes()

    def _apply(self, cut: Cut) -> Cut:
        self.cuts.append(cut)
        doomed = [(u, v) for u, v in self.graph.edges() if (cut.touches(u) or cut.touches(v)) and cut.separates(u, v)]
        for u, v in doomed:
            self._cut_edges[(u, v)] = self.graph.edges[u, v]
            self.graph.remove_edge(u, v)
        self._forget_routes()
        return cut

    def _forget_routes(self) -> None:
        self._routes.clear()
        self._paths.clear()

    def _separated(self, a: str, b: str) -> bool:
        return any(cut.separates(a, b) for cut in self.cuts)

    # -- message faults ----------------------------------------------------------------------------

    @property
    def drop_rate(self) -> float:
        return self._base.drop_rate

    @drop_rate.setter
    def drop_rate(self, value: float) -> None:
        self._base.drop_rate = value
        self._recompute()

    @property
    def duplicate_rate(self) -> float:
        return self._base.duplicate_rate

    @duplicate_rate.setter
    def duplicate_rate(self, value: float) -> None:
        self._base.duplicate_rate = value
        self._recompute()

    @property
    def reorder_jitter(self) -> float:
        return self._base.reorder_jitter

    @reorder_jitter.setter
    def reorder_jitter(self, value: float) -> None:
        self._base.reorder_jitter = value
        self._recompute()

    def impair(self, drop_rate: float = 0.0, duplicate_rate: float = 0.0, reorder_jitter: float = 0.0) -> Impairment:
        """Add a message-fault window on top of the base rates (windows compose; `restore` ends one)."""
        window = Impairment(drop_rate, duplicate_rate, reorder_jitter)
        self._impairments.append(window)
        self._recompute()
        return window

    def restore(self, window: Impairment | None = None) -> None:
        """End one fault window, or all of them (the base rates stay)."""
        if window is None:
            self._impairments.clear()
        elif window in self._impairments:
            self._impairments.remove(window)
        self._recompute()

    @property
    def impaired(self) -> bool:
        return bool(self._impairments)

    def _recompute(self) -> None:
        keep_drop = keep_dup = 1.0
        jitter = 0.0
        for w in (self._base, *self._impairments):
            keep_drop *= 1.0 - w.drop_rate
            keep_dup *= 1.0 - w.duplicate_rate
            jitter = max(jitter, w.reorder_jitter)
        self._drop, self._dup, self._jitter = 1.0 - keep_drop, 1.0 - keep_dup, jitter

    # -- sending -----------------------------------------------------------------------------------

    def route(self, src: str, dst: str) -> tuple[Link, ...] | None:
        """The links a message from src to dst crosses (the direct edge if any), or None if unreachable."""
        from_src = self._routes.get(src)
        if from_src is None:
            from_src = self._routes[src] = {}
        route = from_src.get(dst, _UNKNOWN)
        if route is _UNKNOWN:
            route = from_src[dst] = self._find_route(src, dst)
        return route  # type: ignore[return-value]

    def _find_route(self, src: str, dst: str) -> tuple[Link, ...] | None:
        graph = self.graph
        if src not in graph or dst not in graph or self._separated(src, dst):
            return None
        if src == dst:
            return ()
        edge = graph.adj[src].get(dst)
        if edge is not None:
            return (edge["link"],)
        path = self._shortest_path(src, dst)
        if path is None:
            return None
        return tuple(graph.adj[u][v]["link"] for u, v in itertools.pairwise(path))

    def _shortest_path(self, src: str, dst: str) -> list[str] | None:
        # One Dijkstra per source serves every later destination from it until the topology changes.
        paths = self._paths.get(src)
        if paths is None:
            paths = self._paths[src] = nx.single_source_dijkstra_path(self.graph, src, weight="weight")
        return paths.get(dst)

    def path(self, src: str, dst: str) -> list[str] | None:
        """The node ids a message from src to dst passes through (for tests and tracing)."""
        if self.route(src, dst) is None:
            return None
        if src == dst:
            return [src]
        if self.graph.has_edge(src, dst):
            return [src, dst]
        return self._shortest_path(src, dst)

    def send(self, src: str, dst: str, message: Any, now: float | None = None) -> float | None:
        """The delay before `message` reaches dst, or None when dropped (unreachable or lost).

        `now` (the sender's virtual time) enables per-link FIFO: without it the delay is a pure draw.
        """
        route = self.route(src, dst)
        if route is None:
            self.dropped_unreachable += 1
            return None
        rng = self.rng
        delay = 0.0
        size = None
        for link in route:
            if link.loss and rng.random() < link.loss:
                self.dropped_lost += 1
                return None
            delay += link.constant if link.constant is not None else link.sample()
            if link.bandwidth:
                if size is None:
                    size = self.size_of(message)
                delay += size / link.bandwidth
        if self._drop and rng.random() < self._drop:
            self.dropped_lost += 1
            return None
        if now is not None and self.fifo:
            key = (src, dst)
            arrival = now + delay
            last = self._last_arrival.get(key)
            if last is not None and arrival < last:
                # The scheduler computes now + delay: make that sum, not just the delay, reach `last`.
                delay = last - now
                while now + delay < last:
                    delay = math.nextafter(delay, math.inf)
                arrival = now + delay
            self._last_arrival[key] = arrival
        if self._jitter:
            delay += rng.uniform(0.0, self._jitter)
        return delay

    def deliveries(self, src: str, dst: str, message: Any, now: float | None = None) -> tuple[float, ...]:
        """Every copy's delay: none when dropped, two when duplicated (the copy a little later)."""
        delay = self.send(src, dst, message, now)
        if delay is None:
            return ()
        if self._dup and self.rng.random() < self._dup:
            self.duplicated += 1
            return (delay, delay + self.rng.uniform(0.0, self.duplicate_delay))
        return (delay,)
