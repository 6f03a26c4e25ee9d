"""Job.Plan: the scheduler's dry run of a job on a fork of the state store, with Nomad's job diff; commits nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from orchestrator.scheduler import new_scheduler
from orchestrator.scheduler.config import SchedulerConfig
from orchestrator.scheduler.ids import new_id
from orchestrator.scheduler.jobdiff import annotate, diff_to_api, job_diff
from orchestrator.scheduler.plan_apply import evaluate_plan
from orchestrator.scheduler.ports import Rng
from orchestrator.state import StateSnapshot, StateStore
from orchestrator.structs import (
    Allocation,
    DecodeError,
    DesiredUpdates,
    Evaluation,
    Job,
    Plan,
    PlanResult,
    encode,
    format_errors,
    job_from_api,
    validate_job,
    with_defaults,
)
from orchestrator.structs.evaluation import EVAL_PENDING, TRIGGER_JOB_REGISTER
from orchestrator.structs.timefmt import rfc3339_ns

from .endpoints_common import Reply, ns
from .periodic_dispatch import is_periodic_active, next_launch_ns

if TYPE_CHECKING:
    from .server import Server

# Go's zero time.Time, which Nomad answers as NextPeriodicLaunch for a job that is not periodic.
ZERO_TIME = "0001-01-01T00:00:00Z"


class ForkPlanner:
    """A Planner over a forked store: each plan is checked as the plan applier would, then applied to
    the fork only, so the scheduler's retries and follow-ups see it; the real store never does."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.plans: list[Plan] = []
        self.created: list[Evaluation] = []
        self.updated: list[Evaluation] = []

    def _next_index(self) -> int:
        return self.store.latest_index() + 1

    def submit_plan(self, plan: Plan) -> tuple[PlanResult, StateSnapshot | None]:
        self.plans.append(plan)
        result = evaluate_plan(self.store, plan)
        index = self._next_index()
        self.store.apply_plan_result(index, result)
        result.alloc_index = index
        return result, (self.store.snapshot() if result.refresh_index else None)

    def update_eval(self, evaluation: Evaluation) -> None:
        self.updated.append(evaluation)
        self.store.upsert_evals(self._next_index(), [evaluation])

    def create_eval(self, evaluation: Evaluation) -> None:
        self.created.append(evaluation)
        self.store.upsert_evals(self._next_index(), [evaluation])

    def reblock_eval(self, evaluation: Evaluation) -> None:
        self.store.upsert_evals(self._next_index(), [evaluation])


def _stub(alloc: Allocation) -> dict[str, Any]:
    """An allocation as Nomad's AllocListStub, for the preempted allocations a plan lists."""
    return {"ID": alloc.id, "Name": alloc.name, "Namespace": alloc.namespace, "NodeID": alloc.node_id,
            "NodeName": alloc.node_name, "JobID": alloc.job_id, "JobVersion": alloc.job_version(),
            "TaskGroup": alloc.task_group, "DesiredStatus": alloc.desired_status,
            "DesiredDescription": alloc.desired_description, "ClientStatus": alloc.client_status,
            "CreateIndex": alloc.create_index, "ModifyIndex": alloc.modify_index,
            "CreateTime": alloc.create_time, "ModifyTime": alloc.modify_time}


def _desired_updates(planner: ForkPlanner, scheduler: Any, store: StateStore, job: Job) -> dict[str, DesiredUpdates]:
    """The per-group counts of the scheduler's first plan (Nomad's planner.Plans[0].Annotations)."""
    plan = planner.plans[0] if planner.plans else getattr(scheduler, "plan", None)
    if plan is not None and plan.annotations is not None:
        return {name: replace(u) for name, u in plan.annotations.desired_tg_updates.items()}
    # A scheduler that had nothing to do submitted no plan and kept none: every live allocation stays.
    updates = {group.name: DesiredUpdates() for group in job.task_groups}
    for alloc in store.allocs_by_job(job.namespace, job.id):
        if not alloc.terminal() and alloc.task_group in updates:
            updates[alloc.task_group].ignore += 1
    return updates


