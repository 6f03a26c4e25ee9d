"""Job writes: registration with versioning, purge, stability, queued counts, status and periodic launches."""

from __future__ import annotations

from orchestrator.structs import Job
from orchestrator.structs.codec import replace

from .core import JobKey, StoreCore, Write
from .records import (
    ALLOCS,
    EVALS,
    JOB_STATUS_DEAD,
    JOB_STATUS_PENDING,
    JOB_STATUS_RUNNING,
    JOB_SUMMARY,
    JOB_VERSIONS,
    JOBS,
    NAMESPACES,
    PERIODIC_LAUNCH,
    NotFoundError,
    PeriodicLaunch,
)
from .summary import add_task_groups, count_child_transition, new_summary

# Fields the store or the server set, not the user: a job differing only in these is the same spec.
_NOT_SPEC = {"status": "", "status_description": "", "stable": False, "version": 0, "submit_time": 0,
             "create_index": 0, "modify_index": 0, "job_modify_index": 0}


def spec_changed(old: Job, new: Job) -> bool:
    """Whether registering `new` over `old` changes what the user asked for (Nomad's SpecChanged)."""
    return replace(old, **_NOT_SPEC) != replace(new, **_NOT_SPEC)


class JobWrites(StoreCore):
    __slots__ = ()

    def upsert_job(self, index: int, job: Job, *, keep_version: bool = False) -> Job:
        """Register or update a job; returns the job as stored.

        A changed spec gets the next version and `job_modify_index = index`; an unchanged one keeps
        both (and its stability). `keep_version` stores the job's own version and job_modify_index,
        for internal updates such as marking a version stable.
        """
        if self._tables[NAMESPACES].get(job.namespace) is None:
            raise NotFoundError(f"job {job.id!r} is in nonexistent namespace {job.namespace!r}")
        with self._writing(index) as w:
            return self._upsert_job(w, job, keep_version)

    def delete_job(self, index: int, namespace: str, job_id: str) -> None:
        """Purge a job with its versions, summary and periodic launch; allocations and evaluations
        stay until garbage collection."""
        key = (namespace, job_id)
        job = self._tables[JOBS].get(key)
        if job is None:
            raise NotFoundError(f"job not found: {job_id!r} in namespace {namespace!r}")
        with self._writing(index) as w:
            self._delete(w, JOBS, key)
            for version in self.job_versions(namespace, job_id):
                self._delete(w, JOB_VERSIONS, (namespace, job_id, version.version))
            w.summaries.pop(key, None)
            self._delete(w, JOB_SUMMARY, key)
            self._delete(w, PERIODIC_LAUNCH, key)
            if job.parent_id:
                self._adjust_children(w, (namespace, job.parent_id), job.status, None)

    def set_job_stable(self, index: int, namespace: str, job_id: str, version: int, stable: bool) -> None:
        if self._tables[JOB_VERSIONS].get((namespace, job_id, version)) is None:
            raise NotFoundError(f"job {job_id!r} has no version {version}")
        with self._writing(index) as w:
            self._set_job_stable(w, (namespace, job_id), version, stable)

    def update_queued(self, index: int, namespace: str, job_id: str, queued: dict[str, int]) -> None:
        """Record how many allocations per task group the scheduler could not place yet."""
        with self._writing(index) as w:
            self._set_queued(w, (namespace, job_id), queued)

    def upsert_periodic_launch(self, index: int, namespace: str, job_id: str, launch: int) -> None:
        key = (namespace, job_id)
        existing = self._tables[PERIODIC_LAUNCH].get(key)
        create_index = existing.create_index if existing is not None else index
        with self._writing(index) as w:
            self._put(w, PERIODIC_LAUNCH, key, PeriodicLaunch(namespace, job_id, launch, create_index, index))

    def delete_periodic_launch(self, index: int, namespace: str, job_id: str) -> None:
        if self._tables[PERIODIC_LAUNCH].get((namespace, job_id)) is None:
            raise NotFoundError(f"periodic launch not found: {job_id!r} in namespace {namespace!r}")
        with self._writing(index) as w:
            self._delete(w, PERIODIC_LAUNCH, (namespace, job_id))

    # -- shared by other writes ----------------------------------------------------------------------

    def _upsert_job(self, w: Write, job: Job, keep_version: bool) -> Job:
        key = (job.namespace, job.id)
        existing = self._tables[JOBS].get(key)
        idx = w.index
        status = self._job_status(job, eval_delete=False)
        if existing is None:
            new = replace(job, status=status, create_index=idx, modify_index=idx, job_modify_index=idx)
        elif keep_version:
            new = replace(job, status=status, create_index=existing.create_index, modify_index=idx)
        elif spec_changed(existing, job):
            version = job.version if job.version > existing.version else existing.version + 1
            new = replace(job, status=status, create_index=existing.create_index, modify_index=idx,
                          version=version, job_modify_index=idx)
        else:
            new = replace(job, status=status, create_index=existing.create_index, modify_index=idx,
                          version=existing.version, job_modify_index=existing.job_modify_index,
                          stable=existing.stable, submit_time=existing.submit_time)
        self._put(w, JOBS, key, new)
        self._put(w, JOB_VERSIONS, (new.namespace, new.id, new.version), new)
        self._trim_versions(w, key)

        summary = self._summary_for_update(w, key)
        if summary is None:
            w.summaries[key] = (None, new_summary(new, idx))
        else:
            add_task_groups(summary, new)
        if new.parent_id and (existing is None or existing.status != new.status):
            self._adjust_children(w, (new.namespace, new.parent_id), existing.status if existing else None,
                                  new.status)
        return new

    def _trim_versions(self, w: Write, key: JobKey) -> None:
        """Keep the newest `job_versions_limit` versions, and the newest stable one among them so a
        deployment can always revert to it (as Nomad does)."""
        versions = self.job_versions(*key)
        limit = max(1, self.job_versions_limit)
        if len(versions) <= limit:
            return
        keep, drop = versions[:limit], versions[limit:]
        stable = next((v for v in versions if v.stable), None)
        if stable is not None and limit > 1 and stable.version < keep[-1].version:
            drop = [v for v in drop if v.version != stable.version] + [keep[-1]]
        for old in drop:
            self._delete(w, JOB_VERSIONS, (*key, old.version))

    def _set_job_stable(self, w: Write, key: JobKey, version: int, stable: bool) -> None:
        versioned = self._tables[JOB_VERSIONS].get((*key, version))
        if versioned is None:
            return
        self._put(w, JOB_VERSIONS, (*key, version), replace(versioned, stable=stable, modify_index=w.index))
        current = self._tables[JOBS].get(key)
        if current is not None and current.version == version:
            self._put(w, JOBS, key, replace(current, stable=stable, modify_index=w.index))

    def _set_queued(self, w: Write, key: JobKey, queued: dict[str, int]) -> None:
        summary = self._summary_for_update(w, key)
        if summary is None:
            return
        for group, count in queued.items():
            tg = summary.summary.get(group)
            if tg is not None:  # groups the job no longer has are not counted again
                tg.queued = count

    def _adjust_children(self, w: Write, parent: JobKey, old_status: str | None,
                         new_status: str | None) -> None:
        summary = self._summary_for_update(w, parent)
        if summary is not None:
            count_child_transition(summary, old_status, new_status)

    def _job_status(self, job: Job, eval_delete: bool) -> str:
        """Nomad's job status: what the job's allocations and evaluations say about it."""
        # System, periodic and parameterized jobs run until stopped, whatever they have placed.
        if job.type == "system" or job.is_periodic() or job.is_parameterized():
            return JOB_STATUS_DEAD if job.stop else JOB_STATUS_RUNNING
        key = (job.namespace, job.id)
        has_allocs = False
        for alloc in self._tables[ALLOCS].iter_members("job", key):
            has_allocs = True
            if not alloc.terminal():
                return JOB_STATUS_RUNNING  # a stopped job runs until its allocations are stopped
        if job.stop:
            return JOB_STATUS_DEAD
        has_evals = False
        for evaluation in self._tables[EVALS].iter_members("job", key):
            has_evals = True
            if not evaluation.terminal():
                return JOB_STATUS_PENDING
        # Everything terminal, or garbage collected: dead. Nothing ever scheduled: still pending.
        return JOB_STATUS_DEAD if (eval_delete or has_evals or has_allocs) else JOB_STATUS_PENDING

    def _refresh_job_statuses(self, w: Write) -> None:
        jobs = self._tables[JOBS]
        for key in w.job_checks:
            job = jobs.get(key)
            if job is None:
                continue
            status = self._job_status(job, w.eval_delete)
            if status == job.status:
                continue
            # Only the current job row changes; stored versions keep the status they were saved with.
            self._put(w, JOBS, key, replace(job, status=status, modify_index=w.index))
            if job.parent_id:
                self._adjust_children(w, (job.namespace, job.parent_id), job.status, status)
