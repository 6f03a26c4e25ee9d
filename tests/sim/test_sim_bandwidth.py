"""Bandwidth in the simulated cluster: messages have sizes, so a big snapshot install takes its time on a slow link."""

import pytest

from orchestrator.raft import Entry, Message, MessageType, Snapshot
from orchestrator.raft.records import ConfState
from orchestrator.rpc import RpcRequest, methods
from sim.cluster import ClusterSpec, SimCluster, message_size
from sim.scenarios import PROBE_JOB

pytestmark = pytest.mark.sim


def test_message_size_counts_entry_and_snapshot_data():
    heartbeat = Message(type=MessageType.HEARTBEAT, src="s1", dst="s2", term=3)
    append = Message(type=MessageType.APPEND, src="s1", dst="s2", term=3,
                     entries=(Entry(term=3, index=7, data=b"x" * 1000), Entry(term=3, index=8, data=b"y" * 500)))
    snapshot = Message(type=MessageType.SNAPSHOT, src="s1", dst="s2", term=3,
                       snapshot=Snapshot(index=9, term=3, conf=ConfState(voters=("s1",)), data=b"z" * 100_000))
    assert message_size(heartbeat) < 100
    assert 1500 < message_size(append) < 1700
    assert 100_000 < message_size(snapshot) < 100_200
    assert message_size(RpcRequest(id=1, src="c1", method=methods.STATUS_LEADER)) < 1000


def lagging_follower_catch_up(bandwidth: float, seed: int = 1) -> tuple[float | None, list[int], str]:
    """Isolate a follower, commit enough writes that the leader compacts past it, heal: the virtual seconds
    until the follower has applied everything, the sizes of the snapshots sent, and the trace hash."""
    cluster = SimCluster(ClusterSpec(seed=seed, servers=3, clients=0, bandwidth=bandwidth,
                                     server_options={"snapshot_threshold": 40, "snapshot_interval": 0}))
    snapshots: list[int] = []

    def watch(_now, _src, _dst, message, _delays) -> None:
        if type(message) is Message and message.snapshot is not None:
            snapshots.append(len(message.snapshot.data))
    cluster.runtime.on_send.append(watch)
    assert cluster.run_until(lambda: cluster.leader() is not None, 30) is not None
    lagger = next(s for s in cluster.server_ids if s != cluster.leader_id())
    cut = cluster.isolate(lagger)
    for i in range(160):
        call = cluster.wait(cluster.call(methods.JOB_REGISTER, {"Job": dict(PROBE_JOB, ID=f"j{i}", Name=f"j{i}")}))
        assert call.ok, call.error
    cluster.network.heal(cut)
    follower = cluster.servers()[lagger]
    took = cluster.run_until(lambda: (leader := cluster.leader()) is not None
                             and follower.raft.applied_index >= leader.raft.commit_index, 120, poll=0.01)
    return took, snapshots, cluster.trace.hexdigest()


def test_a_snapshot_install_takes_longer_on_a_slow_link():
    fast, fast_snapshots, _ = lagging_follower_catch_up(bandwidth=1e9)
    slow, slow_snapshots, slow_hash = lagging_follower_catch_up(bandwidth=250_000)
    assert fast is not None and slow is not None
    assert fast_snapshots and slow_snapshots  # the follower fell behind the compaction: it got a snapshot
    size = slow_snapshots[0]
    assert size > 100_000
    # The snapshot alone takes size/bandwidth to cross the slow link; on the fast one it is nearly free.
    assert slow >= fast + 0.9 * size / 250_000
    assert lagging_follower_catch_up(bandwidth=250_000)[2] == slow_hash  # same seed, same run


def test_lossy_links_from_the_spec_still_elect_and_commit():
    cluster = SimCluster(ClusterSpec(seed=2, servers=3, clients=1, loss=0.05, latency=0.002, bandwidth=10e6))
    assert cluster.network.link_data("s1", "s2")["loss"] == 0.05
    assert cluster.run_until(lambda: cluster.leader() is not None, 60) is not None
    call = cluster.wait(cluster.call(methods.JOB_REGISTER, {"Job": PROBE_JOB}), 60)
    assert call.ok, call.error
    assert cluster.network.dropped_lost > 0


def test_sim_run_takes_link_settings(capsys):
    import json

    from orchestrator.cli import sim as sim_cli

    assert sim_cli.main(["run", "task-kill", "--seed", "2", "--clients", "2", "--loss", "0.01",
                         "--bandwidth", "1e6", "--latency", "0.002", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ok"] is True
