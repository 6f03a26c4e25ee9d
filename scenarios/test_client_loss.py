"""Client loss: a client disappears silently; after its heartbeat TTL and the grace it is `down` and its
allocations are rescheduled onto the remaining client."""

from scenarios import jobs
from scenarios.steps import running_on, wait_running

COUNT = 2


def test_client_loss(cluster, record):
    cluster.wait_healthy()
    assert cluster.run_job(jobs.service("keep", COUNT))
    wait_running(cluster, "keep", COUNT)
    placed = running_on(cluster, "keep")
    lost = max(placed, key=lambda n: (placed[n], n))
    record.fact("lost_node", lost)

    cluster.lose_client(lost)
    start = cluster.fault_at
    down = cluster.wait_for(lambda: (n := cluster.node(lost)) and n["Status"] == "down", 90, interval=0.1)
    record.time("loss_to_down", cluster.now() - start if down else None)
    assert down, cluster.node(lost)

    def replaced() -> bool:
        running = cluster.running("keep")
        return len(running) == COUNT and all(a["NodeName"] != lost for a in running)

    assert cluster.wait_for(replaced, 60), cluster.allocations("keep")
    record.time("loss_to_replaced", cluster.now() - start)
    lost_allocs = [a for a in cluster.allocations("keep") if a["NodeName"] == lost]
    assert lost_allocs and all(a["ClientStatus"] == "lost" for a in lost_allocs), lost_allocs
