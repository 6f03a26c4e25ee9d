"""Compaction, snapshot install on a lagging follower, and crash/restart from MemoryStorage."""

from __future__ import annotations

from random import Random

import pytest
from raft_network import Network, entry_terms

from orchestrator.raft import ConfChange, ConfChangeKind, Message, MessageType, RaftConfig, RaftNode, Role

T = MessageType


def compact(net: Network, node_id: str, keep: int = 0) -> None:
    machine = net.machines[node_id]
    net.node(node_id).compact(machine.index, machine.encode(), keep=keep)


def lagging_follower(keep: int = 0) -> Network:
    """a leads; c missed 10 proposals, and a compacted them away."""
    net = Network("abc")
    net.elect("a")
    net.propose("a", b"before")
    net.stabilize()
    net.isolate("c")
    for k in range(10):
        net.propose("a", f"p{k}".encode())
    net.stabilize()
    compact(net, "a", keep)
    return net


def test_leader_sends_a_snapshot_to_a_follower_behind_its_first_index():
    net = lagging_follower()
    a = net.node("a")
    assert a.first_index == a.applied_index + 1 == 16
    net.heal()
    net.trace = []
    readies = []
    net.checks.append(lambda _net, node_id, rd: readies.append(rd) if node_id == "c" else None)
    net.run(1)
    assert "a->c snapshot t2 snap=15/2" in net.trace
    restored = [rd.snapshot for rd in readies if rd.snapshot is not None]
    assert [(s.index, s.term, s.conf.voters) for s in restored] == [(15, 2, ("a", "b", "c"))]
    c = net.node("c")
    assert (c.commit_index, c.applied_index, c.first_index, c.voters) == (15, 15, 16, {"a", "b", "c"})
    assert net.machines["c"].data == net.machines["a"].data
    # And it simply continues from there.
    net.propose("a", b"after")
    net.stabilize()
    assert net.machines["c"].data[-1] == b"after" and entry_terms(net, "c") == entry_terms(net, "a")


def test_a_small_tail_kept_after_compaction_spares_a_snapshot():
    net = lagging_follower(keep=100)
    net.heal()
    net.trace = []
    net.run(1)
    assert not any(" snapshot " in line for line in net.trace)
    assert net.machines["c"].data == net.machines["a"].data


def test_a_lost_snapshot_is_sent_again():
    net = lagging_follower()
    net.heal()
    lost: list[Message] = []

    def drop_first_snapshot(m: Message) -> bool:
        if m.type is T.SNAPSHOT and not lost:
            lost.append(m)
            return False
        return True

    net.filter = drop_first_snapshot
    net.run(30, until=lambda: net.machines["c"].index == 15)
    assert len(lost) == 1 and net.machines["c"].data == net.machines["a"].data
    assert net.sent[T.SNAPSHOT] == 2


def test_stale_snapshot_is_ignored():
    net = lagging_follower()
    net.heal()
    net.run(1)
    c = net.node("c")
    before = entry_terms(net, "c")
    snap = net.storages["a"].snapshot()
    stale = Message(type=T.SNAPSHOT, src="a", dst="c", term=2, snapshot=snap)
    c.step(stale)
    rd = c.ready()
    assert rd.snapshot is None and [(m.type, m.index) for m in rd.messages] == [(T.APPEND_RESP, c.commit_index)]
    c.advance(rd)
    assert entry_terms(net, "c") == before


def test_compact_refuses_what_is_not_applied():
    net = Network("abc")
    net.elect("a")
    with pytest.raises(ValueError):
        net.node("a").compact(net.node("a").applied_index + 1, b"")


def test_crashed_follower_restarts_with_its_term_vote_commit_log_and_configuration():
    net = Network("abc")
    net.elect("a")
    for k in range(3):
        net.propose("a", f"p{k}".encode())
    net.stabilize()
    b = net.node("b")
    before = (b.term, b.vote, b.commit_index, entry_terms(net, "b"), b.voters)
    net.crash("b")
    b = net.restart("b")
    assert (b.term, b.vote, b.commit_index, entry_terms(net, "b"), b.voters) == before
    assert b.role is Role.FOLLOWER and b.leader_id is None
    assert net.machines["b"].data == [b"p0", b"p1", b"p2"]  # committed entries re-applied on restart


def test_restart_from_a_snapshot_starts_applying_after_it():
    net = Network("abc")
    net.elect("a")
    for k in range(5):
        net.propose("a", f"p{k}".encode())
    net.stabilize()
    compact(net, "b", keep=1)
    net.propose("a", b"p5")
    net.stabilize()
    net.crash("b")
    b = net.restart("b")
    snap = net.storages["b"].snapshot()
    assert (snap.index, b.first_index) == (9, 9)
    assert b.voters == {"a", "b", "c"} and net.machines["b"].data == [f"p{k}".encode() for k in range(6)]


def test_restarted_node_does_not_vote_twice_in_a_term():
    net = Network("abc", pre_vote=False)
    b = net.node("b")
    b.step(Message(type=T.VOTE, src="a", dst="b", term=2, index=3, log_term=1))
    net.process("b")
    net.crash("b")
    b = net.restart("b")
    b.step(Message(type=T.VOTE, src="c", dst="b", term=2, index=3, log_term=1))
    rd = b.ready()
    assert b.vote == "a" and [(m.dst, m.reject) for m in rd.messages] == [("c", True)]


def test_whole_cluster_restart_keeps_every_committed_entry():
    net = Network("abcde", latency=1)
    net.run(100, until=lambda: net.leader() is not None)
    leader = net.leader()
    assert leader is not None
    for k in range(20):
        net.propose(leader, f"p{k}".encode())
    net.run(5)
    compact(net, "c", keep=2)
    for i in net.ids:
        net.crash(i)
    for i in net.ids:
        net.restart(i)
    net.run(100, until=lambda: net.leader() is not None)
    leader = net.leader()
    assert leader is not None
    net.propose(leader, b"after")
    net.run(10)
    expected = [f"p{k}".encode() for k in range(20)] + [b"after"]
    assert all(net.machines[i].data == expected for i in net.ids)


def test_a_restarted_node_knows_its_voters_before_its_first_ready():
    net = Network("abc")
    net.elect("a")
    net.node("a").propose_conf_change(ConfChange(kind=ConfChangeKind.REMOVE_NODE, node_id="c"))
    net.process("a")
    net.stabilize()
    net.crash("b")
    storage = net.storages["b"]
    b = RaftNode(RaftConfig(id="b"), storage, Random(0))  # committed conf changes: in effect already
    assert b.voters == {"a", "b"} and b.applied_index == 0
