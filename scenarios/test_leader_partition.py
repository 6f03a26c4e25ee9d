"""The leader partitioned into a minority: it steps down, the majority elects and takes writes, the old leader
takes none; after the heal nothing committed is lost and one leader remains."""

from scenarios import jobs
from scenarios.steps import require, write_until_accepted


def test_leader_partitioned_into_minority(cluster, record):
    cluster.wait_healthy()
    assert cluster.run_job(jobs.write_probe("before-partition"))
    old = cluster.leader()
    assert old is not None
    majority = [s for s in cluster.servers if s != old]
    # Clients stay with the majority, as a leader's rack switch failing would leave them.
    rest = list(dict.fromkeys(a for a in (*majority, *cluster.clients) if a != old))

    require(cluster.partition, [old], rest)
    start = cluster.fault_at  # once the rules are in place

    def majority_leader() -> str | None:
        views = cluster.leader_views()
        seen = {views.get(s) for s in majority if s in views}
        return seen.pop() if len(seen) == 1 and None not in seen and old not in seen else None

    new = cluster.wait_for(majority_leader, 30, interval=0.02)
    record.time("partition_to_majority_leader", cluster.now() - start if new else None)
    assert new in majority, cluster.leader_views()
    assert write_until_accepted(cluster, jobs.write_probe("during-partition"), 30)
    record.time("partition_to_write", cluster.now() - start)

    stepped = cluster.wait_for(lambda: cluster.leader_views().get(old, old) != old, 30, interval=0.02)
    record.time("partition_to_old_leader_steps_down", cluster.now() - start if stepped else None)
    assert stepped, f"{old} still believes it leads: {cluster.leader_views()}"
    # No split brain: a write sent to the old leader alone is never accepted while it is cut off.
    refused = not cluster.run_job(jobs.write_probe("split-brain"), timeout=3.0, via=old)
    record.fact("minority_write_refused", refused)
    assert refused

    cluster.heal()
    start = cluster.fault_at
    healed = cluster.wait_for(lambda: set(cluster.leader_views().values()) == {new}
                              and len(cluster.leader_views()) == len(cluster.servers), 30)
    record.time("heal_to_one_leader", cluster.now() - start if healed else None)
    assert healed, cluster.leader_views()
    found = set(cluster.jobs())
    assert {"before-partition", "during-partition"} <= found, found
    assert "split-brain" not in found
