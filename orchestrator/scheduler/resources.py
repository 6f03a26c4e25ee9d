"""What a task group asks for, and assigning its ports (static and from the dynamic range) and devices."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from orchestrator.structs import (
    AllocatedPortMapping,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    NetworkResource,
    Node,
    Port,
    RequestedDevice,
    TaskGroup,
)

from .ports import Rng

DYNAMIC_PORT_MIN = 20000
DYNAMIC_PORT_MAX = 32000


@dataclass(slots=True)
class GroupAsk:
    cpu: int = 0
    memory_mb: int = 0
    disk_mb: int = 0
    # (owner, network): owner "" is the group's shared network, else the task name (old-style task networks)
    networks: list[tuple[str, NetworkResource]] = field(default_factory=list)
    devices: list[tuple[str, RequestedDevice]] = field(default_factory=list)

    @property
    def has_ports(self) -> bool:
        return any(net.all_ports() for _, net in self.networks)

    @property
    def has_devices(self) -> bool:
        return bool(self.devices)

    @classmethod
    def of(cls, group: TaskGroup) -> GroupAsk:
        ask = cls(disk_mb=group.ephemeral_disk.size_mb if group.ephemeral_disk else 0)
        ask.networks.extend(("", net) for net in group.networks)
        for task in group.tasks:
            ask.cpu += task.resources.cpu
            ask.memory_mb += task.resources.memory_mb
            ask.networks.extend((task.name, net) for net in task.resources.networks)
            ask.devices.extend((task.name, d) for d in task.resources.devices)
        return ask


def node_ip(node: Node) -> str:
    ip = node.attributes.get("unique.network.ip-address")
    if ip:
        return ip
    for net in node.node_resources.networks:
        if net.ip:
            return net.ip
    return "127.0.0.1"


def assign_ports(ask: GroupAsk, node: Node, used: set[int], rng: Rng) -> list | None:
    """Port numbers for every network the group asks for, or None when a static port is taken.

    Returns [(owner, NetworkResource with values filled)]; `used` is not modified.
    """
    taken = set(used)
    low = node.node_resources.min_dynamic_port or DYNAMIC_PORT_MIN
    high = node.node_resources.max_dynamic_port or DYNAMIC_PORT_MAX
    ip = node_ip(node)
    result = []
    for owner, net in ask.networks:
        for port in net.reserved_ports:
            if port.value in taken:
                return None
            taken.add(port.value)
        dynamic = []
        for port in net.dynamic_ports:
            value = _pick_dynamic(taken, low, high, rng)
            if value is None:
                return None
            taken.add(value)
            dynamic.append(replace(port, value=value, to=port.to if port.to else 0))
        reserved = [replace(p, to=p.to if p.to else 0) for p in net.reserved_ports]
        result.append((owner, replace(net, ip=ip, reserved_ports=reserved, dynamic_ports=dynamic)))
    return result


def _pick_dynamic(taken: set[int], low: int, high: int, rng: Rng) -> int | None:
    # Random probes first (cheap while the range is sparse), then a scan so a nearly full node still works.
    for _ in range(20):
        value = rng.randint(low, high)
        if value not in taken:
            return value
    for value in range(low, high + 1):
        if value not in taken:
            return value
    return None


def assign_devices(ask: GroupAsk, node: Node, used: set[str]) -> list | None:
    """[(task, {"Vendor","Type","Name","DeviceIDs"})] picking free healthy instances, or None."""
    taken = set(used)
    result = []
    for task, request in ask.devices:
        for group in node.node_resources.devices:
            if not group.matches(request.name):
                continue
            free = [i for i in group.healthy_ids() if i not in taken]
            if len(free) >= request.count:
                ids = free[: request.count]
                taken.update(ids)
                result.append((task, {"Vendor": group.vendor, "Type": group.type, "Name": group.name,
                                      "DeviceIDs": ids}))
                break
        else:
            return None
    return result


def allocated_resources(group: TaskGroup, assigned: dict) -> AllocatedResources:
    """The AllocatedResources of an allocation of `group` with the ports and devices chosen for it."""
    tasks: dict[str, AllocatedTaskResources] = {}
    for task in group.tasks:
        memory = {"MemoryMB": task.resources.memory_mb}
        if task.resources.memory_max_mb:
            memory["MemoryMaxMB"] = task.resources.memory_max_mb
        tasks[task.name] = AllocatedTaskResources(cpu={"CpuShares": task.resources.cpu}, memory=memory)
    shared = AllocatedSharedResources(disk_mb=group.ephemeral_disk.size_mb if group.ephemeral_disk else 0)
    for owner, net in assigned.get("ports", ()):
        if owner:
            tasks[owner].networks.append(net)
        else:
            shared.networks.append(net)
            shared.ports.extend(_mappings(net))
    for owner, device in assigned.get("devices", ()):
        tasks[owner].devices.append(device)
    lifecycles = {t.name: ({"Hook": t.lifecycle.hook, "Sidecar": t.lifecycle.sidecar} if t.lifecycle else None)
                  for t in group.tasks}
    return AllocatedResources(tasks=tasks, task_lifecycles=lifecycles, shared=shared)


def _mappings(net: NetworkResource) -> list[AllocatedPortMapping]:
    ports: list[Port] = net.all_ports()
    return [AllocatedPortMapping(label=p.label, value=p.value, to=p.to or p.value, host_ip=net.ip) for p in ports]
