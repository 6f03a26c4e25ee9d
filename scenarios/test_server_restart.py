"""Server restart: the whole cluster stopped and started from its data dirs loses nothing; the clients
reattach to the tasks that kept running."""

from scenarios import jobs
from scenarios.steps import wait_running


def test_server_restart(cluster, record):
    cluster.wait_healthy()
    for i in range(3):
        assert cluster.run_job(jobs.write_probe(f"kept-{i}"))
    assert cluster.run_job(jobs.service("steady", 2))
    before = {a["ID"] for a in wait_running(cluster, "steady", 2)}
    jobs_before = set(cluster.jobs())

    cluster.stop_all()
    assert cluster.wait_for(lambda: cluster.leader_views() == {} or None, 10)  # nobody answers
    start = cluster.now()
    cluster.start_all()
    record.time("start_to_healthy", cluster.wait_healthy(90))
    assert set(cluster.jobs()) == jobs_before
    after = cluster.wait_for(lambda: {a["ID"] for a in cluster.running("steady")} == before, 30)
    record.time("start_to_allocs_running", cluster.now() - start if after else None)
    assert after, cluster.allocations("steady")
