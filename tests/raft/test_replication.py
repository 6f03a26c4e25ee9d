"""Log replication: batching, pipelining, probing, fast back-tracking, commit rules and heartbeats."""

from __future__ import annotations

import pytest
from raft_network import Network, entry_terms

from orchestrator.raft import Message, MessageType, NotLeaderError, ProgressState, Role

T = MessageType
FIGURE_7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIGURE_7_FOLLOWERS = {
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}


def hold(net: Network, keep: list[Message], when) -> None:
    """Messages for which `when(m)` holds are kept aside instead of sent."""

    def accept(m: Message) -> bool:
        if when(m):
            keep.append(m)
            return False
        return True

    net.filter = accept


def test_proposals_between_readies_share_one_append_per_follower():
    net = Network("abc")
    net.elect("a")
    net.trace = []
    a = net.node("a")
    indexes = [a.propose(f"p{k}".encode()) for k in range(10)]
    assert indexes == list(range(indexes[0], indexes[0] + 10))
    net.process("a")
    appends = [line for line in net.trace if " append " in line]
    assert appends == ["a->b append t2 prev=4/2 n=10 commit=4", "a->c append t2 prev=4/2 n=10 commit=4"]


def test_a_large_batch_is_split_by_max_entries_per_msg_and_pipelined():
    net = Network("abc", max_entries_per_msg=4)
    net.elect("a")
    net.trace = []
    a = net.node("a")
    for k in range(10):
        a.propose(f"p{k}".encode())
    net.process("a")
    to_b = [line for line in net.trace if line.startswith("a->b append")]
    assert to_b == ["a->b append t2 prev=4/2 n=4 commit=4", "a->b append t2 prev=8/2 n=4 commit=4",
                    "a->b append t2 prev=12/2 n=2 commit=4"]
    net.stabilize()
    assert net.machines["b"].data == [f"p{k}".encode() for k in range(10)]


def test_in_flight_appends_per_follower_are_bounded():
    net = Network("abc", max_entries_per_msg=1, max_inflight_msgs=2)
    net.elect("a")
    held: list[Message] = []
    hold(net, held, lambda m: m.type is T.APPEND and m.dst == "b")
    for k in range(5):
        net.propose("a", f"p{k}".encode())
    assert [m.entries[0].index for m in held] == [5, 6]  # the window is full: 7, 8, 9 wait
    assert net.node("a").status()["progress"]["b"]["state"] == "replicate"
    net.filter = None
    for m in held:
        net.send(m)
    net.stabilize()
    assert net.machines["b"].data == [f"p{k}".encode() for k in range(5)]


def test_a_reject_sends_the_follower_back_to_probing_one_append_at_a_time():
    net = Network("abc")
    net.elect("a")
    progress = net.node("a").status()["progress"]
    assert progress["c"]["state"] == "replicate"
    lost: list[Message] = []
    hold(net, lost, lambda m: m.type is T.APPEND and m.dst == "c")  # c misses x
    net.propose("a", b"x")
    net.stabilize()
    # c rejects the next append (it lacks x); its later answers are held back.
    held: list[Message] = []
    hold(net, held, lambda m: m.src == "c" and not m.reject)
    net.trace = []
    net.propose("a", b"y")
    net.stabilize()
    assert net.node("a").status()["progress"]["c"]["state"] == "probe"
    net.propose("a", b"z")
    net.stabilize()
    to_c = [line for line in net.trace if line.startswith("a->c append")]
    assert to_c == ["a->c append t2 prev=5/2 n=1 commit=5",  # y: rejected, c lacks x
                    "a->c append t2 prev=6/2 n=0 commit=6",  # the new commit (sent before the reject arrived)
                    "a->c append t2 prev=4/2 n=2 commit=6"]  # the probe; nothing more (not z) until it is answered
    net.filter = None
    for m in held:
        net.send(m)
    net.stabilize()
    assert net.node("a").status()["progress"]["c"]["state"] == "replicate"
    assert net.machines["c"].data == [b"x", b"y", b"z"]


@pytest.mark.parametrize("follower", sorted(FIGURE_7_FOLLOWERS))
def test_figure_7_conflicts_are_repaired_skipping_whole_terms(follower: str):
    """Paper Figure 7: each follower log (a)-(f) is repaired with at most one rejected append."""
    net = Network(["leader", "peer", follower], logs={"leader": FIGURE_7_LEADER, "peer": FIGURE_7_LEADER,
                                                     follower: FIGURE_7_FOLLOWERS[follower]})
    net.isolate(follower)
    net.node("leader").campaign()
    net.process("leader")
    net.stabilize()
    assert net.leader() == "leader"
    net.heal()
    net.trace = []
    net.run(1)
    rejects = [line for line in net.trace if line.startswith(f"{follower}->leader append_resp") and "reject" in line]
    assert len(rejects) <= 1, net.trace
    assert entry_terms(net, follower) == entry_terms(net, "leader")
    assert net.node(follower).commit_index == net.node("leader").commit_index == len(FIGURE_7_LEADER) + 1


