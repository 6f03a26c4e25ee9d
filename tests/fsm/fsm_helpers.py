"""Shared FSM test helpers: a store picture for equality, a command log, and a harness that plans via Raft."""

from __future__ import annotations

from typing import Any

from orchestrator.fsm import FSM, ApplyResult
from orchestrator.fsm import commands as c
from orchestrator.scheduler.ids import new_id
from orchestrator.scheduler.plan_apply import evaluate_plan
from orchestrator.state import StateStore
from orchestrator.structs import Evaluation, Job, Plan
from orchestrator.testing.harness import Harness


def tables_of(store: StateStore) -> dict[str, Any]:
    """Every table as comparable values, order included: rows, index buckets and the table's index."""
    return {name: (table.index, list(table.rows.items()),
                   {index: [(key, list(bucket)) for key, bucket in buckets.items()]
                    for index, buckets in table.indexes.items()})
            for name, table in store._tables.items()}


class Log:
    """An FSM fed at increasing indexes, keeping every entry so it can be replayed elsewhere."""

    def __init__(self, store: StateStore | None = None) -> None:
        self.store = store if store is not None else StateStore()
        self.fsm = FSM(self.store)
        self.entries: list[tuple[int, bytes]] = []

    def next_index(self) -> int:
        return max(self.store.latest_index(), self.entries[-1][0] if self.entries else 0) + 1

    def apply(self, data: bytes) -> ApplyResult:
        index = self.next_index()
        self.entries.append((index, data))
        return self.fsm.apply(index, data)

    def ok(self, data: bytes) -> ApplyResult:
        result = self.apply(data)
        assert result.ok, result.error
        return result


class RaftHarness(Harness):
    """The in-process Harness, with every write going through FSM commands as the leader would send them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log = Log(self.store)

    def next_index(self) -> int:
        return self.log.next_index()

    def submit_plan(self, plan: Plan):
        self.plans.append(plan)
        result = evaluate_plan(self.store, plan)
        applied = self.log.ok(c.apply_plan_results(result=result, job=plan.job, eval_id=plan.eval_id))
        result.alloc_index = applied.response["AllocIndex"]
        self.results.append(result)
        return result, (self.store.snapshot() if result.refresh_index else None)

    def update_eval(self, evaluation: Evaluation) -> None:
        self.updated_evals.append(evaluation)
        self.log.ok(c.eval_update(evals=[evaluation]))

    def create_eval(self, evaluation: Evaluation) -> None:
        self.created_evals.append(evaluation)
        self.log.ok(c.eval_update(evals=[evaluation]))

    def reblock_eval(self, evaluation: Evaluation) -> None:
        self.reblocked_evals.append(evaluation)
        self.log.ok(c.eval_update(evals=[evaluation]))

    def register_and_schedule(self, job: Job, *, triggered_by: str = "job-register") -> Evaluation:
        self.log.ok(c.job_register(job=job))
        stored = self.store.job_by_id(job.namespace, job.id)
        evaluation = Evaluation(id=new_id(self.rng), namespace=job.namespace, priority=job.priority,
                                type=job.type, triggered_by=triggered_by, job_id=job.id,
                                job_modify_index=stored.job_modify_index if stored else 0)
        return self.process(evaluation)
