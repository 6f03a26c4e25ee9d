"""Resources a task asks for or a node offers: CPU, memory, disk, networks with ports, devices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codec import api_field


@dataclass(slots=True)
class Port:
    """A port label: static (`value` set in ReservedPorts) or dynamic; `to` is the port inside the task."""

    label: str = ""
    value: int = 0
    to: int = 0
    host_network: str = ""


@dataclass(slots=True)
class NetworkResource:
    mode: str = ""
    device: str = ""
    cidr: str = api_field("CIDR", default="")
    ip: str = ""
    mbits: int = api_field("MBits", default=0)
    dns: dict[str, Any] | None = api_field("DNS", default=None)
    reserved_ports: list[Port] = field(default_factory=list)
    dynamic_ports: list[Port] = field(default_factory=list)

    def all_ports(self) -> list[Port]:
        return [*self.reserved_ports, *self.dynamic_ports]


@dataclass(slots=True)
class RequestedDevice:
    """`device "nvidia/gpu" { count = 2 }`: a name of the form vendor/type/model (any prefix) and a count."""

    name: str = ""
    count: int = 1
    constraints: list[Any] = field(default_factory=list)
    affinities: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class Resources:
    cpu: int = 0
    cores: int = 0
    memory_mb: int = 0
    memory_max_mb: int = 0
    disk_mb: int = 0
    iops: int = 0
    networks: list[NetworkResource] = field(default_factory=list)
    devices: list[RequestedDevice] = field(default_factory=list)


@dataclass(slots=True)
class NodeDeviceResource:
    """A group of identical devices on a node (`vendor/type/name`) with the IDs of its instances."""

    vendor: str = ""
    type: str = ""
    name: str = ""
    instances: list[dict[str, Any]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)

    def full_name(self) -> str:
        return f"{self.vendor}/{self.type}/{self.name}"

    def healthy_ids(self) -> list[str]:
        return [i.get("ID", "") for i in self.instances if i.get("Healthy", True)]

    def matches(self, requested: str) -> bool:
        """`gpu`, `nvidia/gpu` and `nvidia/gpu/1080ti` all name this group, as in Nomad."""
        parts = requested.split("/")
        if len(parts) == 1:
            return parts[0] == self.type
        if len(parts) == 2:
            return parts[0] == self.vendor and parts[1] == self.type
        return parts == [self.vendor, self.type, self.name]


@dataclass(slots=True)
class NodeCpuResources:
    cpu_shares: int = api_field("CpuShares", default=0)  # total MHz
    total_cpu_cores: int = api_field("TotalCpuCores", default=0)
    reservable_cpu_cores: list[int] = api_field("ReservableCpuCores", default_factory=list)


@dataclass(slots=True)
class NodeMemoryResources:
    memory_mb: int = 0


@dataclass(slots=True)
class NodeDiskResources:
    disk_mb: int = 0


@dataclass(slots=True)
class NodeResources:
    """What a node has in all (`NodeResources` in Nomad's API, nested as Nomad nests it)."""

    cpu: NodeCpuResources = api_field("Cpu", default_factory=NodeCpuResources)
    memory: NodeMemoryResources = field(default_factory=NodeMemoryResources)
    disk: NodeDiskResources = field(default_factory=NodeDiskResources)
    networks: list[NetworkResource] = field(default_factory=list)
    devices: list[NodeDeviceResource] = field(default_factory=list)
    min_dynamic_port: int = 20000
    max_dynamic_port: int = 32000

    @classmethod
    def of(cls, cpu: int, memory_mb: int, disk_mb: int = 0, **kwargs: Any) -> NodeResources:
        return cls(cpu=NodeCpuResources(cpu_shares=cpu), memory=NodeMemoryResources(memory_mb),
                   disk=NodeDiskResources(disk_mb), **kwargs)


@dataclass(slots=True)
class NodeReservedNetworkResources:
    reserved_host_ports: str = ""


@dataclass(slots=True)
class NodeReservedResources:
    """What the operator keeps back from the scheduler (`client { reserved { ... } }`)."""

    cpu: NodeCpuResources = api_field("Cpu", default_factory=NodeCpuResources)
    memory: NodeMemoryResources = field(default_factory=NodeMemoryResources)
    disk: NodeDiskResources = field(default_factory=NodeDiskResources)
    networks: NodeReservedNetworkResources = field(default_factory=NodeReservedNetworkResources)

    @classmethod
    def of(cls, cpu: int = 0, memory_mb: int = 0, disk_mb: int = 0, ports: str = "") -> NodeReservedResources:
        return cls(cpu=NodeCpuResources(cpu_shares=cpu), memory=NodeMemoryResources(memory_mb),
                   disk=NodeDiskResources(disk_mb), networks=NodeReservedNetworkResources(ports))

    def reserved_port_numbers(self) -> set[int]:
        return parse_port_ranges(self.networks.reserved_host_ports)


def parse_port_ranges(spec: str) -> set[int]:
    """`"22,80,8500-8600"` -> the set of those port numbers."""
    ports: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if "-" in part:
            low, high = part.split("-", 1)
            ports.update(range(int(low), int(high) + 1))
        else:
            ports.add(int(part))
    return ports
