"""The job model: Job, TaskGroup, Task and the policies and blocks they carry, in Nomad's API shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codec import api_field
from .resources import NetworkResource, Resources

SECOND = 1_000_000_000  # durations are integer nanoseconds, as in Nomad's JSON
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

JOB_TYPES = ("service", "batch", "system", "sysbatch")


@dataclass(slots=True)
class Constraint:
    l_target: str = api_field("LTarget", default="")
    r_target: str = api_field("RTarget", default="")
    operand: str = "="

    def key(self) -> tuple[str, str, str]:
        return (self.l_target, self.operand, self.r_target)


@dataclass(slots=True)
class Affinity:
    l_target: str = api_field("LTarget", default="")
    r_target: str = api_field("RTarget", default="")
    operand: str = "="
    weight: int = 50


@dataclass(slots=True)
class SpreadTarget:
    value: str = ""
    percent: int = 0


@dataclass(slots=True)
class Spread:
    attribute: str = ""
    weight: int = 50
    spread_target: list[SpreadTarget] = field(default_factory=list)


@dataclass(slots=True)
class RestartPolicy:
    attempts: int = 0
    interval: int = 0
    delay: int = 0
    mode: str = ""


@dataclass(slots=True)
class ReschedulePolicy:
    attempts: int = 0
    interval: int = 0
    delay: int = 0
    delay_function: str = ""
    max_delay: int = 0
    unlimited: bool = False


@dataclass(slots=True)
class UpdateStrategy:
    stagger: int = 0
    max_parallel: int = 0
    health_check: str = ""
    min_healthy_time: int = 0
    healthy_deadline: int = 0
    progress_deadline: int = 0
    auto_revert: bool = False
    auto_promote: bool = False
    canary: int = 0


@dataclass(slots=True)
class MigrateStrategy:
    max_parallel: int = 0
    health_check: str = ""
    min_healthy_time: int = 0
    healthy_deadline: int = 0


@dataclass(slots=True)
class PeriodicConfig:
    enabled: bool = False
    spec: str = ""
    spec_type: str = "cron"
    prohibit_overlap: bool = False
    time_zone: str = ""


@dataclass(slots=True)
class ParameterizedJobConfig:
    payload: str = ""
    meta_required: list[str] = field(default_factory=list)
    meta_optional: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ServiceCheck:
    name: str = ""
    type: str = ""
    command: str = ""
    args: list[str] = field(default_factory=list)
    path: str = ""
    protocol: str = ""
    port_label: str = ""
    method: str = ""
    interval: int = 0
    timeout: int = 0
    initial_status: str = ""
    task_name: str = ""
    header: dict[str, list[str]] = field(default_factory=dict)
    check_restart: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Service:
    name: str = ""
    task_name: str = ""
    port_label: str = ""
    address_mode: str = ""
    provider: str = ""
    tags: list[str] = field(default_factory=list)
    canary_tags: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    checks: list[ServiceCheck] = field(default_factory=list)
    connect: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Template:
    source_path: str = ""
    dest_path: str = ""
    embedded_tmpl: str = ""
    change_mode: str = ""
    change_signal: str = ""
    splay: int = 0
    perms: str = ""
    left_delim: str = ""
    right_delim: str = ""
    envvars: bool = False
    vault_grace: int = 0


@dataclass(slots=True)
class Artifact:
    getter_source: str = ""
    getter_options: dict[str, str] = field(default_factory=dict)
    getter_mode: str = ""
    relative_dest: str = ""


@dataclass(slots=True)
class VolumeRequest:
    name: str = ""
    type: str = ""
    source: str = ""
    read_only: bool = False
    access_mode: str = ""
    attachment_mode: str = ""
    per_alloc: bool = False


@dataclass(slots=True)
class VolumeMount:
    volume: str = ""
    destination: str = ""
    read_only: bool = False
    propagation_mode: str = ""


@dataclass(slots=True)
class TaskLifecycle:
    hook: str = ""
    sidecar: bool = False


@dataclass(slots=True)
class EphemeralDisk:
    sticky: bool = False
    size_mb: int = 0
    migrate: bool = False


@dataclass(slots=True)
class LogConfig:
    max_files: int = 0
    max_file_size_mb: int = 0


@dataclass(slots=True)
class DispatchPayloadConfig:
    file: str = ""


@dataclass(slots=True)
class ScalingPolicy:
    min: int = 0
    max: int = 0
    enabled: bool = True
    policy: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Task:
    name: str = ""
    driver: str = ""
    user: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    vault: dict[str, Any] | None = None
    templates: list[Template] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    affinities: list[Affinity] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)
    restart_policy: RestartPolicy | None = None
    dispatch_payload: DispatchPayloadConfig | None = None
    lifecycle: TaskLifecycle | None = None
    meta: dict[str, str] = field(default_factory=dict)
    kill_timeout: int = 0
    log_config: LogConfig | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    leader: bool = False
    shutdown_delay: int = 0
    volume_mounts: list[VolumeMount] = field(default_factory=list)
    scaling_policies: list[dict[str, Any]] = field(default_factory=list)
    kill_signal: str = ""
    kind: str = ""
    csi_plugin_config: dict[str, Any] | None = api_field("CSIPluginConfig", default=None)


@dataclass(slots=True)
class TaskGroup:
    name: str = ""
    count: int = 1
    update: UpdateStrategy | None = None
    migrate: MigrateStrategy | None = None
    constraints: list[Constraint] = field(default_factory=list)
    scaling: ScalingPolicy | None = None
    restart_policy: RestartPolicy | None = None
    tasks: list[Task] = field(default_factory=list)
    ephemeral_disk: EphemeralDisk | None = None
    meta: dict[str, str] = field(default_factory=dict)
    reschedule_policy: ReschedulePolicy | None = None
    affinities: list[Affinity] = field(default_factory=list)
    spreads: list[Spread] = field(default_factory=list)
    networks: list[NetworkResource] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    volumes: dict[str, VolumeRequest] = field(default_factory=dict)
    shutdown_delay: int | None = None
    stop_after_client_disconnect: int | None = None

    def task(self, name: str) -> Task | None:
        return next((t for t in self.tasks if t.name == name), None)


@dataclass(slots=True)
class Job:
    stop: bool = False
    region: str = "global"
    namespace: str = "default"
    id: str = ""
    parent_id: str = api_field("ParentID", default="")
    name: str = ""
    type: str = "service"
    priority: int = 50
    all_at_once: bool = False
    datacenters: list[str] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    affinities: list[Affinity] = field(default_factory=list)
    spreads: list[Spread] = field(default_factory=list)
    task_groups: list[TaskGroup] = field(default_factory=list)
    update: UpdateStrategy | None = None
    multiregion: dict[str, Any] | None = None
    periodic: PeriodicConfig | None = None
    parameterized_job: ParameterizedJobConfig | None = None
    dispatched: bool = False
    payload: str | None = None  # base64, as Nomad's API carries it
    meta: dict[str, str] = field(default_factory=dict)
    consul_token: str = ""
    vault_token: str = ""
    vault_namespace: str = ""
    nomad_token_id: str = api_field("NomadTokenID", default="")
    status: str = ""
    status_description: str = ""
    stable: bool = False
    version: int = 0
    submit_time: int = 0
    create_index: int = 0
    modify_index: int = 0
    job_modify_index: int = 0

    def group(self, name: str) -> TaskGroup | None:
        return next((g for g in self.task_groups if g.name == name), None)

    def is_periodic(self) -> bool:
        return self.periodic is not None and self.periodic.enabled

    def is_parameterized(self) -> bool:
        return self.parameterized_job is not None and not self.dispatched

    def namespaced_id(self) -> tuple[str, str]:
        return (self.namespace, self.id)
