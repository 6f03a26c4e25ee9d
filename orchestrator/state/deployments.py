"""Deployment writes, and the per task group counts a deployment keeps as its allocations change."""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.structs import Allocation, Deployment, Evaluation, Job
from orchestrator.structs.codec import replace
from orchestrator.structs.evaluation import DEPLOYMENT_SUCCESSFUL
from orchestrator.structs.timefmt import parse_rfc3339_lenient, rfc3339_ns

from .core import Write, private_deployment
from .evals import EvalWrites
from .records import DEPLOYMENTS, NotFoundError


def _has_health(alloc: Allocation | None) -> bool:
    status = alloc.deployment_status if alloc is not None else None
    return status is not None and status.healthy is not None


class DeploymentWrites(EvalWrites):
    __slots__ = ()

    def upsert_deployment(self, index: int, deployment: Deployment) -> None:
        with self._writing(index) as w:
            self._upsert_deployment(w, deployment)

    def update_deployment_status(self, index: int, deployment_id: str, status: str, description: str, *,
                                 job: Job | None = None, evals: Iterable[Evaluation] = ()) -> None:
        """Set a deployment's status; a successful one marks its job version stable.

        `job` (an auto-revert) and `evals` are stored in the same write, as Nomad's request carries them.
        """
        if self._tables[DEPLOYMENTS].get(deployment_id) is None:
            raise NotFoundError(f"deployment not found: {deployment_id!r}")
        with self._writing(index) as w:
            self._set_deployment_status(w, deployment_id, status, description)
            if job is not None:
                self._upsert_job(w, job, keep_version=False)
            for evaluation in evals:
                self._upsert_eval(w, evaluation)

    def delete_deployments(self, index: int, deployment_ids: Iterable[str]) -> None:
        with self._writing(index) as w:
            for deployment_id in deployment_ids:
                w.deployments.pop(deployment_id, None)
                self._delete(w, DEPLOYMENTS, deployment_id)

    def _upsert_deployment(self, w: Write, deployment: Deployment) -> None:
        stored = self._tables[DEPLOYMENTS].get(deployment.id)
        create_index = stored.create_index if stored is not None else w.index
        # Stored at commit, after this write's allocations have been counted into it.
        w.deployments[deployment.id] = (stored, private_deployment(deployment, create_index=create_index))

    def _set_deployment_status(self, w: Write, deployment_id: str, status: str, description: str) -> None:
        work = self._deployment_for_update(w, deployment_id)
        if work is None:
            return
        work.status = status
        work.status_description = description
        if status == DEPLOYMENT_SUCCESSFUL:
            self._set_job_stable(w, (work.namespace, work.job_id), work.job_version, True)

    def _count_alloc_in_deployment(self, w: Write, alloc: Allocation,
                                   existing: Allocation | None) -> Allocation:
        """Count a placement, or a health verdict the client reported, in the allocation's deployment
        (Nomad's updateDeploymentWithAlloc); returns the allocation to store."""
        if not alloc.deployment_id:
            return alloc
        if existing is not None and existing.deployment_id == alloc.deployment_id and (
                existing.deployment_status == alloc.deployment_status):
            return alloc  # the common case of a client update with nothing new for the deployment
        deployment = self._deployment_for_update(w, alloc.deployment_id)
        state = deployment.task_groups.get(alloc.task_group) if deployment is not None else None
        if state is None:
            return alloc
        placed = healthy = unhealthy = 0
        if existing is None or existing.deployment_id != alloc.deployment_id:
            placed = 1
        elif _has_health(alloc) and not _has_health(existing):
            if alloc.deployment_status.healthy:
                healthy = 1
            else:
                unhealthy = 1
        elif (_has_health(alloc) and existing.deployment_status.healthy
              and not alloc.deployment_status.healthy):
            healthy, unhealthy = -1, 1  # gone from healthy to unhealthy
        if not (placed or healthy or unhealthy):
            return alloc
        if healthy or unhealthy:
            alloc = replace(alloc, deployment_status=replace(alloc.deployment_status, modify_index=w.index))
        state.placed_allocs += placed
        state.healthy_allocs += healthy
        state.unhealthy_allocs += unhealthy
        if state.progress_deadline > 0:
            # Nomad's RequireProgressBy: the first placement starts the clock, each allocation turning healthy
            # restarts it.
            if healthy > 0:
                healthy_at = parse_rfc3339_lenient(alloc.deployment_status.timestamp)
                if healthy_at is not None:
                    state.require_progress_by = rfc3339_ns(int(healthy_at * 1e9) + state.progress_deadline)
            elif placed and not state.require_progress_by and alloc.create_time:
                state.require_progress_by = rfc3339_ns(alloc.create_time + state.progress_deadline)
        if alloc.deployment_status is not None and alloc.deployment_status.canary and (
                alloc.id not in state.placed_canaries):
            state.placed_canaries.append(alloc.id)
        return alloc
