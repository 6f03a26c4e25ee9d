"""Nomad's blocked evals tracker, sans-IO: evaluations waiting for capacity, released by class, node or retry."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from orchestrator.state import StateReader
from orchestrator.structs import Evaluation
from orchestrator.structs.evaluation import EVAL_PENDING, TRIGGER_MAX_PLANS

from .leadership import LeaderOnly

# Nomad's leader retries evaluations blocked by plan failures this often (failedEvalUnblockInterval).
FAILED_EVAL_UNBLOCK_INTERVAL = 60.0

# (namespace, job id, node id): system evaluations may block once per node, every other kind once per job.
TrackKey = tuple[str, str, str]


@dataclass(slots=True)
class BlockedStats:
    total_blocked: int = 0
    total_escaped: int = 0
    total_captured: int = 0
    total_system: int = 0  # system evaluations blocked on one node (also counted as captured or escaped)
    total_quota_limit: int = 0  # yurt has no quotas; kept for the shape of Nomad's stats

    def to_api(self) -> dict[str, Any]:
        return {"TotalBlocked": self.total_blocked, "TotalEscaped": self.total_escaped,
                "TotalQuotaLimit": self.total_quota_limit}


@dataclass(slots=True)
class _Blocked:
    evaluation: Evaluation
    key: TrackKey
    seq: int
    bucket: frozenset[str] | None  # classes it is ineligible for; None when escaped


def _track_key(evaluation: Evaluation) -> TrackKey:
    node = evaluation.node_id if evaluation.type == "system" else ""
    return (evaluation.namespace, evaluation.job_id, node)


def _latest_index(evaluation: Evaluation) -> int:
    return max(evaluation.create_index, evaluation.snapshot_index)


def _released(evaluation: Evaluation) -> Evaluation:
    """A copy to hand back to the broker: pending again, the input left untouched."""
    return replace(evaluation, status=EVAL_PENDING)


class BlockedEvals(LeaderOnly):
    """Evaluations the scheduler could not fully place, held until capacity may have appeared.

    An evaluation records which computed node classes it found eligible or ineligible. A capacity
    change on class C releases every evaluation not explicitly ineligible for C (eligible, or never saw
    C), plus every evaluation whose constraints escaped computed classes. Captured evaluations are
    bucketed by their set of ineligible classes, so an unblock costs O(buckets + released) rather than
    O(blocked): jobs sharing constraints share a bucket.

    Only one blocked evaluation per job is kept (per job and node for system evaluations): the newer
    (by max(create, snapshot index)) wins and the other is a duplicate for the leader to cancel.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self._enabled = enabled
        self._reset()

    def _reset(self) -> None:
        self._seq = 0
        self._by_id: dict[str, _Blocked] = {}
        self._by_key: dict[TrackKey, str] = {}
        self._keys_by_job: dict[tuple[str, str], dict[TrackKey, None]] = {}
        self._escaped: dict[str, None] = {}
        self._buckets: dict[frozenset[str], dict[str, None]] = {}
        self._by_node: dict[str, dict[str, None]] = {}  # system evaluations blocked on a node
        # The latest index at which each class was unblocked: an evaluation planned on an older
        # snapshot may have missed that capacity (Nomad's unblockIndexes).
        self._unblock_indexes: dict[str, int] = {}
        self._duplicates: list[Evaluation] = []

    # -- leadership ----------------------------------------------------------------------------------

    def flush(self) -> None:
        self._reset()

    def restore_from(self, state: StateReader) -> list[Evaluation]:
        """Track every blocked evaluation of the store, oldest first; returns any to enqueue now."""
        ready = []
        for evaluation in sorted(state.blocked_evals(), key=lambda e: (e.create_index, e.id)):
            released = self.block(evaluation)
            if released is not None:
                ready.append(released)
        return ready

    # -- blocking ------------------------------------------------------------------------------------

    def block(self, evaluation: Evaluation) -> Evaluation | None:
        """Track a blocked evaluation until capacity may fit it.

        Returns a pending copy to enqueue right away when the evaluation missed an unblock (its
        snapshot predates an unblock of a class it could use); None when it is now blocked, or when it
        lost to a newer blocked evaluation of its job (then it is among `take_duplicates()`).
        """
        if not self._enabled:
            return None
        key = _track_key(evaluation)
        existing_id = self._by_key.get(key)
        if existing_id == evaluation.id:
            return None  # the same evaluation upserted again
        if existing_id is not None:
            existing = self._by_id[existing_id].evaluation
            if _latest_index(existing) > _latest_index(evaluation):
                self._duplicates.append(evaluation)
                return None
            self._remove(existing_id)
            self._duplicates.append(existing)
        if self._missed_unblock(evaluation):
            return _released(evaluation)
        self._seq += 1
        escaped = evaluation.escaped_computed_class
        bucket = None if escaped else frozenset(c for c, ok in evaluation.class_eligibility.items() if not ok)
        self._by_id[evaluation.id] = _Blocked(evaluation, key, self._seq, bucket)
        self._by_key[key] = evaluation.id
        self._keys_by_job.setdefault(key[:2], {})[key] = None
        if bucket is None:
            self._escaped[evaluation.id] = None
        else:
            self._buckets.setdefault(bucket, {})[evaluation.id] = None
        if key[2]:
            self._by_node.setdefault(key[2], {})[evaluation.id] = None
        return None

    def _missed_unblock(self, evaluation: Evaluation) -> bool:
        # The index of the state the scheduler planned against; without one, the index the evaluation
        # was committed at bounds it from above. With neither nothing can be told, and assuming "missed"
        # would bounce the evaluation between the broker and this tracker forever.
        snapshot = evaluation.snapshot_index or evaluation.create_index
        if not snapshot:
            return False
        latest = 0
        for computed_class, index in self._unblock_indexes.items():
            latest = max(latest, index)
            if snapshot >= index:
                continue
            # Eligible, or never seen (the class appeared after the scheduler's snapshot): it may fit.
            if evaluation.class_eligibility.get(computed_class, True):
                return True
        return evaluation.escaped_computed_class and snapshot < latest

    def untrack(self, namespace: str, job_id: str) -> None:
        """Forget the job's blocked evaluations: the job was deregistered, or a newer evaluation of
        it placed everything (the state store cancels the blocked ones in the same write)."""
        for key in list(self._keys_by_job.get((namespace, job_id), ())):
            eval_id = self._by_key.get(key)
            if eval_id is not None:
                self._remove(eval_id)

    def _remove(self, eval_id: str) -> Evaluation:
        entry = self._by_id.pop(eval_id)
        key = entry.key
        del self._by_key[key]
        job_keys = self._keys_by_job[key[:2]]
        del job_keys[key]
        if not job_keys:
            del self._keys_by_job[key[:2]]
        if entry.bucket is None:
            del self._escaped[eval_id]
        else:
            bucket = self._buckets[entry.bucket]
            del bucket[eval_id]
            if not bucket:
                del self._buckets[entry.bucket]
        if key[2]:
            on_node = self._by_node[key[2]]
            del on_node[eval_id]
            if not on_node:
                del self._by_node[key[2]]
        return entry.evaluation

    def _release(self, eval_ids: list[str]) -> list[Evaluation]:
        """Remove and return pending copies, in the order the evaluations were blocked."""
        eval_ids.sort(key=lambda i: self._by_id[i].seq)
        return [_released(self._remove(eval_id)) for eval_id in eval_ids]

    # -- unblocking ----------------------------------------------------------------------------------

    def unblock(self, computed_class: str, index: int) -> list[Evaluation]:
        """Capacity changed on nodes of `computed_class` at Raft index `index`: the evaluations that
        may now fit, as pending copies to enqueue."""
        if not self._enabled:
            return []
        if index > self._unblock_indexes.get(computed_class, -1):
            self._unblock_indexes[computed_class] = index
        released = list(self._escaped) if computed_class else []
        for ineligible, members in self._buckets.items():
            if computed_class not in ineligible:
                released.extend(members)
        return self._release(released)

    def unblock_node(self, node_id: str, index: int) -> list[Evaluation]:
        """Capacity changed on one node: system evaluations blocked on it may fit now."""
        if not self._enabled:
            return []
        return self._release(list(self._by_node.get(node_id, ())))

    def unblock_failed(self) -> list[Evaluation]:
        """Evaluations blocked because their plans kept failing (`max-plan-attempts`): the leader
        retries them every FAILED_EVAL_UNBLOCK_INTERVAL, as Nomad does."""
        if not self._enabled:
            return []
        failed = [i for i, e in self._by_id.items() if e.evaluation.triggered_by == TRIGGER_MAX_PLANS]
        return self._release(failed)

    def take_duplicates(self) -> list[Evaluation]:
        """Blocked evaluations superseded by a newer one of the same job: the leader cancels them."""
        duplicates, self._duplicates = self._duplicates, []
        return duplicates

    # -- introspection -------------------------------------------------------------------------------

    def get(self, namespace: str, job_id: str, node_id: str = "") -> Evaluation | None:
        eval_id = self._by_key.get((namespace, job_id, node_id))
        return self._by_id[eval_id].evaluation if eval_id is not None else None

    def __contains__(self, eval_id: object) -> bool:
        return eval_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def stats(self) -> BlockedStats:
        return BlockedStats(total_blocked=len(self._by_id), total_escaped=len(self._escaped),
                            total_captured=len(self._by_id) - len(self._escaped),
                            total_system=sum(len(v) for v in self._by_node.values()))

    def blocked(self) -> list[Evaluation]:
        """Every tracked evaluation, in the order it was blocked."""
        return [e.evaluation for e in sorted(self._by_id.values(), key=lambda e: e.seq)]

