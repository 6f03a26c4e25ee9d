"""The system and sysbatch schedulers: one allocation of each task group on every eligible node."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.structs import (
    Allocation,
    AllocMetric,
    DesiredUpdates,
    Evaluation,
    Job,
    Node,
    Plan,
    PlanAnnotations,
    TaskGroup,
)
from orchestrator.structs.alloc import CLIENT_COMPLETE, CLIENT_LOST, DESIRED_RUN
from orchestrator.structs.evaluation import EVAL_COMPLETE, EVAL_FAILED

from .cluster import ClusterView, ready_nodes_in
from .diff import tasks_updated
from .feasibility import feasible_mask, group_checks
from .fit import ComparableResources
from .ids import new_id
from .ports import Planner, Rng, State
from .preempt import select_preemptions
from .rank import SchedulerConfig
from .reconcile import STOP_JOB_STOPPED, STOP_LOST, STOP_MIGRATING, STOP_NOT_NEEDED, STOP_UPDATING
from .resources import GroupAsk, allocated_resources, assign_devices, assign_ports

MAX_SYSTEM_ATTEMPTS = 5


class SystemScheduler:
    """Nomad's system scheduler (and sysbatch, whose finished allocations are not run again)."""

    def __init__(self, state: State, planner: Planner, *, sysbatch: bool, now_ns: int, rng: Rng,
                 config: SchedulerConfig | None = None):
        self.state, self.planner, self.sysbatch = state, planner, sysbatch
        self.now, self.rng = now_ns, rng
        self.config = config or SchedulerConfig()
        self.failed: dict[str, AllocMetric] = {}
        self.queued: dict[str, int] = {}

    def process(self, evaluation: Evaluation) -> Evaluation:
        for _ in range(MAX_SYSTEM_ATTEMPTS):
            if self._attempt(evaluation):
                break
        else:
            return self._finish(evaluation, EVAL_FAILED, "maximum attempts reached")
        return self._finish(evaluation, EVAL_COMPLETE, "")

    def _attempt(self, evaluation: Evaluation) -> bool:
        self.failed, self.queued = {}, {}
        job = self.state.job_by_id(evaluation.namespace, evaluation.job_id)
        allocs = [a for a in self.state.allocs_by_job(evaluation.namespace, evaluation.job_id)
                  if a.desired_status == DESIRED_RUN]
        plan = Plan(eval_id=evaluation.id, priority=evaluation.priority, job=job,
                    snapshot_index=self.state.latest_index(), annotations=PlanAnnotations())
        assert plan.annotations is not None
        updates = plan.annotations.desired_tg_updates
        if job is None or job.stop:
            for alloc in allocs:
                if not alloc.terminal():
                    plan.append_stopped_alloc(alloc, STOP_JOB_STOPPED)
                    updates.setdefault(alloc.task_group, DesiredUpdates()).stop += 1
        else:
            nodes, by_dc = ready_nodes_in(self.state.nodes(), job.datacenters)
            candidates = [n for n in nodes if n.schedulable()]
            view = ClusterView(candidates, {n.id: self.state.allocs_by_node(n.id) for n in candidates})
            for group in job.task_groups:
                self._group(job, group, evaluation, allocs, view, by_dc, plan,
                            updates.setdefault(group.name, DesiredUpdates()))
            for alloc in allocs:
                if job.group(alloc.task_group) is None and not alloc.terminal():
                    plan.append_stopped_alloc(alloc, STOP_NOT_NEEDED)
        if plan.is_no_op():
            return True
        result, new_state = self.planner.submit_plan(plan)
        if new_state is not None:
            self.state = new_state
            return result.full_commit(plan)[0]
        return True

    def _group(self, job: Job, group: TaskGroup, evaluation: Evaluation, allocs: list[Allocation],
               view: ClusterView, by_dc: dict[str, int], plan: Plan, updates: DesiredUpdates) -> None:
        metrics = AllocMetric(nodes_available=dict(by_dc))
        feasible = feasible_mask(view, group_checks(job, group), metrics)
        existing: dict[str, Allocation] = {}
        for alloc in allocs:
            if alloc.task_group != group.name:
                continue
            node = self.state.node_by_id(alloc.node_id)
            if alloc.client_status == CLIENT_LOST or (alloc.terminal() and not self._done(alloc)):
                continue
            if node is None or node.status == "down":
                plan.append_stopped_alloc(alloc, STOP_LOST, CLIENT_LOST)
                updates.stop += 1
                continue
            if node.drain_strategy is not None and not node.drain_strategy.ignore_system_jobs:
                plan.append_stopped_alloc(alloc, STOP_MIGRATING)
                updates.migrate += 1
                continue
            i = view.index.get(node.id)
            if i is not None and not feasible[i]:
                plan.append_stopped_alloc(alloc, STOP_NOT_NEEDED)  # the node no longer meets the job
                updates.stop += 1
                view.remove_alloc(i, alloc)
                continue
            existing[node.id] = alloc
        ask = GroupAsk.of(group)
        need = ComparableResources(cpu=ask.cpu, memory_mb=ask.memory_mb, disk_mb=ask.disk_mb)
        for i, node in enumerate(view.nodes):
            if not feasible[i]:
                continue
            current = existing.get(node.id)
            if current is not None:
                self._maybe_update(job, group, evaluation, current, node, i, view, plan, updates, ask, need)
                continue
            self._place_on(job, group, evaluation, node, i, view, plan, ask, need, metrics, updates)

    def _done(self, alloc: Allocation) -> bool:
        return self.sysbatch and alloc.client_status == CLIENT_COMPLETE

    def _maybe_update(self, job, group, evaluation, alloc, node, i, view, plan, updates, ask: GroupAsk,
                      need: ComparableResources) -> None:
        if alloc.job is None or alloc.job.job_modify_index == job.job_modify_index or self._done(alloc):
            updates.ignore += 1
            return
        old_group = alloc.job.group(group.name)
        if old_group is not None and not tasks_updated(old_group, group):
            plan.append_alloc(replace(alloc, job=job, eval_id=evaluation.id, modify_time=self.now))
            updates.in_place_update += 1
            return
        plan.append_stopped_alloc(alloc, STOP_UPDATING)
        view.remove_alloc(i, alloc)
        updates.destructive_update += 1
        self._place_on(job, group, evaluation, node, i, view, plan, ask, need, AllocMetric(), None,
                       previous=alloc)

    def _place_on(self, job, group, evaluation, node: Node, i: int, view: ClusterView, plan: Plan, ask: GroupAsk,
                  need: ComparableResources, metrics: AllocMetric, updates: DesiredUpdates | None,
                  previous: Allocation | None = None) -> None:
        free = ComparableResources(cpu=int(view.cpu_total[i] - view.cpu_used[i]),
                                   memory_mb=int(view.mem_total[i] - view.mem_used[i]),
                                   disk_mb=int(view.disk_total[i] - view.disk_used[i]))
        preempted: list[Allocation] = []
        fits, dimension = free.superset(need)
        if not fits and self.config.preemption_enabled(job.type):
            on_node = [a for a in self.state.allocs_by_node(node.id) if a.job_id != job.id]
            chosen = select_preemptions(free, need, on_node, job.priority)
            if chosen is not None:
                preempted, fits = chosen, True
        if not fits:
            metrics.exhaust_node(node.node_class, dimension)
            self.failed[group.name] = metrics
            self.queued[group.name] = self.queued.get(group.name, 0) + 1
            return
        usage = view.node_usage(i)
        assigned: dict = {}
        if ask.has_ports:
            ports = assign_ports(ask, node, usage.ports, self.rng)
            if ports is None:
                metrics.exhaust_node(node.node_class, "network: port collision")
                self.failed[group.name] = metrics
                return
            assigned["ports"] = ports
        if ask.has_devices:
            devices = assign_devices(ask, node, usage.device_ids)
            if devices is None:
                metrics.exhaust_node(node.node_class, "devices")
                self.failed[group.name] = metrics
                return
            assigned["devices"] = devices
        alloc = Allocation(id=new_id(self.rng), namespace=job.namespace, eval_id=evaluation.id,
                           name=f"{job.id}.{group.name}[0]", node_id=node.id, node_name=node.name, job_id=job.id,
                           job=job, task_group=group.name, allocated_resources=allocated_resources(group, assigned),
                           metrics=AllocMetric(nodes_evaluated=1), previous_allocation=previous.id if previous else "",
                           create_time=self.now, modify_time=self.now,
                           preempted_allocations=[a.id for a in preempted])
        for victim in preempted:
            plan.append_preempted_alloc(victim, alloc.id)
            view.remove_alloc(i, victim)
        view.add_alloc(i, alloc)
        plan.append_alloc(alloc)
        if updates is not None:
            updates.place += 1
            updates.preemptions += len(preempted)

    def _finish(self, evaluation: Evaluation, status: str, description: str) -> Evaluation:
        finished = replace(evaluation, status=status, status_description=description,
                           failed_tg_allocs=dict(self.failed), queued_allocations=dict(self.queued),
                           modify_time=self.now)
        self.planner.update_eval(finished)
        return finished
