"""Leader election: timers, pre-vote, check-quorum, leader stickiness, and electing in one round."""

from __future__ import annotations

from collections import Counter

import pytest
from raft_network import Network

from orchestrator.raft import MemoryStorage, Message, MessageType, RaftConfig, RaftError, RaftNode, Role
from orchestrator.raft.messages import TRANSFER_CONTEXT

T = MessageType
ELECTION = 10


def settled(net: Network) -> bool:
    leader = net.leader()
    return leader is not None and all(net.node(i).leader_id == leader for i in net.live())


def test_bootstrapped_cluster_elects_exactly_one_leader_by_timers():
    net = Network("abc", seed=1, latency=1)
    assert all(net.node(i).voters == {"a", "b", "c"} for i in net.ids)
    net.run(100, until=lambda: settled(net))
    leaders = [i for i in net.ids if net.node(i).role is Role.LEADER]
    assert len(leaders) == 1
    assert {net.node(i).term for i in net.ids} == {2}  # bootstrap is term 1; pre-vote kept it to one election


def test_single_voter_elects_itself_at_once_and_commits_alone():
    net = Network("a")
    net.tick("a", 2 * ELECTION)
    node = net.node("a")
    assert node.role is Role.LEADER
    index = net.propose("a", b"x")
    assert node.commit_index == index and net.machines["a"].data == [b"x"]


def test_node_without_configuration_never_campaigns():
    node = RaftNode(RaftConfig(id="x"), MemoryStorage(), __import__("random").Random(1))
    for _ in range(10 * ELECTION):
        node.tick()
    assert node.role is Role.FOLLOWER and node.term == 0 and not node.ready().messages


def test_bootstrap_refuses_non_empty_storage():
    net = Network("ab")
    with pytest.raises(RaftError):
        net.node("a").bootstrap(["a", "b"])
    net.crash("a")
    restarted = net.restart("a")
    assert restarted.voters == {"a", "b"}
    with pytest.raises(RaftError):
        restarted.bootstrap(["a", "b"])


def test_pre_vote_changes_neither_term_nor_vote_of_anyone():
    net = Network("abc", pre_vote=True)
    net.isolate("c")
    net.node("c").campaign()
    net.process("c")
    net.stabilize()
    assert [net.node(i).term for i in net.ids] == [1, 1, 1]
    assert net.node("c").role is Role.PRE_CANDIDATE and net.node("c").vote is None


def test_partitioned_minority_node_does_not_inflate_its_term():
    net = Network("abc", seed=2, latency=1)
    net.elect("a")
    term = net.node("a").term
    net.isolate("c")
    net.run(20 * ELECTION)
    assert net.node("c").term == term
    assert net.node("c").role in (Role.FOLLOWER, Role.PRE_CANDIDATE)
    assert net.leader() == "a" and net.node("a").term == term


def test_rejoining_node_does_not_disrupt_a_healthy_leader():
    net = Network("abc", seed=3, latency=1)
    net.elect("a")
    term = net.node("a").term
    net.isolate("c")
    net.run(10 * ELECTION)
    net.propose("a", b"while-away")
    net.heal()
    net.run(5 * ELECTION)
    assert net.leader() == "a" and net.node("a").term == term
    assert net.node("c").leader_id == "a" and net.machines["c"].data == [b"while-away"]


def test_partitioned_leader_steps_down_by_check_quorum():
    net = Network("abc", seed=4, latency=1)
    net.elect("a")
    net.isolate("a")
    net.run(2 * ELECTION)  # at most two quorum checks
    assert net.node("a").role is Role.FOLLOWER and net.node("a").leader_id is None
    net.run(3 * ELECTION, until=lambda: net.leader() in ("b", "c"))
    assert net.leader() in ("b", "c")


def test_without_check_quorum_an_isolated_leader_keeps_believing():
    net = Network("abc", seed=4, latency=1, check_quorum=False)
    net.elect("a")
    net.isolate("a")
    net.run(5 * ELECTION)
    assert net.node("a").role is Role.LEADER


