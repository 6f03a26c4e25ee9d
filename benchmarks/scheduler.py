"""Scheduler throughput: placements per second on Nomad's c1m-style workloads, in-process.

    python benchmarks/scheduler.py --workload c1m-slice [--nodes 5000] [--jobs 10] [--json]

Nodes and jobs are written straight into a state store; each job is registered and its evaluation
run through the scheduler and the real plan applier, so later jobs see earlier placements.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.structs import (
    Constraint,
    DriverInfo,
    Job,
    Node,
    NodeResources,
    Resources,
    Spread,
    Task,
    TaskGroup,
    encode,
    job_from_api,
)
from orchestrator.testing.harness import Harness

WORKLOADS = {
    "c1m-slice": {"nodes": 5000, "jobs": 10, "count": 1000, "type": "service"},
    "batch": {"nodes": 5000, "jobs": 10, "count": 1000, "type": "batch"},
    "spread-constraint": {"nodes": 5000, "jobs": 10, "count": 1000, "type": "service", "spread": True},
    "small": {"nodes": 100, "jobs": 100, "count": 10, "type": "service"},
}


def build_node(i: int, with_rack: bool) -> Node:
    node = Node(id=f"{i:08x}-b00c-4000-8000-{i:012x}", name=f"bench-{i}", datacenter="dc1",
                node_class=f"class-{i % 10}", status="ready",
                attributes={"kernel.name": "linux", "driver.raw_exec": "1",
                            "unique.network.ip-address": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"},
                meta={"rack": f"r{i % 25}"} if with_rack else {},
                node_resources=NodeResources.of(4000, 8192, 100 * 1024),
                drivers={"raw_exec": DriverInfo(detected=True, healthy=True)})
    node.computed_class = node.compute_class()
    return node


def build_job(n: int, spec: dict) -> Job:
    task = Task(name="task", driver="raw_exec", config={"command": "/bin/sleep", "args": ["3600"]},
                resources=Resources(cpu=20, memory_mb=10))
    group = TaskGroup(name="group", count=spec["count"], tasks=[task])
    job = Job(id=f"bench-{n}", type=spec["type"], datacenters=["dc1"], task_groups=[group])
    if spec.get("spread"):
        job.constraints = [Constraint(l_target="${node.class}", operand="!=", r_target="class-0")]
        group.spreads = [Spread(attribute="${meta.rack}", weight=100)]
    data = encode(job)
    data["TaskGroups"][0]["EphemeralDisk"] = {"SizeMB": 0}  # the workload asks for no disk
    return job_from_api(data)


def run(workload: str, nodes: int | None, jobs: int | None, seed: int) -> dict:
    spec = dict(WORKLOADS[workload])
    spec["nodes"] = nodes or spec["nodes"]
    spec["jobs"] = jobs or spec["jobs"]
    harness = Harness(seed=seed, now_ns=1_700_000_000 * 1_000_000_000)
    for i in range(spec["nodes"]):
        harness.store.upsert_node(harness.next_index(), build_node(i, bool(spec.get("spread"))))
    per_job_ms = []
    placements = 0
    started = time.perf_counter()
    for n in range(spec["jobs"]):
        job = build_job(n, spec)
        t0 = time.perf_counter()
        evaluation = harness.register_and_schedule(job)
        per_job_ms.append((time.perf_counter() - t0) * 1000)
        placements += sum(1 for a in harness.store.allocs_by_job("default", job.id) if not a.terminal())
        if evaluation.failed_tg_allocs:
            print(f"warning: job {job.id} left allocations unplaced", file=sys.stderr)
    seconds = time.perf_counter() - started
    return {"workload": workload, "nodes": spec["nodes"], "jobs": spec["jobs"], "placements": placements,
            "seconds": round(seconds, 4), "placements_per_s": round(placements / seconds, 1),
            "median_ms_per_job": round(statistics.median(per_job_ms), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="c1m-slice")
    parser.add_argument("--nodes", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
    args = parser.parse_args(argv)
    figures = run(args.workload, args.nodes, args.jobs, args.seed)
    print(f"{figures['workload']}: {figures['placements']} placements on {figures['nodes']} nodes in "
          f"{figures['seconds']:.2f} s = {figures['placements_per_s']:.0f} placements/s, "
          f"median {figures['median_ms_per_job']:.1f} ms per job")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
