"""SIGTERM of a real leader's agent: it hands its leadership over before it exits, so the survivors have a
leader at once (a kill -9 would leave them to notice the closed connections and elect)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from orchestrator.testing.local_cluster import LocalCluster, count_zero_job

pytestmark = [pytest.mark.real, pytest.mark.slow]


def test_sigterm_of_the_leader_hands_leadership_over_within_a_second():
    with LocalCluster(servers=3) as cluster:
        cluster.start()
        logs = [a.log for a in cluster.agents]
        assert cluster.wait(cluster.healthy, timeout=60) is not None, [log.read_text()[-2000:] for log in logs]
        assert cluster.register(0, count_zero_job("before-handover"))
        old = cluster.leader_index()
        assert old is not None
        old_rpc = f":{cluster.agents[old].rpc}"
        survivors = [i for i in range(3) if i != old]
        os.kill(cluster.agents[old].proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
        sent = time.perf_counter()

        def new_leader() -> bool:
            leaders = [cluster.leader(i) for i in survivors]
            return all(leader and not leader.endswith(old_rpc) for leader in leaders)
        took = cluster.wait(new_leader, timeout=10, interval=0.01)
        assert took is not None, [log.read_text()[-3000:] for log in logs]
        assert time.perf_counter() - sent < 1.0
        cluster.agents[old].proc.wait(timeout=10)  # type: ignore[union-attr]
        assert "handed leadership to" in logs[old].read_text()
        assert cluster.wait(lambda: any(cluster.register(i, count_zero_job("after-handover"), timeout=1.0)
                                        for i in survivors), timeout=5) is not None
