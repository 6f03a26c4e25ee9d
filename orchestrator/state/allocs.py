"""Allocation writes: plan results from the scheduler, status updates from clients, GC."""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.structs import Allocation, DesiredTransition, Evaluation, Job, PlanResult
from orchestrator.structs.alloc import CLIENT_LOST, CLIENT_UNKNOWN, DESIRED_EVICT, DESIRED_RUN, DESIRED_STOP
from orchestrator.structs.codec import replace

from .core import Write
from .deployments import DeploymentWrites
from .records import ALLOCS
from .summary import count_alloc_transition

# Client statuses the servers may set themselves (a node went down); every other one only a client knows.
_SERVER_CLIENT_STATUSES = (CLIENT_LOST, CLIENT_UNKNOWN)


def _job_spec_key(job: Job | None) -> tuple[int, int, int] | None:
    """What identifies the job version an allocation runs: not its status or modify index."""
    return None if job is None else (job.create_index, job.job_modify_index, job.version)


def _server_side_changed(old: Allocation, new: Allocation) -> bool:
    """Whether the servers changed what the client must run, so `alloc_modify_index` moves and the
    client pulls the allocation again (a new job version, other resources, a stop)."""
    return ((old.job is not new.job and _job_spec_key(old.job) != _job_spec_key(new.job))
            or (old.allocated_resources is not new.allocated_resources
                and old.allocated_resources != new.allocated_resources)
            or old.desired_status != new.desired_status
            or old.desired_description != new.desired_description
            or old.node_id != new.node_id
            or old.task_group != new.task_group
            or old.deployment_id != new.deployment_id)


