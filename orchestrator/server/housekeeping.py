"""The leader's periodic passes over the state: node drains, deployments and garbage collection, each
turned into Raft commands (the components decide, this module only proposes)."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

from orchestrator.fsm import ApplyResult, commands
from orchestrator.raft import NotLeaderError, ProposalDroppedError

from .deployment_watcher import DeploymentWatcher
from .drainer import NodeDrainer, drain_complete_event
from .gc import GCThresholds, TimeTable, collect

if TYPE_CHECKING:
    from .server import Server


class Housekeeping:
    """Runs the drainer and the deployment watcher every second while there is something to watch, and
    garbage collection every `gc_interval` (Nomad's core scheduler cadence)."""

    def __init__(self, server: Server, now: float) -> None:
        self.server = server
        self.drainer = NodeDrainer(server.rng)
        self.deployments = DeploymentWatcher(server.rng)
        self.timetable = TimeTable()
        self.timetable.seed_from(server.store)
        self.thresholds = GCThresholds()
        config = server.config
        self._next_drain = now
        self._next_deployments = now
        self._next_gc = now + config.gc_interval
        self._active_drains = any(n.drain_strategy is not None for n in server.store.nodes())
        self._active_deployments = any(d.active() for d in server.store.deployments())

    def on_apply(self, result: ApplyResult) -> None:
        """Look again soon when the change may concern a drain or a deployment."""
        if result.nodes or result.alloc_nodes:
            self._active_drains = True
        if result.deployments or result.alloc_nodes:
            self._active_deployments = True

    def tick(self, now: float) -> None:
        store = self.server.store
        self.timetable.witness(store.latest_index(), now)
        if self._active_drains and now >= self._next_drain:
            self._next_drain = now + self.server.config.drain_interval
            self._drain(now)
        if self._active_deployments and now >= self._next_deployments:
            self._next_deployments = now + self.server.config.deployment_interval
            self._watch_deployments(now)
        if now >= self._next_gc:
            self._next_gc = now + self.server.config.gc_interval
            self.collect_garbage(now)

    def next_deadline(self) -> float | None:
        deadlines = [self._next_gc]
        if self._active_drains:
            deadlines.append(self._next_drain)
        if self._active_deployments:
            deadlines.append(self._next_deployments)
        return min(deadlines)

    def _propose(self, data: bytes) -> None:
        with suppress(NotLeaderError, ProposalDroppedError):  # leadership is going: the next leader looks again
            self.server.propose(data)

    def _drain(self, now: float) -> None:
        store = self.server.store
        actions = self.drainer.plan(store, now)
        if actions.transitions or actions.evals:
            self._propose(commands.alloc_desired_transition(allocs=actions.transitions, evals=actions.evals))
        for node_id in actions.done_nodes:
            event = drain_complete_event(node_id in actions.deadlined_nodes, now)
            self._propose(commands.node_drain_update(node_id=node_id, drain_strategy=None, mark_eligible=False,
                                                     updated_at=int(now * 1e9), node_event=event))
        self._active_drains = any(n.drain_strategy is not None for n in store.nodes())

    def _watch_deployments(self, now: float) -> None:
        store = self.server.store
        actions = self.deployments.watch(store, now)
        for deployment_id, status, description in actions.status_updates:
            evals = actions.evals_for(deployment_id)
            self._propose(commands.deployment_status_update(
                deployment_id=deployment_id, status=status, status_description=description,
                job=actions.revert_for.get(deployment_id), evaluation=evals[0] if evals else None))
        updated = {d for d, _, _ in actions.status_updates}
        for deployment_id in actions.promotions:
            evals = actions.evals_for(deployment_id)
            self._propose(commands.deployment_promote(deployment_id=deployment_id, all_groups=True,
                                                      evaluation=evals[0] if evals else None,
                                                      updated_at=int(now * 1e9)))
            updated.add(deployment_id)
        others = [e for e in actions.evals if e.deployment_id not in updated]
        if actions.reschedules or others:
            self._propose(commands.alloc_desired_transition(allocs=actions.reschedules, evals=others))
        self._active_deployments = any(d.active() for d in store.deployments())

    def collect_garbage(self, now: float, *, force: bool = False) -> None:
        actions = collect(self.server.store, now, self.thresholds, force=force, timetable=self.timetable)
        if actions.eval_ids or actions.alloc_ids:
            self._propose(commands.eval_delete(evals=actions.eval_ids, allocs=actions.alloc_ids))
        for namespace, job_id in actions.job_keys:
            self._propose(commands.job_deregister(namespace=namespace, job_id=job_id, purge=True,
                                                  submit_time=int(now * 1e9)))
        if actions.node_ids:
            self._propose(commands.node_deregister(node_ids=actions.node_ids))
        if actions.deployment_ids:
            self._propose(commands.deployment_delete(deployment_ids=actions.deployment_ids))
