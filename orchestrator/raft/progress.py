"""The leader's bookkeeping: each follower's replication progress, and the read-index requests awaiting a quorum."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable

from .records import ReadState


class ProgressState(enum.Enum):
    PROBE = "probe"  # one append in flight at a time, until the follower's match is found
    REPLICATE = "replicate"  # appends pipelined optimistically, up to max_inflight_msgs unacknowledged
    SNAPSHOT = "snapshot"  # a snapshot is on its way; nothing else is sent until it is acknowledged


def quorum(voters: int) -> int:
    return voters // 2 + 1


def quorum_index(matches: Iterable[int]) -> int:
    """The largest index a majority has reached."""
    ordered = sorted(matches)
    if not ordered:
        return 0
    return ordered[(len(ordered) - 1) // 2]


class Progress:
    """What the leader knows of one follower's log: `match` is confirmed, `next` is what to send next."""

    __slots__ = ("_inflight_cap", "inflights", "match", "next", "pending_snapshot", "probe_sent", "recent_active",
                 "snapshot_sent_at", "state")

    def __init__(self, next_index: int, inflight_cap: int, *, match: int = 0, recent_active: bool = False) -> None:
        self.match = match
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False  # in PROBE: an append is out, wait for its answer (or a heartbeat's)
        self.pending_snapshot = 0
        self.snapshot_sent_at = 0
        self.recent_active = recent_active  # heard from since the last check-quorum round
        # Last index of each unacknowledged append, oldest first (REPLICATE only).
        self.inflights: deque[int] = deque()
        self._inflight_cap = inflight_cap

    def __repr__(self) -> str:
        return f"Progress({self.state.value} match={self.match} next={self.next})"

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            # The snapshot may have been lost: resume after it and let a reject move us back if so.
            self.next = max(self.match + 1, self.pending_snapshot + 1)
            self.pending_snapshot = 0
        else:
            self.next = self.match + 1
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflights.clear()

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflights.clear()

    def become_snapshot(self, index: int, now: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = index
        self.snapshot_sent_at = now
        self.probe_sent = False
        self.inflights.clear()

    def maybe_update(self, index: int) -> bool:
        """An acknowledgement up to `index`; False when it tells nothing new (stale or duplicate)."""
        updated = False
        if self.match < index:
            self.match = index
            self.probe_sent = False
            updated = True
        if self.next < index + 1:
            self.next = index + 1
        return updated

    def maybe_decrease_to(self, rejected: int, hint: int) -> bool:
        """A reject of the append whose prev index was `rejected`; False when it is stale."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False  # not an answer to the probe we have out
        self.next = max(min(rejected, hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        state = self.state
        if state is ProgressState.PROBE:
            return self.probe_sent
        if state is ProgressState.REPLICATE:
            return len(self.inflights) >= self._inflight_cap
        return True

    def sent_entries(self, last: int) -> None:
        """An append carrying entries up to `last` went out."""
        if self.state is ProgressState.REPLICATE:
            self.next = last + 1
            self.inflights.append(last)
        else:
            self.probe_sent = True

    def free_inflights_to(self, index: int) -> None:
        inflights = self.inflights
        while inflights and inflights[0] <= index:
            inflights.popleft()

    def free_first_inflight(self) -> None:
        if self.inflights:
            self.inflights.popleft()


class _ReadRequest:
    __slots__ = ("acks", "index")

    def __init__(self, index: int, acks: set[str]) -> None:
        self.index = index
        self.acks = acks


class ReadIndexQueue:
    """Read-index requests in arrival order, each released once a quorum answers a heartbeat sent after it.

    A quorum's answer to a later request's heartbeat proves leadership after every earlier one too, so it
    releases all of them.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[bytes, _ReadRequest] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, context: bytes, index: int, self_id: str) -> bool:
        """Queue a request; False if one with the same context is already waiting."""
        if context in self._pending:
            return False
        self._pending[context] = _ReadRequest(index, {self_id})
        return True

    def last_context(self) -> bytes:
        if not self._pending:
            return b""
        return next(reversed(self._pending))

    def ack(self, context: bytes, voter: str, needed: int) -> list[ReadState]:
        """A heartbeat answer carrying `context`; the read states released by it (often none)."""
        request = self._pending.get(context)
        if request is None:
            return []
        request.acks.add(voter)
        if len(request.acks) < needed:
            return []
        released = []
        for ctx in list(self._pending):
            req = self._pending.pop(ctx)
            released.append(ReadState(index=req.index, context=ctx))
            if ctx == context:
                break
        return released

    def clear(self) -> None:
        self._pending.clear()
