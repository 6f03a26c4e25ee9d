"""Nomad's eval broker, sans-IO: priority queues per scheduler, one outstanding evaluation per job, nack timers."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.scheduler.ids import new_id
from orchestrator.scheduler.ports import Rng
from orchestrator.state import StateReader
from orchestrator.structs import Evaluation
from orchestrator.structs.evaluation import EVAL_PENDING

from .leadership import LeaderOnly

# Nomad's defaults (nomad/config.go): EvalNackTimeout, EvalDeliveryLimit, Eval{Initial,Subsequent}NackDelay.
NACK_TIMEOUT = 60.0
DELIVERY_LIMIT = 3
INITIAL_NACK_DELAY = 1.0
SUBSEQUENT_NACK_DELAY = 20.0

FAILED_QUEUE = "_failed"

JobKey = tuple[str, str]


class BrokerError(Exception):
    """An ack, nack or reset the broker refuses (Nomad returns these texts to the worker)."""


class NotOutstandingError(BrokerError):
    def __init__(self, eval_id: str) -> None:
        super().__init__(f"Evaluation ID not found: {eval_id}")


class TokenMismatchError(BrokerError):
    def __init__(self, eval_id: str) -> None:
        super().__init__(f"Token does not match for Evaluation ID: {eval_id}")


@dataclass(slots=True)
class SchedulerStats:
    ready: int = 0
    unacked: int = 0
    pending: int = 0  # waiting behind another evaluation of the same job
    waiting: int = 0  # held until their wait_until or a nack delay


@dataclass(slots=True)
class BrokerStats:
    total_ready: int = 0
    total_unacked: int = 0
    total_pending: int = 0
    total_waiting: int = 0
    total_cancelable: int = 0
    total_failed: int = 0
    by_scheduler: dict[str, SchedulerStats] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """Nomad's `BrokerStats` JSON (what `/v1/agent/self` shows under stats.broker)."""
        return {"TotalReady": self.total_ready, "TotalUnacked": self.total_unacked,
                "TotalPending": self.total_pending, "TotalWaiting": self.total_waiting,
                "TotalCancelable": self.total_cancelable, "TotalFailed": self.total_failed,
                "ByScheduler": {name: {"Ready": s.ready, "Unacked": s.unacked}
                                for name, s in sorted(self.by_scheduler.items())}}


@dataclass(slots=True)
class _Unacked:
    evaluation: Evaluation
    token: str
    deadline: float | None  # None while the nack timer is paused


def _job_key(evaluation: Evaluation) -> JobKey:
    return (evaluation.namespace, evaluation.job_id)


