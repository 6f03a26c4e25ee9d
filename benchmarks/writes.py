"""3 local servers: job registrations per second at a given concurrency, and their latency.

    python benchmarks/writes.py [--concurrency 32] [--seconds 20] [--nomad PATH] [--json]

Count-0 service jobs registered with `PUT /v1/jobs` on the leader by `concurrency` workers for
`seconds`; as LAB.md measured real Nomad 1.0.18 (266/s, p50 111 ms, p99 301 ms at 32 concurrent).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.testing.local_cluster import LocalCluster, count_zero_job


def measure(binary: str | None, concurrency: int, seconds: float) -> dict:
    with LocalCluster(servers=3, binary=binary) as cluster:
        cluster.start()
        if cluster.wait(cluster.healthy, timeout=60) is None:
            return {"error": "cluster did not become healthy"}
        leader = cluster.leader_index()
        assert leader is not None
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        deadline = time.perf_counter() + seconds

        def worker(w: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                started = time.perf_counter()
                ok = cluster.register(leader, count_zero_job(f"w{w}-{n}"), timeout=10.0)
                took = time.perf_counter() - started
                with lock:
                    if ok:
                        latencies.append(took)
                    else:
                        errors[0] += 1

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"concurrency": concurrency, "seconds": round(wall, 2), "writes": len(latencies), "errors": errors[0],
            "writes_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 1) if ordered else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--nomad", help="path to a nomad binary to measure side by side")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    figures = {"yurt": measure(None, opts.concurrency, opts.seconds)}
    if opts.nomad:
        figures["nomad"] = measure(opts.nomad, opts.concurrency, opts.seconds)
    for name, f in figures.items():
        print(f"{name}: {f.get('writes_per_s')} registrations/s at concurrency {opts.concurrency}, "
              f"p50 {f.get('p50_ms')} ms, p99 {f.get('p99_ms')} ms (real Nomad 1.0.18 per LAB.md: 266/s, "
              f"p50 111 ms, p99 301 ms)")
    if opts.json:
        print(json.dumps({**figures["yurt"], "nomad": figures.get("nomad")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
