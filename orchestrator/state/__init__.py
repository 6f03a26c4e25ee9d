"""The server's state store, versioned by Raft index, with read-only snapshots and change listeners."""

from .reader import StateReader
from .records import (
    ALLOCS,
    DEFAULT_NAMESPACE,
    DEPLOYMENTS,
    EVALS,
    JOB_STATUS_DEAD,
    JOB_STATUS_PENDING,
    JOB_STATUS_RUNNING,
    JOB_SUMMARY,
    JOB_VERSIONS,
    JOBS,
    NAMESPACES,
    NODES,
    PERIODIC_LAUNCH,
    SCHEDULER_CONFIG,
    TABLE_NAMES,
    Namespace,
    NotFoundError,
    PeriodicLaunch,
    StateError,
)
from .snapshot import StateSnapshot
from .store import ForkedStore, StateStore
from .summary import JobChildrenSummary, JobSummary, TaskGroupSummary

__all__ = [
    "ALLOCS", "DEFAULT_NAMESPACE", "DEPLOYMENTS", "EVALS", "JOBS", "JOB_STATUS_DEAD", "JOB_STATUS_PENDING",
    "JOB_STATUS_RUNNING", "JOB_SUMMARY", "JOB_VERSIONS", "NAMESPACES", "NODES", "PERIODIC_LAUNCH",
    "SCHEDULER_CONFIG", "TABLE_NAMES", "ForkedStore", "JobChildrenSummary", "JobSummary", "Namespace",
    "NotFoundError", "PeriodicLaunch", "StateError", "StateReader", "StateSnapshot", "StateStore",
    "TaskGroupSummary",
]
