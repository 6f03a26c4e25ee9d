"""Writes the server FSM needs beyond the basic ones: batches, promotion, allocation health, node events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.structs import Allocation, Deployment, Node, NodeEvent
from orchestrator.structs.alloc import AllocDeploymentStatus
from orchestrator.structs.codec import replace
from orchestrator.structs.evaluation import DEPLOYMENT_RUNNING
from orchestrator.structs.timefmt import rfc3339_ns

from .allocs import AllocWrites
from .core import Write, WriteBlock
from .nodes import NodeWrites
from .records import ALLOCS, DEPLOYMENTS, SCHEDULER_CONFIG, SCHEDULER_CONFIG_KEY, NotFoundError, StateError

# Nomad keeps a node's ten latest events (MaxRetainedNodeEvents).
MAX_NODE_EVENTS = 10
DEPLOYMENT_DESCRIPTION_RUNNING = "Deployment is running"

def append_node_event(events: list[NodeEvent], event: NodeEvent, index: int) -> list[NodeEvent]:
    """A node's events with `event` added (stamped with the index it was written at), oldest dropped."""
    return [*events, replace(event, create_index=index)][-MAX_NODE_EVENTS:]


class Batch:
    """The `with` block of `FSMWrites.batch`: writes inside join its Write; committed at the end unless the
    block raised (the batch is closed first either way, so listeners see no batch open)."""

    __slots__ = ("block", "store")

    def __init__(self, store: FSMWrites, block: WriteBlock) -> None:
        self.store = store
        self.block = block

    def __enter__(self) -> Write:
        w = self.block.__enter__()
        self.store._batch = w
        return w

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.store._batch = None
        self.block.__exit__(exc_type, exc, tb)


