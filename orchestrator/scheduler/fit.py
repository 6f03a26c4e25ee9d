"""Whether a set of allocations fits on a node: Nomad's `structs.AllocsFit`, with its dimension names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from orchestrator.structs import Allocation, Node
from orchestrator.structs.resources import parse_port_ranges

# The names Nomad reports in `DimensionExhausted`; users read them in `job status` placement failures.
DIMENSION_CPU = "cpu"
DIMENSION_CORES = "cores"
DIMENSION_MEMORY = "memory"
DIMENSION_DISK = "disk"
DIMENSION_PORTS = "network: port collision"
DIMENSION_DEVICES = "devices"


@dataclass(frozen=True, slots=True)
class ComparableResources:
    """Resources flattened to what can be compared and summed: CPU MHz, memory MB, disk MB."""

    cpu: int = 0
    memory_mb: int = 0
    disk_mb: int = 0

    @classmethod
    def of_alloc(cls, alloc: Allocation) -> ComparableResources:
        cpu, memory_mb, disk_mb = alloc.allocated_resources.totals()
        return cls(cpu, memory_mb, disk_mb)

    def add(self, other: ComparableResources) -> ComparableResources:
        return ComparableResources(self.cpu + other.cpu, self.memory_mb + other.memory_mb,
                                   self.disk_mb + other.disk_mb)

    def subtract(self, other: ComparableResources) -> ComparableResources:
        return ComparableResources(self.cpu - other.cpu, self.memory_mb - other.memory_mb,
                                   self.disk_mb - other.disk_mb)

    __add__ = add
    __sub__ = subtract

    def superset(self, other: ComparableResources) -> tuple[bool, str]:
        """Whether `self` covers `other`, and if not the first dimension short, in Nomad's order."""
        if self.cpu < other.cpu:
            return False, DIMENSION_CPU
        if self.memory_mb < other.memory_mb:
            return False, DIMENSION_MEMORY
        if self.disk_mb < other.disk_mb:
            return False, DIMENSION_DISK
        return True, ""


@dataclass(frozen=True, slots=True)
class FitResult:
    """The verdict of `allocs_fit`: `dimension` names what ran out ("" when it fits)."""

    fit: bool
    dimension: str
    used: ComparableResources


def node_available(node: Node) -> ComparableResources:
    """What the scheduler may hand out on `node`: its resources minus what the operator reserved."""
    res, reserved = node.node_resources, node.reserved_resources
    return ComparableResources(
        res.cpu.cpu_shares - reserved.cpu.cpu_shares,
        res.memory.memory_mb - reserved.memory.memory_mb,
        res.disk.disk_mb - reserved.disk.disk_mb,
    )


@lru_cache(maxsize=256)
def _reserved_host_ports(spec: str) -> frozenset[int]:
    # Nodes of a cluster mostly share one `reserved.reserved_ports` string; parsing ranges such as
    # "20000-32000" for every node of every plan would dominate the plan applier's time.
    return frozenset(parse_port_ranges(spec))


def _available_cores(node: Node) -> frozenset[int] | None:
    """Cores allocations may reserve; None when the node does not fingerprint its cores."""
    reservable = node.node_resources.cpu.reservable_cpu_cores
    if not reservable:
        return None
    return frozenset(reservable) - frozenset(node.reserved_resources.cpu.reservable_cpu_cores)


def _healthy_device_ids(node: Node) -> set[str]:
    return {i for group in node.node_resources.devices for i in group.healthy_ids()}


def allocs_fit(node: Node, allocs: list[Allocation]) -> FitResult:
    """Whether the non-terminal `allocs` fit together on `node`.

    Checks, in Nomad's order: reserved cores shared by two allocations, then CPU, cores, memory and disk
    against the node's unreserved resources, then port collisions (with each other or with the node's
    reserved host ports), then device instances (used twice, or absent or unhealthy on the node).
    """
    cpu = memory_mb = disk_mb = 0
    cores: set[int] = set()
    core_overlap = False
    ports: set[int] = set()
    port_collision = False
    device_ids: list[str] = []
    for alloc in allocs:
        if alloc.terminal():
            continue
        resources = alloc.allocated_resources
        alloc_cpu, alloc_memory_mb, alloc_disk_mb = resources.totals()
        cpu += alloc_cpu
        memory_mb += alloc_memory_mb
        disk_mb += alloc_disk_mb
        if not resources.holds_more_than_totals():
            continue
        for task in resources.tasks.values():
            for core in task.cpu.get("ReservedCores") or ():
                if core in cores:
                    core_overlap = True
                cores.add(core)
        device_ids.extend(resources.device_ids())
        # A set per allocation: Nomad records group ports both in `Ports` and in `Networks`, so the same
        # number twice within one allocation is one port, not a collision.
        alloc_ports = set(resources.port_numbers())
        alloc_ports.discard(0)  # a dynamic port not yet assigned holds nothing
        if not port_collision and not ports.isdisjoint(alloc_ports):
            port_collision = True
        ports |= alloc_ports
    used = ComparableResources(cpu, memory_mb, disk_mb)

    if core_overlap:
        return FitResult(False, DIMENSION_CORES, used)
    available = node_available(node)
    if available.cpu < cpu:
        return FitResult(False, DIMENSION_CPU, used)
    if cores:
        available_cores = _available_cores(node)
        if available_cores is not None and not cores <= available_cores:
            return FitResult(False, DIMENSION_CORES, used)
    fits, dimension = available.superset(used)
    if not fits:
        return FitResult(False, dimension, used)
    if port_collision:
        return FitResult(False, DIMENSION_PORTS, used)
    if ports:
        spec = node.reserved_resources.networks.reserved_host_ports
        if spec and not ports.isdisjoint(_reserved_host_ports(spec)):
            return FitResult(False, DIMENSION_PORTS, used)
    if device_ids:
        healthy = _healthy_device_ids(node)
        if len(set(device_ids)) != len(device_ids) or not healthy.issuperset(device_ids):
            return FitResult(False, DIMENSION_DEVICES, used)
    return FitResult(True, "", used)
