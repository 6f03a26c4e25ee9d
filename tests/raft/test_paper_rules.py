"""One test per rule of the Raft paper (Figure 2's rules for servers, Figure 3's guarantees, Figure 8)."""

from __future__ import annotations

from dataclasses import replace
from random import Random

import pytest
from raft_network import Network, SafetyChecker, entry_terms, storage_with_log

from orchestrator.raft import Entry, MemoryStorage, Message, MessageType, RaftConfig, RaftNode, Role, persist

T = MessageType
BASIC = {"pre_vote": False, "check_quorum": False}  # the paper's Raft, without the extensions


STORAGES: dict[RaftNode, MemoryStorage] = {}


def lone(node_id: str, terms: list[int], voters: str = "abc", commit: int = 0, **config: object) -> RaftNode:
    storage = storage_with_log(voters, terms, commit=commit)
    node = RaftNode(RaftConfig(id=node_id, **config), storage, Random(0))  # type: ignore[arg-type]
    STORAGES[node] = storage
    return node


def sent(node: RaftNode) -> list[Message]:
    """Run one Ready cycle of a lone node; what it sent."""
    rd = node.ready()
    if node in STORAGES:
        persist(STORAGES[node], rd)
    node.advance(rd)
    return list(rd.messages)


def win(net: Network, node_id: str) -> None:
    """Campaign until elected (a first try may only catch up with the term)."""
    for _ in range(3):
        net.node(node_id).campaign()
        net.process(node_id)
        net.stabilize()
        if net.node(node_id).role is Role.LEADER:
            return
    raise AssertionError(net.roles())


def entry(index: int, term: int) -> Entry:
    return Entry(term=term, index=index, data=f"{index}@{term}".encode())


# --- Figure 3: the guarantees --------------------------------------------------------------------------------


def test_election_safety_split_votes_never_make_two_leaders():
    for seed in range(30):
        net = Network("abcde", seed=seed, **BASIC)
        checker = SafetyChecker()
        net.checks.append(checker)
        order = Random(seed).sample(net.ids, 5)
        for node_id in order[:3]:  # three candidates at once, their votes delivered interleaved
            net.node(node_id).campaign()
        for node_id in order[:3]:
            net.process(node_id)
        net.stabilize()
        leaders = [i for i in net.ids if net.node(i).role is Role.LEADER]
        assert len(leaders) <= 1  # and the checker saw no term with two leaders along the way


def test_leader_append_only_a_leader_never_rewrites_its_log():
    net = Network("abc", **BASIC)
    net.elect("a")
    net.propose("a", b"x")
    net.stabilize()
    before = entry_terms(net, "a")
    a = net.node("a")
    # An older leader's append, conflicting with our entries, is refused and changes nothing.
    a.step(Message(type=T.APPEND, src="b", dst="a", term=1, index=3, log_term=1, entries=(entry(4, 1),)))
    a.step(Message(type=T.APPEND, src="b", dst="a", term=a.term, index=3, log_term=1, entries=(entry(4, 9),)))
    net.process("a")
    assert entry_terms(net, "a") == before and a.role is Role.LEADER
    net.propose("a", b"y")
    assert entry_terms(net, "a")[: len(before)] == before


def test_log_matching_same_index_and_term_means_same_prefix():
    for seed in range(20):
        net = Network("abcde", seed=seed, latency=1)
        net.checks.append(SafetyChecker())
        rng = Random(seed)
        for _ in range(12):
            net.partition(*(lambda s: (s[:2], s[2:]))(rng.sample(net.ids, 5)))
            net.run(40)
            if (leader := net.leader()) is not None:
                for k in range(3):
                    net.propose(leader, f"{seed}-{k}".encode())
        logs = {i: dict(entry_terms(net, i)) for i in net.ids}
        for x in net.ids:
            for y in net.ids:
                common = [i for i in logs[x] if logs[y].get(i) == logs[x][i]]
                for i in common:
                    assert all(logs[x][j] == logs[y].get(j, logs[x][j]) for j in range(1, i))


