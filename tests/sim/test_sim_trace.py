"""Trace hashes: the same seed and code give the same hash, in any process; another seed, another hash."""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from sim_toys import Note, heartbeat_cluster

from orchestrator.rpc.messages import RpcRequest, RpcResponse
from sim.faults import FaultCampaign, apply
from sim.trace import Trace

pytestmark = pytest.mark.sim

HERE = Path(__file__).resolve().parent


def faulty_run(seed: int, clients: int = 30, horizon: float = 600.0) -> Trace:
    """A heartbeat cluster under a random fault campaign (drops, duplicates, reorders, partitions, crashes)."""
    env, runtime, network, trace = heartbeat_cluster(seed, clients, latency=("lognormal", 0.003, 0.6),
                                                     disk_sync_latency=("uniform", 0.0005, 0.002))
    servers = [f"server-{i}" for i in range(3)]
    client_ids = [f"client-{i:04d}" for i in range(clients)]
    campaign = FaultCampaign.random(random.Random(seed), servers, client_ids, horizon=horizon, intensity=6,
                                    weights={"kill_task": 0})
    apply(campaign, runtime, network)
    env.run(until=horizon + 30)
    trace.add_state(",".join(f"{c}={runtime.agent(c).acked}" for c in client_ids))
    return trace


def test_the_same_seed_gives_the_same_hash_and_another_seed_another():
    first = faulty_run(11)
    assert first.deliveries > 1000 and first.faults > 20
    assert faulty_run(11).hexdigest() == first.hexdigest()
    assert faulty_run(12).hexdigest() != first.hexdigest()


def test_the_hash_does_not_depend_on_the_process_string_hashing():
    code = (f"import sys; sys.path[:0] = [{str(HERE)!r}, {str(HERE.parent.parent)!r}]\n"
            "from test_sim_trace import faulty_run\n"
            "print(faulty_run(11, clients=10, horizon=300).hexdigest())")
    hashes = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        hashes.add(out.stdout.strip())
    assert len(hashes) == 1 and faulty_run(11, clients=10, horizon=300).hexdigest() in hashes


def test_the_summary_names_the_class_and_its_identifying_fields():
    trace = Trace()
    request = RpcRequest(id=7, src="c1", method="Node.Register", args={"big": list(range(100))})
    assert trace.summary(request) == "RpcRequest|Node.Register|7"
    assert trace.summary(RpcResponse(id=7, index=42)) == "RpcResponse|7|42"
    assert trace.summary(Note("ping", 3)) == "Note|ping|3"
    assert trace.summary({"type": "vote", "term": 2, "payload": "x"}) == "dict|vote|2"

    class WithMethodNamedId:
        def id(self):
            return 1

    assert trace.summary(WithMethodNamedId()) == "WithMethodNamedId"  # a bound method's repr has an address


def test_state_and_faults_change_the_hash():
    plain, with_state, with_fault = Trace(), Trace(), Trace()
    for trace in (plain, with_state, with_fault):
        trace.record_delivery(1.0, "a", "b", Note("ping", 1))
    with_state.add_state("fsm:abc")
    with_fault.record_fault(2.0, "crash", "a", {})
    assert len({plain.hexdigest(), with_state.hexdigest(), with_fault.hexdigest()}) == 3
    again = Trace()
    again.record_delivery(1.0 + 1e-9, "a", "b", Note("ping", 1))  # the same microsecond
    assert again.hexdigest() == plain.hexdigest()
