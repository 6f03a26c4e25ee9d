"""Evaluations (why the scheduler must look at a job) and deployments (a rolling update in progress)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .alloc import AllocMetric
from .codec import api_field

EVAL_PENDING = "pending"
EVAL_BLOCKED = "blocked"
EVAL_COMPLETE = "complete"
EVAL_FAILED = "failed"
EVAL_CANCELED = "canceled"

TRIGGER_JOB_REGISTER = "job-register"
TRIGGER_JOB_DEREGISTER = "job-deregister"
TRIGGER_PERIODIC_JOB = "periodic-job"
TRIGGER_NODE_DRAIN = "node-drain"
TRIGGER_NODE_UPDATE = "node-update"
TRIGGER_ALLOC_STOP = "alloc-stop"
TRIGGER_SCHEDULED = "scheduled"
TRIGGER_ROLLING_UPDATE = "rolling-update"
TRIGGER_DEPLOYMENT_WATCHER = "deployment-watcher"
TRIGGER_FAILED_FOLLOW_UP = "failed-follow-up"
TRIGGER_MAX_PLANS = "max-plan-attempts"
TRIGGER_RETRY_FAILED_ALLOC = "alloc-failure"
TRIGGER_QUEUED_ALLOCS = "queued-allocs"
TRIGGER_PREEMPTION = "preemption"
TRIGGER_JOB_SCALING = "job-scaling"


@dataclass(slots=True)
class Evaluation:
    id: str = ""
    namespace: str = "default"
    priority: int = 50
    type: str = "service"
    triggered_by: str = ""
    job_id: str = api_field("JobID", default="")
    job_modify_index: int = 0
    node_id: str = api_field("NodeID", default="")
    node_modify_index: int = 0
    deployment_id: str = api_field("DeploymentID", default="")
    status: str = EVAL_PENDING
    status_description: str = ""
    wait: int = 0
    wait_until: int = 0  # unix nanoseconds; the broker holds the eval until then
    next_eval: str = ""
    previous_eval: str = ""
    blocked_eval: str = ""
    failed_tg_allocs: dict[str, AllocMetric] = api_field("FailedTGAllocs", default_factory=dict)
    class_eligibility: dict[str, bool] = field(default_factory=dict)
    escaped_computed_class: bool = False
    annotate_plan: bool = False
    queued_allocations: dict[str, int] = field(default_factory=dict)
    leader_ack: str = ""
    snapshot_index: int = 0
    create_index: int = 0
    modify_index: int = 0
    create_time: int = 0
    modify_time: int = 0

    def terminal(self) -> bool:
        return self.status in (EVAL_COMPLETE, EVAL_FAILED, EVAL_CANCELED)


DEPLOYMENT_RUNNING = "running"
DEPLOYMENT_PAUSED = "paused"
DEPLOYMENT_FAILED = "failed"
DEPLOYMENT_SUCCESSFUL = "successful"
DEPLOYMENT_CANCELLED = "cancelled"


@dataclass(slots=True)
class DeploymentState:
    auto_revert: bool = False
    auto_promote: bool = False
    progress_deadline: int = 0
    require_progress_by: str = ""  # RFC 3339, as Nomad prints it
    promoted: bool = False
    placed_canaries: list[str] = field(default_factory=list)
    desired_canaries: int = 0
    desired_total: int = 0
    placed_allocs: int = 0
    healthy_allocs: int = 0
    unhealthy_allocs: int = 0


@dataclass(slots=True)
class Deployment:
    id: str = ""
    namespace: str = "default"
    job_id: str = api_field("JobID", default="")
    job_version: int = 0
    job_modify_index: int = 0
    job_spec_modify_index: int = 0
    job_create_index: int = 0
    is_multiregion: bool = False
    task_groups: dict[str, DeploymentState] = field(default_factory=dict)
    status: str = DEPLOYMENT_RUNNING
    status_description: str = ""
    create_index: int = 0
    modify_index: int = 0

    def active(self) -> bool:
        return self.status in (DEPLOYMENT_RUNNING, DEPLOYMENT_PAUSED)
