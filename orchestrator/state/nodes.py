"""Node writes: registration, status, drain and scheduling eligibility."""

from __future__ import annotations

from orchestrator.structs import DrainStrategy, Node
from orchestrator.structs.codec import replace
from orchestrator.structs.node import ELIGIBLE, INELIGIBLE

from .core import StoreCore
from .records import NODES, NotFoundError, StateError


class NodeWrites(StoreCore):
    __slots__ = ()

    def upsert_node(self, index: int, node: Node) -> Node:
        """Register or re-register a node; returns it as stored.

        A client re-registering knows nothing of operator decisions, so an existing node keeps its
        drain strategy, eligibility and events (as in Nomad).
        """
        existing = self._tables[NODES].get(node.id)
        if existing is None:
            new = replace(node, create_index=index, modify_index=index)
        else:
            new = replace(node, create_index=existing.create_index, modify_index=index,
                          drain=existing.drain, drain_strategy=existing.drain_strategy,
                          scheduling_eligibility=existing.scheduling_eligibility,
                          events=existing.events)
        with self._writing(index) as w:
            self._put(w, NODES, new.id, new)
        return new

    def delete_node(self, index: int, node_id: str) -> None:
        self._node(node_id)
        with self._writing(index) as w:
            self._delete(w, NODES, node_id)

    def update_node_status(self, index: int, node_id: str, status: str, updated_at: int) -> None:
        """A heartbeat's verdict (`ready`, `down`...); `updated_at` is unix seconds, as Nomad's."""
        node = self._node(node_id)
        self._replace_node(index, node, status=status, status_updated_at=updated_at)

    def update_node_drain(self, index: int, node_id: str, drain_strategy: DrainStrategy | None,
                          mark_eligible: bool) -> None:
        """Start a drain (the node stops taking work) or end one, optionally making it eligible again."""
        node = self._node(node_id)
        eligibility = node.scheduling_eligibility
        if drain_strategy is not None:
            eligibility = INELIGIBLE
        elif mark_eligible:
            eligibility = ELIGIBLE
        self._replace_node(index, node, drain_strategy=drain_strategy, drain=drain_strategy is not None,
                           scheduling_eligibility=eligibility)

    def update_node_eligibility(self, index: int, node_id: str, eligibility: str) -> None:
        node = self._node(node_id)
        if eligibility not in (ELIGIBLE, INELIGIBLE):
            raise StateError(f"invalid scheduling eligibility {eligibility!r}")
        if eligibility == ELIGIBLE and node.drain_strategy is not None:
            raise StateError("can not set node's scheduling eligibility to eligible while it is draining")
        self._replace_node(index, node, scheduling_eligibility=eligibility)

    def _node(self, node_id: str) -> Node:
        node = self._tables[NODES].get(node_id)
        if node is None:
            raise NotFoundError(f"node not found: {node_id!r}")
        return node

    def _replace_node(self, index: int, node: Node, **changes: object) -> None:
        with self._writing(index) as w:
            self._put(w, NODES, node.id, replace(node, modify_index=index, **changes))
