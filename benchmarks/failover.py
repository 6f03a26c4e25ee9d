"""3 local servers: time from `kill -9` of the leader to the first successful job registration.

    python benchmarks/failover.py [--runs 5] [--nomad PATH] [--json]

LAB.md's method: wait until the cluster is healthy, sleep 5 s, kill -9 the leader, then retry
`PUT /v1/jobs` (a count-0 job) on the survivors every 20 ms until one succeeds. Real Nomad 1.0.18 on
this machine kind: 3.19 s median. Each run uses a fresh cluster.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.testing.local_cluster import LocalCluster, count_zero_job


def one(binary: str | None, settle: float) -> float | None:
    with LocalCluster(servers=3, binary=binary) as cluster:
        cluster.start()
        if cluster.wait(cluster.healthy, timeout=60) is None:
            return None
        time.sleep(settle)
        leader = cluster.leader_index()
        if leader is None:
            return None
        survivors = [i for i in range(3) if i != leader]
        cluster.kill(leader)
        killed = time.perf_counter()
        counter = itertools.count()
        for index in itertools.cycle(survivors):
            if cluster.register(index, count_zero_job(f"probe-{next(counter)}"), timeout=1.0):
                return time.perf_counter() - killed
            if time.perf_counter() - killed > 60:
                return None
            time.sleep(0.02)
    return None


def measure(binary: str | None, runs: int, settle: float) -> dict:
    times = [t for t in (one(binary, settle) for _ in range(runs)) if t is not None]
    return {"runs": runs, "median_s": round(statistics.median(times), 3) if times else None,
            "min_s": round(min(times), 3) if times else None, "max_s": round(max(times), 3) if times else None,
            "failed_runs": runs - len(times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between healthy and the kill")
    parser.add_argument("--nomad", help="path to a nomad binary to measure side by side")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    figures = {"yurt": measure(None, opts.runs, opts.settle)}
    if opts.nomad:
        figures["nomad"] = measure(opts.nomad, opts.runs, opts.settle)
    for name, f in figures.items():
        print(f"{name}: kill -9 leader -> job registration succeeds: median {f['median_s']} s "
              f"(min {f['min_s']}, max {f['max_s']}, {f['runs']} runs; real Nomad 1.0.18 per LAB.md: 3.19 s)")
    if opts.json:
        print(json.dumps({**figures["yurt"], "nomad": figures.get("nomad")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
