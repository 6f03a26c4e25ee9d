"""Rolling update: a change to the task's config replaces allocations `update.max_parallel` at a time, never
leaving fewer than count - max_parallel running."""

from scenarios import jobs
from scenarios.steps import wait_running

COUNT = 3
MAX_PARALLEL = 1


def test_rolling_update(cluster, record):
    cluster.wait_healthy()
    assert cluster.run_job(jobs.service("roll", COUNT, max_parallel=MAX_PARALLEL, version="1"))
    wait_running(cluster, "roll", COUNT)

    assert cluster.run_job(jobs.service("roll", COUNT, max_parallel=MAX_PARALLEL, version="2"))
    fewest = COUNT

    def updated() -> bool:
        nonlocal fewest
        running = cluster.running("roll")
        fewest = min(fewest, len(running))
        return len(running) == COUNT and all(a["JobVersion"] == 1 for a in running)

    took = cluster.timed(updated, 120, interval=0.05)
    record.time("update_duration", took)
    record.fact("fewest_running", fewest)
    assert took is not None, cluster.allocations("roll")
    assert fewest >= COUNT - MAX_PARALLEL
    job = cluster.job("roll")
    assert job is not None and job["Version"] == 1
    stopped = [a for a in cluster.allocations("roll") if a["JobVersion"] == 0]
    assert len(stopped) == COUNT and all(a["DesiredStatus"] == "stop" for a in stopped), stopped
