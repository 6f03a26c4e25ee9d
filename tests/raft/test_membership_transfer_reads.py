"""Single-server membership changes, leadership transfer, and linearizable reads by read index."""

from __future__ import annotations

import pytest
from raft_network import Network, entry_terms

from orchestrator.raft import (
    ConfChange,
    ConfChangeKind,
    Message,
    MessageType,
    NotLeaderError,
    ProposalDroppedError,
    ReadState,
    Role,
)

T = MessageType
ADD, REMOVE = ConfChangeKind.ADD_NODE, ConfChangeKind.REMOVE_NODE


def change(net: Network, leader: str, kind: ConfChangeKind, node_id: str) -> int:
    index = net.node(leader).propose_conf_change(ConfChange(kind=kind, node_id=node_id))
    net.process(leader)
    net.stabilize()
    return index


# --- membership ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compacted", [False, True])
def test_new_node_with_empty_storage_catches_up_and_becomes_a_voter(compacted: bool):
    net = Network("abc")
    net.elect("a")
    for k in range(5):
        net.propose("a", f"p{k}".encode())
    net.stabilize()
    if compacted:
        machine = net.machines["a"]
        net.node("a").compact(machine.index, machine.encode(), keep=0)
    net.add("d")
    net.trace = []
    change(net, "a", ADD, "d")
    assert (" snapshot " in "\n".join(net.trace)) is compacted
    assert all(net.node(i).voters == {"a", "b", "c", "d"} for i in net.ids)
    assert net.machines["d"].data == [f"p{k}".encode() for k in range(5)]
    assert entry_terms(net, "d")[-1] == entry_terms(net, "a")[-1]
    # d is a voter: it can lead, and with a and b gone, c and d are not a quorum of four.
    net.node("a").transfer_leadership("d")
    net.process("a")
    net.stabilize()
    assert net.leader() == "d"
    net.crash("a")
    net.crash("b")
    net.run(60)
    assert net.leader() is None


def test_a_removed_follower_stops_counting_and_cannot_disrupt():
    net = Network("abc", latency=1)
    net.elect("a")
    change(net, "a", REMOVE, "c")
    net.run(3)
    assert net.node("a").voters == net.node("b").voters == {"a", "b"}
    term = net.node("a").term
    assert set(net.node("a").status()["progress"]) == {"a", "b"}
    net.run(20 * 10)  # c, no longer heard from, times out again and again
    assert net.leader() == "a" and net.node("a").term == term
    index = net.propose("a", b"two-node")
    net.run(3)
    assert net.node("b").commit_index >= index


def test_a_removed_leader_steps_down_and_hands_over():
    net = Network("abc", latency=1)
    net.elect("a")
    term = net.node("a").term
    net.node("a").propose_conf_change(ConfChange(kind=REMOVE, node_id="a"))
    net.process("a")
    net.run(10, until=lambda: net.leader() in ("b", "c"))
    new = net.leader()
    assert new in ("b", "c") and net.node(new).term == term + 1  # TIMEOUT_NOW: no election timeout to wait
    assert net.node("a").role is Role.FOLLOWER
    net.run(3)
    assert net.node("b").voters == net.node("c").voters == {"b", "c"}
    net.run(20 * 10)
    assert net.leader() == new and net.node(new).term == term + 1


def test_one_conf_change_at_a_time():
    net = Network("abc")
    net.elect("a")
    a = net.node("a")
    a.propose_conf_change(ConfChange(kind=ADD, node_id="d"))
    with pytest.raises(ProposalDroppedError):
        a.propose_conf_change(ConfChange(kind=ADD, node_id="e"))
    net.process("a")
    net.stabilize()
    a.propose_conf_change(ConfChange(kind=REMOVE, node_id="d"))  # the first is applied: fine now
    alone = Network("a")
    alone.elect("a")
    with pytest.raises(ValueError):
        alone.node("a").propose_conf_change(ConfChange(kind=REMOVE, node_id="a"))


# --- leadership transfer ------------------------------------------------------------------------------------


def test_transfer_to_an_up_to_date_follower_is_immediate():
    net = Network("abc")
    net.elect("a")
    term = net.node("a").term
    net.trace = []
    net.node("a").transfer_leadership("c")
    net.process("a")
    net.stabilize()
    assert net.trace[:3] == ["a->c timeout_now t2", "c->a vote t3 last=4/2 transfer", "c->b vote t3 last=4/2 transfer"]
    assert net.leader() == "c" and net.node("c").term == term + 1 and net.node("a").leader_id == "c"