class EvalBroker(LeaderOnly):
    """Holds evaluations until a scheduler worker takes them, with at-least-once delivery.

    Leader-only: enabled when leadership is gained (and refilled from the state store's pending
    evaluations), flushed when it is lost. All timers live in two heaps (delayed evaluations, nack
    deadlines) with lazy deletion, so every operation is O(log n); `tick(now)` fires what is due and
    `next_deadline()` says when to tick again. Tokens and the choice between equal-priority queues come
    from the injected rng, so a run is reproducible from its seed.
    """

    def __init__(self, rng: Rng, *, nack_timeout: float = NACK_TIMEOUT, delivery_limit: int = DELIVERY_LIMIT,
                 initial_nack_delay: float = INITIAL_NACK_DELAY,
                 subsequent_nack_delay: float = SUBSEQUENT_NACK_DELAY, enabled: bool = True) -> None:
        if nack_timeout < 0:
            raise ValueError("nack timeout cannot be negative")
        self.rng = rng
        self.nack_timeout = nack_timeout
        self.delivery_limit = delivery_limit
        self.initial_nack_delay = initial_nack_delay
        self.subsequent_nack_delay = subsequent_nack_delay
        self._enabled = enabled
        self._clock = 0.0  # latest `now` seen, for the calls that carry none (ack)
        self._reset()

    def _reset(self) -> None:
        self._seq = 0
        self._dequeues: dict[str, int] = {}  # every evaluation the broker holds -> times dequeued
        self._job_evals: dict[JobKey, str] = {}  # the one ready-or-unacked evaluation per job
        self._pending: dict[JobKey, list[tuple[int, int, int, Evaluation]]] = {}
        self._ready: dict[str, list[tuple[int, int, int, Evaluation]]] = {}
        self._unack: dict[str, _Unacked] = {}
        self._delayed: list[tuple[float, int, Evaluation]] = []
        self._nack_timers: list[tuple[float, int, str, str]] = []
        self._requeue: dict[str, Evaluation] = {}  # token -> evaluation to enqueue once that token is acked
        self._failed: list[Evaluation] = []
        self._cancelable: list[Evaluation] = []

    # -- leadership ----------------------------------------------------------------------------------

    def flush(self) -> None:
        self._reset()

    def restore_from(self, state: StateReader, now: float) -> int:
        """Enqueue every pending evaluation of the store, oldest first; returns how many."""
        pending = sorted((e for e in state.evals() if e.status == EVAL_PENDING),
                         key=lambda e: (e.create_index, e.id))
        self.enqueue_all(pending, now)
        return len(pending)

    # -- enqueue -------------------------------------------------------------------------------------

    def enqueue(self, evaluation: Evaluation, now: float, token: str = "") -> None:
        """Hold `evaluation` until a worker dequeues it; a duplicate enqueue is ignored.

        With `token` (a scheduler re-enqueueing the evaluation it is working on, as Nomad's blocked
        evals do on reblock) the evaluation waits until that token is acked, and is dropped on a nack.
        """
        self._observe(now)
        if not self._enabled:
            return
        if evaluation.id in self._dequeues:
            unack = self._unack.get(evaluation.id)
            if token and unack is not None and unack.token == token:
                self._requeue[token] = evaluation
            return
        self._dequeues[evaluation.id] = 0
        ready_at = self._ready_at(evaluation, now)
        if ready_at is not None:
            self._push_delayed(evaluation, ready_at)
            return
        self._enqueue_ready(evaluation)

    def enqueue_all(self, evaluations: Iterable[Evaluation], now: float) -> None:
        for evaluation in evaluations:
            self.enqueue(evaluation, now)

    def _ready_at(self, evaluation: Evaluation, now: float) -> float | None:
        """When a held evaluation may run: `wait` (relative ns) or `wait_until` (unix ns) in the future."""
        if evaluation.wait > 0:
            return now + evaluation.wait / 1e9
        if evaluation.wait_until and evaluation.wait_until / 1e9 > now:
            return evaluation.wait_until / 1e9
        return None

    def _push_delayed(self, evaluation: Evaluation, ready_at: float) -> None:
        self._seq += 1
        heapq.heappush(self._delayed, (ready_at, self._seq, evaluation))

    def _enqueue_ready(self, evaluation: Evaluation) -> None:
        """Make an evaluation ready, unless another evaluation of its job is ready or unacked."""
        key = _job_key(evaluation)
        holder = self._job_evals.get(key)
        self._seq += 1
        if holder is None:
            self._job_evals[key] = evaluation.id
        elif holder != evaluation.id:
            # Nomad's pending order: highest priority, then the most recently modified.
            heapq.heappush(self._pending.setdefault(key, []),
                           (-evaluation.priority, -evaluation.modify_index, -self._seq, evaluation))
            return
        heapq.heappush(self._ready.setdefault(evaluation.type, []),
                       (-evaluation.priority, evaluation.create_index, self._seq, evaluation))

    # -- dequeue -------------------------------------------------------------------------------------

    def dequeue(self, schedulers: Sequence[str], now: float) -> tuple[Evaluation, str] | None:
        """The highest-priority ready evaluation among `schedulers`' queues, with a fresh token.

        Equal top priorities in several queues are chosen between at random, as Nomad does, so no
        scheduler type starves another. The nack timer starts now.
        """
        self.tick(now)
        if not self._enabled:
            return None
        best: list[str] = []
        best_priority = 0
        for name in schedulers:
            queue = self._ready.get(name)
            if not queue:
                continue
            priority = -queue[0][0]
            if not best or priority > best_priority:
                best, best_priority = [name], priority
            elif priority == best_priority and name not in best:
                best.append(name)
        if not best:
            return None
        name = best[0] if len(best) == 1 else best[self.rng.randint(0, len(best) - 1)]
        evaluation = heapq.heappop(self._ready[name])[3]
        token = new_id(self.rng)
        deadline = now + self.nack_timeout
        self._unack[evaluation.id] = _Unacked(evaluation, token, deadline)
        self._push_nack_timer(evaluation.id, token, deadline)
        self._dequeues[evaluation.id] = self._dequeues.get(evaluation.id, 0) + 1
        return evaluation, token

    def _push_nack_timer(self, eval_id: str, token: str, deadline: float) -> None:
        self._seq += 1
        heapq.heappush(self._nack_timers, (deadline, self._seq, eval_id, token))

    def outstanding(self, eval_id: str) -> str | None:
        """The token of a dequeued, not yet acknowledged evaluation; None when it is not outstanding."""
        unack = self._unack.get(eval_id)
        return unack.token if unack is not None else None

    def _outstanding(self, eval_id: str, token: str) -> _Unacked:
        unack = self._unack.get(eval_id)
        if unack is None:
            raise NotOutstandingError(eval_id)
        if unack.token != token:
            raise TokenMismatchError(eval_id)
        return unack

    def outstanding_reset(self, eval_id: str, token: str, now: float) -> None:
        """Restart the nack timer: the worker is still making progress (Nomad's OutstandingReset)."""
        unack = self._outstanding(eval_id, token)
        if unack.deadline is not None:
            unack.deadline = now + self.nack_timeout
            self._push_nack_timer(eval_id, token, unack.deadline)

    def pause_nack_timeout(self, eval_id: str, token: str) -> None:
        """Stop the nack timer while the evaluation waits in an unbounded queue (the plan queue)."""
        self._outstanding(eval_id, token).deadline = None

    def resume_nack_timeout(self, eval_id: str, token: str, now: float) -> None:
        unack = self._outstanding(eval_id, token)
        unack.deadline = now + self.nack_timeout
        self._push_nack_timer(eval_id, token, unack.deadline)

    # -- ack and nack --------------------------------------------------------------------------------

    def ack(self, eval_id: str, token: str) -> None:
        """The evaluation was processed: release its job's best pending evaluation, mark the rest
        cancelable (they were created before this one was processed, so they are redundant)."""
        requeued = self._requeue.pop(token, None)
        unack = self._outstanding(eval_id, token)
        del self._unack[eval_id]
        self._dequeues.pop(eval_id, None)
        self._release_job(_job_key(unack.evaluation), eval_id)
        if requeued is not None:
            self.enqueue(requeued, self._clock)

    def nack(self, eval_id: str, token: str, now: float) -> None:
        """The worker gave up (or its nack timer fired): deliver the evaluation again after a delay,
        or, at the delivery limit, hand it to `take_failed` for the leader to mark failed."""
        self._observe(now)
        self._requeue.pop(token, None)
        unack = self._outstanding(eval_id, token)
        del self._unack[eval_id]
        evaluation = unack.evaluation
        dequeues = self._dequeues.get(eval_id, 0)
        if dequeues >= self.delivery_limit:
            # Nomad parks it in the `_failed` queue, whose reaper marks it failed and acks it at once:
            # the job is released the same way here.
            self._dequeues.pop(eval_id, None)
            self._failed.append(evaluation)
            self._release_job(_job_key(evaluation), eval_id)
            return
        delay = self._nack_delay(dequeues)
        if delay > 0:
            # The evaluation keeps its job's slot while it waits, as in Nomad.
            self._push_delayed(evaluation, now + delay)
        else:
            self._enqueue_ready(evaluation)

    def _nack_delay(self, dequeues: int) -> float:
        if dequeues <= 0:
            return 0.0
        if dequeues == 1:
            return self.initial_nack_delay
        return (dequeues - 1) * self.subsequent_nack_delay

    def _release_job(self, key: JobKey, eval_id: str) -> None:
        if self._job_evals.get(key) == eval_id:
            del self._job_evals[key]
        pending = self._pending.pop(key, None)
        if not pending:
            return
        best = heapq.heappop(pending)[3]
        self._cancelable.extend(entry[3] for entry in sorted(pending))
        self._enqueue_ready(best)

    # -- timers --------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[str]:
        """Release delayed evaluations that are due and nack those whose timer ran out; returns the
        IDs of the evaluations nacked by timeout."""
        self._observe(now)
        while self._delayed and self._delayed[0][0] <= now:
            evaluation = heapq.heappop(self._delayed)[2]
            if evaluation.id in self._dequeues and evaluation.id not in self._unack:
                self._enqueue_ready(evaluation)
        timed_out: list[str] = []
        while self._nack_timers and self._nack_timers[0][0] <= now:
            deadline, _, eval_id, token = heapq.heappop(self._nack_timers)
            unack = self._unack.get(eval_id)
            if unack is not None and unack.token == token and unack.deadline == deadline:
                self.nack(eval_id, token, now)
                timed_out.append(eval_id)
        return timed_out

    def next_deadline(self) -> float | None:
        """When `tick` must next run: the first delayed evaluation or live nack timer."""
        timers = self._nack_timers
        while timers:
            deadline, _, eval_id, token = timers[0]
            unack = self._unack.get(eval_id)
            if unack is not None and unack.token == token and unack.deadline == deadline:
                break
            heapq.heappop(timers)  # stale: acked, nacked, reset or paused since
        candidates = [t[0][0] for t in (self._delayed, timers) if t]
        return min(candidates) if candidates else None

    def _observe(self, now: float) -> None:
        if now > self._clock:
            self._clock = now

    # -- outputs for the leader ----------------------------------------------------------------------

    def take_failed(self) -> list[Evaluation]:
        """Evaluations that reached the delivery limit: the leader marks them failed and creates a
        follow-up evaluation (Nomad's reapFailedEvaluations)."""
        failed, self._failed = self._failed, []
        return failed

    def take_cancelable(self) -> list[Evaluation]:
        """Pending evaluations made redundant by a newer one of the same job being processed; the
        leader marks them canceled (Nomad's Eval.Ack does it in batches)."""
        cancelable, self._cancelable = self._cancelable, []
        return cancelable

    # -- introspection -------------------------------------------------------------------------------

    def stats(self) -> BrokerStats:
        """Counts by scheduler type; computed on demand, O(held evaluations)."""
        stats = BrokerStats(total_failed=len(self._failed), total_cancelable=len(self._cancelable))

        def of(name: str) -> SchedulerStats:
            return stats.by_scheduler.setdefault(name, SchedulerStats())

        for name, queue in self._ready.items():
            if queue:
                of(name).ready += len(queue)
                stats.total_ready += len(queue)
        for unack in self._unack.values():
            of(unack.evaluation.type).unacked += 1
            stats.total_unacked += 1
        for pending in self._pending.values():
            for entry in pending:
                of(entry[3].type).pending += 1
                stats.total_pending += 1
        for _, _, evaluation in self._delayed:
            if evaluation.id in self._dequeues and evaluation.id not in self._unack:
                of(evaluation.type).waiting += 1
                stats.total_waiting += 1
        return stats

    def __len__(self) -> int:
        """Evaluations held: ready, unacked, pending behind their job, or waiting."""
        return len(self._dequeues)
