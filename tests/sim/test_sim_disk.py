"""The simulated disk: unsynced writes die with the process; Raft's guarantees survive that."""

from __future__ import annotations

import pytest

from orchestrator.raft import Entry, HardState
from orchestrator.rpc import methods
from sim.cluster import ClusterSpec, SimCluster
from sim.disk import SimDisk
from sim.scenarios import PROBE_JOB, SERVICE_JOB, boot

pytestmark = pytest.mark.sim


def test_a_crash_loses_what_was_not_synced_and_keeps_what_was():
    disk = SimDisk()
    disk.append([Entry(term=1, index=1, data=b"a")])
    disk.set_hard_state(HardState(term=1, vote="s1", commit=1))
    disk.sync()
    disk.append([Entry(term=1, index=2, data=b"b")])
    assert disk.last_index() == 2  # the process reads its own writes
    disk.crash()
    assert disk.last_index() == 1 and disk.lost_writes == 1
    assert disk.hard_state == HardState(term=1, vote="s1", commit=1)
    assert [e.data for e in disk.entries(1, 2)] == [b"a"]


def test_servers_crashed_inside_their_fsync_lose_writes_but_no_acknowledged_state():
    cluster = SimCluster(ClusterSpec(seed=4, servers=3, clients=2, disk_sync_latency=0.02))
    assert boot(cluster) is not None
    call = cluster.run_job(SERVICE_JOB % {"count": 2})
    assert call.ok
    lost = 0
    for _ in range(6):
        # Catch a server with a step in flight (persisted, not yet synced) and kill it there.
        victim = None
        for attempt in range(2000):
            if attempt % 50 == 0:  # keep writes flowing: an idle cluster persists nothing
                probe = dict(PROBE_JOB, ID=f"probe-{attempt}", Name=f"probe-{attempt}")
                cluster.call(methods.JOB_REGISTER, {"Job": probe}, timeout=30)
            cluster.run(0.001)
            busy = [sid for sid in cluster.server_ids if cluster.runtime.is_up(sid)
                    and cluster.runtime._slots[sid].busy and cluster.disks[sid].pending_writes()]
            if busy:
                victim = busy[0]
                break
        assert victim is not None
        before = cluster.disks[victim].lost_writes
        cluster.crash(victim)
        lost += cluster.disks[victim].lost_writes - before
        cluster.run(2.0)
        cluster.restart(victim)
        cluster.run(3.0)
    assert lost > 0
    assert cluster.run_until(lambda: cluster.converged("web"), 120) is not None
    assert cluster.state().job_by_id("default", "web") is not None
    assert cluster.checker.check_all(["web"]) == []
