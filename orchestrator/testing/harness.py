"""An in-process Planner over a state store: plans go through the real plan applier and are committed.

Tests, benchmarks and the simulator's single-server paths use it to run schedulers without Raft; the
server uses the same `evaluate_plan` behind its plan queue.
"""

from __future__ import annotations

from random import Random

from orchestrator.scheduler import new_scheduler
from orchestrator.scheduler.config import SchedulerConfig
from orchestrator.scheduler.ids import new_id
from orchestrator.scheduler.plan_apply import evaluate_plan
from orchestrator.state import StateStore
from orchestrator.structs import Evaluation, Plan, PlanResult


class Harness:
    """Runs evaluations against a StateStore, committing plans at increasing indexes."""

    def __init__(self, store: StateStore | None = None, *, seed: int = 0, now_ns: int = 0,
                 config: SchedulerConfig | None = None):
        self.store = store if store is not None else StateStore()
        self.rng = Random(seed)
        self.now_ns = now_ns
        self.config = config or SchedulerConfig()
        self.plans: list[Plan] = []
        self.results: list[PlanResult] = []
        self.created_evals: list[Evaluation] = []
        self.updated_evals: list[Evaluation] = []
        self.reblocked_evals: list[Evaluation] = []

    def next_index(self) -> int:
        return self.store.latest_index() + 1

    # -- Planner ----------------------------------------------------------------------------------

    def submit_plan(self, plan: Plan):
        self.plans.append(plan)
        result = evaluate_plan(self.store, plan)
        index = self.next_index()
        self.store.apply_plan_result(index, result)
        result.alloc_index = index
        self.results.append(result)
        return result, (self.store.snapshot() if result.refresh_index else None)

    def update_eval(self, evaluation: Evaluation) -> None:
        self.updated_evals.append(evaluation)
        self.store.upsert_evals(self.next_index(), [evaluation])

    def create_eval(self, evaluation: Evaluation) -> None:
        self.created_evals.append(evaluation)
        self.store.upsert_evals(self.next_index(), [evaluation])

    def reblock_eval(self, evaluation: Evaluation) -> None:
        self.reblocked_evals.append(evaluation)
        self.store.upsert_evals(self.next_index(), [evaluation])

    # -- driving ----------------------------------------------------------------------------------

    def process(self, evaluation: Evaluation) -> Evaluation:
        scheduler = new_scheduler(evaluation.type, self.store.snapshot(), self, now_ns=self.now_ns, rng=self.rng,
                                  config=self.config)
        return scheduler.process(evaluation)

    def register_and_schedule(self, job, *, triggered_by: str = "job-register") -> Evaluation:
        """Store the job as `job register` would, then run its evaluation; returns the finished eval."""
        self.store.upsert_job(self.next_index(), job)
        stored = self.store.job_by_id(job.namespace, job.id)
        evaluation = Evaluation(id=new_id(self.rng), namespace=job.namespace, priority=job.priority,
                                type=job.type, triggered_by=triggered_by, job_id=job.id,
                                job_modify_index=stored.job_modify_index if stored else 0)
        return self.process(evaluation)

