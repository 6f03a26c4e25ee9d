"""Small records only the state store keeps (namespaces, periodic launches), its table names and errors."""

from __future__ import annotations

from dataclasses import dataclass

JOBS = "jobs"
JOB_VERSIONS = "job_versions"
NODES = "nodes"
ALLOCS = "allocs"
EVALS = "evals"
DEPLOYMENTS = "deployments"
PERIODIC_LAUNCH = "periodic_launch"
NAMESPACES = "namespaces"
JOB_SUMMARY = "job_summary"
SCHEDULER_CONFIG = "scheduler_config"

TABLE_NAMES = (JOBS, JOB_VERSIONS, NODES, ALLOCS, EVALS, DEPLOYMENTS, PERIODIC_LAUNCH, NAMESPACES,
               JOB_SUMMARY, SCHEDULER_CONFIG)

# The scheduler configuration table holds a single row, under this key.
SCHEDULER_CONFIG_KEY = "config"

DEFAULT_NAMESPACE = "default"

JOB_STATUS_PENDING = "pending"
JOB_STATUS_RUNNING = "running"
JOB_STATUS_DEAD = "dead"


@dataclass(frozen=True, slots=True)
class PeriodicLaunch:
    """When a periodic job last launched a child, so a new leader does not launch it twice."""

    namespace: str = DEFAULT_NAMESPACE
    id: str = ""
    launch: int = 0  # unix nanoseconds
    create_index: int = 0
    modify_index: int = 0


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str = ""
    description: str = ""
    create_index: int = 0
    modify_index: int = 0


class StateError(Exception):
    """A write the state store refuses; nothing was changed."""


class NotFoundError(StateError, LookupError):
    """A write names an object the store does not hold (Nomad's "job not found", "node not found")."""