def _preemptions(plan: Plan | None, updates: dict[str, DesiredUpdates]) -> list[dict[str, Any]]:
    """The allocations the plan evicts, each counted against the group whose placement evicts it."""
    if plan is None:
        return []
    groups = {a.id: a.task_group for placed in plan.node_allocation.values() for a in placed}
    stubs = []
    for evicted in plan.node_preemptions.values():
        for alloc in evicted:
            stubs.append(_stub(alloc))
            group = groups.get(alloc.preempted_by_allocation)
            if group is not None:
                updates.setdefault(group, DesiredUpdates()).preemptions += 1
    return stubs


def plan_job(store: StateStore, job: Job, *, now_ns: int, rng: Rng, config: SchedulerConfig | None = None,
             diff: bool = False) -> dict[str, Any]:
    """Nomad's JobPlanResponse for registering `job` now, computed on a fork of `store` (left untouched)."""
    existing = store.job_by_id(job.namespace, job.id)
    fork = store.fork()
    planned = fork.upsert_job(fork.latest_index() + 1, replace(job, submit_time=now_ns))
    evaluation = Evaluation(id=new_id(rng), namespace=job.namespace, priority=job.priority, type=job.type,
                            triggered_by=TRIGGER_JOB_REGISTER, job_id=job.id,
                            job_modify_index=planned.job_modify_index, status=EVAL_PENDING, annotate_plan=True,
                            create_time=now_ns, modify_time=now_ns)
    fork.upsert_evals(fork.latest_index() + 1, [evaluation])
    planner = ForkPlanner(fork)
    scheduler = new_scheduler(job.type, fork.snapshot(), planner, now_ns=now_ns, rng=rng, config=config)
    finished = scheduler.process(evaluation)
    updates = _desired_updates(planner, scheduler, fork, job)
    preempted = _preemptions(planner.plans[0] if planner.plans else None, updates)
    next_launch = next_launch_ns(job, now_ns) if is_periodic_active(job) else None
    job_modify_index = existing.job_modify_index if existing is not None else 0
    response: dict[str, Any] = {
        "Annotations": {"DesiredTGUpdates": {name: encode(u) for name, u in sorted(updates.items())} or None,
                        "PreemptedAllocs": preempted or None},
        "FailedTGAllocs": encode(dict(finished.failed_tg_allocs)),
        "JobModifyIndex": job_modify_index,
        "CreatedEvals": [encode(e) for e in planner.created] or None,
        "Diff": None,
        "NextPeriodicLaunch": rfc3339_ns(next_launch) if next_launch is not None else ZERO_TIME,
        "Warnings": "",
        "Index": job_modify_index,
    }
    if diff:
        response["Diff"] = diff_to_api(annotate(job_diff(existing, job, contextual=True), updates))
    return response


def job_plan(server: Server, args: dict[str, Any], now: float) -> Reply:
    """The Job.Plan RPC: {Job, Diff} -> JobPlanResponse; answered at once, nothing is proposed."""
    raw = args.get("Job")
    if not isinstance(raw, dict):
        return Reply(error="missing job for plan")
    try:
        job = job_from_api(with_defaults(raw))
    except (DecodeError, TypeError, ValueError, KeyError, AttributeError) as exc:
        return Reply(error=f"invalid job: {exc}")
    errors = validate_job(job)
    if errors:
        return Reply(error=format_errors(errors))
    if server.store.namespace_by_name(job.namespace) is None:
        return Reply(error=f'job "{job.id}" is in nonexistent namespace "{job.namespace}"')
    try:
        result = plan_job(server.store, job, now_ns=ns(now), rng=server.rng, config=server.config.scheduler,
                          diff=bool(args.get("Diff")))
    except ValueError as exc:  # a diff between jobs that cannot be compared
        return Reply(error=f"failed to create job diff: {exc}")
    return Reply(result)