def test_leader_completeness_a_candidate_without_a_committed_entry_cannot_win():
    net = Network("abc", **BASIC)
    net.elect("a")
    net.isolate("c")
    index = net.propose("a", b"committed")
    net.stabilize()
    assert net.node("b").commit_index >= index
    net.crash("a")
    net.heal()
    c = net.node("c")
    c.campaign()
    net.process("c")
    net.stabilize()
    assert c.role is not Role.LEADER  # b refused: its log is more up to date
    net.elect("b")
    net.stabilize()
    assert net.machines["c"].data == [b"committed"]


def test_state_machine_safety_all_nodes_apply_the_same_sequence():
    for seed in range(10):
        net = Network("abcde", seed=seed, latency=1)
        net.checks.append(SafetyChecker())
        net.drop_rate, net.jitter = 0.2, 2
        for step in range(200):
            if (leader := net.leader()) is not None and step % 3 == 0:
                net.propose(leader, f"{step}".encode())
            net.run(1)
        datas = sorted((net.machines[i].data for i in net.ids), key=len)
        assert all(d == datas[-1][: len(d)] for d in datas)


def test_figure_8_an_old_entry_on_a_majority_is_not_committed_and_may_be_overwritten():
    """With the paper's Figure 8 timeline (each new leader's empty entry playing the part of its first entry)."""
    net = Network(["s1", "s2", "s3", "s4", "s5"], max_entries_per_msg=1, **BASIC)
    checker = SafetyChecker()
    net.checks.append(checker)
    net.elect("s1")  # term 2; entry 6 is its empty entry, committed
    # (a) s1 appends X (7@2) and gets it to s2 only.
    net.filter = lambda m: not (m.type is T.APPEND and m.dst in ("s3", "s4", "s5"))
    net.propose("s1", b"X")
    net.stabilize()
    # (b) s1 is down; s5 wins term 3 with s3 and s4, appends its entry 7@3 and crashes before sending it.
    net.crash("s1")
    net.filter = lambda m: not (m.type is T.APPEND and m.src == "s5")
    net.elect("s5")
    net.crash("s5")
    # (c) s1 is back and wins term 4; it gets X to s3, so X is on a majority (s1, s2, s3) and s1 knows it,
    # but its own entry 8@4 reaches no one (the network strips it from every append).
    def only_x_to_s3(m: Message) -> bool:
        if m.type is not T.APPEND or m.dst in ("s4", "s5"):
            return m.type is not T.APPEND
        if any(e.term == 4 for e in m.entries):
            net.send(replace(m, entries=tuple(e for e in m.entries if e.term < 4)))
            return False
        return True

    net.filter = only_x_to_s3
    net.restart("s1")
    win(net, "s1")
    assert net.node("s1").term == 4
    assert [dict(entry_terms(net, i)).get(7) for i in ("s1", "s2", "s3")] == [2, 2, 2]
    assert [net.node("s1").status()["progress"][i]["match"] for i in ("s2", "s3")] == [7, 7]
    assert all(net.node(i).commit_index < 7 for i in net.live())  # counting replicas of an old term: no
    # (d) s1 is down again; s5 wins term 5 with s2, s3 and s4 (its 7@3 beats their 7@2 / 6@2) and overwrites X.
    net.crash("s1")
    net.filter = None
    net.restart("s5")
    win(net, "s5")
    assert net.node("s5").term == 5
    net.restart("s1")
    net.propose("s5", b"Z")
    net.run(3)  # s1 was down when probed: the next heartbeat round brings it in
    assert all(dict(entry_terms(net, i))[7] == 3 for i in net.ids)
    assert all(net.machines[i].data == [b"Z"] for i in net.ids)  # X was never applied anywhere


# --- Figure 2: rules for servers ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [T.APPEND, T.HEARTBEAT, T.VOTE, T.APPEND_RESP, T.VOTE_RESP, T.HEARTBEAT_RESP])
def test_a_higher_term_in_any_message_makes_a_node_a_follower_of_that_term(kind: MessageType):
    net = Network("abc", **BASIC)
    net.elect("a")
    a = net.node("a")
    a.step(Message(type=kind, src="b", dst="a", term=7, index=3, log_term=1))
    assert (a.term, a.role) == (7, Role.FOLLOWER)