class AllocWrites(DeploymentWrites):
    __slots__ = ()

    def upsert_allocs(self, index: int, allocs: Iterable[Allocation]) -> None:
        """Store allocations the servers created or changed.

        For an existing allocation the client's side is kept (task states, client status unless the
        servers mark it lost), since the scheduler planned from an older snapshot than the client's
        latest report; an allocation without a job keeps the one stored.
        """
        with self._writing(index) as w:
            for alloc in allocs:
                self._upsert_alloc(w, alloc)

    def update_allocs_from_client(self, index: int, allocs: Iterable[Allocation]) -> None:
        """Merge what a client reports (status, task states, deployment health); unknown IDs are
        ignored, as the allocation may have been garbage collected meanwhile."""
        with self._writing(index) as w:
            for update in allocs:
                self._update_alloc_from_client(w, update)

    def update_alloc_desired_transition(self, index: int, transitions: dict[str, DesiredTransition],
                                        evals: Iterable[Evaluation] = ()) -> None:
        """Mark allocations to migrate or reschedule (the drainer's request), with the evaluations
        that will act on them."""
        table = self._tables[ALLOCS]
        with self._writing(index) as w:
            for alloc_id, transition in transitions.items():
                existing = table.get(alloc_id)
                if existing is None:
                    continue
                merged = replace(existing.desired_transition, **{
                    name: value for name in ("migrate", "reschedule", "force_reschedule")
                    if (value := getattr(transition, name)) is not None})
                self._put(w, ALLOCS, alloc_id,
                          replace(existing, desired_transition=merged, modify_index=index))
            for evaluation in evals:
                self._upsert_eval(w, evaluation)

    def delete_allocs(self, index: int, alloc_ids: Iterable[str]) -> None:
        """Garbage-collect allocations; summary counts keep them, as Nomad's do."""
        self.delete_evals(index, (), alloc_ids)

    def apply_plan_result(self, index: int, result: PlanResult,
                          evals: Iterable[Evaluation] | None = None) -> None:
        """Commit what the plan applier accepted, in one write: the deployment and its updates first
        (so the placements are counted into it), then stops, preemptions, placements, evaluations."""
        with self._writing(index) as w:
            if result.deployment is not None:
                self._upsert_deployment(w, result.deployment)
            for update in result.deployment_updates:
                self._set_deployment_status(w, update["DeploymentID"], update["Status"],
                                            update.get("StatusDescription", ""))
            for stopped in result.node_update.values():
                for alloc in stopped:
                    self._stop_alloc(w, alloc, alloc.desired_status if alloc.desired_status != DESIRED_RUN
                                     else DESIRED_STOP)
            for preempted in result.node_preemptions.values():
                for alloc in preempted:
                    self._stop_alloc(w, alloc, DESIRED_EVICT)
            for placed in result.node_allocation.values():
                for alloc in placed:
                    self._upsert_alloc(w, alloc)
            for evaluation in evals or ():
                self._upsert_eval(w, evaluation)

    # -- one allocation ------------------------------------------------------------------------------

    def _upsert_alloc(self, w: Write, alloc: Allocation) -> None:
        idx = w.index
        existing = self._tables[ALLOCS].get(alloc.id)
        if existing is None:
            status = alloc.deployment_status
            new = replace(alloc, create_index=idx, modify_index=idx, alloc_modify_index=idx,
                          deployment_status=replace(status, modify_index=idx) if status is not None else None)
        else:
            changes: dict = {"create_index": existing.create_index, "modify_index": idx,
                             "task_states": existing.task_states}
            if alloc.job is None:
                changes["job"] = existing.job
            if alloc.client_status not in _SERVER_CLIENT_STATUSES:
                changes["client_status"] = existing.client_status
                changes["client_description"] = existing.client_description
            new = replace(alloc, **changes)
            if not _server_side_changed(existing, new):
                new.alloc_modify_index = existing.alloc_modify_index  # still private to this write
            else:
                new.alloc_modify_index = idx
        self._store_alloc(w, new, existing)

    def _stop_alloc(self, w: Write, diff: Allocation, desired_status: str) -> None:
        """Apply a stop or eviction to the stored allocation; the plan's copy may be stale or thin,
        so only the fields a stop sets are taken from it."""
        existing = self._tables[ALLOCS].get(diff.id)
        if existing is None:
            return  # garbage collected since the scheduler's snapshot: nothing left to stop
        self._upsert_alloc(w, replace(
            existing, desired_status=desired_status, desired_description=diff.desired_description,
            client_status=diff.client_status if diff.client_status in _SERVER_CLIENT_STATUSES
            else existing.client_status,
            followup_eval_id=diff.followup_eval_id or existing.followup_eval_id,
            preempted_by_allocation=diff.preempted_by_allocation or existing.preempted_by_allocation,
            modify_time=diff.modify_time or existing.modify_time))

    def _update_alloc_from_client(self, w: Write, update: Allocation) -> None:
        existing = self._tables[ALLOCS].get(update.id)
        if existing is None:
            return
        status = existing.deployment_status
        if status is not None and update.deployment_status is not None:
            # The client may only set health and its timestamp; canary and the rest are the servers'.
            status = replace(status, healthy=update.deployment_status.healthy,
                             timestamp=update.deployment_status.timestamp, modify_index=w.index)
        elif update.deployment_status is not None:
            status = update.deployment_status
        new = replace(existing, client_status=update.client_status,
                      client_description=update.client_description, task_states=update.task_states,
                      deployment_status=status, modify_index=w.index,
                      modify_time=update.modify_time or existing.modify_time)
        self._store_alloc(w, new, existing)

    def _store_alloc(self, w: Write, new: Allocation, existing: Allocation | None) -> None:
        new = self._count_alloc_in_deployment(w, new, existing)
        self._count_alloc_in_summary(w, new, existing)
        self._put(w, ALLOCS, new.id, new)
        w.job_checks[(new.namespace, new.job_id)] = None
        if existing is not None and (existing.namespace, existing.job_id) != (new.namespace, new.job_id):
            w.job_checks[(existing.namespace, existing.job_id)] = None

    def _count_alloc_in_summary(self, w: Write, new: Allocation, existing: Allocation | None) -> None:
        if existing is not None and existing.client_status == new.client_status:
            return
        summary = self._summary_for_update(w, (new.namespace, new.job_id))
        if summary is None:
            return
        # An allocation left from a job purged and registered again belongs to the old registration.
        if new.job is not None and new.job.create_index and new.job.create_index != summary.create_index:
            return
        count_alloc_transition(summary, new.task_group, existing.client_status if existing else None,
                               new.client_status)
