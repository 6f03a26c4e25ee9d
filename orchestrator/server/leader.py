"""The leader's control loops: eval broker and scheduler workers, blocked evals, client heartbeats,
periodic launches, and housekeeping, all driven by `now` from the runtime, never by threads."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING

from orchestrator.fsm import ApplyResult, commands
from orchestrator.raft import ConfChangeKind, NotLeaderError, ProposalDroppedError
from orchestrator.scheduler import new_scheduler
from orchestrator.scheduler.ids import new_id
from orchestrator.structs import Evaluation, NodeEvent
from orchestrator.structs.evaluation import (
    EVAL_BLOCKED,
    EVAL_CANCELED,
    EVAL_FAILED,
    EVAL_PENDING,
    TRIGGER_FAILED_FOLLOW_UP,
    TRIGGER_NODE_UPDATE,
    TRIGGER_PERIODIC_JOB,
)
from orchestrator.structs.node import NODE_STATUS_DOWN
from orchestrator.structs.timefmt import rfc3339

from .blocked import BlockedEvals
from .broker import BrokerError, EvalBroker
from .evals import new_eval, node_evals
from .heartbeats import FailoverPolicy, HeartbeatTimers
from .housekeeping import Housekeeping
from .periodic_dispatch import PeriodicDispatcher, derive_child, running_children
from .planner import OptimisticState, ServerPlanner

if TYPE_CHECKING:
    from .server import Server

SCHEDULER_TYPES = ("service", "batch", "system", "sysbatch")
FAILED_EVAL_UNBLOCK_INTERVAL = 60.0  # Nomad retries evaluations blocked by plan failures every minute


class LeaderLoops:
    """Everything only the leader does; built when a server's leadership is established, dropped when lost.

    Its state is rebuilt from the state store on establishment (Nomad's establishLeadership), so nothing
    here needs replicating: evaluations, nodes and periodic launches all live in the store.
    """

    def __init__(self, server: Server, now: float) -> None:
        self.server = server
        config = server.config
        store = server.store
        self.broker = EvalBroker(server.rng)
        self.blocked = BlockedEvals()
        policy = FailoverPolicy.NOMAD if config.failover_policy == "nomad" else FailoverPolicy.BOUNDED
        self.heartbeats = HeartbeatTimers(server.rng, min_ttl=config.min_heartbeat_ttl,
                                          max_per_second=config.max_heartbeats_per_second,
                                          grace=config.heartbeat_grace, failover_policy=policy,
                                          failover_ttl=config.failover_heartbeat_ttl)
        self.periodic = PeriodicDispatcher()
        self.optimistic = OptimisticState(store)
        self.housekeeping = Housekeeping(server, now)
        self.scheduled_evals = 0
        self._next_failed_unblock = now + FAILED_EVAL_UNBLOCK_INTERVAL
        self._next_voter_check = now + 1.0
        self.broker.restore_from(store, now)
        self.broker.enqueue_all(self.blocked.restore_from(store), now)
        # The bound counts what heartbeat_ttl counts (every registered node, down ones too), so it is at
        # least the longest TTL the old leader can have handed out to a node now alive.
        self.heartbeats.initialize([n.id for n in store.nodes() if n.status != NODE_STATUS_DOWN], now,
                                   node_count=self._heartbeat_node_count())
        self.periodic.restore_from(store, now)

    def stop(self) -> None:
        self.broker.flush()
        self.blocked.flush()
        self.optimistic.reset()

    # -- inputs -----------------------------------------------------------------------------------------

    def _heartbeat_node_count(self) -> int:
        """The node count TTLs are scaled by, the same on every leader: every registered node."""
        return self.server.store.node_count()

    def heartbeat_ttl(self) -> float:
        return self.heartbeats.ttl_for(self._heartbeat_node_count())

    def heartbeat_seen(self, node_id: str, now: float, ttl: float) -> None:
        self.heartbeats.reset(node_id, now, ttl)

    def on_apply(self, now: float, index: int, result: ApplyResult) -> None:
        self.optimistic.applied(index)
        for evaluation in result.evals:
            self._track_eval(evaluation, now)
        for computed_class in result.unblock_classes:
            self.broker.enqueue_all(self.blocked.unblock(computed_class, index), now)
        for node_id in result.unblock_nodes:
            self.broker.enqueue_all(self.blocked.unblock_node(node_id, index), now)
        store = self.server.store
        for node_id in result.nodes:
            node = store.node_by_id(node_id)
            if node is None or node.status == NODE_STATUS_DOWN:
                self.heartbeats.clear(node_id)
        for namespace, job_id in result.jobs:
            job = store.job_by_id(namespace, job_id)
            if job is not None and job.is_periodic() and not job.stop:
                self.periodic.add(job, now)
            else:
                self.periodic.remove(namespace, job_id)
            if job is None or job.stop:
                self.blocked.untrack(namespace, job_id)
        self.housekeeping.on_apply(result)

    def _track_eval(self, evaluation: Evaluation, now: float) -> None:
        if evaluation.status == EVAL_PENDING:
            self.broker.enqueue(evaluation, now)
        elif evaluation.status == EVAL_BLOCKED:
            released = self.blocked.block(evaluation)
            if released is not None:
                self.broker.enqueue(released, now)
            duplicates = self.blocked.take_duplicates()
            if duplicates:
                self._cancel(duplicates, "evaluation is outdated: a newer one is blocked", now)

    def tick(self, now: float) -> None:
        server = self.server
        store = server.store
        now_ns = int(now * 1e9)
        self.broker.tick(now)
        for node_id in self.heartbeats.expired(now):
            node = store.node_by_id(node_id)
            if node is None or node.status == NODE_STATUS_DOWN:
                continue
            evals = node_evals(store, node_id, node.modify_index, TRIGGER_NODE_UPDATE, server.rng, now_ns)
            event = NodeEvent(message="Node heartbeat missed", subsystem="Cluster", timestamp=rfc3339(now))
            self._propose(commands.node_status_update(node_id=node_id, status=NODE_STATUS_DOWN, updated_at=now_ns,
                                                      evals=evals, node_event=event))
        for job, launch_ns in self.periodic.due(now, running_children(store)):
            self._launch_periodic(job, launch_ns, now_ns)
        failed = self.broker.take_failed()
        if failed:
            updates = []
            for evaluation in failed:
                updates.append(replace(evaluation, status=EVAL_FAILED, modify_time=now_ns,
                                       status_description="evaluation reached delivery limit (3)"))
                updates.append(_follow_up(server, evaluation, now_ns))
            self._propose(commands.eval_update(evals=updates))
        cancelable = self.broker.take_cancelable()
        if cancelable:
            self._cancel(cancelable, "canceled after more recent eval was processed", now)
        if now >= self._next_voter_check:
            self._next_voter_check = now + 1.0
            self.reconcile_voters()
        if now >= self._next_failed_unblock:
            self._next_failed_unblock = now + FAILED_EVAL_UNBLOCK_INTERVAL
            self.broker.enqueue_all(self.blocked.unblock_failed(), now)
        self.housekeeping.tick(now)

    def run(self, now: float) -> None:
        """Schedule what the broker has ready, up to `evals_per_advance` evaluations.

        Like Nomad's plan applier, at most `max_plans_in_flight` plans wait for Raft at a time: the next
        evaluation is scheduled against them optimistically, and the rest wait for an apply. This bounds
        what the optimistic view must re-apply when other writes make it stale."""
        config = self.server.config
        finished: list[Evaluation] = []
        try:
            for _ in range(config.evals_per_advance):
                if self.optimistic.in_flight() >= config.max_plans_in_flight:
                    return
                item = self.broker.dequeue(SCHEDULER_TYPES, now)
                if item is None:
                    return
                self._schedule(item[0], item[1], now, finished)
        finally:
            if finished:
                # The evaluations this pass finished, as one entry after all their plans: half the log
                # entries of a burst of registrations. If it is lost, a new leader finds them pending and
                # schedules them again, as it would a lost single update.
                self._propose(commands.eval_update(evals=finished))

    def next_deadline(self) -> float | None:
        deadline = min(self._next_failed_unblock, self._next_voter_check)
        for other in (self.broker.next_deadline(), self.heartbeats.next_deadline(), self.periodic.next_deadline(),
                      self.housekeeping.next_deadline()):
            if other is not None and other < deadline:
                deadline = other
        return deadline

    # -- work -------------------------------------------------------------------------------------------

    def _schedule(self, evaluation: Evaluation, token: str, now: float, finished: list[Evaluation]) -> None:
        """One worker pass, synchronously: the scheduler reads the optimistic view and its plans are
        proposed at once. The eval is acked as soon as it is processed: its proposals are in the log
        ahead of anything a later evaluation proposes, and a new leader re-runs it if they are lost."""
        server = self.server
        snapshot = self.optimistic.snapshot()
        planner = ServerPlanner(self.optimistic, server.propose, evaluation, snapshot.index, finished)
        try:
            scheduler = new_scheduler(evaluation.type, snapshot, planner, now_ns=int(now * 1e9), rng=server.rng,
                                      config=server.config.scheduler)
            scheduler.process(evaluation)
        except (NotLeaderError, ProposalDroppedError):
            self._nack(evaluation, token, now)
            return
        self.scheduled_evals += 1
        # BrokerError: its nack timer fired meanwhile; it will be delivered again and find nothing to do.
        with suppress(BrokerError):
            self.broker.ack(evaluation.id, token)

    def _nack(self, evaluation: Evaluation, token: str, now: float) -> None:
        with suppress(BrokerError):
            self.broker.nack(evaluation.id, token, now)

    def _propose(self, data: bytes) -> int:
        try:
            return self.server.propose(data)
        except (NotLeaderError, ProposalDroppedError):
            return 0  # leadership is going; the next leader rebuilds from the state

    def _cancel(self, evals: list[Evaluation], description: str, now: float) -> None:
        now_ns = int(now * 1e9)
        self._propose(commands.eval_update(evals=[
            replace(e, status=EVAL_CANCELED, status_description=description, modify_time=now_ns) for e in evals]))

    def _launch_periodic(self, job, launch_ns: int, now_ns: int) -> None:
        _, register, record = periodic_launch_commands(self.server.rng, job, launch_ns, now_ns)
        self._propose(register)
        self._propose(record)

    def reconcile_voters(self) -> None:
        """Take departed servers out of the Raft configuration and add newly known ones, one change at a time
        (a pending change makes the next wait: `tick` calls this again every second)."""
        server = self.server
        voters = set(server.raft.voters)
        for server_id in sorted((server.departed & voters) - {server.id}):
            if not server.change_voters(server_id, ConfChangeKind.REMOVE_NODE):
                return
        for server_id in sorted(server.known_servers - voters - server.departed):
            if not server.change_voters(server_id, ConfChangeKind.ADD_NODE):
                return


def periodic_launch_commands(rng, job, launch_ns: int, now_ns: int) -> tuple[Evaluation, bytes, bytes]:
    """A periodic launch as Raft commands: the child's registration with its evaluation, then the launch record
    (proposed in this order, by the dispatcher when a launch is due and by `job periodic force`)."""
    child = derive_child(job, launch_ns)
    evaluation = new_eval(rng, child, TRIGGER_PERIODIC_JOB, now_ns)
    register = commands.job_register(job=child, evaluation=evaluation, submit_time=now_ns)
    record = commands.periodic_launch(namespace=job.namespace, job_id=job.id, launch=launch_ns)
    return evaluation, register, record


def _follow_up(server: Server, failed: Evaluation, now_ns: int) -> Evaluation:
    """Nomad's failed-follow-up: the same job looked at again after a pause."""
    return Evaluation(id=new_id(server.rng), namespace=failed.namespace, priority=failed.priority,
                      type=failed.type, triggered_by=TRIGGER_FAILED_FOLLOW_UP, job_id=failed.job_id,
                      previous_eval=failed.id, wait_until=now_ns + 60_000_000_000, create_time=now_ns,
                      modify_time=now_ns)
