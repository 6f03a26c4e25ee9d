"""Node drain with a deadline: service allocations move to the other client `migrate.max_parallel` at a time,
a batch allocation is left to finish before the deadline, the system job's allocation is stopped last (as
Nomad's drainer does without -ignore-system), and the drained node ends ineligible."""

from scenarios import jobs
from scenarios.steps import running_on, summary, wait_running

COUNT = 3
MAX_PARALLEL = 1
DEADLINE = 60.0


def test_node_drain(cluster, record):
    cluster.wait_healthy()
    assert len(cluster.clients) >= 2, "a drain needs another client to move to"
    assert cluster.run_job(jobs.service("web", COUNT, max_parallel=MAX_PARALLEL))
    wait_running(cluster, "web", COUNT)
    placed = running_on(cluster, "web")
    drained = max(placed, key=lambda n: (placed[n], n))  # the node holding the most: the most to move
    record.fact("drained_node", drained)
    record.fact("placed_before", placed)
    assert cluster.run_job(jobs.system("shipper"))
    assert cluster.wait_for(lambda: len(cluster.running("shipper")) == len(cluster.clients), 30), \
        cluster.allocations("shipper")
    # A batch job pinned to the drained node: the drain lets it run to completion rather than moving it.
    assert cluster.run_job(jobs.batch("report", 4, node=drained))
    assert cluster.wait_for(lambda: cluster.running("report"), 30), cluster.allocations("report")

    start = cluster.now()
    assert cluster.drain(drained, DEADLINE)
    most_moving = 0
    system_stopped_early = False

    def system_alive_on_drained() -> bool:
        return any(a["NodeName"] == drained and a["DesiredStatus"] == "run" for a in cluster.allocations("shipper"))

    def moved() -> bool:
        nonlocal most_moving, system_stopped_early
        allocs = cluster.allocations("web")
        system_stopped_early = system_stopped_early or not system_alive_on_drained()
        # Replacements placed but not yet running: what the drainer has in flight at once.
        moving = [a for a in allocs if a["DesiredStatus"] == "run" and a["ClientStatus"] == "pending"]
        most_moving = max(most_moving, len(moving))
        running = [a for a in allocs if a["DesiredStatus"] == "run" and a["ClientStatus"] == "running"]
        return len(running) == COUNT and all(a["NodeName"] != drained for a in running)

    took = cluster.timed(moved, DEADLINE + 30, interval=0.05)
    record.time("drain_to_moved", took)
    record.fact("most_in_flight", most_moving)
    assert took is not None, summary(cluster.allocations("web"))
    assert most_moving <= MAX_PARALLEL
    record.fact("system_stopped_before_services_moved", system_stopped_early)
    assert not system_stopped_early, cluster.allocations("shipper")

    def done() -> bool:
        node = cluster.node(drained)
        return bool(node) and not node["Drain"] and node["SchedulingEligibility"] == "ineligible"

    record.time("drain_to_complete", cluster.timed(done, DEADLINE + 30, interval=0.1) and cluster.now() - start)
    node = cluster.node(drained)
    assert node and node["SchedulingEligibility"] == "ineligible" and not node["Drain"], node
    assert not system_alive_on_drained(), cluster.allocations("shipper")  # stopped last, but stopped
    (batch,) = cluster.allocations("report")
    record.fact("batch_status", batch["ClientStatus"])
    assert batch["ClientStatus"] == "complete" and batch["NodeName"] == drained, batch
