"""SimulatedCluster: every Cluster method against a 3-server, 2-client simulated cluster."""

from __future__ import annotations

import pytest

from scenarios.cluster import ClusterError
from scenarios.clusters.sim import SimulatedCluster

pytestmark = pytest.mark.sim

WEB = """
job "web" {
  datacenters = ["dc1"]
  type = "service"
  group "web" {
    count = 2
    task "sleep" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["3600"]
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"""

ALLOC_KEYS = {"ID", "Name", "NodeID", "NodeName", "JobVersion", "ClientStatus", "DesiredStatus", "TaskStates"}
NODE_KEYS = {"ID", "Name", "Status", "SchedulingEligibility", "Drain"}


def booted(seed: int = 0) -> SimulatedCluster:
    cluster = SimulatedCluster(seed=seed, servers=3, clients=2)
    cluster.wait_healthy(60)
    return cluster


def with_web(seed: int = 0) -> SimulatedCluster:
    cluster = booted(seed)
    assert cluster.run_job(WEB)
    assert cluster.wait_for(lambda: len(cluster.running("web")) == 2, 60)
    return cluster


def restarts(cluster: SimulatedCluster, alloc_id: str, task: str) -> int:
    alloc = next(a for a in cluster.allocations("web") if a["ID"] == alloc_id)
    return alloc["TaskStates"][task]["Restarts"]


def test_boot_names_and_views() -> None:
    cluster = booted()
    assert cluster.kind == "sim"
    assert cluster.servers == ("s1", "s2", "s3")
    assert cluster.clients == ("c1", "c2")
    views = cluster.leader_views()
    assert set(views) == {"s1", "s2", "s3"}
    assert cluster.leader() in cluster.servers
    assert len(set(views.values())) == 1
    nodes = cluster.nodes()
    assert sorted(n["Name"] for n in nodes) == ["c1", "c2"]
    for node in nodes:
        assert set(node) >= NODE_KEYS
        assert (node["Status"], node["SchedulingEligibility"], node["Drain"]) == ("ready", "eligible", False)
    assert cluster.node("c1")["Name"] == "c1"
    assert cluster.jobs() == []
    assert cluster.job("web") is None
    assert cluster.allocations("web") == []
    cluster.close()


def test_time_is_virtual() -> None:
    cluster = SimulatedCluster()
    start = cluster.now()
    cluster.sleep(5)
    assert cluster.now() == pytest.approx(start + 5)
    assert cluster.wait_for(lambda: 0, 2) is None
    assert cluster.now() == pytest.approx(start + 7, abs=0.1)
    assert cluster.wait_for(lambda: "yes", 2) == "yes"
    assert cluster.timed(lambda: cluster.now() >= start + 8, 5) == pytest.approx(1, abs=0.1)


def test_run_job_places_allocations_in_the_api_shape() -> None:
    cluster = with_web()
    assert cluster.jobs() == ["web"]
    job = cluster.job("web")
    assert job is not None
    assert (job["ID"], job["Version"], job["Stop"]) == ("web", 0, False)
    assert job["Status"] == "running"
    allocs = cluster.allocations("web")
    assert len(allocs) == 2
    for alloc in allocs:
        assert set(alloc) >= ALLOC_KEYS
        assert alloc["NodeName"] in cluster.clients
        assert (alloc["JobVersion"], alloc["ClientStatus"], alloc["DesiredStatus"]) == (0, "running", "run")
        assert alloc["TaskStates"]["sleep"]["State"] == "running"
        assert alloc["TaskStates"]["sleep"]["Failed"] is False
    assert [a["ID"] for a in allocs] == sorted(a["ID"] for a in allocs)


def test_run_job_refused_without_quorum_or_with_a_bad_jobspec() -> None:
    cluster = booted()
    assert not cluster.run_job('job "broken" {', timeout=1)
    cluster.kill_server("s1")
    cluster.kill_server("s2")
    start = cluster.now()
    assert not cluster.run_job(WEB, timeout=3)
    assert cluster.now() - start == pytest.approx(3, abs=0.1)
    assert set(cluster.leader_views()) == {"s3"}


