"""The cluster as whole-node arrays (capacity, usage, attributes) so feasibility and scoring are vectorised.

Per-node Python loops cost microseconds a node; a scheduler that places thousands of allocations over
thousands of nodes would spend seconds in them. Here every dimension is a numpy array indexed by node
position, updated incrementally as the scheduler places allocations within one evaluation.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np

from orchestrator.structs import Allocation, Node

from .constraints import resolve_target


@dataclass(slots=True)
class NodeUsage:
    """Ports and devices in use on one node (kept as sets: only touched nodes pay for them)."""

    ports: set[int] = field(default_factory=set)
    device_ids: set[str] = field(default_factory=set)


class ClusterView:
    """Ready nodes of the job's datacenters with their free resources, as arrays."""

    def __init__(self, nodes: list[Node], allocs_by_node: dict[str, list[Allocation]]):
        self.nodes = nodes
        self.index = {node.id: i for i, node in enumerate(nodes)}
        n = len(nodes)
        self.cpu_total = np.zeros(n)
        self.mem_total = np.zeros(n)
        self.disk_total = np.zeros(n)
        self.cpu_used = np.zeros(n)
        self.mem_used = np.zeros(n)
        self.disk_used = np.zeros(n)
        self.usage: list[NodeUsage | None] = [None] * n
        self.reserved_ports: list[set[int]] = []
        for i, node in enumerate(nodes):
            res, reserved = node.node_resources, node.reserved_resources
            self.cpu_total[i] = res.cpu.cpu_shares - reserved.cpu.cpu_shares
            self.mem_total[i] = res.memory.memory_mb - reserved.memory.memory_mb
            self.disk_total[i] = res.disk.disk_mb - reserved.disk.disk_mb
            self.reserved_ports.append(reserved.reserved_port_numbers()
                                       if reserved.networks.reserved_host_ports else set())
            for alloc in allocs_by_node.get(node.id, ()):
                if not alloc.terminal():
                    self.add_alloc(i, alloc)
        self._class_ids: np.ndarray | None = None
        self._classes: list[str] = []

    def __len__(self) -> int:
        return len(self.nodes)

    def node_usage(self, i: int) -> NodeUsage:
        usage = self.usage[i]
        if usage is None:
            usage = self.usage[i] = NodeUsage(ports=set(self.reserved_ports[i]))
        return usage

    def add_alloc(self, i: int, alloc: Allocation, sign: int = 1) -> None:
        cpu, mem, disk = alloc.allocated_resources.totals()
        self.cpu_used[i] += sign * cpu
        self.mem_used[i] += sign * mem
        self.disk_used[i] += sign * disk
        if not alloc.allocated_resources.holds_more_than_totals():
            return
        ports = alloc.allocated_resources.port_numbers()
        devices = alloc.allocated_resources.device_ids()
        if ports or devices:
            usage = self.node_usage(i)
            if sign > 0:
                usage.ports.update(ports)
                usage.device_ids.update(devices)
            else:
                usage.ports.difference_update(ports)
                usage.device_ids.difference_update(devices)

    def remove_alloc(self, i: int, alloc: Allocation) -> None:
        self.add_alloc(i, alloc, sign=-1)

    def class_ids(self) -> tuple[np.ndarray, list[str]]:
        """Each node's computed class as a small integer, and the classes in order."""
        if self._class_ids is None:
            seen: dict[str, int] = {}
            ids = np.empty(len(self.nodes), dtype=np.int64)
            for i, node in enumerate(self.nodes):
                key = node.computed_class or node.compute_class()
                ids[i] = seen.setdefault(key, len(seen))
            self._class_ids, self._classes = ids, list(seen)
        return self._class_ids, self._classes

    def value_ids(self, target: str) -> tuple[np.ndarray, list[object]]:
        """Each node's value of a target such as `${meta.rack}` as an integer (-1 when the node lacks it)."""
        seen: dict[object, int] = {}
        ids = np.empty(len(self.nodes), dtype=np.int64)
        for i, node in enumerate(self.nodes):
            value, found = resolve_target(target, node)
            ids[i] = seen.setdefault(value, len(seen)) if found else -1
        return ids, list(seen)


def in_datacenters(node: Node, datacenters: list[str]) -> bool:
    """Datacenters may be globs (`*`, `dc-*`), as Nomad 1.5 and later allow."""
    return any(dc == node.datacenter or fnmatch.fnmatchcase(node.datacenter, dc) for dc in datacenters)


def ready_nodes_in(nodes: list[Node], datacenters: list[str]) -> tuple[list[Node], dict[str, int]]:
    """Nodes that are ready and in one of the datacenters; also the count of ready nodes per datacenter."""
    by_dc: dict[str, int] = {}
    picked = []
    for node in nodes:
        if node.ready() and in_datacenters(node, datacenters):
            picked.append(node)
            by_dc[node.datacenter] = by_dc.get(node.datacenter, 0) + 1
    return picked, by_dc