def test_requests_from_an_older_term_are_refused():
    node = lone("b", [1, 1, 2])
    node.step(Message(type=T.APPEND, src="a", dst="b", term=5, index=3, log_term=2))
    sent(node)
    node.step(Message(type=T.APPEND, src="c", dst="b", term=4, index=3, log_term=2, entries=(entry(4, 4),)))
    node.step(Message(type=T.VOTE, src="c", dst="b", term=4, index=9, log_term=4))
    answers = sent(node)
    assert node.last_index == 3 and node.vote is None
    assert [(m.type, m.term) for m in answers] == [(T.APPEND_RESP, 5)]  # tells the stale leader our term


def test_append_refused_when_the_log_lacks_the_previous_entry():
    node = lone("b", [1, 1, 2])
    node.step(Message(type=T.APPEND, src="a", dst="b", term=3, index=3, log_term=3, entries=(entry(4, 3),)))
    [answer] = sent(node)
    assert answer.reject and node.last_index == 3


def test_a_conflicting_entry_and_all_that_follow_it_are_deleted():
    node = lone("b", [1, 1, 2, 2, 2])
    node.step(Message(type=T.APPEND, src="a", dst="b", term=3, index=2, log_term=1, entries=(entry(3, 3),)))
    [answer] = sent(node)
    assert not answer.reject and answer.index == 3
    assert [node.entry_term(i) for i in range(1, node.last_index + 1)] == [1, 1, 3]


def test_entries_already_in_the_log_are_not_appended_twice():
    node = lone("b", [1, 1, 2])
    sent(node)
    node.step(Message(type=T.APPEND, src="a", dst="b", term=2, index=1, log_term=1,
                      entries=(entry(2, 1), entry(3, 2))))
    rd = node.ready()
    assert rd.entries == () and node.last_index == 3


def test_commit_index_follows_the_leader_but_not_past_the_last_new_entry():
    node = lone("b", [1, 1, 2, 2])
    node.step(Message(type=T.APPEND, src="a", dst="b", term=3, index=2, log_term=1, commit=10,
                      entries=(entry(3, 2),)))
    assert node.commit_index == 3


def test_vote_granted_only_to_a_log_at_least_as_up_to_date():
    cases = [((5, 2), True), ((3, 2), True), ((2, 2), False), ((9, 1), False), ((1, 3), True)]
    for (last_index, last_term), granted in cases:
        node = lone("b", [1, 1, 2], **BASIC)
        node.step(Message(type=T.VOTE, src="c", dst="b", term=5, index=last_index, log_term=last_term))
        [answer] = sent(node)
        assert answer.reject is not granted, (last_index, last_term)


def test_a_candidate_that_hears_from_the_new_leader_becomes_its_follower():
    net = Network("abc", **BASIC)
    b = net.node("b")
    b.campaign()
    assert b.role is Role.CANDIDATE
    b.step(Message(type=T.APPEND, src="a", dst="b", term=b.term, index=3, log_term=1))
    assert (b.role, b.leader_id) == (Role.FOLLOWER, "a")


def test_a_follower_that_hears_nothing_for_an_election_timeout_campaigns():
    net = Network("abc", **BASIC)
    b = net.node("b")
    for _ in range(2 * 10):
        b.tick()
    assert b.role is Role.CANDIDATE and b.term == 2 and b.vote == "b"
    votes = [m for m in sent(b) if m.type is T.VOTE]
    assert sorted(m.dst for m in votes) == ["a", "c"] and {(m.index, m.log_term) for m in votes} == {(3, 1)}


def test_a_new_leader_announces_itself_with_an_entry_of_its_term():
    net = Network("abc", **BASIC)
    net.trace = []
    net.elect("a")
    first_appends = [line for line in net.trace if line.startswith("a->") and " append " in line][:2]
    assert first_appends == ["a->b append t2 prev=3/1 n=1 commit=3", "a->c append t2 prev=3/1 n=1 commit=3"]
