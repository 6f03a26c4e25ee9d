"""Nomad's node drainer, sans-IO: which allocations to migrate off draining nodes now, and which drains are done."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from orchestrator.scheduler.ids import new_id
from orchestrator.scheduler.ports import Rng
from orchestrator.state import NODES, StateReader
from orchestrator.structs import Allocation, DesiredTransition, Evaluation, Job, Node, NodeEvent
from orchestrator.structs.alloc import CLIENT_RUNNING
from orchestrator.structs.evaluation import EVAL_PENDING, TRIGGER_NODE_DRAIN
from orchestrator.structs.timefmt import rfc3339

from .leadership import LeaderOnly

NODE_DRAIN_COMPLETE = "Node drain complete"  # Nomad's NodeDrainEventComplete
NODE_DRAIN_DEADLINE_DETAIL = "deadline_reached"
NODE_EVENT_SUBSYSTEM_DRAIN = "Drain"

# How long a proposal may stay unreflected in the state before the drainer proposes it again.
PROPOSAL_RETRY = 30.0

# Job types whose allocations wait on the node until they finish (or the deadline): never migrated early.
_RUN_TO_COMPLETION = ("batch", "sysbatch")


@dataclass(slots=True)
class DrainActions:
    """What the leader should commit: mark `transitions` with `evals` in one Raft write (Nomad's
    AllocUpdateDesiredTransition), then mark `done_nodes` drain-complete: drain strategy cleared, node
    left ineligible, event `drain_complete_event(node in deadlined_nodes)` (Nomad's NodesDrainComplete).
    """

    transitions: dict[str, DesiredTransition] = field(default_factory=dict)
    evals: list[Evaluation] = field(default_factory=list)
    done_nodes: list[str] = field(default_factory=list)
    deadlined_nodes: list[str] = field(default_factory=list)  # done because the deadline passed
    next_deadline: float | None = None

    def empty(self) -> bool:
        return not (self.transitions or self.evals or self.done_nodes)


def drain_complete_event(deadline_reached: bool, now: float) -> NodeEvent:
    details = {NODE_DRAIN_DEADLINE_DETAIL: "true"} if deadline_reached else {}
    return NodeEvent(message=NODE_DRAIN_COMPLETE, subsystem=NODE_EVENT_SUBSYSTEM_DRAIN, details=details,
                     timestamp=rfc3339(now))


def drain_deadline(node: Node) -> float | None:
    """When the node's remaining allocations are forced off (unix seconds): -inf for `-deadline < 0`
    (force now), None when the drain has no deadline."""
    strategy = node.drain_strategy
    if strategy is None:
        return None
    if strategy.deadline < 0:
        return float("-inf")
    if strategy.force_deadline > 0:
        return strategy.force_deadline / 1e9
    if strategy.deadline > 0 and strategy.started_at > 0:
        return (strategy.started_at + strategy.deadline) / 1e9
    return None


def _job_type(alloc: Allocation) -> str:
    return alloc.job.type if alloc.job is not None else "service"


def _migrate_healthy(alloc: Allocation) -> bool:
    """Healthy for migration purposes: the client's health verdict, or, for an allocation outside any
    deployment whose client reported no verdict, simply running (Nomad's clients always report
    migration health; yurt's may not, and a drain must not stall on it)."""
    status = alloc.deployment_status
    if status is not None and status.healthy is not None:
        return status.healthy
    return alloc.client_status == CLIENT_RUNNING and not alloc.deployment_id


def plan_drain(state: StateReader, now: float, rng: Rng, *, proposed: Collection[str] = (),
               skip_nodes: Collection[str] = (), draining: Iterable[str] | None = None) -> DrainActions:
    """Decide what every draining node needs now (Nomad's drainer: node watcher, job watcher, deadlines).

    * Service allocations move `migrate.max_parallel` at a time per task group: more are marked only
      while the group keeps `count - max_parallel` healthy allocations not themselves leaving, and
      fewer than `max_parallel` marked allocations are still running on draining nodes.
    * Batch and sysbatch allocations run to completion; system allocations are stopped last, once
      everything else on the node is client-terminal, unless `ignore_system_jobs`.
    * Past the deadline every remaining allocation is marked and the node is done.
    An allocation already marked in the state (or listed in `proposed`, marks in flight) is never
    marked again; nodes in `skip_nodes` (completions in flight) are left alone.
    """
    actions = DrainActions()
    node_ids = sorted(draining) if draining is not None else [n.id for n in state.nodes() if n.drain_strategy]
    nodes: dict[str, Node] = {}
    for node_id in node_ids:
        node = state.node_by_id(node_id)
        if node is not None and node.drain_strategy is not None and node_id not in skip_nodes:
            nodes[node_id] = node

    marked: dict[str, Allocation] = {}
    jobs_to_check: dict[tuple[str, str], None] = {}
    deadlines: list[float] = []
    for node_id, node in nodes.items():
        strategy = node.drain_strategy
        assert strategy is not None
        allocs = state.allocs_by_node(node_id)
        ignore_system = strategy.ignore_system_jobs
        deadline = drain_deadline(node)
        if deadline is not None and deadline <= now:
            for alloc in allocs:
                if not alloc.terminal() and not (ignore_system and _job_type(alloc) == "system"):
                    marked[alloc.id] = alloc
            actions.done_nodes.append(node_id)
            actions.deadlined_nodes.append(node_id)
            continue
        others_done = True
        for alloc in allocs:
            job_type = _job_type(alloc)
            if job_type == "system" or alloc.client_terminal():
                continue
            others_done = False
            if job_type not in _RUN_TO_COMPLETION and not alloc.terminal():
                jobs_to_check[(alloc.namespace, alloc.job_id)] = None
        if others_done:
            # Everything else has left: stop the system allocations too. As Nomad's drainingNode.IsDone, the
            # drain is complete once they have stopped on the client, not when they are asked to: a node that
            # left its drain (and only turned ineligible) would keep them running for good.
            system = [a for a in allocs
                      if _job_type(a) == "system" and not a.client_terminal() and not ignore_system]
            for alloc in system:
                if not alloc.terminal():
                    marked[alloc.id] = alloc
            if not system:
                actions.done_nodes.append(node_id)
        elif deadline is not None:
            deadlines.append(deadline)

    node_draining: dict[str, bool] = {}

    def on_draining_node(alloc: Allocation) -> bool:
        draining_now = node_draining.get(alloc.node_id)
        if draining_now is None:
            node = nodes.get(alloc.node_id) or state.node_by_id(alloc.node_id)
            draining_now = node_draining[alloc.node_id] = node is not None and node.drain_strategy is not None
        return draining_now

    for namespace, job_id in sorted(jobs_to_check):
        job = state.job_by_id(namespace, job_id)
        allocs = state.allocs_by_job(namespace, job_id, any_create_index=job is None)
        for alloc in _migrations(job, allocs, on_draining_node, proposed):
            marked[alloc.id] = alloc

    # Not proposed twice: what the state or an in-flight proposal already marks is dropped here.
    marked = {i: a for i, a in marked.items() if not a.desired_transition.should_migrate() and i not in proposed}
    evals: dict[tuple[str, str], Evaluation] = {}
    now_ns = round(now * 1e9)
    for alloc_id in sorted(marked, key=lambda i: (marked[i].namespace, marked[i].job_id, i)):
        alloc = marked[alloc_id]
        actions.transitions[alloc_id] = DesiredTransition(migrate=True)
        key = (alloc.namespace, alloc.job_id)
        if key not in evals:
            job = state.job_by_id(*key) or alloc.job
            evals[key] = _drain_eval(rng, alloc, job, now_ns)
    actions.evals = list(evals.values())
    actions.next_deadline = min(deadlines) if deadlines else None
    return actions


def _migrations(job: Job | None, allocs: list[Allocation], on_draining_node, proposed: Collection[str]) \
        -> list[Allocation]:
    """The allocations of one service job to mark now, task group by task group."""
    by_group: dict[str, list[Allocation]] = {}
    for alloc in allocs:
        by_group.setdefault(alloc.task_group, []).append(alloc)
    chosen: list[Allocation] = []
    for group_name, group_allocs in sorted(by_group.items()):
        group = job.group(group_name) if job is not None else None
        if group is None:
            continue  # a group the job no longer has: the scheduler stops those allocations anyway
        max_parallel = group.migrate.max_parallel if group.migrate is not None else 1
        healthy_staying = 0
        in_flight = 0
        drainable: list[Allocation] = []
        for alloc in group_allocs:
            if alloc.terminal():
                continue
            leaving = alloc.desired_transition.should_migrate() or alloc.id in proposed
            if leaving:
                if on_draining_node(alloc):
                    in_flight += 1
                continue
            if _migrate_healthy(alloc):
                healthy_staying += 1
            if on_draining_node(alloc):
                drainable.append(alloc)
        allowed = min(healthy_staying - (group.count - max_parallel), max_parallel - in_flight, len(drainable))
        if allowed > 0:
            drainable.sort(key=lambda a: (a.index(), a.id))
            chosen.extend(drainable[:allowed])
    return chosen


def _drain_eval(rng: Rng, alloc: Allocation, job: Job | None, now_ns: int) -> Evaluation:
    return Evaluation(id=new_id(rng), namespace=alloc.namespace,
                      priority=job.priority if job is not None else 50,
                      type=job.type if job is not None else _job_type(alloc), triggered_by=TRIGGER_NODE_DRAIN,
                      job_id=alloc.job_id, job_modify_index=job.job_modify_index if job is not None else 0,
                      status=EVAL_PENDING, create_time=now_ns, modify_time=now_ns)


class NodeDrainer(LeaderOnly):
    """The leader's drainer: `plan_drain` plus memory of what it proposed and Raft has not applied yet,
    so a plan is never proposed twice. Also caches the set of draining nodes per nodes-table index."""

    def __init__(self, rng: Rng, *, retry_after: float = PROPOSAL_RETRY, enabled: bool = True) -> None:
        self.rng = rng
        self.retry_after = retry_after
        self._enabled = enabled
        self._proposed_allocs: dict[str, float] = {}
        self._proposed_done: dict[str, float] = {}
        self._draining: list[str] = []
        self._nodes_index = -1
        self._next_deadline: float | None = None

    def flush(self) -> None:
        self._proposed_allocs.clear()
        self._proposed_done.clear()
        self._draining = []
        self._nodes_index = -1
        self._next_deadline = None

    def plan(self, state: StateReader, now: float) -> DrainActions:
        """What to propose now; everything returned is remembered as in flight until the state shows
        it (or `retry_after` passes: a lost proposal is then made again)."""
        if not self._enabled:
            return DrainActions()
        index = state.table_index(NODES)
        if index != self._nodes_index:
            self._draining = [n.id for n in state.nodes() if n.drain_strategy is not None]
            self._nodes_index = index
        self._forget_applied(state, now)
        actions = plan_drain(state, now, self.rng, proposed=self._proposed_allocs,
                             skip_nodes=self._proposed_done, draining=self._draining)
        for alloc_id in actions.transitions:
            self._proposed_allocs[alloc_id] = now
        for node_id in actions.done_nodes:
            self._proposed_done[node_id] = now
        self._next_deadline = actions.next_deadline
        return actions

    def _forget_applied(self, state: StateReader, now: float) -> None:
        for alloc_id, at in list(self._proposed_allocs.items()):
            alloc = state.alloc_by_id(alloc_id)
            if alloc is None or alloc.terminal() or alloc.desired_transition.should_migrate() \
                    or now - at >= self.retry_after:
                del self._proposed_allocs[alloc_id]
        for node_id, at in list(self._proposed_done.items()):
            node = state.node_by_id(node_id)
            if node is None or node.drain_strategy is None or now - at >= self.retry_after:
                del self._proposed_done[node_id]

    def next_deadline(self) -> float | None:
        """The earliest drain deadline still ahead, as of the last `plan`."""
        return self._next_deadline
