"""Client nodes as the servers see them: attributes, resources, drivers, status, drain and eligibility."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codec import api_field
from .resources import NodeReservedResources, NodeResources

NODE_STATUS_INIT = "initializing"
NODE_STATUS_READY = "ready"
NODE_STATUS_DOWN = "down"
NODE_STATUS_DISCONNECTED = "disconnected"

ELIGIBLE = "eligible"
INELIGIBLE = "ineligible"


@dataclass(slots=True)
class DriverInfo:
    attributes: dict[str, str] = field(default_factory=dict)
    detected: bool = False
    healthy: bool = False
    health_description: str = ""
    update_time: str = ""


@dataclass(slots=True)
class DrainSpec:
    deadline: int = 0  # nanoseconds; -1 forces an immediate drain, 0 means no deadline
    ignore_system_jobs: bool = False


@dataclass(slots=True)
class DrainStrategy:
    drain_spec: DrainSpec = field(default_factory=DrainSpec)
    force_deadline: int = 0  # unix nanoseconds when remaining allocations are stopped; 0 = none
    started_at: int = 0

    @property
    def deadline(self) -> int:
        return self.drain_spec.deadline

    @property
    def ignore_system_jobs(self) -> bool:
        return self.drain_spec.ignore_system_jobs


@dataclass(slots=True)
class NodeEvent:
    message: str = ""
    subsystem: str = ""
    details: dict[str, str] = field(default_factory=dict)
    timestamp: str = ""
    create_index: int = 0


@dataclass(slots=True)
class HostVolume:
    name: str = ""
    path: str = ""
    read_only: bool = False


@dataclass(slots=True)
class Node:
    id: str = ""
    secret_id: str = api_field("SecretID", default="")
    datacenter: str = "dc1"
    name: str = ""
    http_addr: str = api_field("HTTPAddr", default="")
    tls_enabled: bool = api_field("TLSEnabled", default=False)
    attributes: dict[str, str] = field(default_factory=dict)
    node_resources: NodeResources = field(default_factory=NodeResources)
    reserved_resources: NodeReservedResources = field(default_factory=NodeReservedResources)
    links: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    node_class: str = ""
    computed_class: str = ""
    drain: bool = False
    drain_strategy: DrainStrategy | None = None
    scheduling_eligibility: str = ELIGIBLE
    status: str = NODE_STATUS_INIT
    status_description: str = ""
    status_updated_at: int = 0
    events: list[NodeEvent] = field(default_factory=list)
    drivers: dict[str, DriverInfo] = field(default_factory=dict)
    host_volumes: dict[str, HostVolume] = field(default_factory=dict)
    create_index: int = 0
    modify_index: int = 0

    def ready(self) -> bool:
        return self.status == NODE_STATUS_READY

    def eligible(self) -> bool:
        return self.scheduling_eligibility == ELIGIBLE and self.drain_strategy is None

    def schedulable(self) -> bool:
        """Ready, eligible and not draining: new work may be placed here."""
        return self.ready() and self.eligible()

    def driver_healthy(self, driver: str) -> bool:
        info = self.drivers.get(driver)
        if info is not None:
            return info.detected and info.healthy
        # Nodes registered without driver info advertise drivers through attributes, as old clients did.
        return self.attributes.get(f"driver.{driver}") in ("1", "true")

    def compute_class(self) -> str:
        """A hash-like key of everything that makes feasibility differ between nodes.

        Nodes sharing a computed class answer every constraint that does not name unique attributes
        the same way, so feasibility can be checked once per class (Nomad does the same).
        """
        parts = [self.datacenter, self.node_class]
        parts.extend(f"{k}={v}" for k, v in sorted(self.attributes.items()) if not _unique_key(k))
        parts.extend(f"meta.{k}={v}" for k, v in sorted(self.meta.items()) if not _unique_key(k))
        parts.extend(
            f"driver.{name}={int(d.detected and d.healthy)}" for name, d in sorted(self.drivers.items())
        )
        parts.extend(f"device={d.full_name()}" for d in self.node_resources.devices)
        parts.extend(f"volume={v}" for v in sorted(self.host_volumes))
        digest = 0xCBF29CE484222325
        for byte in "\x00".join(parts).encode():
            digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        return f"v1:{digest}"


def _unique_key(key: str) -> bool:
    """Attributes unique to one node are left out of its computed class, as Nomad's `unique.` prefix."""
    return key.startswith("unique.") or ".unique." in key


def node_stub(node: Node) -> dict[str, Any]:
    """The row `GET /v1/nodes` returns for a node."""
    return {
        "Address": node.attributes.get("unique.network.ip-address", ""),
        "ID": node.id,
        "Datacenter": node.datacenter,
        "Name": node.name,
        "NodeClass": node.node_class,
        "Version": node.attributes.get("nomad.version", ""),
        "Drain": node.drain_strategy is not None,
        "SchedulingEligibility": node.scheduling_eligibility,
        "Status": node.status,
        "StatusDescription": node.status_description,
        "Drivers": {k: {"Detected": v.detected, "Healthy": v.healthy} for k, v in node.drivers.items()},
        "CreateIndex": node.create_index,
        "ModifyIndex": node.modify_index,
    }
