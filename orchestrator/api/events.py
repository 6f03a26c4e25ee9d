"""The event broker: Nomad events made from every applied Raft command, kept in a ring buffer, subscribed to."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.fsm import ApplyResult
from orchestrator.state import ALLOCS, DEPLOYMENTS, NODES, StateReader
from orchestrator.structs import Allocation, Deployment, Evaluation, Job, Node

from .views import alloc_view, deployment_view, eval_view, job_view, node_view

log = logging.getLogger(__name__)

TOPIC_JOB = "Job"
TOPIC_ALLOCATION = "Allocation"
TOPIC_EVALUATION = "Evaluation"
TOPIC_DEPLOYMENT = "Deployment"
TOPIC_NODE = "Node"

DEFAULT_BUFFER = 100  # Raft indexes kept, Nomad's default event_buffer_size

Topics = Mapping[str, Iterable[str]]


@dataclass(slots=True)
class Event:
    """One event; `subject` is the struct as stored (or a plain dict for a node that is gone)."""

    topic: str
    type: str
    key: str
    namespace: str
    index: int
    subject: Any
    filter_keys: tuple[str, ...] = ()
    _api: dict[str, Any] | None = field(default=None, repr=False)

    def matches(self, topics: Mapping[str, list[str]]) -> bool:
        keys = [*topics.get(self.topic, ()), *topics.get("*", ())]
        return any(k == "*" or k == self.key or k in self.filter_keys for k in keys)

    def to_api(self) -> dict[str, Any]:
        """The event as Nomad streams it: {Topic, Type, Key, Namespace, FilterKeys, Index, Payload}."""
        if self._api is None:
            self._api = {"Topic": self.topic, "Type": self.type, "Key": self.key, "Namespace": self.namespace,
                         "FilterKeys": list(self.filter_keys) or None, "Index": self.index,
                         "Payload": {self.topic: _render(self.subject)}}
        return self._api


def _render(subject: Any) -> Any:
    if isinstance(subject, Job):
        return job_view(subject)
    if isinstance(subject, Allocation):
        return alloc_view(subject, with_job=False)  # Nomad's Allocation events carry no job
    if isinstance(subject, Evaluation):
        return eval_view(subject)
    if isinstance(subject, Deployment):
        return deployment_view(subject)
    if isinstance(subject, Node):
        return node_view(subject)
    return subject


@dataclass(frozen=True, slots=True)
class _NodeSeen:
    draining: bool
    eligibility: str
    status: str
    node: Node


class EventBroker:
    """Events of the last `size` indexes that produced any, and the subscriptions reading them.

    The agent feeds `publish(index, result, store)` after each applied command (a server's `apply_listeners`
    give `(index, ApplyResult)`; `listener(store)` adapts one). `publish` only keeps references to the changed
    objects, which the store never changes in place; an event's JSON is built once, when first read. It must
    run on the event loop's thread, as every apply does in yurt's runtimes.
    """

    def __init__(self, size: int = DEFAULT_BUFFER) -> None:
        self._buffer: deque[tuple[int, tuple[Event, ...]]] = deque(maxlen=size)
        self._wakeup = asyncio.Event()
        # Last seen versions, to tell a drain from an eligibility or status change, and to give a
        # deregistered job or node a payload. References only: stored objects are never changed in place.
        self._jobs: dict[tuple[str, str], Job] = {}
        self._nodes: dict[str, _NodeSeen] = {}

    # -- feeding ---------------------------------------------------------------------------------------

    def listener(self, store: StateReader) -> Callable[[int, ApplyResult], None]:
        """A callable for `Server.apply_listeners`: publishes each command applied to `store`."""
        return lambda index, result: self.publish(index, result, store)

    def publish(self, index: int, result: ApplyResult, store: StateReader) -> None:
        """Turn one applied command into events. Never raises: an apply listener must not stop the FSM."""
        if not result.ok or result.skipped:
            return
        try:
            events = [*self._job_events(index, result, store), *self._eval_events(index, result),
                      *self._alloc_events(index, result, store), *self._deployment_events(index, result, store),
                      *self._node_events(index, result, store)]
        except Exception:
            log.exception("event broker: could not build the events of index %d", index)
            return
        if events:
            self._buffer.append((index, tuple(events)))
            wakeup, self._wakeup = self._wakeup, asyncio.Event()
            wakeup.set()

    def _job_events(self, index: int, result: ApplyResult, store: StateReader) -> list[Event]:
        events = []
        for namespace, job_id in sorted(result.jobs):
            job = store.job_by_id(namespace, job_id)
            if job is None:
                gone = self._jobs.pop((namespace, job_id), None)
                subject: Any = gone if gone is not None else {"ID": job_id, "Namespace": namespace}
                events.append(Event(TOPIC_JOB, "JobDeregistered", job_id, namespace, index, subject))
                continue
            self._jobs[(namespace, job_id)] = job
            kind = "JobDeregistered" if job.stop else "JobRegistered"
            events.append(Event(TOPIC_JOB, kind, job_id, namespace, index, job))
        return events

    def _eval_events(self, index: int, result: ApplyResult) -> list[Event]:
        return [Event(TOPIC_EVALUATION, "EvaluationUpdated", e.id, e.namespace, index, e,
                      _keys(e.job_id, e.deployment_id)) for e in result.evals]

    def _alloc_events(self, index: int, result: ApplyResult, store: StateReader) -> list[Event]:
        if store.table_index(ALLOCS) != index:
            return []
        changed = {a.id: a for node_id in result.alloc_nodes for a in store.allocs_by_node(node_id)
                   if a.modify_index == index}
        if not changed:
            # Client updates do not list their nodes in the result (the client knows its own news): find
            # them by their modify index, node by node (no sort, unlike a full listing).
            changed = {a.id: a for node in store.nodes() for a in store.allocs_by_node(node.id)
                       if a.modify_index == index}
        events = []
        for alloc in sorted(changed.values(), key=lambda a: a.id):
            if alloc.create_index == index:
                kind = "AllocationCreated"
            elif alloc.alloc_modify_index == index:
                kind = "AllocationUpdateDesiredStatus"  # a server-side change: what the client must run
            else:
                kind = "AllocationUpdated"
            events.append(Event(TOPIC_ALLOCATION, kind, alloc.id, alloc.namespace, index, alloc,
                                _keys(alloc.job_id, alloc.deployment_id)))
        return events

    def _deployment_events(self, index: int, result: ApplyResult, store: StateReader) -> list[Event]:
        ids = set(result.deployments)
        if not ids and store.table_index(DEPLOYMENTS) == index:
            ids = {d.id for d in store.deployments() if d.modify_index == index}
        events = []
        for deployment_id in sorted(ids):
            deployment = store.deployment_by_id(deployment_id)
            if deployment is not None:  # deleted ones (garbage collection) make no event, as in Nomad
                events.append(Event(TOPIC_DEPLOYMENT, "DeploymentStatusUpdate", deployment.id,
                                    deployment.namespace, index, deployment, _keys(deployment.job_id)))
        return events

    def _node_events(self, index: int, result: ApplyResult, store: StateReader) -> list[Event]:
        ids = set(result.nodes)
        if store.table_index(NODES) == index:
            ids.update(n.id for n in store.nodes() if n.modify_index == index)
        events = []
        for node_id in sorted(ids):
            node = store.node_by_id(node_id)
            seen = self._nodes.pop(node_id, None)
            if node is None:
                subject: Any = seen.node if seen is not None else {"ID": node_id}
                events.append(Event(TOPIC_NODE, "NodeDeregistration", node_id, "", index, subject))
                continue
            now = _NodeSeen(node.drain_strategy is not None, node.scheduling_eligibility, node.status, node)
            self._nodes[node_id] = now
            if node.create_index == index or seen is None:
                kind = "NodeRegistration"
            elif seen.draining != now.draining:
                kind = "NodeDrain"
            elif seen.eligibility != now.eligibility:
                kind = "NodeEligibility"
            elif seen.status != now.status:
                kind = "NodeEvent"
            else:
                kind = "NodeRegistration"  # registered again with new attributes
            events.append(Event(TOPIC_NODE, kind, node_id, "", index, node))
        return events

    # -- reading ---------------------------------------------------------------------------------------

    @property
    def latest_index(self) -> int:
        return self._buffer[-1][0] if self._buffer else 0

    def events_from(self, index: int, topics: Topics | None = None) -> list[Event]:
        """Buffered events at `index` or later (all that are left when older ones were dropped)."""
        wanted = _normalise(topics)
        return [e for at, events in self._buffer if at >= index for e in events if e.matches(wanted)]

    async def subscribe(self, topics: Topics | None = None, index: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Events as Nomad's API shows them, from the first buffered one at or after `index` on, forever.

        `topics` maps a topic ("Job", "Node"... or "*") to the keys wanted (an ID, a job ID for allocations,
        evaluations and deployments, or "*"); None means every event. A subscriber that falls behind by
        more than the buffer continues with the oldest events still kept.
        """
        wanted = _normalise(topics)
        next_index = index
        while True:
            wakeup = self._wakeup
            batches = [(at, events) for at, events in self._buffer if at >= next_index]
            if not batches:
                await wakeup.wait()
                continue
            for at, events in batches:
                next_index = at + 1
                for event in events:
                    if event.matches(wanted):
                        yield event.to_api()


def _keys(*values: str) -> tuple[str, ...]:
    return tuple(v for v in values if v)


def _normalise(topics: Topics | None) -> dict[str, list[str]]:
    if not topics:
        return {"*": ["*"]}
    return {topic: list(keys) or ["*"] for topic, keys in topics.items()}
