"""Small builders of nodes and jobs for scheduler tests."""

from __future__ import annotations

from orchestrator.structs import (
    Constraint,
    DriverInfo,
    Job,
    NetworkResource,
    Node,
    NodeResources,
    Port,
    Resources,
    Task,
    TaskGroup,
    encode,
    job_from_api,
)


def make_node(i: int, *, cpu: int = 4000, memory: int = 8192, disk: int = 100_000, dc: str = "dc1",
              node_class: str = "", meta: dict | None = None, attrs: dict | None = None,
              drivers: tuple[str, ...] = ("raw_exec", "docker")) -> Node:
    attributes = {"kernel.name": "linux", "unique.network.ip-address": f"10.0.{i // 250}.{i % 250 + 1}",
                  "nomad.version": "1.0.18"}
    attributes.update(attrs or {})
    node = Node(id=f"{i:08x}-0000-4000-8000-000000000000", name=f"node-{i}", datacenter=dc,
                node_class=node_class, attributes=attributes, meta=dict(meta or {}),
                node_resources=NodeResources.of(cpu, memory, disk),
                drivers={d: DriverInfo(detected=True, healthy=True) for d in drivers}, status="ready")
    node.computed_class = node.compute_class()
    return node


def make_job(job_id: str = "web", *, job_type: str = "service", count: int = 3, cpu: int = 100,
             memory: int = 128, driver: str = "raw_exec", constraints: list[Constraint] | None = None,
             networks: list[NetworkResource] | None = None, priority: int = 50, config: dict | None = None,
             datacenters: list[str] | None = None) -> Job:
    """A canonicalised job (Nomad's defaults applied) with one group `g` and one task `t`."""
    task = Task(name="t", driver=driver, config=dict(config or {"command": "/bin/sleep", "args": ["60"]}),
                resources=Resources(cpu=cpu, memory_mb=memory))
    group = TaskGroup(name="g", count=count, tasks=[task], networks=list(networks or []))
    job = Job(id=job_id, name=job_id, type=job_type, priority=priority, datacenters=datacenters or ["dc1"],
              constraints=list(constraints or []), task_groups=[group])
    return job_from_api(encode(job))


def static_port(label: str, value: int) -> NetworkResource:
    return NetworkResource(reserved_ports=[Port(label=label, value=value)])


def dynamic_port(label: str, to: int = 0) -> NetworkResource:
    return NetworkResource(dynamic_ports=[Port(label=label, to=to)])
