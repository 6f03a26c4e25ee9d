"""The CI fuzz campaign: 200 seeds of random faults, no invariant broken, every run converges."""

from __future__ import annotations

import pytest

from sim.fuzz import FuzzOptions, fuzz, fuzz_seed

pytestmark = pytest.mark.sim


def test_two_hundred_seeds_of_random_faults_break_no_invariant():
    options = FuzzOptions()
    results = fuzz(range(200), options, workers=2)
    failing = {r.seed: r.violations for r in results if not r.ok}
    assert failing == {}, "\n".join(r.replay_command(options) for r in results if not r.ok)
    assert all(r.converged_after is not None for r in results)


def test_a_fuzz_seed_replays_identically():
    assert fuzz_seed(17).trace_hash == fuzz_seed(17).trace_hash


def test_a_campaign_really_injects_faults():
    result = fuzz_seed(3, FuzzOptions(intensity=6.0))
    assert len(result.faults) >= 3
