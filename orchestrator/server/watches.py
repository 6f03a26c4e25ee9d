"""Blocking queries parked on a server until their topic's index passes theirs or their wait runs out."""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ParkedQuery:
    """One blocking query: who asked (`src`, request `id`), what (`method`, `args`), since which index."""

    src: str
    id: int
    method: str
    args: dict[str, Any]
    topic: Hashable
    min_index: int
    deadline: float
    done: bool = field(default=False)


class Watches:
    """Parked queries by topic, plus a deadline heap so expiry costs O(log n) per query, never a scan."""

    __slots__ = ("_by_topic", "_deadlines", "_seq")

    def __init__(self) -> None:
        self._by_topic: dict[Hashable, list[ParkedQuery]] = {}
        self._deadlines: list[tuple[float, int, ParkedQuery]] = []
        self._seq = 0

    def __len__(self) -> int:
        return sum(len(parked) for parked in self._by_topic.values())

    def park(self, query: ParkedQuery) -> None:
        self._by_topic.setdefault(query.topic, []).append(query)
        self._seq += 1
        heapq.heappush(self._deadlines, (query.deadline, self._seq, query))

    def wake(self, topic: Hashable, index: int) -> list[ParkedQuery]:
        """The queries on `topic` that `index` answers (index past theirs); they leave the watch."""
        parked = self._by_topic.get(topic)
        if not parked:
            return []
        woken = [q for q in parked if index > q.min_index]
        if woken:
            rest = [q for q in parked if index <= q.min_index]
            if rest:
                self._by_topic[topic] = rest
            else:
                del self._by_topic[topic]
            for query in woken:
                query.done = True
        return woken

    def expired(self, now: float) -> list[ParkedQuery]:
        """Queries whose wait ran out: they are answered with what there is now."""
        out: list[ParkedQuery] = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            query = heapq.heappop(heap)[2]
            if query.done:
                continue
            query.done = True
            parked = self._by_topic.get(query.topic)
            if parked is not None:
                parked.remove(query)
                if not parked:
                    del self._by_topic[query.topic]
            out.append(query)
        return out

    def next_deadline(self) -> float | None:
        heap = self._deadlines
        while heap and heap[0][2].done:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def parked(self) -> list[ParkedQuery]:
        return [q for parked in self._by_topic.values() for q in parked]

    def clear(self) -> list[ParkedQuery]:
        """Every parked query, removed (a server shutting down answers them all)."""
        out = [q for parked in self._by_topic.values() for q in parked]
        self._by_topic.clear()
        self._deadlines.clear()
        for query in out:
            query.done = True
        return out
