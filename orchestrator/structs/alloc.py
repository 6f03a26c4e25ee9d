"""Allocations (a task group placed on a node), their task states and the metrics of their placement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codec import api_field
from .job import Job
from .resources import NetworkResource

DESIRED_RUN = "run"
DESIRED_STOP = "stop"
DESIRED_EVICT = "evict"

CLIENT_PENDING = "pending"
CLIENT_RUNNING = "running"
CLIENT_COMPLETE = "complete"
CLIENT_FAILED = "failed"
CLIENT_LOST = "lost"
CLIENT_UNKNOWN = "unknown"

TERMINAL_CLIENT_STATUSES = frozenset({CLIENT_COMPLETE, CLIENT_FAILED, CLIENT_LOST})


@dataclass(slots=True)
class TaskEvent:
    type: str = ""
    time: int = 0
    message: str = ""
    display_message: str = ""
    details: dict[str, str] = field(default_factory=dict)
    exit_code: int = 0
    signal: int = 0
    restart_reason: str = ""
    kill_reason: str = ""
    kill_timeout: int = 0  # nanoseconds, on Killing events
    driver_error: str = ""
    failed_sibling: str = ""
    start_delay: int = 0


@dataclass(slots=True)
class TaskState:
    state: str = "pending"
    failed: bool = False
    restarts: int = 0
    last_restart: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    events: list[TaskEvent] = field(default_factory=list)


@dataclass(slots=True)
class AllocatedPortMapping:
    label: str = ""
    value: int = 0
    to: int = 0
    host_ip: str = api_field("HostIP", default="")


@dataclass(slots=True)
class AllocatedTaskResources:
    cpu: dict[str, Any] = api_field("Cpu", default_factory=dict)  # {"CpuShares": n, "ReservedCores": [...]}
    memory: dict[str, int] = field(default_factory=dict)  # {"MemoryMB": n, "MemoryMaxMB": m}
    networks: list[NetworkResource] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class AllocatedSharedResources:
    disk_mb: int = 0
    networks: list[NetworkResource] = field(default_factory=list)
    ports: list[AllocatedPortMapping] = field(default_factory=list)


@dataclass(slots=True)
class AllocatedResources:
    tasks: dict[str, AllocatedTaskResources] = field(default_factory=dict)
    task_lifecycles: dict[str, Any] = field(default_factory=dict)
    shared: AllocatedSharedResources = field(default_factory=AllocatedSharedResources)
    # Memo of totals(): schedulers and the plan applier sum every allocation on a node per evaluation.
    # Allocated resources are never changed after placement, so the memo cannot go stale.
    _totals: tuple[int, int, int] | None = field(default=None, compare=False, repr=False,
                                                 metadata={"skip_api": True})

    def totals(self) -> tuple[int, int, int]:
        """Total (cpu MHz, memory MB, disk MB) this allocation holds on its node."""
        if self._totals is None:
            cpu = sum(t.cpu.get("CpuShares", 0) for t in self.tasks.values())
            mem = sum(t.memory.get("MemoryMB", 0) for t in self.tasks.values())
            self._totals = (cpu, mem, self.shared.disk_mb)
        return self._totals

    def holds_more_than_totals(self) -> bool:
        """Whether it holds ports, devices or reserved cores: things a fit check must look at one by one."""
        if self.shared.ports or self.shared.networks:
            return True
        return any(t.networks or t.devices or t.cpu.get("ReservedCores") for t in self.tasks.values())

    def port_numbers(self) -> list[int]:
        """Every host port the allocation holds, each once (shared ports also appear in its networks)."""
        ports = {p.value for p in self.shared.ports}
        for net in self.shared.networks:
            ports.update(p.value for p in net.all_ports())
        for task in self.tasks.values():
            for net in task.networks:
                ports.update(p.value for p in net.all_ports())
        return sorted(ports)

    def device_ids(self) -> list[str]:
        return [i for t in self.tasks.values() for d in t.devices for i in d.get("DeviceIDs") or []]


@dataclass(slots=True)
class NodeScoreMeta:
    node_id: str = api_field("NodeID", default="")
    scores: dict[str, float] = field(default_factory=dict)
    norm_score: float = 0.0


@dataclass(slots=True)
class AllocMetric:
    """Why an allocation was placed where it was, or why it could not be placed."""

    nodes_evaluated: int = 0
    nodes_filtered: int = 0
    nodes_available: dict[str, int] = field(default_factory=dict)
    class_filtered: dict[str, int] = field(default_factory=dict)
    constraint_filtered: dict[str, int] = field(default_factory=dict)
    nodes_exhausted: int = 0
    class_exhausted: dict[str, int] = field(default_factory=dict)
    dimension_exhausted: dict[str, int] = field(default_factory=dict)
    quota_exhausted: list[str] = field(default_factory=list)
    score_meta_data: list[NodeScoreMeta] = field(default_factory=list)
    allocation_time: int = 0
    coalesced_failures: int = 0

    def filter_node(self, node_class: str, reason: str, count: int = 1) -> None:
        self.nodes_filtered += count
        if node_class:
            self.class_filtered[node_class] = self.class_filtered.get(node_class, 0) + count
        if reason:
            self.constraint_filtered[reason] = self.constraint_filtered.get(reason, 0) + count

    def exhaust_node(self, node_class: str, dimension: str, count: int = 1) -> None:
        self.nodes_exhausted += count
        if node_class:
            self.class_exhausted[node_class] = self.class_exhausted.get(node_class, 0) + count
        if dimension:
            self.dimension_exhausted[dimension] = self.dimension_exhausted.get(dimension, 0) + count

    def describe(self) -> list[str]:
        """Lines as `nomad job status` prints them under a placement failure."""
        lines = []
        for reason, n in sorted(self.constraint_filtered.items()):
            lines.append(f'Constraint "{reason}": {n} nodes excluded by filter')
        for dimension, n in sorted(self.dimension_exhausted.items()):
            lines.append(f'Resources exhausted on {n} nodes' if not dimension
                         else f'Dimension "{dimension}" exhausted on {n} nodes')
        for node_class, n in sorted(self.class_exhausted.items()):
            lines.append(f'Class "{node_class}" exhausted on {n} nodes')
        return lines


@dataclass(slots=True)
class RescheduleEvent:
    reschedule_time: int = 0  # unix nanoseconds
    prev_alloc_id: str = api_field("PrevAllocID", default="")
    prev_node_id: str = api_field("PrevNodeID", default="")
    delay: int = 0


@dataclass(slots=True)
class RescheduleTracker:
    events: list[RescheduleEvent] = field(default_factory=list)


@dataclass(slots=True)
class DesiredTransition:
    migrate: bool | None = None
    reschedule: bool | None = None
    force_reschedule: bool | None = None

    def should_migrate(self) -> bool:
        return bool(self.migrate)


@dataclass(slots=True)
class AllocDeploymentStatus:
    healthy: bool | None = None
    timestamp: str = ""
    canary: bool = False
    modify_index: int = 0


@dataclass(slots=True)
class Allocation:
    id: str = ""
    namespace: str = "default"
    eval_id: str = api_field("EvalID", default="")
    name: str = ""
    node_id: str = api_field("NodeID", default="")
    node_name: str = ""
    job_id: str = api_field("JobID", default="")
    job: Job | None = None
    task_group: str = ""
    allocated_resources: AllocatedResources = field(default_factory=AllocatedResources)
    metrics: AllocMetric | None = None
    desired_status: str = DESIRED_RUN
    desired_description: str = ""
    desired_transition: DesiredTransition = field(default_factory=DesiredTransition)
    client_status: str = CLIENT_PENDING
    client_description: str = ""
    task_states: dict[str, TaskState] = field(default_factory=dict)
    deployment_id: str = api_field("DeploymentID", default="")
    deployment_status: AllocDeploymentStatus | None = None
    reschedule_tracker: RescheduleTracker | None = None
    followup_eval_id: str = api_field("FollowupEvalID", default="")
    previous_allocation: str = ""
    next_allocation: str = ""
    preempted_allocations: list[str] = field(default_factory=list)
    preempted_by_allocation: str = ""
    create_index: int = 0
    modify_index: int = 0
    alloc_modify_index: int = 0
    create_time: int = 0
    modify_time: int = 0

    def terminal(self) -> bool:
        """Stopped on purpose or finished on the client: it holds no resources any more."""
        return self.desired_status != DESIRED_RUN or self.client_status in TERMINAL_CLIENT_STATUSES

    def client_terminal(self) -> bool:
        return self.client_status in TERMINAL_CLIENT_STATUSES

    def index(self) -> int:
        """The N of `job.group[N]`, Nomad's allocation name index."""
        start = self.name.rfind("[")
        return int(self.name[start + 1 : -1]) if start >= 0 and self.name.endswith("]") else 0

    def job_version(self) -> int:
        return self.job.version if self.job is not None else 0
