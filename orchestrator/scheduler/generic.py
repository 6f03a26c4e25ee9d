"""The service and batch scheduler: reconcile, rank, place, submit the plan, retry on partial commits."""

from __future__ import annotations

from orchestrator.structs import (
    Allocation,
    AllocMetric,
    Deployment,
    DeploymentState,
    Evaluation,
    Job,
    Node,
    Plan,
    PlanAnnotations,
    RescheduleEvent,
    RescheduleTracker,
)
from orchestrator.structs.codec import replace
from orchestrator.structs.evaluation import EVAL_BLOCKED, EVAL_COMPLETE, EVAL_FAILED, TRIGGER_QUEUED_ALLOCS

from .cluster import ClusterView, ready_nodes_in
from .feasibility import feasible_mask, group_checks
from .ids import new_id
from .ports import Planner, Rng, State
from .rank import GroupPlacer, SchedulerConfig
from .reconcile import Placement, Reconciler
from .resources import allocated_resources

MAX_SERVICE_ATTEMPTS = 5
MAX_BATCH_ATTEMPTS = 2


class GenericScheduler:
    """Nomad's generic scheduler for `service` and `batch` jobs, pure: state, planner, clock and rng injected."""

    def __init__(self, state: State, planner: Planner, *, batch: bool, now_ns: int, rng: Rng,
                 config: SchedulerConfig | None = None):
        self.state, self.planner, self.batch = state, planner, batch
        self.now, self.rng = now_ns, rng
        self.config = config or SchedulerConfig()
        self.failed: dict[str, AllocMetric] = {}
        self.queued: dict[str, int] = {}
        self.plan: Plan | None = None
        self.class_cache: dict = {}
        self.deployment_id = ""  # the job's deployment this evaluation worked within (Nomad's eval.DeploymentID)

    def process(self, evaluation: Evaluation) -> Evaluation:
        """Schedule the evaluation's job and return the evaluation as it ends (also sent to the planner)."""
        attempts = MAX_BATCH_ATTEMPTS if self.batch else MAX_SERVICE_ATTEMPTS
        for _ in range(attempts):
            done = self._attempt(evaluation)
            if done:
                break
        else:
            return self._finish(evaluation, EVAL_FAILED, "maximum attempts reached")
        if self.failed:
            self._block(evaluation)
        return self._finish(evaluation, EVAL_COMPLETE, "")

    # -- one pass ---------------------------------------------------------------------------------

    def _attempt(self, evaluation: Evaluation) -> bool:
        self.failed, self.queued, self.deployment_id = {}, {}, ""
        job = self.state.job_by_id(evaluation.namespace, evaluation.job_id)
        if job is not None:
            # Every group starts at zero queued, so a pass with nothing to place (a stopped job, a group at
            # its count) clears what an earlier failed pass left in the summary, as Nomad's computeJobAllocs.
            self.queued = dict.fromkeys((g.name for g in job.task_groups), 0)
        allocs = self.state.allocs_by_job(evaluation.namespace, evaluation.job_id)
        tainted = self._tainted_nodes(allocs)
        reconciler = Reconciler(job, evaluation.job_id, allocs, tainted, evaluation, self.now, self.rng,
                                self.batch)
        result = reconciler.compute()
        plan = Plan(eval_id=evaluation.id, priority=evaluation.priority, job=job,
                    all_at_once=bool(job and job.all_at_once), snapshot_index=self.state.latest_index(),
                    annotations=PlanAnnotations(desired_tg_updates=result.desired_tg_updates))
        self.plan = plan
        for stop in result.stop:
            plan.append_stopped_alloc(stop.alloc, stop.description, stop.client_status)
        for alloc in result.attribute_updates:
            plan.append_alloc(alloc)
        for evaluation_followup in result.followup_evals:
            self.planner.create_eval(evaluation_followup)
        if job is not None and not job.stop:
            deployment = self._deployment(job, result)
            for alloc in result.inplace:
                if deployment is not None and alloc.deployment_id != deployment.id:
                    # Updated in place, the allocation now rolls out under the new version's deployment and
                    # must prove its health there again (Nomad's computeJobAllocs).
                    alloc = replace(alloc, deployment_id=deployment.id, deployment_status=None)
                plan.append_alloc(replace(alloc, job=job, eval_id=evaluation.id, modify_time=self.now))
            self._place(job, evaluation, allocs, result.place, result.stop, deployment)
            if deployment is not None and any(plan.node_allocation.values()):
                plan.deployment = deployment
                self.deployment_id = deployment.id  # only one the plan creates or keeps is ever named
        if plan.is_no_op():
            return True
        plan_result, new_state = self.planner.submit_plan(plan)
        if new_state is not None:
            self.state = new_state
            full, _expected, _actual = plan_result.full_commit(plan)
            if not full:
                return False
        return True

    def _tainted_nodes(self, allocs: list[Allocation]) -> dict[str, Node | None]:
        tainted: dict[str, Node | None] = {}
        for node_id in {a.node_id for a in allocs if not a.terminal()}:
            node = self.state.node_by_id(node_id)
            if node is None or node.status == "down" or node.drain_strategy is not None:
                tainted[node_id] = node
        return tainted

    def _deployment(self, job: Job, result) -> Deployment | None:
        """Service jobs with an update block roll out under a deployment, as in Nomad."""
        if self.batch or job.type != "service":
            return None
        if not any(g.update is not None for g in job.task_groups):
            return None
        existing = self.state.latest_deployment_by_job(job.namespace, job.id)
        if existing is not None:
            self.deployment_id = existing.id
        if existing is not None and existing.job_version == job.version and existing.job_create_index == \
                job.create_index:
            return existing if existing.active() else None
        # A new version rolls out under a new deployment whether its allocations are placed or updated in place.
        if not result.place and not result.inplace:
            return None
        groups = {g.name: DeploymentState(desired_total=g.count, auto_revert=bool(g.update and g.update.auto_revert),
                                          progress_deadline=g.update.progress_deadline if g.update else 0)
                  for g in job.task_groups}
        return Deployment(id=new_id(self.rng), namespace=job.namespace, job_id=job.id, job_version=job.version,
                          job_modify_index=job.modify_index, job_spec_modify_index=job.job_modify_index,
                          job_create_index=job.create_index, task_groups=groups,
                          status_description="Deployment is running")

    def _place(self, job: Job, evaluation: Evaluation, allocs: list[Allocation], placements: list[Placement], stops,
               deployment: Deployment | None) -> None:
        if not placements:
            return
        nodes, by_dc = ready_nodes_in(self.state.nodes(), job.datacenters)
        schedulable = [n for n in nodes if n.schedulable()]
        view = ClusterView(schedulable, {n.id: self.state.allocs_by_node(n.id) for n in schedulable})
        stopping = [s.alloc for s in stops]
        for alloc in stopping:
            i = view.index.get(alloc.node_id)
            if i is not None and not alloc.terminal():
                view.remove_alloc(i, alloc)
        stopping_ids = {a.id for a in stopping}
        job_allocs = [a for a in allocs
                      if not a.terminal() and a.id not in stopping_ids]
        by_group: dict[str, list[Placement]] = {}
        for placement in placements:
            by_group.setdefault(placement.group.name, []).append(placement)
        assert self.plan is not None
        for group_name, group_placements in by_group.items():
            group = group_placements[0].group
            metrics = AllocMetric(nodes_available=dict(by_dc))
            feasible = feasible_mask(view, group_checks(job, group), metrics, self.class_cache)
            placer = GroupPlacer(view, job, group, feasible, job_allocs, self.config, self.rng, metrics)
            for placement in group_placements:
                selection = placer.select(placement.penalty_nodes)
                if selection is None:
                    self._record_failure(group_name, metrics, len(group_placements))
                    break
                node = view.nodes[selection.node_index]
                alloc = self._new_alloc(job, evaluation, placement, node, selection.ask_result, metrics,
                                        deployment)
                placer.commit(selection, alloc)
                self.plan.append_alloc(alloc)
            self.queued.setdefault(group_name, 0)

    def _record_failure(self, group: str, metrics: AllocMetric, wanted: int) -> None:
        placed = sum(1 for allocs in self.plan.node_allocation.values() for a in allocs
                     if a.task_group == group and not a.create_index) if self.plan else 0
        metrics.coalesced_failures = max(wanted - placed - 1, 0)
        self.failed[group] = metrics
        self.queued[group] = wanted - placed

    def _new_alloc(self, job: Job, evaluation: Evaluation, placement: Placement, node: Node, assigned: dict,
                   metrics: AllocMetric, deployment: Deployment | None) -> Allocation:
        previous = placement.previous
        tracker = None
        if placement.reschedule and previous is not None:
            events = list(previous.reschedule_tracker.events) if previous.reschedule_tracker else []
            events.append(RescheduleEvent(reschedule_time=self.now, prev_alloc_id=previous.id,
                                          prev_node_id=previous.node_id))
            tracker = RescheduleTracker(events=events)
        return Allocation(
            id=new_id(self.rng), namespace=job.namespace, eval_id=evaluation.id, name=placement.name,
            node_id=node.id, node_name=node.name, job_id=job.id, job=job, task_group=placement.group.name,
            allocated_resources=allocated_resources(placement.group, assigned),
            metrics=replace(metrics, score_meta_data=list(metrics.score_meta_data)),
            deployment_id=deployment.id if deployment is not None else "",
            previous_allocation=previous.id if previous is not None else "",
            reschedule_tracker=tracker, create_time=self.now, modify_time=self.now)

    # -- ending -----------------------------------------------------------------------------------

    def _block(self, evaluation: Evaluation) -> None:
        if evaluation.status == EVAL_BLOCKED:
            self.planner.reblock_eval(replace(evaluation, failed_tg_allocs=dict(self.failed)))
            return
        blocked = Evaluation(id=new_id(self.rng), namespace=evaluation.namespace, priority=evaluation.priority,
                             type=evaluation.type, triggered_by=TRIGGER_QUEUED_ALLOCS, job_id=evaluation.job_id,
                             status=EVAL_BLOCKED, status_description="created to place remaining allocations",
                             previous_eval=evaluation.id, failed_tg_allocs=dict(self.failed),
                             class_eligibility={}, create_time=self.now, modify_time=self.now)
        evaluation.blocked_eval = blocked.id
        self.planner.create_eval(blocked)

    def _finish(self, evaluation: Evaluation, status: str, description: str) -> Evaluation:
        finished = replace(evaluation, status=status, status_description=description,
                           failed_tg_allocs=dict(self.failed), queued_allocations=dict(self.queued),
                           blocked_eval=evaluation.blocked_eval, modify_time=self.now,
                           deployment_id=self.deployment_id or evaluation.deployment_id)
        self.planner.update_eval(finished)
        return finished
