"""Transcript tests: drive a fixed script and compare every message sent, and the roles, with a recorded run."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from raft_network import Network, SafetyChecker


def note(net: Network, line: str) -> None:
    assert net.trace is not None
    net.trace.append(line)


def roles(net: Network) -> None:
    note(net, "= " + net.roles())


def election_and_replication() -> list[str]:
    net = Network("abc")
    net.checks.append(SafetyChecker())
    net.trace = []
    note(net, "# a campaigns: a pre-vote round, a vote round, then its empty entry")
    net.node("a").campaign()
    net.process("a")
    net.stabilize()
    roles(net)
    note(net, "# a proposes x and y before its next Ready: one append each")
    net.node("a").propose(b"x")
    net.node("a").propose(b"y")
    net.process("a")
    net.stabilize()
    roles(net)
    note(net, "# a heartbeat round")
    net.tick("a")
    net.stabilize()
    return net.trace


def partition_and_heal() -> list[str]:
    net = Network("abc")
    net.checks.append(SafetyChecker())
    net.elect("a")
    net.trace = []
    note(net, "# a is cut off; its entry y cannot commit")
    net.isolate("a")
    net.propose("a", b"y")
    net.stabilize()
    note(net, "# 20 ticks, heartbeats not shown: a timer elects a new leader; a steps down (check quorum)")
    net.run(20)
    net.trace = [line for line in net.trace if " heartbeat" not in line]
    roles(net)
    leader = net.leader()
    assert leader is not None
    note(net, f"# {leader} proposes z")
    net.propose(leader, b"z")
    net.stabilize()
    note(net, f"# healed: the heartbeat of {leader} finds a, which loses y and takes z")
    net.heal()
    net.tick(leader)
    net.stabilize()
    roles(net)
    note(net, "data " + " ".join(f"{i}:{b','.join(net.machines[i].data).decode()}" for i in net.ids))
    return net.trace


def snapshot_transfer_and_read() -> list[str]:
    net = Network("abc")
    net.checks.append(SafetyChecker())
    net.elect("a")
    net.isolate("c")
    for k in range(3):
        net.propose("a", f"p{k}".encode())
    net.stabilize()
    machine = net.machines["a"]
    net.node("a").compact(machine.index, machine.encode(), keep=0)
    net.trace = []
    note(net, "# c is back, behind the first index of a: a snapshot, then a transfer to c")
    net.heal()
    net.node("a").transfer_leadership("c")
    net.process("a")
    net.tick("a")
    net.stabilize()
    roles(net)
    note(net, "# c serves a read: its first commit is done, so a heartbeat round with the context")
    net.node("c").read_index(b"r1")
    net.process("c")
    net.stabilize()
    note(net, "read " + " ".join(f"{r.index}:{r.context.decode()}" for r in net.read_states["c"]))
    return net.trace


SCENARIOS: dict[str, Callable[[], list[str]]] = {
    "election_and_replication": election_and_replication,
    "partition_and_heal": partition_and_heal,
    "snapshot_transfer_and_read": snapshot_transfer_and_read,
}


# Recorded with the scripts above; a change here must be explained by a deliberate change in behaviour.
EXPECTED = {
    "election_and_replication": [
        "# a campaigns: a pre-vote round, a vote round, then its empty entry",
        "a->b pre_vote t2 last=3/1",
        "a->c pre_vote t2 last=3/1",
        "b->a pre_vote_resp t2",
        "c->a pre_vote_resp t2",
        "a->b vote t2 last=3/1",
        "a->c vote t2 last=3/1",
        "b->a vote_resp t2",
        "c->a vote_resp t2",
        "a->b append t2 prev=3/1 n=1 commit=3",
        "a->c append t2 prev=3/1 n=1 commit=3",
        "b->a append_resp t2 index=4",
        "c->a append_resp t2 index=4",
        "a->b append t2 prev=4/2 n=0 commit=4",
        "a->c append t2 prev=4/2 n=0 commit=4",
        "b->a append_resp t2 index=4",
        "c->a append_resp t2 index=4",
        "= a:leader/t2/c4 b:follower/t2/c4 c:follower/t2/c4",
        "# a proposes x and y before its next Ready: one append each",
        "a->b append t2 prev=4/2 n=2 commit=4",
        "a->c append t2 prev=4/2 n=2 commit=4",
        "b->a append_resp t2 index=6",
        "c->a append_resp t2 index=6",
        "a->b append t2 prev=6/2 n=0 commit=6",
        "a->c append t2 prev=6/2 n=0 commit=6",
        "b->a append_resp t2 index=6",
        "c->a append_resp t2 index=6",
        "= a:leader/t2/c6 b:follower/t2/c6 c:follower/t2/c6",
        "# a heartbeat round",
        "a->b heartbeat t2 commit=6",
        "a->c heartbeat t2 commit=6",
        "b->a heartbeat_resp t2",
        "c->a heartbeat_resp t2",
    ],
    "partition_and_heal": [
        "# a is cut off; its entry y cannot commit",
        "a->b append t2 prev=4/2 n=1 commit=4",
        "a->c append t2 prev=4/2 n=1 commit=4",
        "c->a pre_vote t3 last=4/2",
        "c->b pre_vote t3 last=4/2",
        "b->c pre_vote_resp t3",
        "c->a vote t3 last=4/2",
        "c->b vote t3 last=4/2",
        "b->c vote_resp t3",
        "c->a append t3 prev=4/2 n=1 commit=4",
        "c->b append t3 prev=4/2 n=1 commit=4",
        "b->c append_resp t3 index=5",
        "c->b append t3 prev=5/3 n=0 commit=5",
        "b->c append_resp t3 index=5",
        "= a:follower/t2/c4 b:follower/t3/c5 c:leader/t3/c5",
        "# c proposes z",
        "c->b append t3 prev=5/3 n=1 commit=5",
        "b->c append_resp t3 index=6",
        "c->b append t3 prev=6/3 n=0 commit=6",
        "b->c append_resp t3 index=6",
        "# healed: the heartbeat of c finds a, which loses y and takes z",
        "c->a heartbeat t3 commit=0",
        "c->b heartbeat t3 commit=6",
        "a->c heartbeat_resp t3",
        "b->c heartbeat_resp t3",
        "c->a append t3 prev=4/2 n=2 commit=6",
        "a->c append_resp t3 index=6",
        "c->a append t3 prev=6/3 n=0 commit=6",
        "a->c append_resp t3 index=6",
        "= a:follower/t3/c6 b:follower/t3/c6 c:leader/t3/c6",
        "data a:z b:z c:z",
    ],
    "snapshot_transfer_and_read": [
        "# c is back, behind the first index of a: a snapshot, then a transfer to c",
        "a->c append t2 prev=7/2 n=0 commit=7",
        "a->b heartbeat t2 commit=7",
        "a->c heartbeat t2 commit=4",
        "c->a append_resp t2 index=7 reject hint=4/2",
        "b->a heartbeat_resp t2",
        "c->a heartbeat_resp t2",
        "a->c snapshot t2 snap=7/2",
        "c->a append_resp t2 index=7",
        "a->c append t2 prev=7/2 n=0 commit=7",
        "a->c timeout_now t2",
        "c->a append_resp t2 index=7",
        "c->a vote t3 last=7/2 transfer",
        "c->b vote t3 last=7/2 transfer",
        "a->c vote_resp t3",
        "b->c vote_resp t3",
        "c->a append t3 prev=7/2 n=1 commit=7",
        "c->b append t3 prev=7/2 n=1 commit=7",
        "a->c append_resp t3 index=8",
        "b->c append_resp t3 index=8",
        "c->a append t3 prev=8/3 n=0 commit=8",
        "c->b append t3 prev=8/3 n=0 commit=8",
        "a->c append_resp t3 index=8",
        "b->c append_resp t3 index=8",
        "= a:follower/t3/c8 b:follower/t3/c8 c:leader/t3/c8",
        "# c serves a read: its first commit is done, so a heartbeat round with the context",
        "c->a heartbeat t3 commit=8 ctx=r1",
        "c->b heartbeat t3 commit=8 ctx=r1",
        "a->c heartbeat_resp t3 ctx=r1",
        "b->c heartbeat_resp t3 ctx=r1",
        "read 8:r1",
    ],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_transcript_matches_the_recorded_run(name: str):
    assert SCENARIOS[name]() == EXPECTED[name]


def test_transcripts_are_deterministic():
    for script in SCENARIOS.values():
        assert script() == script()

