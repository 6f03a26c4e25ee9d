"""The CI fuzz campaigns: random faults with jobs registered during them, no invariant broken, every run
converges. The gentle one (3 servers, 3 faults a minute) and a harsh one (5 servers, so ring partitions, at
20 faults a minute); 200 seeds each, on two processes."""

from __future__ import annotations

import pytest

from sim.fuzz import FuzzOptions, fuzz, fuzz_seed

pytestmark = pytest.mark.sim

HARSH = FuzzOptions(servers=5, intensity=20.0)


def _campaign(options: FuzzOptions, seeds: range):
    results = fuzz(seeds, options, workers=2)
    failing = {r.seed: r.violations for r in results if not r.ok}
    assert failing == {}, "\n".join(r.replay_command(options) for r in results if not r.ok)
    assert all(r.converged_after is not None for r in results)
    # Jobs really were registered while the faults ran (2 before them, up to 3 during).
    assert sum(r.acknowledged_writes for r in results) > 4 * len(results)
    return results


def test_two_hundred_seeds_of_random_faults_break_no_invariant():
    _campaign(FuzzOptions(), range(200))


def test_two_hundred_seeds_of_harsh_faults_on_five_servers_break_no_invariant():
    results = _campaign(HARSH, range(1000, 1200))
    assert sum(any("partition_ring" in f for f in r.faults) for r in results) > 50


def test_a_fuzz_seed_replays_identically():
    assert fuzz_seed(17).trace_hash == fuzz_seed(17).trace_hash


def test_a_campaign_really_injects_faults():
    result = fuzz_seed(3, FuzzOptions(intensity=6.0))
    assert len(result.faults) >= 3
