"""One seed, one run: the trace must not depend on the process's string-hash seed (PYTHONHASHSEED)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sim

ROOT = Path(__file__).resolve().parents[2]

# A scenario on real servers and a short fuzz campaign (5 servers, so ring partitions, at a high intensity).
PROGRAM = """
from sim.fuzz import FuzzOptions, fuzz_seed
from sim.scenarios import run_scenario
print(run_scenario("leader-minority-partition", 7).trace_hash)
print(fuzz_seed(6, FuzzOptions(servers=5, horizon=40, intensity=20, settle=120)).trace_hash)
"""


def _hashes(hash_seed: str) -> list[str]:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    return done.stdout.split()


def test_the_same_seed_replays_identically_whatever_the_hash_seed():
    first, second = _hashes("0"), _hashes("2")
    assert len(first) == 2 and first == second
