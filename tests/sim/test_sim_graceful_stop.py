"""A graceful stop of a server (SIGTERM of its agent) in the simulator: a leader hands its leadership over
first, so the survivors have a new leader sooner than after a crash; a follower just stops."""

import pytest

from sim.cluster import SimCluster
from sim.scenarios import run_scenario

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_stopping_leader_hands_over_faster_than_a_crash_elects(seed):
    graceful = run_scenario("leader-graceful-stop", seed)
    killed = run_scenario("leader-failover", seed)  # kill -9: survivors see the connections close
    died = run_scenario("leader-machine-failure", seed)  # the host dies: Raft's election timeout
    assert graceful.ok and killed.ok and died.ok, (graceful.violations, killed.violations, died.violations)
    assert graceful.notes["terms_used"] == 1
    assert graceful.timings["new_leader"] < killed.timings["new_leader"] < died.timings["new_leader"]
    assert graceful.timings["new_leader"] < 0.05
    assert run_scenario("leader-graceful-stop", seed).trace_hash == graceful.trace_hash


def booted(seed: int = 4) -> SimCluster:
    cluster = SimCluster(servers=3, clients=1, seed=seed)
    assert cluster.run_until(lambda: cluster.leader() is not None, 30) is not None
    cluster.run(2.0)
    return cluster


def test_the_leader_hands_over_to_a_caught_up_follower_then_exits():
    cluster = booted()
    old = cluster.stop_leader()
    stops: list[dict] = []
    cluster.runtime.on_fault.append(lambda _t, kind, target, details: stops.append(details) if kind == "stop" else None)
    took = cluster.run_until(lambda: not cluster.runtime.is_up(old), 5, poll=0.001)
    assert took is not None and took < 0.1
    assert cluster.run_until(lambda: cluster.leader_id() not in (None, old), 1, poll=0.001) is not None
    assert stops == [{"transferred_to": cluster.leader_id()}]
    assert cluster.checker is not None and not cluster.checker.check_all([])


def test_a_stopping_follower_does_nothing_new():
    cluster = booted()
    leader, term = cluster.leader_id(), cluster.leader().raft.term  # type: ignore[union-attr]
    follower = next(s for s in cluster.server_ids if s != leader)
    sent_before = cluster.runtime.counters.sent
    cluster.stop_gracefully(follower)
    cluster.run(0.0001)
    assert not cluster.runtime.is_up(follower)  # answered at once: nothing to hand over
    assert cluster.runtime.counters.sent == sent_before  # and it sent nothing on the way out
    cluster.run(3.0)
    assert cluster.leader_id() == leader and cluster.leader().raft.term == term  # type: ignore[union-attr]


def test_a_transfer_that_cannot_finish_stops_the_leader_by_its_deadline():
    cluster = booted()
    old = cluster.leader_id()
    assert old is not None
    for other in cluster.server_ids:
        if other != old:
            cluster.crash(other)  # no one left to take over
    cluster.run(0.1)
    cluster.stop_gracefully(old, timeout=1.0)
    took = cluster.run_until(lambda: not cluster.runtime.is_up(old), 5, poll=0.01)
    assert took is not None and 0.9 <= took <= 1.6
