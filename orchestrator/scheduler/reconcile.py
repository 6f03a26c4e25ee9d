"""The generic reconciler: compare a job with its allocations and decide, per task group, what to place,
stop, update in place, replace (destructive update), migrate off draining nodes, replace on lost nodes,
reschedule after failure (now, or later through a follow-up evaluation) and leave alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.structs import (
    Allocation,
    DesiredUpdates,
    Evaluation,
    Job,
    Node,
    TaskGroup,
)
from orchestrator.structs.alloc import CLIENT_COMPLETE, CLIENT_FAILED, CLIENT_LOST, DESIRED_RUN
from orchestrator.structs.codec import replace
from orchestrator.structs.evaluation import TRIGGER_RETRY_FAILED_ALLOC

from .diff import tasks_updated
from .ids import new_id
from .ports import Rng

STOP_NOT_NEEDED = "alloc not needed due to job update"
STOP_JOB_STOPPED = "alloc not needed as job is stopped"
STOP_MIGRATING = "alloc is being migrated"
STOP_UPDATING = "alloc is being updated due to job update"
STOP_LOST = "alloc is lost since its node is down"
STOP_RESCHEDULED = "alloc was rescheduled because it failed"
RESCHEDULE_WINDOW_NS = 1_000_000_000  # failures due within a second are rescheduled now, as Nomad


@dataclass(slots=True)
class Placement:
    name: str
    group: TaskGroup
    previous: Allocation | None = None
    reschedule: bool = False
    migrate: bool = False
    penalty_nodes: frozenset[str] = frozenset()


@dataclass(slots=True)
class Stop:
    alloc: Allocation
    description: str
    client_status: str = ""


@dataclass(slots=True)
class ReconcileResult:
    place: list[Placement] = field(default_factory=list)
    stop: list[Stop] = field(default_factory=list)
    inplace: list[Allocation] = field(default_factory=list)  # existing allocs to move to the new job version
    followup_evals: list[Evaluation] = field(default_factory=list)
    attribute_updates: list[Allocation] = field(default_factory=list)  # e.g. follow-up eval IDs recorded
    desired_tg_updates: dict[str, DesiredUpdates] = field(default_factory=dict)


def alloc_name(job_id: str, group: str, index: int) -> str:
    return f"{job_id}.{group}[{index}]"


class Reconciler:
    """Pure decision-making for service and batch jobs; the scheduler turns its result into a plan."""

    def __init__(self, job: Job | None, job_id: str, allocs: list[Allocation], tainted: dict[str, Node | None],
                 evaluation: Evaluation, now_ns: int, rng: Rng, batch: bool):
        self.job, self.job_id = job, job_id
        self.allocs = allocs
        self.tainted = tainted  # node id -> node when it is down, draining or gone (None)
        self.eval, self.now, self.rng, self.batch = evaluation, now_ns, rng, batch
        self.result = ReconcileResult()

    def compute(self) -> ReconcileResult:
        by_group: dict[str, list[Allocation]] = {}
        for alloc in self.allocs:
            by_group.setdefault(alloc.task_group, []).append(alloc)
        stopped = self.job is None or self.job.stop
        groups = {g.name: g for g in self.job.task_groups} if self.job is not None else {}
        for name, allocs in by_group.items():
            if stopped or name not in groups:
                self._stop_all(name, allocs, STOP_JOB_STOPPED if stopped else STOP_NOT_NEEDED)
        if not stopped:
            for group in groups.values():
                self._reconcile_group(group, by_group.get(group.name, []))
        return self.result

    def _updates(self, group: str) -> DesiredUpdates:
        return self.result.desired_tg_updates.setdefault(group, DesiredUpdates())

    def _stop_all(self, group: str, allocs: list[Allocation], why: str) -> None:
        for alloc in allocs:
            if not alloc.terminal():
                self.result.stop.append(Stop(alloc, why))
                self._updates(group).stop += 1

    def _reconcile_group(self, group: TaskGroup, allocs: list[Allocation]) -> None:
        assert self.job is not None
        updates = self._updates(group.name)
        live: list[Allocation] = []  # allocations that count towards the group's count
        for alloc in allocs:
            if alloc.desired_status != DESIRED_RUN:
                continue
            if alloc.client_status == CLIENT_COMPLETE:
                if self.batch:
                    live.append(alloc)  # a finished batch allocation counts: its work is done
                continue
            if alloc.client_status == CLIENT_LOST:
                continue
            node_gone = alloc.node_id in self.tainted and (
                self.tainted[alloc.node_id] is None or self.tainted[alloc.node_id].status == "down")
            if node_gone:
                self.result.stop.append(Stop(alloc, STOP_LOST, CLIENT_LOST))
                self.result.place.append(Placement(alloc.name, group, previous=alloc))
                updates.place += 1
                updates.stop += 1
                continue
            if alloc.client_status == CLIENT_FAILED:
                self._reschedule(group, alloc, live)
                continue
            live.append(alloc)

        live = self._migrate(group, live)
        live.sort(key=lambda a: (a.index(), a.create_index))
        # Duplicate names (rare: a replacement raced) and scale-down both stop the highest indexes.
        keep: list[Allocation] = []
        seen: set[str] = set()
        for alloc in live:
            if alloc.name in seen:
                self.result.stop.append(Stop(alloc, STOP_NOT_NEEDED))
                updates.stop += 1
            else:
                seen.add(alloc.name)
                keep.append(alloc)
        pending_names = {p.name for p in self.result.place if p.group is group}
        budget = group.count - len(pending_names)
        if len(keep) > budget:
            keep.sort(key=lambda a: a.index())
            for alloc in keep[max(budget, 0):]:
                self.result.stop.append(Stop(alloc, STOP_NOT_NEEDED))
                updates.stop += 1
            keep = keep[: max(budget, 0)]
        self._update(group, keep)
        used = {a.name for a in keep} | pending_names
        missing = group.count - len(used)
        index = 0
        while missing > 0:
            name = alloc_name(self.job_id, group.name, index)
            if name not in used:
                self.result.place.append(Placement(name, group))
                updates.place += 1
                missing -= 1
            index += 1

    def _migrate(self, group: TaskGroup, live: list[Allocation]) -> list[Allocation]:
        """Replace every allocation marked to migrate, on any node, as Nomad's reconciler does.

        The pace of a drain is the drainer's: it marks at most `migrate.max_parallel` allocations of a group
        at a time. `alloc stop` marks one allocation on a healthy node the same way.
        """
        marked = [a for a in live if a.desired_transition.should_migrate()]
        if not marked:
            return live
        updates = self._updates(group.name)
        for alloc in sorted(marked, key=lambda a: a.index()):
            self.result.stop.append(Stop(alloc, STOP_MIGRATING))
            self.result.place.append(Placement(alloc.name, group, previous=alloc, migrate=True))
            updates.migrate += 1
        moved = {a.id for a in marked}
        return [a for a in live if a.id not in moved]

    def _update(self, group: TaskGroup, keep: list[Allocation]) -> None:
        assert self.job is not None
        updates = self._updates(group.name)
        outdated = [a for a in keep if a.job is not None and a.job.job_modify_index != self.job.job_modify_index]
        destructive, inplace = [], []
        for alloc in outdated:
            old_group = alloc.job.group(group.name) if alloc.job is not None else None
            (destructive if old_group is None or tasks_updated(old_group, group) else inplace).append(alloc)
        updates.ignore += len(keep) - len(outdated)
        self.result.inplace.extend(inplace)
        updates.in_place_update += len(inplace)
        limit = len(destructive)
        if not self.batch and group.update is not None and group.update.max_parallel > 0:
            unhealthy_new = sum(1 for a in keep if a.job is not None
                                and a.job.job_modify_index == self.job.job_modify_index
                                and not (a.deployment_status and a.deployment_status.healthy))
            limit = max(group.update.max_parallel - unhealthy_new, 0)
        destructive.sort(key=lambda a: a.index())
        for alloc in destructive[:limit]:
            self.result.stop.append(Stop(alloc, STOP_UPDATING))
            self.result.place.append(Placement(alloc.name, group, previous=alloc))
            updates.destructive_update += 1
        updates.ignore += len(destructive) - min(limit, len(destructive))

    def _reschedule(self, group: TaskGroup, alloc: Allocation, live: list[Allocation]) -> None:
        """A failed allocation is replaced now, later (follow-up eval), or never (policy exhausted)."""
        if alloc.next_allocation:
            return  # already replaced
        if alloc.desired_transition.force_reschedule:
            when: int | None = self.now  # `job eval -force-reschedule`: now, whatever the policy says
        else:
            when = next_reschedule_time(group, alloc, self.now)
        if when is None:
            # Attempts exhausted or rescheduling off: the failure stands and keeps its slot, so the group is
            # not topped up with a fresh allocation behind the policy's back (Nomad keeps it untainted).
            live.append(alloc)
            return
        updates = self._updates(group.name)
        # Its own follow-up evaluation replaces it whatever the time says, as Nomad's reconciler does
        # (FollowupEvalID == evalID): the allocation's modify time, which the delay counts from, moves
        # with every later write to it, and nothing else would ever come back for it.
        if when <= self.now + RESCHEDULE_WINDOW_NS or (alloc.followup_eval_id
                                                       and alloc.followup_eval_id == self.eval.id):
            self.result.stop.append(Stop(alloc, STOP_RESCHEDULED))
            self.result.place.append(Placement(alloc.name, group, previous=alloc, reschedule=True,
                                               penalty_nodes=frozenset({alloc.node_id})))
            updates.place += 1
            return
        live.append(alloc)  # holds its slot until the follow-up eval replaces it
        if alloc.followup_eval_id:
            return
        followup = self._followup_eval(when)
        self.result.attribute_updates.append(replace(alloc, followup_eval_id=followup.id))

    def _followup_eval(self, wait_until: int) -> Evaluation:
        for existing in self.result.followup_evals:
            if existing.wait_until == wait_until:
                return existing
        evaluation = Evaluation(id=new_id(self.rng), namespace=self.eval.namespace, priority=self.eval.priority,
                                type=self.eval.type, triggered_by=TRIGGER_RETRY_FAILED_ALLOC,
                                job_id=self.job_id, status="pending", wait_until=wait_until,
                                previous_eval=self.eval.id)
        self.result.followup_evals.append(evaluation)
        return evaluation


def next_reschedule_time(group: TaskGroup, alloc: Allocation, now_ns: int) -> int | None:
    """When a failed allocation may be replaced (unix ns), or None when its policy allows no more."""
    policy = group.reschedule_policy
    if policy is None or (policy.attempts == 0 and not policy.unlimited):
        return None
    events = alloc.reschedule_tracker.events if alloc.reschedule_tracker else []
    if not policy.unlimited:
        recent = [e for e in events if now_ns - e.reschedule_time < policy.interval]
        if len(recent) >= policy.attempts:
            return None
    delay = reschedule_delay(policy, len(events))
    failed_at = alloc.modify_time or now_ns
    return failed_at + delay


def reschedule_delay(policy, previous_attempts: int) -> int:
    if policy.delay_function == "exponential":
        delay = policy.delay * (2 ** previous_attempts)
    elif policy.delay_function == "fibonacci":
        a, b = policy.delay, policy.delay
        for _ in range(previous_attempts):
            a, b = b, a + b
        delay = a
    else:
        delay = policy.delay
    if policy.max_delay and delay > policy.max_delay:
        delay = policy.max_delay
    return delay