def test_kill_leader_then_restart_it_as_a_follower() -> None:
    cluster = booted()
    old = cluster.leader()
    assert old is not None
    cluster.kill_server(old)
    assert old not in cluster.leader_views()
    # The survivors name the dead leader until they notice it is gone, as real followers' status/leader does.
    new = cluster.wait_for(lambda: (leader := cluster.leader()) != old and leader, 30)
    assert new is not None and new != old
    cluster.start_server(old)
    assert cluster.wait_for(lambda: len(cluster.leader_views()) == 3 and cluster.leader() == new, 30)
    assert not cluster.sim.servers()[old].is_leader


def test_partition_and_heal() -> None:
    cluster = with_web()
    old = cluster.leader()
    assert old is not None
    majority = [s for s in cluster.servers if s != old]
    cluster.partition([old], majority)
    new = cluster.wait_for(lambda: (v := cluster.leader_views()) and v[majority[0]] == v[majority[1]] != old
                           and v[majority[0]], 30)
    assert new in majority
    # The operator reaches every server, so writes go through the majority's leader.
    assert cluster.run_job(WEB.replace('"web"', '"web2"', 1), timeout=10)
    cluster.heal()
    assert cluster.wait_for(lambda: cluster.leader() is not None and len(cluster.leader_views()) == 3, 30)
    assert cluster.wait_for(lambda: len(cluster.running("web2")) == 2, 60)
    assert cluster.healthy()


def test_kill_task_restarts_it_in_place() -> None:
    cluster = with_web()
    alloc = cluster.running("web")[0]
    assert restarts(cluster, alloc["ID"], "sleep") == 0
    cluster.kill_task(alloc["ID"], "sleep")
    assert cluster.wait_for(lambda: restarts(cluster, alloc["ID"], "sleep") == 1, 60)
    assert cluster.wait_for(lambda: any(a["ID"] == alloc["ID"] for a in cluster.running("web")), 60)
    with pytest.raises(ClusterError):
        cluster.kill_task(alloc["ID"], "nope")


def test_drain_moves_allocations_off_an_ineligible_node() -> None:
    cluster = with_web()
    victim = cluster.running("web")[0]["NodeName"]
    assert cluster.drain(victim, deadline=60)
    node = cluster.node(victim)
    assert node is not None
    assert node["SchedulingEligibility"] == "ineligible"
    assert cluster.wait_for(lambda: len(cluster.running("web")) == 2
                            and all(a["NodeName"] != victim for a in cluster.running("web")), 120)
    assert cluster.node(victim)["SchedulingEligibility"] == "ineligible"


def test_lose_client_marks_it_down_and_reschedules() -> None:
    cluster = with_web()
    victim = cluster.running("web")[0]["NodeName"]
    cluster.lose_client(victim)
    took = cluster.timed(lambda: cluster.node(victim)["Status"] == "down", 120)
    # Noticed only by missed heartbeats: at least the minimum TTL, at most TTL + grace and a margin.
    assert took is not None and 5 <= took <= 60
    assert cluster.wait_for(lambda: len(cluster.running("web")) == 2
                            and all(a["NodeName"] != victim for a in cluster.running("web")), 120)
    assert not cluster.healthy()


def test_stop_all_then_start_all_keeps_the_state() -> None:
    cluster = with_web()
    before = {a["ID"] for a in cluster.running("web")}
    cluster.stop_all()
    assert cluster.leader_views() == {}
    assert cluster.leader() is None
    assert (cluster.nodes(), cluster.allocations("web"), cluster.job("web"), cluster.jobs()) == ([], [], None, [])
    assert not cluster.healthy()
    cluster.sleep(5)
    cluster.start_all()
    cluster.wait_healthy(60)
    assert cluster.jobs() == ["web"]
    assert cluster.wait_for(lambda: {a["ID"] for a in cluster.running("web")} == before, 60)
    assert cluster.violations() == []


def test_unknown_names_are_cluster_errors() -> None:
    cluster = SimulatedCluster()
    for fault in (lambda: cluster.kill_server("c1"), lambda: cluster.start_server("x"),
                  lambda: cluster.lose_client("s1"), lambda: cluster.drain("s1", 60),
                  lambda: cluster.partition(["s1"], ["zz"])):
        with pytest.raises(ClusterError):
            fault()