def test_transfer_waits_for_the_transferee_to_catch_up_and_drops_proposals_meanwhile():
    net = Network("abc")
    net.elect("a")
    net.isolate("c")
    for k in range(3):
        net.propose("a", f"p{k}".encode())
    net.stabilize()
    a = net.node("a")
    a.transfer_leadership("c")
    with pytest.raises(ProposalDroppedError):
        a.propose(b"refused")
    net.process("a")
    net.heal()
    net.trace = []
    net.run(1)
    assert net.leader() == "c"
    # c gets the missing entries first, then (once it has acknowledged the last one) the go-ahead.
    catch_up = net.trace.index("a->c append t2 prev=4/2 n=3 commit=7")
    go = net.trace.index("a->c timeout_now t2")
    assert catch_up < go < net.trace.index("c->b vote t3 last=7/2 transfer")
    assert net.trace.count("a->c timeout_now t2") == 1
    assert net.machines["c"].data == [b"p0", b"p1", b"p2"]


def test_the_best_transferee_is_the_most_caught_up_follower_heard_from_lately():
    net = Network("abcd")
    net.elect("a")
    assert net.node("b").best_transferee() is None  # only a leader hands over
    net.isolate("b")
    net.propose("a", b"x")
    net.stabilize()
    assert net.node("a").best_transferee() == "c"  # c and d are caught up (ties by id); b lags
    net.crash("c")
    net.run(10)  # an election timeout: c's silence is noticed (check-quorum), d answered
    assert net.node("a").best_transferee() == "d"
    assert Network("a").node("a").best_transferee() is None


def test_transfer_to_an_unreachable_node_is_abandoned_after_an_election_timeout():
    net = Network("abc")
    net.elect("a")
    net.crash("c")
    a = net.node("a")
    a.transfer_leadership("c")
    net.process("a")
    net.run(9)
    with pytest.raises(ProposalDroppedError):
        a.propose(b"x")
    net.run(1)
    a.propose(b"x")
    assert a.role is Role.LEADER
    with pytest.raises(ValueError):
        a.transfer_leadership("zz")


# --- read index ---------------------------------------------------------------------------------------------


def test_read_index_is_answered_after_a_heartbeat_round():
    net = Network("abc")
    net.elect("a")
    net.propose("a", b"x")
    net.stabilize()
    net.trace = []
    a = net.node("a")
    a.read_index(b"r1")
    a.read_index(b"r2")
    net.process("a")
    net.stabilize()
    heartbeats = [line for line in net.trace if " heartbeat " in line]
    assert heartbeats == ["a->b heartbeat t2 commit=5 ctx=r2", "a->c heartbeat t2 commit=5 ctx=r2"]
    assert net.read_states["a"] == [ReadState(index=5, context=b"r1"), ReadState(index=5, context=b"r2")]


def test_single_node_answers_reads_at_once():
    net = Network("a")
    net.elect("a")
    net.node("a").read_index(b"r")
    net.process("a")
    assert net.read_states["a"] == [ReadState(index=net.node("a").commit_index, context=b"r")]


def test_reads_wait_for_the_new_leaders_first_commit():
    net = Network("abc")
    held: list[Message] = []
    net.filter = lambda m: not (m.type is T.APPEND_RESP and held.append(m) is None)
    net.elect("a")
    a = net.node("a")
    a.read_index(b"early")
    net.process("a")
    net.stabilize()
    assert net.read_states["a"] == [] and a.commit_index == 3  # its empty entry 4 is not committed yet
    net.filter = None
    for m in held:
        net.send(m)
    net.stabilize()
    assert net.read_states["a"] == [ReadState(index=4, context=b"early")]


def test_a_leader_cut_off_from_the_quorum_serves_no_read():
    net = Network("abc")
    net.elect("a")
    net.isolate("a")
    net.node("a").read_index(b"r")
    net.process("a")
    net.run(30)
    assert net.read_states["a"] == [] and net.node("a").role is Role.FOLLOWER
    with pytest.raises(NotLeaderError):
        net.node("a").read_index(b"r2")


def test_lost_read_heartbeats_are_retried_by_the_next_heartbeats():
    net = Network("abc")
    net.elect("a")
    net.filter = lambda m: m.type is not T.HEARTBEAT
    net.node("a").read_index(b"r")
    net.process("a")
    net.stabilize()
    assert net.read_states["a"] == []
    net.filter = None
    net.run(1)
    assert net.read_states["a"] == [ReadState(index=4, context=b"r")]
