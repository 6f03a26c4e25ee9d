"""Task and container kill recovery, seed 004: a killed task restarts per its restart policy; once the attempts
are spent the allocation fails and is rescheduled, and the count is restored. Once with a process (raw_exec),
once with a container (docker: its init killed on the host, as `docker kill` does)."""

import pytest

from scenarios import jobs
from scenarios.steps import restarts, summary, wait_running

ATTEMPTS = 2


def kill_recovery(cluster, record, hcl: str, job_id: str) -> None:
    cluster.wait_healthy()
    assert cluster.run_job(hcl)
    (alloc,) = wait_running(cluster, job_id, 1)
    alloc_id = alloc["ID"]

    def restarted(n: int):
        def check():
            mine = [a for a in cluster.running(job_id) if a["ID"] == alloc_id]
            return mine and restarts(mine[0], "app") >= n and mine[0]["TaskStates"]["app"]["State"] == "running"
        return check

    for attempt in range(1, ATTEMPTS + 1):
        cluster.sleep(0.5)  # let the task settle, as someone running `docker kill` by hand would
        cluster.kill_task(alloc_id, "app")
        back = cluster.wait_for(restarted(attempt), 30)
        record.time(f"kill_to_restart_{attempt}", cluster.now() - cluster.fault_at if back else None)
        assert back, summary(cluster.allocations(job_id))

    # Attempts spent: the next kill fails the allocation and the reschedule policy places a replacement.
    cluster.sleep(0.5)
    cluster.kill_task(alloc_id, "app")
    start = cluster.fault_at

    def replaced():
        running = cluster.running(job_id)
        return running if len(running) == 1 and running[0]["ID"] != alloc_id else None

    replacement = cluster.wait_for(replaced, 60)
    record.time("kill_to_rescheduled", cluster.now() - start if replacement else None)
    assert replacement, summary(cluster.allocations(job_id))
    failed = next(a for a in cluster.allocations(job_id) if a["ID"] == alloc_id)
    assert failed["ClientStatus"] == "failed", failed
    record.fact("restarts_before_reschedule", restarts(failed, "app"))
    assert restarts(failed, "app") == ATTEMPTS


def test_task_kill_recovery(cluster, record):
    kill_recovery(cluster, record, jobs.service("recover", 1, restart_attempts=ATTEMPTS), "recover")


@pytest.mark.docker
def test_container_kill_recovery(cluster, record):
    kill_recovery(cluster, record, jobs.docker_service("boxed", 1, restart_attempts=ATTEMPTS), "boxed")
