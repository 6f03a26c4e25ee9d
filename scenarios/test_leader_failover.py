"""Leader failover: kill -9 the leader; a survivor leads, writes go on, nothing committed is lost, and the old
leader comes back as a follower."""

from scenarios import jobs
from scenarios.steps import write_until_accepted


def test_leader_failover(cluster, record):
    cluster.wait_healthy()
    committed = [f"committed-{i}" for i in range(5)]
    for job_id in committed:
        assert cluster.run_job(jobs.write_probe(job_id)), f"{job_id} not accepted by a healthy cluster"
    old = record.fact("old_leader", cluster.leader())
    assert old is not None
    cluster.sleep(1.0)  # steady state before the fault, as LAB.md's method sleeps before the kill

    cluster.kill_server(old)
    start = cluster.fault_at  # when the kill took effect: on hosts, not the SSH round trip around it
    new = cluster.wait_for(lambda: (leader := cluster.leader()) not in (None, old) and leader, 30, interval=0.02)
    record.time("kill_to_new_leader", cluster.now() - start if new else None)
    assert new, f"no new leader after killing {old}: {cluster.leader_views()}"
    record.fact("new_leader", new)
    assert write_until_accepted(cluster, jobs.write_probe("after-failover"), 30)
    record.time("kill_to_write", cluster.now() - start)

    assert set(committed) | {"after-failover"} <= set(cluster.jobs()), cluster.jobs()

    cluster.start_server(old)

    def rejoined() -> bool:
        views = cluster.leader_views()
        return old in views and set(views.values()) == {new}

    record.time("restart_to_follower", cluster.timed(rejoined, 60, interval=0.05))
    assert cluster.leader_views().get(old) == new, cluster.leader_views()
    assert set(committed) | {"after-failover"} <= set(cluster.jobs())
