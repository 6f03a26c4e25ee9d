"""Container (process) kill recovery, seed 004: a killed task restarts per its restart policy; once the
attempts are spent the allocation fails and is rescheduled, and the count is restored."""

from scenarios import jobs
from scenarios.steps import restarts, wait_running

ATTEMPTS = 2


def test_task_kill_recovery(cluster, record):
    cluster.wait_healthy()
    assert cluster.run_job(jobs.service("recover", 1, restart_attempts=ATTEMPTS))
    (alloc,) = wait_running(cluster, "recover", 1)
    alloc_id = alloc["ID"]

    def restarted(n: int):
        def check():
            mine = [a for a in cluster.running("recover") if a["ID"] == alloc_id]
            return mine and restarts(mine[0], "app") >= n and mine[0]["TaskStates"]["app"]["State"] == "running"
        return check

    for attempt in range(1, ATTEMPTS + 1):
        cluster.sleep(0.5)  # let the task settle, as someone running `docker kill` by hand would
        cluster.kill_task(alloc_id, "app")
        back = cluster.wait_for(restarted(attempt), 30)
        record.time(f"kill_to_restart_{attempt}", cluster.now() - cluster.fault_at if back else None)
        assert back, cluster.allocations("recover")

    # Attempts spent: the next kill fails the allocation and the reschedule policy places a replacement.
    cluster.sleep(0.5)
    cluster.kill_task(alloc_id, "app")
    start = cluster.fault_at

    def replaced():
        running = cluster.running("recover")
        return running if len(running) == 1 and running[0]["ID"] != alloc_id else None

    replacement = cluster.wait_for(replaced, 60)
    record.time("kill_to_rescheduled", cluster.now() - start if replacement else None)
    assert replacement, cluster.allocations("recover")
    failed = next(a for a in cluster.allocations("recover") if a["ID"] == alloc_id)
    assert failed["ClientStatus"] == "failed", failed
    record.fact("restarts_before_reschedule", restarts(failed, "app"))
    assert restarts(failed, "app") == ATTEMPTS
