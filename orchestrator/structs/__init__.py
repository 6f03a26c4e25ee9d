"""yurt's data model: jobs, nodes, allocations, evaluations, deployments and plans, in Nomad's API shape."""

from __future__ import annotations

from typing import Any

from .alloc import (
    AllocatedPortMapping,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    Allocation,
    AllocMetric,
    DesiredTransition,
    NodeScoreMeta,
    RescheduleEvent,
    RescheduleTracker,
    TaskEvent,
    TaskState,
)
from .codec import DecodeError, api_name, decode, encode
from .defaults import with_defaults
from .evaluation import Deployment, DeploymentState, Evaluation
from .job import (
    HOUR,
    MINUTE,
    SECOND,
    Affinity,
    Constraint,
    EphemeralDisk,
    Job,
    LogConfig,
    MigrateStrategy,
    ParameterizedJobConfig,
    PeriodicConfig,
    ReschedulePolicy,
    RestartPolicy,
    Service,
    ServiceCheck,
    Spread,
    SpreadTarget,
    Task,
    TaskGroup,
    Template,
    UpdateStrategy,
)
from .node import DrainSpec, DrainStrategy, DriverInfo, Node, NodeEvent
from .plan import DesiredUpdates, Plan, PlanAnnotations, PlanResult
from .resources import (
    NetworkResource,
    NodeDeviceResource,
    NodeReservedResources,
    NodeResources,
    Port,
    RequestedDevice,
    Resources,
)
from .validate import format_errors, validate_job


def job_from_api(data: dict[str, Any]) -> Job:
    """A job from Nomad's API JSON (a bare job object), with Nomad's defaults filled in."""
    return decode(Job, with_defaults(data))


def job_to_api(job: Job) -> dict[str, Any]:
    return encode(job)


__all__ = [
    "HOUR",
    "MINUTE",
    "SECOND",
    "Affinity",
    "AllocMetric",
    "AllocatedPortMapping",
    "AllocatedResources",
    "AllocatedSharedResources",
    "AllocatedTaskResources",
    "Allocation",
    "Constraint",
    "DecodeError",
    "Deployment",
    "DeploymentState",
    "DesiredTransition",
    "DesiredUpdates",
    "DrainSpec",
    "DrainStrategy",
    "DriverInfo",
    "EphemeralDisk",
    "Evaluation",
    "Job",
    "LogConfig",
    "MigrateStrategy",
    "NetworkResource",
    "Node",
    "NodeDeviceResource",
    "NodeEvent",
    "NodeReservedResources",
    "NodeResources",
    "NodeScoreMeta",
    "ParameterizedJobConfig",
    "PeriodicConfig",
    "Plan",
    "PlanAnnotations",
    "PlanResult",
    "Port",
    "RequestedDevice",
    "RescheduleEvent",
    "ReschedulePolicy",
    "RescheduleTracker",
    "Resources",
    "RestartPolicy",
    "Service",
    "ServiceCheck",
    "Spread",
    "SpreadTarget",
    "Task",
    "TaskEvent",
    "TaskGroup",
    "TaskState",
    "Template",
    "UpdateStrategy",
    "api_name",
    "decode",
    "encode",
    "format_errors",
    "job_from_api",
    "job_to_api",
    "validate_job",
    "with_defaults",
]