def test_follower_in_lease_ignores_higher_term_votes_stickiness():
    net = Network("abc", pre_vote=False)
    net.elect("a")
    b = net.node("b")
    term = b.term
    for kind in (T.VOTE, T.PRE_VOTE):
        b.step(Message(type=kind, src="c", dst="b", term=term + 5, index=100, log_term=term))
        assert b.term == term and b.leader_id == "a" and not b.ready().messages
    # A leadership transfer's vote overrides the lease.
    b.step(Message(type=T.VOTE, src="c", dst="b", term=term + 1, index=100, log_term=term, context=TRANSFER_CONTEXT))
    rd = b.ready()
    assert b.term == term + 1 and b.vote == "c"
    assert [(m.type, m.reject) for m in rd.messages] == [(T.VOTE_RESP, False)]


def test_follower_past_its_lease_grants_votes_again():
    net = Network("abc", pre_vote=False)
    net.elect("a")
    net.crash("a")
    b = net.node("b")
    term = b.term
    for _ in range(ELECTION):
        b.tick()
    b.ready()
    b.step(Message(type=T.VOTE, src="c", dst="b", term=term + 1, index=100, log_term=term))
    assert b.vote == "c" and [m.reject for m in b.ready().messages] == [False]


def test_one_vote_per_term_even_for_duplicates():
    net = Network("abc", pre_vote=False, check_quorum=False)
    a = net.node("a")
    a.step(Message(type=T.VOTE, src="b", dst="a", term=5, index=3, log_term=1))
    a.step(Message(type=T.VOTE, src="c", dst="a", term=5, index=3, log_term=1))
    a.step(Message(type=T.VOTE, src="b", dst="a", term=5, index=3, log_term=1))  # a duplicate: same answer
    answers = [(m.dst, m.reject) for m in a.ready().messages]
    assert answers == [("b", False), ("c", True), ("b", False)]
    assert a.vote == "b" and a.term == 5


def test_stale_leader_learns_the_newer_term_from_a_follower():
    net = Network("abc", seed=5)
    net.elect("a")
    net.isolate("a")
    net.run(ELECTION)  # c's lease on a runs out
    net.elect("b")
    net.heal()
    net.node("a").propose(b"lost")
    net.process("a")
    net.stabilize()
    assert net.node("a").role is Role.FOLLOWER and net.node("a").term == net.node("b").term
    assert net.machines["a"].data == []  # the deposed leader's entry was replaced


def test_simultaneous_pre_candidates_with_equal_logs_elect_the_smaller_id_in_one_term():
    for first, second in (("b", "c"), ("c", "b")):
        net = Network("abc", latency=1)
        net.elect("a")
        net.crash("a")
        net.run(ELECTION)  # both survivors stop trusting the dead leader
        term = net.node("b").term
        net.node(first).campaign()
        net.node(second).campaign()
        net.process(first)
        net.process(second)
        net.run(6, until=lambda net=net: net.leader() in ("b", "c"))
        assert net.leader() == "b" and net.node("b").term == term + 1


def measure_failover(seeds: range, **config: object) -> tuple[Counter[int], Counter[int], Counter[int]]:
    """Per seed: 3 nodes, 1-tick latency, elect, kill the leader. Counts of term increases, vote campaigns
    (candidacies) and ticks until a new leader."""
    terms: Counter[int] = Counter()
    candidacies: Counter[int] = Counter()
    ticks: Counter[int] = Counter()
    for seed in seeds:
        net = Network("abc", seed=seed, latency=1, **config)
        net.run(300, until=lambda net=net: settled(net))
        net.run(seed % 7)  # kill at different points of the heartbeat cycle
        old = net.leader()
        assert old is not None
        before = net.node(old).term
        net.crash(old)
        net.sent.clear()
        took = net.run(300, until=lambda net=net, old=old: net.leader() not in (None, old))
        new = net.leader()
        assert new is not None and new != old
        terms[net.node(new).term - before] += 1
        candidacies[net.sent[T.VOTE] // 2] += 1  # each candidacy asks both other servers
        ticks[took] += 1
    return terms, candidacies, ticks


def test_new_leader_is_elected_in_one_round_after_the_leader_dies():
    seeds = range(200)
    terms, candidacies, ticks = measure_failover(seeds)
    one_term = terms[1] / len(seeds)
    print(f"one-round failover: {one_term:.1%} of {len(seeds)} seeds (terms {dict(terms)}, "
          f"candidacies {dict(candidacies)}, ticks {min(ticks)}..{max(ticks)})")
    assert one_term >= 0.95
    assert candidacies[1] / len(seeds) >= 0.95
    # Timeouts are drawn from [election + 2, 2 * election): the new leader is in place within ~2 timeouts.
    assert max(ticks) <= 2 * (2 * ELECTION)
