"""The leader's Planner: plans are checked against an optimistic view and proposed to Raft, as Nomad's
plan applier does, so the next plan already sees placements whose log entries are still in flight."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.fsm import commands
from orchestrator.scheduler.plan_apply import evaluate_plan
from orchestrator.state import EVALS, JOB_SUMMARY, StateSnapshot, StateStore
from orchestrator.structs import Evaluation, Plan, PlanResult

Propose = Callable[[bytes], int]
# Writes the plan applier and the schedulers never read: the optimistic fork may miss them.
PLAN_INDEPENDENT_TABLES = frozenset({EVALS, JOB_SUMMARY})


class OptimisticState:
    """The committed store plus the plan results proposed but not yet applied.

    A fork of the store (copy-on-write, O(tables)) with the in-flight results re-applied at the very
    indexes Raft gave their entries, so it equals what the store will be once they commit. The fork is
    kept while the store only applies our own in-flight results or writes a plan cannot depend on
    (evaluations, summaries); any other write makes it stale and it is rebuilt when next needed.
    """

    __slots__ = ("_fork", "_inflight", "_inflight_indexes", "store")

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._inflight: list[tuple[int, PlanResult]] = []
        self._inflight_indexes: set[int] = set()
        self._fork: StateStore | None = None
        store.add_listener(self._on_write)

    def view(self) -> StateStore:
        """The store to read for the next plan: the live store itself when nothing is in flight."""
        if not self._inflight:
            return self.store
        if self._fork is None:
            fork = self.store.fork()
            for index, result in self._inflight:
                fork.apply_plan_result(index, result)
            self._fork = fork
        return self._fork

    def snapshot(self) -> StateSnapshot:
        return self.view().snapshot()

    def in_flight(self) -> int:
        return len(self._inflight)

    def add(self, index: int, result: PlanResult) -> None:
        view = self.view()
        self._inflight.append((index, result))
        self._inflight_indexes.add(index)
        if view is not self.store:
            view.apply_plan_result(index, result)  # keep the current fork in step instead of rebuilding
        else:
            self._fork = None

    def _on_write(self, tables: frozenset[str], index: int) -> None:
        if index in self._inflight_indexes:
            return  # one of ours: the fork already holds it
        if self._fork is not None and not tables <= PLAN_INDEPENDENT_TABLES:
            self._fork = None

    def applied(self, index: int) -> None:
        """Raft applied everything up to `index`: those results are in the store now."""
        if self._inflight and self._inflight[0][0] <= index:
            self._inflight = [(i, r) for i, r in self._inflight if i > index]
            self._inflight_indexes = {i for i, _ in self._inflight}
            if not self._inflight:
                self._fork = None

    def reset(self) -> None:
        self._inflight.clear()
        self._inflight_indexes.clear()
        self._fork = None
        self.store.remove_listener(self._on_write)


class ServerPlanner:
    """What a scheduler running on the leader calls: each plan and each evaluation it creates becomes one Raft
    proposal; the evaluations it finishes are handed to the caller, which proposes them together."""

    __slots__ = ("_eval", "_finished", "_propose", "last_index", "optimistic", "plans", "snapshot_index")

    def __init__(self, optimistic: OptimisticState, propose: Propose, evaluation: Evaluation,
                 snapshot_index: int, finished: list[Evaluation]) -> None:
        self.optimistic = optimistic
        self._propose = propose
        self._eval = evaluation
        # Where finished evaluations go: the caller proposes them together, one entry for the evaluations
        # it scheduled back to back.
        self._finished = finished
        # Stamped on the evaluations this scheduler creates, so blocked-evals tracking can tell whether
        # capacity freed since then was already visible to it (Nomad's missed-unblock check).
        self.snapshot_index = snapshot_index
        self.last_index = 0  # the index of this planner's last proposal
        self.plans = 0

    def submit_plan(self, plan: Plan) -> tuple[PlanResult, StateSnapshot | None]:
        self.plans += 1
        view = self.optimistic.view()
        result = evaluate_plan(view, plan)
        if not (result.node_update or result.node_allocation or result.node_preemptions or result.deployment
                or result.deployment_updates):
            return result, (self.optimistic.snapshot() if result.refresh_index else None)
        index = self._propose(commands.apply_plan_results(result=result, job=plan.job, eval_id=plan.eval_id))
        result.alloc_index = index
        self.optimistic.add(index, result)
        self.last_index = index
        refresh = self.optimistic.snapshot() if result.refresh_index else None
        return result, refresh

    def update_eval(self, evaluation: Evaluation) -> None:
        self._finished.append(evaluation)

    def create_eval(self, evaluation: Evaluation) -> None:
        if not evaluation.snapshot_index:
            evaluation.snapshot_index = self.snapshot_index
        self.last_index = self._propose(commands.eval_update(evals=[evaluation]))

    def reblock_eval(self, evaluation: Evaluation) -> None:
        evaluation.snapshot_index = self.snapshot_index
        self.last_index = self._propose(commands.eval_update(evals=[evaluation]))