def test_long_divergence_takes_few_round_trips():
    """Hundreds of conflicting entries over many terms: back-tracking moves a whole term (or more) per trip."""
    leader_log = [1] * 50 + [2] * 100 + [7] * 100
    stale_log = [1] * 50 + [3, 4, 5, 6] * 60
    net = Network("abc", logs={"a": leader_log, "b": leader_log, "c": stale_log})
    net.isolate("c")
    net.node("a").campaign()
    net.process("a")
    net.stabilize()
    net.heal()
    net.trace = []
    net.run(1)
    rejects = [line for line in net.trace if line.startswith("c->a append_resp") and "reject" in line]
    assert 1 <= len(rejects) <= 2, rejects
    assert entry_terms(net, "c") == entry_terms(net, "a")


def test_only_entries_of_the_current_term_are_committed_by_counting():
    """Paper Figure 8: an old-term entry on a majority is not committed until an entry of the leader's term is."""
    net = Network("abc", max_entries_per_msg=1, logs={"a": [1, 2], "b": [1], "c": [1]})
    held: list[Message] = []
    probed: set[str] = set()

    def carries_term_3(m: Message) -> bool:
        if m.type is not T.APPEND or not any(e.term == 3 for e in m.entries):
            return False
        if m.dst not in probed:  # the first probe goes through: b and c reject it, lacking entry 2
            probed.add(m.dst)
            return False
        return True

    hold(net, held, carries_term_3)
    net.elect("a")
    a = net.node("a")
    assert a.term == 3 and a.status()["progress"]["b"]["match"] == 2 and a.status()["progress"]["c"]["match"] == 2
    assert a.commit_index == 0  # entry 2 (term 2) is on every server, yet not committed
    net.filter = None
    for m in held:
        net.send(m)
    net.stabilize()
    assert a.commit_index == 3  # entry 3 (term 3) committed, and entry 2 with it
    assert [m.data for m in net.machines.values()] == [[b"1@1", b"2@2"]] * 3


def test_heartbeats_carry_the_smaller_of_the_followers_match_and_the_commit_index():
    net = Network("abc")
    net.elect("a")
    net.isolate("c")
    for k in range(3):
        net.propose("a", f"p{k}".encode())
    net.stabilize()
    a = net.node("a")
    assert a.commit_index == 7 and a.status()["progress"]["c"]["match"] == 4
    net.trace = []
    net.tick("a")
    assert net.trace == ["a->b heartbeat t2 commit=7", "a->c heartbeat t2 commit=4"]


def test_stale_and_duplicated_appends_change_nothing():
    net = Network("abc")
    net.elect("a")
    seen: list[Message] = []
    net.trace = []
    original = net.send

    def spy(m: Message) -> None:
        seen.append(m)
        original(m)

    net.send = spy  # type: ignore[method-assign]
    net.propose("a", b"x")
    net.stabilize()
    old_append = next(m for m in seen if m.type is T.APPEND and m.dst == "b" and m.entries)
    net.propose("a", b"y")
    net.stabilize()
    b = net.node("b")
    before = (entry_terms(net, "b"), b.commit_index)
    seen.clear()
    for _ in range(2):
        b.step(old_append)
        net.process("b")
    assert (entry_terms(net, "b"), b.commit_index) == before
    answers = [m for m in seen if m.src == "b"]
    assert [(m.type, m.index, m.reject) for m in answers] == [(T.APPEND_RESP, 6, False)] * 2
    match = net.node("a").status()["progress"]["b"]["match"]
    net.stabilize()
    assert net.node("a").status()["progress"]["b"]["match"] == match == 6


def test_follower_commits_no_further_than_the_entries_it_matched():
    net = Network("abc", logs={"a": [1, 1], "b": [1, 1], "c": [1, 1]})
    c = net.node("c")
    # An append matching index 1 only, advertising commit 2: c may commit 1, not its own (unverified) entry 2.
    c.step(Message(type=T.APPEND, src="a", dst="c", term=2, index=1, log_term=1, commit=2))
    assert c.commit_index == 1
    assert c.ready().messages[0].index == 1


def test_messages_for_another_node_or_an_older_term_are_ignored():
    net = Network("abc")
    net.elect("a")
    b = net.node("b")
    before = b.status()
    b.step(Message(type=T.APPEND, src="a", dst="c", term=9, index=4, log_term=2))
    b.step(Message(type=T.VOTE, src="c", dst="b", term=1, index=99, log_term=9))
    assert b.status() == before and not b.ready().messages


def test_only_the_leader_accepts_proposals():
    net = Network("abc")
    net.elect("a")
    with pytest.raises(NotLeaderError) as info:
        net.node("b").propose(b"x")
    assert info.value.leader_id == "a"
    with pytest.raises(NotLeaderError):
        net.node("b").read_index(b"r")
    assert net.node("a").role is Role.LEADER
    assert ProgressState.PROBE.value == "probe"
