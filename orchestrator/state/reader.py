"""Read queries shared by the live state store and its read-only snapshots."""

from __future__ import annotations

import copy
from typing import Any

from orchestrator.structs import Allocation, Deployment, Evaluation, Job, Node

from .records import (
    ALLOCS,
    DEFAULT_NAMESPACE,
    DEPLOYMENTS,
    EVALS,
    JOB_SUMMARY,
    JOB_VERSIONS,
    JOBS,
    NAMESPACES,
    NODES,
    PERIODIC_LAUNCH,
    SCHEDULER_CONFIG,
    SCHEDULER_CONFIG_KEY,
    TABLE_NAMES,
    Namespace,
    PeriodicLaunch,
)
from .summary import JobSummary


def _by_prefix(rows: Any, prefix: str) -> list[Any]:
    """Rows of an id-keyed table whose ID starts with `prefix`, sorted by ID (Nomad's `?prefix=`)."""
    if prefix:
        keys = sorted(k for k in rows.rows if k.startswith(prefix))
    else:
        keys = sorted(rows.rows)
    return [rows.rows[k] for k in keys]


class StateReader:
    """Every read the scheduler, FSM and HTTP API make; `_tables` maps table names to tables or views.

    Lists from secondary indexes (allocs by node, by job...) come in the order the rows joined the
    index, which is deterministic for a given sequence of writes; top-level listings are sorted by ID.
    """

    __slots__ = ()
    _tables: dict[str, Any]

    # -- indexes -------------------------------------------------------------------------------------

    def table_index(self, name: str) -> int:
        """The Raft index of the last write that changed table `name` (Nomad's `X-Nomad-Index`)."""
        return self._tables[name].index

    def latest_index(self) -> int:
        return max(self._tables[name].index for name in TABLE_NAMES)

    # -- jobs ----------------------------------------------------------------------------------------

    def job_by_id(self, namespace: str, job_id: str) -> Job | None:
        return self._tables[JOBS].get((namespace, job_id))

    def jobs(self, namespace: str | None = DEFAULT_NAMESPACE, prefix: str = "") -> list[Job]:
        """Jobs of one namespace (all when None), sorted by ID then namespace, filtered by ID prefix."""
        table = self._tables[JOBS]
        found = table.values() if namespace is None else table.iter_members("namespace", namespace)
        return sorted((j for j in found if j.id.startswith(prefix)), key=lambda j: (j.id, j.namespace))

    def job_versions(self, namespace: str, job_id: str) -> list[Job]:
        """Every kept version of a job, newest first."""
        versions = self._tables[JOB_VERSIONS].members("job", (namespace, job_id))
        return sorted(versions, key=lambda j: j.version, reverse=True)

    def job_by_id_and_version(self, namespace: str, job_id: str, version: int) -> Job | None:
        return self._tables[JOB_VERSIONS].get((namespace, job_id, version))

    def jobs_by_parent(self, namespace: str, parent_id: str) -> list[Job]:
        """Dispatched or periodic children of a parent job."""
        return self._tables[JOBS].members("parent", (namespace, parent_id))

    def jobs_by_periodic(self, periodic: bool = True) -> list[Job]:
        table = self._tables[JOBS]
        if periodic:
            return table.members("periodic", True)
        return [j for j in table.values() if not j.is_periodic()]

    def periodic_jobs(self) -> list[Job]:
        return self.jobs_by_periodic(True)

    def jobs_by_type(self, job_type: str) -> list[Job]:
        """Jobs of one scheduler type: node changes wake every system job, as in Nomad."""
        return self._tables[JOBS].members("type", job_type)

    def job_summary(self, namespace: str, job_id: str) -> JobSummary | None:
        return self._tables[JOB_SUMMARY].get((namespace, job_id))

    def periodic_launch(self, namespace: str, job_id: str) -> PeriodicLaunch | None:
        return self._tables[PERIODIC_LAUNCH].get((namespace, job_id))

    def periodic_launches(self) -> list[PeriodicLaunch]:
        return list(self._tables[PERIODIC_LAUNCH].values())

    # -- scheduler configuration ---------------------------------------------------------------------

    def scheduler_config(self) -> dict[str, Any] | None:
        """The operator's scheduler configuration in Nomad's API shape (with CreateIndex and ModifyIndex),
        or None while none was ever set; a copy, so callers may keep or change it."""
        row = self._tables[SCHEDULER_CONFIG].get(SCHEDULER_CONFIG_KEY)
        return copy.deepcopy(row) if row is not None else None

    # -- namespaces ----------------------------------------------------------------------------------

    def namespaces(self) -> list[Namespace]:
        return sorted(self._tables[NAMESPACES].values(), key=lambda n: n.name)

    def namespace_by_name(self, name: str) -> Namespace | None:
        return self._tables[NAMESPACES].get(name)

    # -- nodes ---------------------------------------------------------------------------------------

    def node_by_id(self, node_id: str) -> Node | None:
        return self._tables[NODES].get(node_id)

    def node_by_prefix(self, prefix: str) -> list[Node]:
        return _by_prefix(self._tables[NODES], prefix)

    def nodes(self, prefix: str = "") -> list[Node]:
        return _by_prefix(self._tables[NODES], prefix)

    def node_count(self) -> int:
        return len(self._tables[NODES])

    # -- allocations ---------------------------------------------------------------------------------

    def alloc_by_id(self, alloc_id: str) -> Allocation | None:
        return self._tables[ALLOCS].get(alloc_id)

    def allocs(self, prefix: str = "") -> list[Allocation]:
        return _by_prefix(self._tables[ALLOCS], prefix)

    def allocs_by_node(self, node_id: str) -> list[Allocation]:
        return self._tables[ALLOCS].members("node", node_id)

    def allocs_by_node_terminal(self, node_id: str, terminal: bool) -> list[Allocation]:
        return [a for a in self._tables[ALLOCS].iter_members("node", node_id) if a.terminal() == terminal]

    def allocs_by_job(self, namespace: str, job_id: str, any_create_index: bool = True) -> list[Allocation]:
        """A job's allocations; with any_create_index False, only those of the job registered now.

        A job purged and registered again under the same ID gets a new create index, so allocations
        left over from the old registration are told apart by their job's create index.
        """
        allocs = self._tables[ALLOCS].members("job", (namespace, job_id))
        if any_create_index:
            return allocs
        job = self.job_by_id(namespace, job_id)
        if job is None:
            return []
        return [a for a in allocs if a.job is not None and a.job.create_index == job.create_index]

    def allocs_by_eval(self, eval_id: str) -> list[Allocation]:
        return self._tables[ALLOCS].members("eval", eval_id)

    def allocs_by_deployment(self, deployment_id: str) -> list[Allocation]:
        return self._tables[ALLOCS].members("deployment", deployment_id)

    # -- evaluations ---------------------------------------------------------------------------------

    def eval_by_id(self, eval_id: str) -> Evaluation | None:
        return self._tables[EVALS].get(eval_id)

    def evals(self, prefix: str = "") -> list[Evaluation]:
        return _by_prefix(self._tables[EVALS], prefix)

    def evals_by_job(self, namespace: str, job_id: str) -> list[Evaluation]:
        return self._tables[EVALS].members("job", (namespace, job_id))

    def blocked_evals(self) -> list[Evaluation]:
        return self._tables[EVALS].members("blocked", True)

    # -- deployments ---------------------------------------------------------------------------------

    def deployment_by_id(self, deployment_id: str) -> Deployment | None:
        return self._tables[DEPLOYMENTS].get(deployment_id)

    def deployments(self, prefix: str = "") -> list[Deployment]:
        return _by_prefix(self._tables[DEPLOYMENTS], prefix)

    def deployments_by_job(self, namespace: str, job_id: str) -> list[Deployment]:
        return self._tables[DEPLOYMENTS].members("job", (namespace, job_id))

    def latest_deployment_by_job(self, namespace: str, job_id: str) -> Deployment | None:
        """The job's most recently created deployment, whatever its status."""
        found = self._tables[DEPLOYMENTS].iter_members("job", (namespace, job_id))
        return max(found, key=lambda d: d.create_index, default=None)
