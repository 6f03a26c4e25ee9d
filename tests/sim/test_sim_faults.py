"""Fault campaigns: drawn from the seed, never more than a server minority down, all healed by the horizon."""

import random
from collections import Counter as Tally

import pytest
from sim_toys import heartbeat_cluster

from sim.faults import FaultCampaign, FaultEvent, apply

pytestmark = pytest.mark.sim

SERVERS3 = ["server-0", "server-1", "server-2"]
SERVERS5 = [f"s{i}" for i in range(5)]
CLIENTS = [f"c{i}" for i in range(20)]


def boundaries(campaign: FaultCampaign) -> list[float]:
    return sorted({e.at for e in campaign} | {e.end(campaign.horizon) for e in campaign})


@pytest.mark.parametrize("servers", [SERVERS3, SERVERS5], ids=["3-servers", "5-servers"])
def test_random_campaigns_never_take_down_a_quorum_and_end_by_the_horizon(servers):
    kinds = Tally()
    for seed in range(40):
        campaign = FaultCampaign.random(random.Random(seed), servers, CLIENTS, horizon=1800, intensity=4)
        kinds.update(e.kind for e in campaign)
        for t in boundaries(campaign):
            assert len(campaign.unavailable_servers(t)) <= (len(servers) - 1) // 2, (seed, t, campaign.describe())
        for event in campaign:
            assert event.at >= 0 and event.end(campaign.horizon) <= campaign.horizon
        agent_faults = [e for e in campaign if isinstance(e.target, str) and e.target != "*"]
        for i, e in enumerate(agent_faults):
            for other in agent_faults[i + 1:]:
                if other.target == e.target:  # one fault per agent at a time
                    assert other.at > e.end(campaign.horizon) or e.at > other.end(campaign.horizon)
    expected = {"crash", "pause", "isolate", "partition", "drop", "duplicate", "reorder", "skew", "kill_task"}
    assert expected <= set(kinds)
    assert ("partition_ring" in kinds) == (len(servers) == 5)


def test_the_same_seed_draws_the_same_campaign():
    def draw(seed):
        return FaultCampaign.random(random.Random(seed), SERVERS5, CLIENTS, horizon=600, intensity=3).events

    assert draw(1) == draw(1) and draw(1) != draw(2)


def test_allow_quorum_loss_lets_a_majority_go_down():
    worst = 0
    for seed in range(20):
        campaign = FaultCampaign.random(random.Random(seed), SERVERS3, CLIENTS, horizon=1800, intensity=8,
                                        allow_quorum_loss=True, weights={"crash_server": 20})
        worst = max(worst, *(len(campaign.unavailable_servers(t)) for t in boundaries(campaign)))
    assert worst >= 2


def test_weights_exclude_kinds():
    campaign = FaultCampaign.random(random.Random(1), SERVERS3, CLIENTS, horizon=1800, intensity=5,
                                    weights={"kill_task": 0, "skew": 0})
    assert len(campaign) > 10 and not {"kill_task", "skew"} & {e.kind for e in campaign}


def test_applied_campaign_runs_every_fault_and_leaves_the_cluster_healed_and_converged():
    env, runtime, network, _trace = heartbeat_cluster(seed=5, clients=20)
    servers = [f"server-{i}" for i in range(3)]
    clients = [f"client-{i:04d}" for i in range(20)]
    campaign = FaultCampaign.random(random.Random(5), servers, clients, horizon=900, intensity=6)
    killed = []
    runtime.register_fault_handler("kill_task", killed.append)
    faults = []
    runtime.on_fault.append(lambda t, kind, target, details: faults.append((t, kind)))

    def watch_quorum():
        while env.now < campaign.horizon:
            down = sum(not runtime.is_up(s) or runtime.is_paused(s) for s in servers)
            assert down <= 1, f"{down} servers down at {env.now}"
            yield env.timeout(0.5)

    apply(campaign, runtime, network)
    env.process(watch_quorum())
    env.run(until=campaign.horizon + 0.001)
    assert killed == [e.target for e in campaign if e.kind == "kill_task"]
    assert {kind for _t, kind in faults} >= {"crash", "restart", "partition", "heal", "skew"}
    assert all(runtime.is_up(a) and not runtime.is_paused(a) and runtime.skew(a) == 0.0 for a in runtime.ids)
    assert network.cuts == [] and not network.impaired
    acked = {c: runtime.agent(c).acked for c in clients}
    env.run(until=campaign.horizon + 60)
    assert all(runtime.agent(c).acked > acked[c] for c in clients)  # every client heartbeats again


def test_a_fault_without_duration_lasts_until_the_horizon():
    env, runtime, network, _trace = heartbeat_cluster(seed=1, clients=2)
    campaign = FaultCampaign([FaultEvent(10.0, "crash", "client-0001"), FaultEvent(5.0, "pause", "client-0000", 3)],
                             horizon=100.0)
    apply(campaign, runtime, network)
    env.run(until=6)
    assert runtime.is_paused("client-0000")
    env.run(until=50)
    assert not runtime.is_paused("client-0000") and not runtime.is_up("client-0001")
    env.run(until=100.001)
    assert runtime.is_up("client-0001")


def test_apply_refuses_kinds_nobody_handles():
    _env, runtime, network, _trace = heartbeat_cluster(seed=1, clients=2)
    with pytest.raises(LookupError, match="kill_task"):
        apply(FaultCampaign([FaultEvent(1.0, "kill_task", "client-0000")], horizon=10.0), runtime, network)