class FSMWrites(AllocWrites, NodeWrites):
    """Writes one Raft command makes that the basic writes do not cover, and `batch` to make several
    writes one (one commit, one listener call), as Nomad applies each command in one transaction."""

    __slots__ = ("_batch",)

    def __init__(self, job_versions_limit: int = 6) -> None:
        super().__init__(job_versions_limit)
        self._batch: Write | None = None

    # -- batches -------------------------------------------------------------------------------------

    def batch(self, index: int) -> Batch:
        """Make every write inside the block one write at `index`, committed when the block ends.

        A failure midway cannot be undone, so the caller checks every part's input first (a write that
        refuses does so before changing anything: while the yielded Write's `touched` is empty, nothing
        has changed and an exception leaves the store as it was).
        """
        if self._batch is not None:
            raise StateError("a batch is already open")
        return Batch(self, super()._writing(index))

    def _writing(self, index: int) -> WriteBlock:
        w = self._batch
        if w is None:
            return super()._writing(index)
        if index != w.index:
            raise StateError(f"write at index {index} inside a batch at index {w.index}")
        return WriteBlock(None, w)  # committed by the batch

    # -- deployments ---------------------------------------------------------------------------------

    def active_deployment(self, deployment_id: str) -> Deployment:
        """The deployment a command changes, refused with Nomad's messages when missing or terminal."""
        deployment = self._tables[DEPLOYMENTS].get(deployment_id)
        if deployment is None:
            raise NotFoundError(f'Deployment ID "{deployment_id}" couldn\'t be updated as it does not exist')
        if not deployment.active():
            raise StateError(f'Deployment "{deployment.id}" has terminal status "{deployment.status}":')
        return deployment

    def promote_deployment(self, index: int, deployment_id: str, groups: Iterable[str] = (), *,
                           all_groups: bool = False, now_ns: int = 0) -> list[Allocation]:
        """Promote the canaries of some task groups (all with `all_groups`); returns the allocations
        promoted, as stored. Refused unless every promoted group has its desired healthy canaries
        (Nomad's UpdateDeploymentPromotion); `now_ns` restarts the groups' progress deadlines."""
        deployment = self.active_deployment(deployment_id)
        wanted = set(groups)

        def chosen(group: str) -> bool:
            return all_groups or group in wanted

        canaries = {c for state in deployment.task_groups.values() for c in state.placed_canaries}
        healthy: dict[str, int] = {}
        promotable: list[Allocation] = []
        for alloc in self._tables[ALLOCS].iter_members("deployment", deployment_id):
            if alloc.id not in canaries or not chosen(alloc.task_group):
                continue
            status = alloc.deployment_status
            if alloc.terminal() or status is None or not status.healthy:
                continue
            healthy[alloc.task_group] = healthy.get(alloc.task_group, 0) + 1
            promotable.append(alloc)
        errors = [f'Task group "{name}" has {healthy.get(name, 0)}/{state.desired_canaries} healthy allocations'
                  for name, state in sorted(deployment.task_groups.items())
                  if chosen(name) and state.desired_canaries and healthy.get(name, 0) < state.desired_canaries]
        if errors:
            raise StateError("; ".join(errors))

        with self._writing(index) as w:
            work = self._deployment_for_update(w, deployment_id)
            assert work is not None
            for name, state in work.task_groups.items():
                if not chosen(name):
                    continue
                if now_ns and state.progress_deadline > 0 and state.require_progress_by:
                    state.require_progress_by = rfc3339_ns(now_ns + state.progress_deadline)
                state.promoted = True
            needs_promotion = any(s.desired_canaries > 0 and not s.promoted for s in work.task_groups.values())
            if work.status == DEPLOYMENT_RUNNING and not needs_promotion:
                work.status_description = DEPLOYMENT_DESCRIPTION_RUNNING
            promoted = []
            for alloc in promotable:
                status = replace(alloc.deployment_status, canary=False, modify_index=index)
                new = replace(alloc, deployment_status=status, modify_index=index, alloc_modify_index=index)
                self._store_alloc(w, new, alloc)
                promoted.append(self._tables[ALLOCS].get(alloc.id))
        return promoted

    def set_alloc_health(self, index: int, deployment_id: str, healthy_ids: Iterable[str] = (),
                         unhealthy_ids: Iterable[str] = (), timestamp: str = "") -> None:
        """Record the deployment watcher's health verdicts (Nomad's UpdateDeploymentAllocHealth); refused
        whole when the deployment is not active or an allocation is unknown or belongs elsewhere."""
        self.active_deployment(deployment_id)
        verdicts = [(i, True) for i in healthy_ids] + [(i, False) for i in unhealthy_ids]
        table = self._tables[ALLOCS]
        for alloc_id, _ in verdicts:
            alloc = table.get(alloc_id)
            if alloc is None:
                raise NotFoundError(f'unknown alloc "{alloc_id}"')
            if alloc.deployment_id != deployment_id:
                raise StateError(f'alloc "{alloc_id}" is not part of deployment "{deployment_id}"')
        if not verdicts:
            return
        with self._writing(index) as w:
            for alloc_id, healthy in verdicts:
                existing = table.get(alloc_id)  # read again: an ID named twice sees its first verdict
                status = existing.deployment_status or AllocDeploymentStatus()
                status = replace(status, healthy=healthy, timestamp=timestamp, modify_index=index)
                self._store_alloc(w, replace(existing, deployment_status=status, modify_index=index), existing)

    # -- nodes ---------------------------------------------------------------------------------------

    def touch_node(self, index: int, node_id: str, *, updated_at: int | None = None,
                   event: NodeEvent | None = None) -> Node:
        """Stamp a node's status time (unix seconds) and append an event; returns the node as stored."""
        node = self._node(node_id)
        changes: dict[str, Any] = {}
        if updated_at is not None:
            changes["status_updated_at"] = updated_at
        if event is not None:
            changes["events"] = append_node_event(node.events, event, index)
        if not changes:
            return node
        self._replace_node(index, node, **changes)
        return self._node(node_id)

    # -- scheduler configuration ---------------------------------------------------------------------

    def set_scheduler_config(self, index: int, config: Mapping[str, Any], *, cas_index: int | None = None) -> bool:
        """Store the operator's scheduler configuration (API shape); with `cas_index` only if the stored
        one's ModifyIndex is that (Nomad's check-and-set: nothing stored yet never matches). Returns
        whether it was stored."""
        existing = self._tables[SCHEDULER_CONFIG].get(SCHEDULER_CONFIG_KEY)
        if cas_index is not None and (existing is None or existing.get("ModifyIndex") != cas_index):
            return False
        row = {k: v for k, v in config.items() if k not in ("CreateIndex", "ModifyIndex")}
        row["CreateIndex"] = existing["CreateIndex"] if existing is not None else index
        row["ModifyIndex"] = index
        with self._writing(index) as w:
            self._put(w, SCHEDULER_CONFIG, SCHEDULER_CONFIG_KEY, row)
        return True
