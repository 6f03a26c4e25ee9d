"""Nomad's deployment watcher, sans-IO: complete, fail, auto-revert, auto-promote and nudge active deployments."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from orchestrator.scheduler.ids import new_id
from orchestrator.scheduler.ports import Rng
from orchestrator.state import DEPLOYMENTS, StateReader
from orchestrator.state.jobs import spec_changed
from orchestrator.structs import Allocation, Deployment, DesiredTransition, Evaluation, Job
from orchestrator.structs.evaluation import (
    DEPLOYMENT_CANCELLED,
    DEPLOYMENT_FAILED,
    DEPLOYMENT_PAUSED,
    DEPLOYMENT_SUCCESSFUL,
    EVAL_CANCELED,
    EVAL_PENDING,
    TRIGGER_DEPLOYMENT_WATCHER,
)
from orchestrator.structs.timefmt import parse_rfc3339_lenient

from .leadership import LeaderOnly

# Nomad's DeploymentStatusDescription* texts.
DESC_RUNNING = "Deployment is running"
DESC_SUCCESSFUL = "Deployment completed successfully"
DESC_UNHEALTHY = "Failed due to unhealthy allocations"
DESC_PROGRESS_DEADLINE = "Failed due to progress deadline"
DESC_STOPPED_JOB = "Cancelled because job is stopped"
DESC_NEWER_JOB = "Cancelled due to newer version of job"

PROPOSAL_RETRY = 30.0  # seconds before a decision the state does not show yet is proposed again


def rollback_description(base: str, version: int) -> str:
    return f"{base} - rolling back to job version {version}"


def rollback_noop_description(base: str, version: int) -> str:
    return f"{base} - not rolling back to stable job version {version} as current job has same specification"


def no_rollback_target_description(base: str) -> str:
    return f"{base} - no stable job version to auto revert to"


@dataclass(slots=True)
class DeploymentActions:
    """What the leader should commit. Each status update is one Raft write
    (`update_deployment_status(id, status, description, job=revert_for.get(id), evals=[evals for it])`);
    evals carry their deployment's ID. `promotions` promote all canaries of a deployment (with an eval);
    `reschedules` mark unhealthy allocations of progress-deadline groups for replacement (with an eval).
    """

    status_updates: list[tuple[str, str, str]] = field(default_factory=list)
    promotions: list[str] = field(default_factory=list)
    reverts: list[Job] = field(default_factory=list)
    revert_for: dict[str, Job] = field(default_factory=dict)  # deployment ID -> job to register
    evals: list[Evaluation] = field(default_factory=list)
    reschedules: dict[str, DesiredTransition] = field(default_factory=dict)
    next_deadline: float | None = None

    def evals_for(self, deployment_id: str) -> list[Evaluation]:
        return [e for e in self.evals if e.deployment_id == deployment_id]

    def empty(self) -> bool:
        return not (self.status_updates or self.promotions or self.evals or self.reschedules)


def _healthy(alloc: Allocation) -> bool:
    return alloc.deployment_status is not None and alloc.deployment_status.healthy is True


def _unhealthy(alloc: Allocation) -> bool:
    return alloc.deployment_status is not None and alloc.deployment_status.healthy is False


def _health_time(alloc: Allocation) -> float:
    status = alloc.deployment_status
    stamp = parse_rfc3339_lenient(status.timestamp) if status is not None else None
    return stamp if stamp is not None else alloc.modify_time / 1e9


class DeploymentWatcher(LeaderOnly):
    """Watches every active deployment of the state and decides what the leader must change.

    Success and the progress deadline are computed from the deployment's allocations (live, healthy
    ones), not from its counters, since an allocation counted healthy may since have stopped. Each
    decision is remembered until the state reflects it (or `retry_after` passes), so a decision is not
    proposed twice while its Raft write is in flight.

    `fail_fast` fails a deployment on its first unhealthy allocation even in groups with a progress
    deadline; Nomad (and the default) instead lets those groups replace unhealthy allocations and
    fails them only when the progress deadline passes.
    """

    def __init__(self, rng: Rng, *, retry_after: float = PROPOSAL_RETRY, fail_fast: bool = False,
                 enabled: bool = True) -> None:
        self.rng = rng
        self.retry_after = retry_after
        self.fail_fast = fail_fast
        self._enabled = enabled
        self._reset()

    def _reset(self) -> None:
        self._active: list[str] = []
        self._deployments_index = -1
        self._first_seen: dict[str, float] = {}
        self._proposed: dict[tuple[str, str], float] = {}  # (kind, deployment or alloc ID) -> when
        self._eval_covered: dict[str, int] = {}  # deployment ID -> health index an eval already covers
        self._next_deadline: float | None = None

    def flush(self) -> None:
        self._reset()

    def next_deadline(self) -> float | None:
        """The earliest progress deadline ahead, as of the last `watch`."""
        return self._next_deadline

    # -- the pass ------------------------------------------------------------------------------------

    def watch(self, state: StateReader, now: float) -> DeploymentActions:
        actions = DeploymentActions()
        if not self._enabled:
            return actions
        index = state.table_index(DEPLOYMENTS)
        if index != self._deployments_index:
            self._active = [d.id for d in state.deployments() if d.active()]
            self._deployments_index = index
            live = set(self._active)
            for memo in (self._first_seen, self._eval_covered):
                for deployment_id in [i for i in memo if i not in live]:
                    del memo[deployment_id]
        self._proposed = {k: t for k, t in self._proposed.items() if now - t < self.retry_after}
        deadlines: list[float] = []
        for deployment_id in self._active:
            deployment = state.deployment_by_id(deployment_id)
            if deployment is None or not deployment.active():
                continue
            if ("status", deployment_id) in self._proposed:
                continue
            deadline = self._watch_one(state, deployment, now, actions)
            if deadline is not None:
                deadlines.append(deadline)
        actions.reverts = list(actions.revert_for.values())
        self._next_deadline = actions.next_deadline = min(deadlines) if deadlines else None
        return actions

    def _watch_one(self, state: StateReader, d: Deployment, now: float, actions: DeploymentActions) -> float | None:
        """Decide for one deployment; returns its next progress deadline, if one is ahead."""
        self._first_seen.setdefault(d.id, now)
        job = state.job_by_id(d.namespace, d.job_id)
        if job is None or job.stop:
            self._set_status(actions, d, DEPLOYMENT_CANCELLED, DESC_STOPPED_JOB, now)
            return None
        if job.version != d.job_version or (d.job_create_index and job.create_index != d.job_create_index):
            self._set_status(actions, d, DEPLOYMENT_CANCELLED, DESC_NEWER_JOB, now)
            return None
        if d.status == DEPLOYMENT_PAUSED:
            return None  # an operator holds it: neither completes nor fails until resumed

        allocs = state.allocs_by_deployment(d.id)
        by_group: dict[str, list[Allocation]] = {}
        for alloc in allocs:
            by_group.setdefault(alloc.task_group, []).append(alloc)
        started = min((a.create_time for a in allocs if a.create_time), default=0) / 1e9 or self._first_seen[d.id]

        # Unhealthy allocations: fail now (no progress deadline), or let them be replaced.
        for name in sorted(d.task_groups):
            state_tg = d.task_groups[name]
            unhealthy = [a for a in by_group.get(name, ()) if _unhealthy(a)]
            if not unhealthy:
                continue
            if self.fail_fast or state_tg.progress_deadline == 0:
                revert = any(s.auto_revert for s in d.task_groups.values())
                self._fail(state, actions, d, job, DESC_UNHEALTHY, revert, now)
                return None
            for alloc in unhealthy:
                if not alloc.terminal() and not alloc.desired_transition.reschedule \
                        and ("reschedule", alloc.id) not in self._proposed:
                    actions.reschedules[alloc.id] = DesiredTransition(reschedule=True)
                    self._proposed[("reschedule", alloc.id)] = now
                    self._add_eval(actions, d, job, now)

        # Progress: per group, live healthy allocations against what the group needs.
        live_healthy = {name: [a for a in by_group.get(name, ()) if not a.terminal() and _healthy(a)]
                        for name in d.task_groups}
        done = {name: self._group_done(s, live_healthy[name]) for name, s in d.task_groups.items()}
        if all(done.values()):
            self._set_status(actions, d, DEPLOYMENT_SUCCESSFUL, DESC_SUCCESSFUL, now)
            return None
        cutoff = self._progress_cutoff(d, by_group, done, started)
        if cutoff is not None and cutoff <= now:
            failing = [name for name, s in d.task_groups.items() if not self._deadline_ok(s, live_healthy[name])]
            if failing:
                revert = any(d.task_groups[name].auto_revert for name in failing)
                self._fail(state, actions, d, job, DESC_PROGRESS_DEADLINE, revert, now)
                return None
            cutoff = None

        self._auto_promote(d, live_healthy, job, actions, now)
        # A newly healthy allocation lets a rolling update go on: the scheduler must look again.
        health_index = max((a.deployment_status.modify_index for group in live_healthy.values() for a in group
                            if a.deployment_status is not None), default=0)
        if health_index > max(self._eval_covered.get(d.id, 0), _latest_eval_index(state, job)):
            self._eval_covered[d.id] = health_index
            self._add_eval(actions, d, job, now)
        return cutoff if cutoff is not None and cutoff > now else None

    @staticmethod
    def _group_done(s, healthy: list[Allocation]) -> bool:
        if s.desired_canaries > 0 and not s.promoted:
            return False
        return len(healthy) >= max(s.desired_total, s.desired_canaries)

    @staticmethod
    def _deadline_ok(s, healthy: list[Allocation]) -> bool:
        """Nomad's shouldFail, per group: canaries awaiting promotion only need to be healthy."""
        if s.desired_canaries > 0 and not s.promoted:
            canaries = set(s.placed_canaries)
            return sum(1 for a in healthy if a.id in canaries) >= s.desired_canaries
        return len(healthy) >= s.desired_total

    @staticmethod
    def _progress_cutoff(d: Deployment, by_group: dict[str, list[Allocation]], done: dict[str, bool],
                         started: float) -> float | None:
        """The earliest `require_progress_by` among groups not done: as recorded, or the latest of the
        deployment's start and the group's last allocation to turn healthy, plus the progress deadline."""
        cutoffs = []
        for name, s in d.task_groups.items():
            if done[name] or s.progress_deadline <= 0:
                continue
            recorded = parse_rfc3339_lenient(s.require_progress_by)
            if recorded is None:
                healthy_at = [_health_time(a) for a in by_group.get(name, ()) if _healthy(a)]
                recorded = max([started, *healthy_at]) + s.progress_deadline / 1e9
            cutoffs.append(recorded)
        return min(cutoffs) if cutoffs else None

    def _auto_promote(self, d: Deployment, live_healthy: dict[str, list[Allocation]], job: Job,
                      actions: DeploymentActions, now: float) -> None:
        """Promote when every canary group auto-promotes and all its desired canaries are healthy."""
        canary_groups = {n: s for n, s in d.task_groups.items() if s.desired_canaries > 0}
        if not canary_groups or all(s.promoted for s in canary_groups.values()):
            return
        if ("promote", d.id) in self._proposed:
            return
        for name, s in canary_groups.items():
            if not s.auto_promote or len(s.placed_canaries) < s.desired_canaries:
                return
            canaries = set(s.placed_canaries)
            if sum(1 for a in live_healthy[name] if a.id in canaries) < s.desired_canaries:
                return
        actions.promotions.append(d.id)
        self._proposed[("promote", d.id)] = now
        self._add_eval(actions, d, job, now)

    # -- decisions -----------------------------------------------------------------------------------

    def _set_status(self, actions: DeploymentActions, d: Deployment, status: str, description: str,
                    now: float) -> None:
        actions.status_updates.append((d.id, status, description))
        self._proposed[("status", d.id)] = now

    def _fail(self, state: StateReader, actions: DeploymentActions, d: Deployment, job: Job, base: str,
              revert: bool, now: float) -> None:
        description = base
        if revert:
            stable = next((v for v in state.job_versions(job.namespace, job.id) if v.stable), None)
            if stable is None:
                description = no_rollback_target_description(base)
            elif not spec_changed(job, stable):
                # Reverting to the same spec would fail the same way: Nomad stops the cycle here.
                description = rollback_noop_description(base, stable.version)
            else:
                description = rollback_description(base, stable.version)
                actions.revert_for[d.id] = replace(stable, stable=False, submit_time=round(now * 1e9))
        self._set_status(actions, d, DEPLOYMENT_FAILED, description, now)
        self._add_eval(actions, d, job, now)

    def _add_eval(self, actions: DeploymentActions, d: Deployment, job: Job, now: float) -> None:
        if actions.evals_for(d.id):
            return  # one evaluation per deployment and pass is enough
        now_ns = round(now * 1e9)
        actions.evals.append(Evaluation(
            id=new_id(self.rng), namespace=d.namespace, priority=job.priority, type=job.type,
            triggered_by=TRIGGER_DEPLOYMENT_WATCHER, job_id=d.job_id, job_modify_index=job.job_modify_index,
            deployment_id=d.id, status=EVAL_PENDING, create_time=now_ns, modify_time=now_ns))


def _latest_eval_index(state: StateReader, job: Job) -> int:
    """The newest state any of the job's evaluations was scheduled against (Nomad's jobEvalStatus)."""
    latest = 0
    for evaluation in state.evals_by_job(job.namespace, job.id):
        if evaluation.status != EVAL_CANCELED:
            latest = max(latest, evaluation.snapshot_index or evaluation.create_index)
    return latest

