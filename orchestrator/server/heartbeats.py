"""Client heartbeat TTLs and timers (Nomad's heartbeat.go), with a failover rule bounded by the TTLs handed out.

What Nomad does
---------------
A client registers and then heartbeats `Node.UpdateStatus`; each answer carries the TTL before which
the client must heartbeat again:

    base = max(min_heartbeat_ttl, node_count / max_heartbeats_per_second)   # lib.RateScaledInterval
    ttl  = base + uniform[0, base)                                          # lib.RandomStagger

and the leader arms a timer at `now + ttl + heartbeat_grace`. When it fires the node is marked down
and its work rescheduled. Timers live only in the leader's memory, so a new leader has no idea when
each node last heartbeated: Nomad arms every node's timer at a fixed `failover_heartbeat_ttl` (300 s)
after gaining leadership. A node that died together with the old leader therefore keeps its
allocations for five minutes before anything moves (hashicorp/nomad#1747).

What yurt does instead (FailoverPolicy.BOUNDED, the default)
------------------------------------------------------------
Every TTL a leader hands out is at most `max_ttl(n) = 2 * max(min_ttl, n / rate)` (the stagger at most
doubles the base), and a live client heartbeats within the TTL it was last given. Let `t_last` be a
live node's last heartbeat, before the old leader died, and `t_e` the new leader's election. The
client's next heartbeat is due at `t_last + ttl <= t_e + max_ttl(n)`; if it hits a dead server or a
follower without a leader it retries, and Nomad clients retry another server within their RPC retry
window. Arming each node at

    t_e + max_ttl(n) + heartbeat_grace + failover_allowance

thus gives a live client its full TTL plus the normal grace plus `failover_allowance` (default 10 s)
to find the new leader, so no live node is marked down, while a dead node is noticed
`max_ttl(n) + grace + allowance` after the election: 60 s for 1,000 nodes at 50 heartbeats/s, instead
of 300 s. For very large clusters (n / rate > 140 s) the bound exceeds 300 s; it is then Nomad's fixed
value that would wrongly mark live nodes down, so the bound is kept rather than capped.
`FailoverPolicy.NOMAD` keeps Nomad's fixed 300 s so scenarios can compare the two.

Rate limit: the base TTL counts the larger of the caller's node count and the number of armed timers,
so even with a stale count the cluster's average heartbeat rate, n / E[ttl] = n / (1.5 * base), stays
below `max_heartbeats_per_second`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from enum import Enum

from orchestrator.scheduler.ports import Rng
from orchestrator.structs import Node
from orchestrator.structs.node import NODE_STATUS_DOWN

from .leadership import LeaderOnly

# Nomad's defaults (nomad/config.go).
MIN_HEARTBEAT_TTL = 10.0
MAX_HEARTBEATS_PER_SECOND = 50.0
HEARTBEAT_GRACE = 10.0
FAILOVER_HEARTBEAT_TTL = 300.0
# yurt: how long a live client may take, past its TTL and grace, to reach a newly elected leader.
FAILOVER_ALLOWANCE = 10.0


class FailoverPolicy(Enum):
    NOMAD = "nomad"  # every node armed at a fixed failover_heartbeat_ttl after an election
    BOUNDED = "bounded"  # armed at max_ttl(n) + grace + failover_allowance after an election


class HeartbeatTimers(LeaderOnly):
    """The leader's per-node heartbeat deadlines, in one heap with lazy deletion.

    `reset` re-arms a node (O(log n)), `expired(now)` pops the nodes whose deadline passed, each once:
    the server then proposes them down through Raft. Leader-only: `initialize` on gaining leadership,
    `set_enabled(False)` (or dropping the object) on losing it.
    """

    def __init__(self, rng: Rng, *, min_ttl: float = MIN_HEARTBEAT_TTL,
                 max_per_second: float = MAX_HEARTBEATS_PER_SECOND, grace: float = HEARTBEAT_GRACE,
                 failover_policy: FailoverPolicy = FailoverPolicy.BOUNDED,
                 failover_ttl: float = FAILOVER_HEARTBEAT_TTL,
                 failover_allowance: float = FAILOVER_ALLOWANCE, enabled: bool = True) -> None:
        self.rng = rng
        self.min_ttl = min_ttl
        self.max_per_second = max_per_second
        self.grace = grace
        self.failover_policy = failover_policy
        self.failover_ttl = failover_ttl
        self.failover_allowance = failover_allowance
        self._enabled = enabled
        self._deadlines: dict[str, float] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0

    # -- TTLs ----------------------------------------------------------------------------------------

    def base_ttl(self, node_count: int) -> float:
        """Nomad's rate-scaled interval: long enough that `node_count` nodes stay under the rate."""
        count = max(node_count, len(self._deadlines), 1)
        if self.max_per_second <= 0:
            return self.min_ttl
        return max(self.min_ttl, count / self.max_per_second)

    def max_ttl(self, node_count: int) -> float:
        """The longest TTL `ttl_for` can return for this many nodes (base plus a full stagger)."""
        return 2 * self.base_ttl(node_count)

    def ttl_for(self, node_count: int) -> float:
        """The TTL a heartbeat (or registration) answer carries: the base plus a random stagger in
        [0, base), so clients registered together do not heartbeat together."""
        base = self.base_ttl(node_count)
        return base + base * (self.rng.getrandbits(53) / (1 << 53))

    def failover_delay(self, node_count: int, allowance: float | None = None) -> float:
        """How long after gaining leadership a node that never heartbeats is declared down."""
        if self.failover_policy is FailoverPolicy.NOMAD:
            return self.failover_ttl
        extra = self.failover_allowance if allowance is None else allowance
        return self.max_ttl(node_count) + self.grace + extra

    # -- timers --------------------------------------------------------------------------------------

    def flush(self) -> None:
        self.clear_all()

    def initialize(self, nodes: Iterable[str | Node], now: float, grace: float | None = None, *,
                   node_count: int = 0) -> int:
        """Arm a timer for every node on gaining leadership (Nomad's initializeHeartbeatTimers).

        `nodes` are node IDs, or Node objects (down ones are skipped, as Nomad skips terminal nodes).
        `grace` overrides `failover_allowance` for this election (BOUNDED only). A node that already
        heartbeated this leader keeps its later deadline. Returns how many nodes are armed.

        `node_count` must be the count `ttl_for` was called with (down nodes included, when TTLs count
        them): the bound must cover every TTL handed out, and counting only the nodes armed here would
        make it shorter than the TTLs live nodes got while others were down.
        """
        ids = [n if isinstance(n, str) else n.id for n in nodes
               if isinstance(n, str) or n.status != NODE_STATUS_DOWN]
        if not self._enabled:
            return 0
        deadline = now + self.failover_delay(max(node_count, len(ids), len(self._deadlines)), grace)
        for node_id in ids:
            current = self._deadlines.get(node_id)
            if current is None or current < deadline:
                self._arm(node_id, deadline)
        return len(ids)

    def reset(self, node_id: str, now: float, ttl: float) -> float:
        """The node heartbeated with `ttl`: its timer fires at now + ttl + grace, returned."""
        deadline = now + ttl + self.grace
        if self._enabled:
            self._arm(node_id, deadline)
        return deadline

    def _arm(self, node_id: str, deadline: float) -> None:
        self._deadlines[node_id] = deadline
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, node_id))

    def clear(self, node_id: str) -> None:
        """Stop watching a node (deregistered, or already marked down)."""
        self._deadlines.pop(node_id, None)

    def clear_all(self) -> None:
        self._deadlines.clear()
        self._heap.clear()

    def expired(self, now: float) -> list[str]:
        """Nodes whose timer fired by `now`, in deadline order; each is returned once and forgotten."""
        fired: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, node_id = heapq.heappop(heap)
            if self._deadlines.get(node_id) == deadline:
                del self._deadlines[node_id]
                fired.append(node_id)
        return fired

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and self._deadlines.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # stale: re-armed or cleared since
        return heap[0][0] if heap else None

    def deadline(self, node_id: str) -> float | None:
        return self._deadlines.get(node_id)

    def __len__(self) -> int:
        return len(self._deadlines)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._deadlines
