"""Tests for the eval broker: ordering, one outstanding evaluation per job, nacks, delays, delivery limit."""

from random import Random

import pytest

from orchestrator.server.broker import EvalBroker, NotOutstandingError, TokenMismatchError
from orchestrator.state import StateStore
from orchestrator.structs import Evaluation

ALL = ("service", "batch", "system", "sysbatch", "_core")


def ev(eval_id: str, job: str = "", *, priority: int = 50, type: str = "service", index: int = 1,
       **fields) -> Evaluation:
    return Evaluation(id=eval_id, job_id=job or f"job-{eval_id}", priority=priority, type=type,
                      create_index=index, modify_index=index, **fields)


def broker(**kwargs) -> EvalBroker:
    return EvalBroker(Random(7), **kwargs)


def drain(b: EvalBroker, now: float = 0.0, schedulers=ALL) -> list[str]:
    out = []
    while (item := b.dequeue(schedulers, now)) is not None:
        out.append(item[0].id)
        b.ack(item[0].id, item[1])
    return out


def test_higher_priority_first_then_creation_order():
    b = broker()
    b.enqueue(ev("low", priority=10, index=1), 0)
    b.enqueue(ev("mid-late", priority=50, index=5), 0)
    b.enqueue(ev("mid-early", priority=50, index=3), 0)
    b.enqueue(ev("high", priority=90, index=9), 0)
    assert drain(b) == ["high", "mid-early", "mid-late", "low"]


def test_each_scheduler_type_has_its_own_queue():
    b = broker()
    b.enqueue(ev("svc", type="service", priority=90), 0)
    b.enqueue(ev("bat", type="batch", priority=10), 0)
    evaluation, _ = b.dequeue(["batch"], 0)
    assert evaluation.id == "bat"
    assert b.dequeue(["batch", "system"], 0) is None
    assert b.dequeue(["service"], 0)[0].id == "svc"


def test_equal_priorities_across_queues_are_chosen_deterministically_from_the_seed():
    def order(seed: int) -> list[str]:
        b = EvalBroker(Random(seed))
        for i in range(6):
            b.enqueue(ev(f"s{i}", type="service", index=i), 0)
            b.enqueue(ev(f"b{i}", type="batch", index=i), 0)
        return drain(b)

    assert order(1) == order(1)
    assert {e[0] for e in order(1)} == {"s", "b"}


def test_tokens_come_from_the_injected_rng():
    tokens = []
    for _ in range(2):
        b = broker()
        b.enqueue(ev("a"), 0)
        tokens.append(b.dequeue(ALL, 0)[1])
    assert tokens[0] == tokens[1] and len(tokens[0]) == 36


def test_one_outstanding_evaluation_per_job():
    b = broker()
    b.enqueue(ev("first", "web", index=1), 0)
    b.enqueue(ev("second", "web", index=2), 0)
    b.enqueue(ev("other", "api", index=3), 0)
    first, token = b.dequeue(ALL, 0)
    assert first.id == "first"
    assert b.dequeue(ALL, 0)[0].id == "other"  # web's second waits, another job does not
    assert b.dequeue(ALL, 0) is None
    assert b.stats().total_pending == 1
    b.ack("first", token)
    assert b.dequeue(ALL, 0)[0].id == "second"


def test_ack_releases_the_best_pending_evaluation_and_marks_the_rest_cancelable():
    b = broker()
    b.enqueue(ev("running", "web", index=1), 0)
    running, token = b.dequeue(ALL, 0)
    b.enqueue(ev("old", "web", index=2), 0)
    b.enqueue(ev("newest", "web", index=4), 0)
    b.enqueue(ev("newer", "web", index=3), 0)
    b.enqueue(ev("urgent", "web", priority=80, index=2), 0)
    b.ack(running.id, token)
    assert b.dequeue(ALL, 0)[0].id == "urgent"  # highest priority, then the most recently modified
    assert sorted(e.id for e in b.take_cancelable()) == ["newer", "newest", "old"]
    assert b.take_cancelable() == []
    assert b.stats().total_pending == 0


def test_ack_and_nack_check_the_token():
    b = broker()
    b.enqueue(ev("a"), 0)
    _, token = b.dequeue(ALL, 0)
    assert b.outstanding("a") == token
    with pytest.raises(TokenMismatchError):
        b.ack("a", "wrong")
    with pytest.raises(NotOutstandingError):
        b.nack("missing", token, 0)
    b.ack("a", token)
    assert b.outstanding("a") is None
    with pytest.raises(NotOutstandingError):
        b.ack("a", token)


def test_nack_redelivers_after_the_initial_then_subsequent_delay():
    b = broker()
    b.enqueue(ev("a"), 0)
    _, token = b.dequeue(ALL, 0)
    b.nack("a", token, 10)
    assert b.dequeue(ALL, 10.5) is None
    assert b.next_deadline() == 11.0  # initial_nack_delay = 1 s
    _, token = b.dequeue(ALL, 11)
    b.nack("a", token, 12)
    assert b.next_deadline() == 32.0  # subsequent_nack_delay = 20 s
    assert b.dequeue(ALL, 31.9) is None
    assert b.dequeue(ALL, 32)[0].id == "a"


def test_a_nacked_evaluation_keeps_its_job_slot_while_it_waits():
    b = broker()
    b.enqueue(ev("a", "web", index=1), 0)
    _, token = b.dequeue(ALL, 0)
    b.nack("a", token, 0)
    b.enqueue(ev("b", "web", index=2), 0)
    assert b.dequeue(ALL, 0.5) is None
    assert b.dequeue(ALL, 1)[0].id == "a"


