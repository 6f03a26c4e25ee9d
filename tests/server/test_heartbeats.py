"""Tests for heartbeat TTLs and timers, and the two failover policies after a leader election."""

from random import Random

import pytest

from orchestrator.server.heartbeats import FailoverPolicy, HeartbeatTimers
from orchestrator.structs import Node


def timers(policy: FailoverPolicy = FailoverPolicy.BOUNDED, seed: int = 1, **kwargs) -> HeartbeatTimers:
    return HeartbeatTimers(Random(seed), failover_policy=policy, **kwargs)


def test_ttl_is_the_minimum_for_small_clusters_plus_a_stagger():
    t = timers()
    ttls = [t.ttl_for(10) for _ in range(500)]
    assert all(10.0 <= ttl < 20.0 for ttl in ttls)
    assert max(ttls) - min(ttls) > 8  # staggered over the whole [base, 2*base) range
    assert t.base_ttl(10) == 10.0 and t.max_ttl(10) == 20.0


def test_ttl_scales_with_the_node_count_to_respect_the_heartbeat_rate():
    t = timers()
    assert t.base_ttl(1000) == 20.0  # 1000 nodes / 50 per second
    assert t.base_ttl(5000) == 100.0
    ttls = [t.ttl_for(5000) for _ in range(2000)]
    assert all(100.0 <= ttl < 200.0 for ttl in ttls)
    # Average rate of 5000 nodes each heartbeating once per TTL: under 50 per second.
    assert 5000 / (sum(ttls) / len(ttls)) < 50


def test_ttl_counts_armed_timers_when_the_caller_undercounts():
    t = timers()
    for i in range(3000):
        t.reset(f"n{i}", 0, 10)
    assert t.base_ttl(10) == 60.0


def test_ttls_are_deterministic_for_a_seed():
    assert [timers(seed=3).ttl_for(100) for _ in range(3)] == [timers(seed=3).ttl_for(100) for _ in range(3)]


def test_reset_arms_the_timer_with_the_grace_and_expired_returns_each_node_once():
    t = timers()
    assert t.reset("a", 100, 15) == 125.0  # ttl 15 + grace 10
    t.reset("b", 100, 12)
    assert t.next_deadline() == 122.0
    assert t.expired(121.9) == []
    assert t.expired(122) == ["b"]
    assert t.expired(130) == ["a"]
    assert t.expired(1000) == [] and t.next_deadline() is None


def test_a_heartbeat_pushes_the_deadline_back_and_clear_forgets_the_node():
    t = timers()
    t.reset("a", 0, 10)
    t.reset("a", 15, 10)
    assert t.expired(30) == [] and t.deadline("a") == 35.0
    assert t.next_deadline() == 35.0
    t.clear("a")
    assert t.expired(100) == [] and t.next_deadline() is None and "a" not in t


def test_nomad_policy_arms_every_node_at_the_fixed_failover_ttl():
    t = timers(FailoverPolicy.NOMAD)
    nodes = [Node(id="up", status="ready"), Node(id="down", status="down"), "by-id"]
    assert t.initialize(nodes, 1000) == 2
    assert t.deadline("up") == 1300.0 and t.deadline("by-id") == 1300.0 and "down" not in t


def test_bounded_policy_arms_at_max_ttl_plus_grace_plus_allowance():
    t = timers()
    t.initialize([f"n{i}" for i in range(1000)], 1000)
    assert t.failover_delay(1000) == 40 + 10 + 10
    assert t.next_deadline() == 1060.0
    t2 = timers()
    t2.initialize(["a"], 0, grace=30)  # a larger allowance for this election
    assert t2.deadline("a") == 10 * 2 + 10 + 30


def test_initialize_keeps_a_later_deadline_from_an_early_heartbeat():
    t = timers(FailoverPolicy.NOMAD)
    t.reset("a", 1000, 500)
    t.initialize(["a", "b"], 1000)
    assert t.deadline("a") == 1510.0 and t.deadline("b") == 1300.0


def _failover(policy: FailoverPolicy, seed: int = 5) -> tuple[dict[str, float], float]:
    """1,000 nodes heartbeat an old leader until it dies at t=1000 together with node `dead`; a new leader
    is elected at t=1003. Live clients heartbeat when their TTL is due, or on their first retry (every
    2 s) once there is a leader again. Returns when each node was declared down, and the election time.
    """
    rng = Random(seed)
    n = 1000
    old = HeartbeatTimers(Random(seed + 1))
    next_beat: dict[str, float] = {}
    for i in range(n):
        last = 1000 - rng.uniform(0, old.max_ttl(n))
        next_beat[f"n{i}"] = last + old.ttl_for(n)
    del next_beat["n0"]  # the node that died with the old leader never heartbeats again
    elected = 1003.0
    new = HeartbeatTimers(Random(seed + 2), failover_policy=policy)
    new.initialize([f"n{i}" for i in range(n)], elected)
    down: dict[str, float] = {}
    now = elected
    while now < elected + 900:
        for node_id in new.expired(now):
            down[node_id] = now
        for node_id, due in list(next_beat.items()):
            if due <= now and node_id not in down:
                new.reset(node_id, now, ttl := new.ttl_for(n))
                next_beat[node_id] = now + ttl
        now += 2.0  # clients retry every 2 s; a leaderless heartbeat lands on the next retry
    return down, elected


@pytest.mark.parametrize("policy", [FailoverPolicy.BOUNDED, FailoverPolicy.NOMAD])
def test_failover_never_marks_a_live_node_down(policy):
    down, _ = _failover(policy)
    assert list(down) == ["n0"]


def test_bounded_failover_moves_a_dead_nodes_work_in_about_max_ttl_plus_20s_instead_of_300s():
    bounded, elected = _failover(FailoverPolicy.BOUNDED)
    nomad, _ = _failover(FailoverPolicy.NOMAD)
    # max_ttl(1000) = 40 s; + grace 10 s + allowance 10 s = 60 s, against Nomad's fixed 300 s.
    assert bounded["n0"] - elected == pytest.approx(60, abs=2)
    assert nomad["n0"] - elected == pytest.approx(300, abs=2)


def test_disabled_timers_arm_nothing():
    t = timers()
    t.reset("a", 0, 10)
    t.set_enabled(False)
    assert len(t) == 0 and t.next_deadline() is None
    t.reset("b", 0, 10)
    assert t.initialize(["c"], 0) == 0 and len(t) == 0


def test_the_failover_bound_counts_the_nodes_the_ttls_counted():
    # 40 nodes registered, 30 of them down: TTLs counted all 40 (base 40 / 2 per s = 20 s, up to 40 s).
    t = timers(max_per_second=2.0)
    assert t.initialize([f"n{i}" for i in range(10)], 0, node_count=40) == 10
    assert t.deadline("n0") == t.max_ttl(40) + 10 + 10 == 60
