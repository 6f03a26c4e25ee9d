"""The client's durable state port (Nomad's client state DB) and an in-memory implementation."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class ClientStateBatch:
    """What one `ready()` asks to persist: only what changed since the previous batch."""

    node: dict[str, Any] | None = None  # {"NodeID", "AllocIndex"} when it changed
    allocs: dict[str, dict[str, Any]] = field(default_factory=dict)  # alloc id -> server's Allocation JSON
    runners: dict[str, dict[str, Any]] = field(default_factory=dict)  # alloc id -> AllocRunner.dump()
    deleted: list[str] = field(default_factory=list)  # allocations forgotten

    def empty(self) -> bool:
        return self.node is None and not self.allocs and not self.runners and not self.deleted


@dataclass(slots=True)
class ClientSnapshot:
    node: dict[str, Any] = field(default_factory=dict)
    allocs: dict[str, dict[str, Any]] = field(default_factory=dict)
    runners: dict[str, dict[str, Any]] = field(default_factory=dict)


class ClientStateStore(Protocol):
    """What survives a client agent restart: the node's last allocation index, each allocation as the
    servers sent it (API JSON), and each allocation runner's own state (task states, driver handles,
    restart counters, health). Records are plain JSON-like dicts, so a disk store can msgpack them.
    """

    def write(self, batch: ClientStateBatch) -> None:
        """Apply a batch; the runtime makes it durable before the agent's messages are sent."""
        ...

    def load(self) -> ClientSnapshot:
        """Everything written so far (empty on a fresh machine)."""
        ...


class InMemoryClientStateStore:
    """Keeps the state in dicts: survives an agent object being replaced, not the process."""

    def __init__(self) -> None:
        self.node: dict[str, Any] = {}
        self.allocs: dict[str, dict[str, Any]] = {}
        self.runners: dict[str, dict[str, Any]] = {}
        self.writes = 0

    def write(self, batch: ClientStateBatch) -> None:
        self.writes += 1
        if batch.node is not None:
            self.node = dict(batch.node)
        # Allocations from the servers are immutable values; runner dumps are fresh dicts per batch.
        self.allocs.update(batch.allocs)
        self.runners.update(batch.runners)
        for alloc_id in batch.deleted:
            self.allocs.pop(alloc_id, None)
            self.runners.pop(alloc_id, None)

    def load(self) -> ClientSnapshot:
        return ClientSnapshot(node=dict(self.node), allocs=dict(self.allocs),
                              runners=copy.deepcopy(self.runners))