def test_unacked_evaluation_is_nacked_after_the_nack_timeout():
    b = broker()
    b.enqueue(ev("a"), 0)
    _, token = b.dequeue(ALL, 100)
    assert b.next_deadline() == 160.0
    assert b.tick(159.9) == []
    assert b.tick(160) == ["a"]
    assert b.outstanding("a") is None
    with pytest.raises(NotOutstandingError):
        b.ack("a", token)  # the worker was too slow: its token is dead
    _, token2 = b.dequeue(ALL, 161)
    assert token2 != token


def test_outstanding_reset_and_pause_move_the_nack_timer():
    b = broker()
    b.enqueue(ev("a"), 0)
    _, token = b.dequeue(ALL, 0)
    b.outstanding_reset("a", token, 50)
    assert b.tick(60) == [] and b.next_deadline() == 110.0
    b.pause_nack_timeout("a", token)
    assert b.tick(1000) == [] and b.next_deadline() is None
    b.resume_nack_timeout("a", token, 1000)
    assert b.tick(1060) == ["a"]


def test_delivery_limit_sends_the_evaluation_to_failed_and_frees_its_job():
    b = broker(delivery_limit=3)
    b.enqueue(ev("bad", "web", index=1), 0)
    now = 0.0
    for _ in range(3):
        now += 100
        evaluation, token = b.dequeue(ALL, now)
        assert evaluation.id == "bad"
        b.enqueue(ev(f"next-{now}", "web", index=int(now)), now)
        b.nack("bad", token, now)
    assert [e.id for e in b.take_failed()] == ["bad"]
    assert b.take_failed() == []
    assert b.dequeue(ALL, now)[0].id == "next-300.0"  # the newest pending one is released
    assert [e.id for e in b.take_cancelable()] == ["next-200.0", "next-100.0"]


def test_evaluation_with_wait_until_is_held_until_then():
    b = broker()
    b.enqueue(ev("later", wait_until=50 * 10**9), 10)
    b.enqueue(ev("now"), 10)
    assert drain(b, 10) == ["now"]
    assert b.next_deadline() == 50.0
    assert b.stats().total_waiting == 1
    assert b.dequeue(ALL, 49) is None
    b.tick(50)
    assert b.stats().by_scheduler["service"].ready == 1
    assert drain(b, 50) == ["later"]


def test_wait_until_in_the_past_is_ready_at_once():
    b = broker()
    b.enqueue(ev("past", wait_until=5 * 10**9), 10)
    assert drain(b, 10) == ["past"]


def test_duplicate_enqueue_is_ignored():
    b = broker()
    b.enqueue(ev("a"), 0)
    b.enqueue(ev("a"), 0)
    _, token = b.dequeue(ALL, 0)
    b.enqueue(ev("a"), 0)  # the FSM applying the same evaluation again while it is being processed
    b.ack("a", token)
    assert b.dequeue(ALL, 0) is None


def test_requeue_with_token_waits_for_the_ack_and_is_dropped_on_nack():
    b = broker()
    b.enqueue(ev("a"), 0)
    _, token = b.dequeue(ALL, 0)
    b.enqueue(ev("a"), 0, token=token)
    assert b.dequeue(ALL, 0) is None
    b.ack("a", token)
    evaluation, token = b.dequeue(ALL, 0)
    assert evaluation.id == "a"
    b.enqueue(ev("a"), 0, token=token)
    b.nack("a", token, 0)
    assert b.dequeue(ALL, 5)[0].id == "a"  # the nack's redelivery, not the dropped requeue
    assert len(b) == 1


def test_stats_count_by_scheduler():
    b = broker()
    b.enqueue(ev("s1", "web", index=1), 0)
    b.enqueue(ev("s2", "web", index=2), 0)
    b.enqueue(ev("b1", type="batch"), 0)
    b.enqueue(ev("d1", type="system", wait_until=99 * 10**9), 0)
    b.dequeue(["service"], 0)
    stats = b.stats()
    assert (stats.total_ready, stats.total_unacked, stats.total_pending, stats.total_waiting) == (1, 1, 1, 1)
    assert stats.by_scheduler["service"].unacked == 1 and stats.by_scheduler["service"].pending == 1
    assert stats.by_scheduler["batch"].ready == 1 and stats.by_scheduler["system"].waiting == 1
    assert stats.to_api()["ByScheduler"]["batch"] == {"Ready": 1, "Unacked": 0}


def test_disabled_broker_holds_nothing_and_flush_forgets_everything():
    b = broker()
    b.enqueue(ev("a"), 0)
    b.dequeue(ALL, 0)
    b.enqueue(ev("b", wait_until=10**10), 0)
    b.set_enabled(False)
    assert len(b) == 0 and b.next_deadline() is None
    b.enqueue(ev("c"), 0)
    assert b.dequeue(ALL, 0) is None
    b.set_enabled(True)
    b.enqueue(ev("a"), 0)
    assert drain(b) == ["a"]


def test_restore_from_state_enqueues_pending_evaluations():
    store = StateStore()
    store.upsert_evals(5, [Evaluation(id="p1", job_id="a"), Evaluation(id="done", job_id="b", status="complete"),
                           Evaluation(id="blk", job_id="c", status="blocked")])
    store.upsert_evals(6, [Evaluation(id="p2", job_id="d", priority=70)])
    b = broker()
    assert b.restore_from(store, 0) == 2
    assert drain(b) == ["p2", "p1"]
