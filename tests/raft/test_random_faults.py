"""Seeded random faults (drops, duplicates, reordering, partitions, crashes, compaction, transfers): always safe."""

from __future__ import annotations

import contextlib
from random import Random

import pytest
from raft_network import Network, SafetyChecker

from orchestrator.raft import ConfChange, ConfChangeKind, ProposalDroppedError

SEEDS = range(100)


def chaos(seed: int, steps: int = 500, **config: object) -> tuple[Network, SafetyChecker, list[bytes]]:
    rng = Random(seed)
    ids = "abcde"[:rng.choice((3, 3, 5))]
    config = {"election_ticks": 10, "heartbeat_ticks": 2, **config}
    net = Network(ids, seed=seed, latency=1, **config)
    checker = SafetyChecker()
    net.checks.append(checker)
    net.drop_rate = rng.choice((0.0, 0.02, 0.1, 0.25))
    net.dup_rate = rng.choice((0.0, 0.05, 0.2))
    net.jitter = rng.choice((0, 1, 3))
    max_down = (len(ids) - 1) // 2
    proposed: list[bytes] = []
    for step in range(steps):
        r = rng.random()
        leader = net.leader()
        if r < 0.35 and leader is not None:
            data = f"{seed}-{step}".encode()
            try:
                net.propose(leader, data)
                proposed.append(data)
            except ProposalDroppedError:
                pass
        elif r < 0.40:
            shuffled = rng.sample(ids, len(ids))
            cut = rng.randint(1, len(ids) - 1)
            net.partition(shuffled[:cut], shuffled[cut:])
        elif r < 0.46:
            net.heal()
        elif r < 0.49:
            live = net.live()
            if len(ids) - len(live) < max_down or rng.random() < 0.2:  # sometimes even a majority goes down
                net.crash(rng.choice(live)) if len(live) > 1 else None
        elif r < 0.54:
            down = [i for i in ids if net.nodes[i] is None]
            if down:
                net.restart(rng.choice(down))
        elif r < 0.56 and leader is not None:
            with contextlib.suppress(ValueError):  # not a voter any more
                net.node(leader).transfer_leadership(rng.choice(ids))
            net.process(leader)
        elif r < 0.60:
            node_id = rng.choice(net.live())
            machine = net.machines[node_id]
            net.node(node_id).compact(machine.index, machine.encode(), keep=rng.randint(0, 4))
        elif r < 0.63 and leader is not None and seed % 2:
            change_membership(net, leader, rng)
        net.run(1)
    return net, checker, proposed


def change_membership(net: Network, leader: str, rng: Random) -> None:
    """Remove a voter (never below two) or add back a removed server (which kept its old storage)."""
    voters = net.node(leader).voters
    removed = [i for i in net.ids if i not in voters]
    if removed and (len(voters) <= 2 or rng.random() < 0.5):
        cc = ConfChange(kind=ConfChangeKind.ADD_NODE, node_id=rng.choice(removed))
    elif len(voters) > 2:
        cc = ConfChange(kind=ConfChangeKind.REMOVE_NODE, node_id=rng.choice(sorted(voters)))
    else:
        return
    with contextlib.suppress(ProposalDroppedError):  # one at a time
        net.node(leader).propose_conf_change(cc)
    net.process(leader)


def converge(net: Network) -> str:
    """Heal everything; the cluster must elect a leader, commit a marker and apply the same state everywhere."""
    net.heal()
    net.drop_rate = net.dup_rate = 0.0
    for i in net.ids:
        if net.nodes[i] is None:
            net.restart(i)
    for _attempt in range(10 + len(net.ids)):
        net.run(300, until=lambda: net.leader() is not None)
        leader = net.leader()
        assert leader is not None, net.roles()
        missing = sorted(set(net.ids) - net.node(leader).voters)
        if missing:  # bring removed servers back, one at a time
            with contextlib.suppress(ProposalDroppedError):
                net.node(leader).propose_conf_change(ConfChange(kind=ConfChangeKind.ADD_NODE, node_id=missing[0]))
            net.process(leader)
            net.run(30)
            continue
        try:
            index = net.propose(leader, b"final")
        except ProposalDroppedError:  # a transfer in progress
            net.run(5)
            continue
        net.run(300, until=lambda index=index: all(net.machines[i].index >= index for i in net.ids))
        # A leader that loses its office before the marker commits may lose the marker: propose again.
        if all(net.machines[i].data[-1:] == [b"final"] for i in net.ids):
            return leader
    raise AssertionError(f"the cluster did not converge: {net.roles()}")


@pytest.mark.parametrize("seed", SEEDS)
def test_random_faults_keep_raft_safe_and_live(seed: int):
    net, checker, proposed = chaos(seed)
    leader = converge(net)
    data = net.machines[leader].data
    assert {tuple(net.machines[i].data) for i in net.ids} == {tuple(data)}
    # Everything applied was proposed, once and in proposal order (a proposal may be lost, never reordered).
    applied = [d for d in data if d != b"final"]
    assert len(set(applied)) == len(applied)
    positions = [proposed.index(d) for d in applied]
    assert positions == sorted(positions)
    assert checker.elections >= 1
