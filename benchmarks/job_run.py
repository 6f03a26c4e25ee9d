"""`agent -dev` start → node ready, and `job run` (raw_exec `sleep 3600`) → every allocation running.

    python benchmarks/job_run.py [--runs 5] [--count 1|50] [--nomad PATH] [--source] [--json]

Each run starts a fresh dev agent as a process, polls `/v1/nodes` every 20 ms (as LAB.md did) until its node
is `ready`, registers the job over HTTP and polls `/v1/job/<id>/allocations` every 20 ms until `count`
allocations are `running`; then the same for a second job on the now warm agent. Real Nomad 1.0.18 here
(LAB.md): 1.62 s to a ready node, 0.262 s to running for count 1, 1.95 s for count 50. Also reports the
agent's resident memory with the first job's tasks running.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.error
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.testing.local_cluster import LocalCluster, default_ports_free, ensure_bytecode

POLL = 0.02
TIMEOUT = 60.0


def sleep_job(job_id: str, count: int) -> dict:
    return {"ID": job_id, "Name": job_id, "Type": "service", "Datacenters": ["dc1"],
            "TaskGroups": [{"Name": "g", "Count": count,
                            "Tasks": [{"Name": "sleep", "Driver": "raw_exec",
                                       "Config": {"command": "/bin/sleep", "args": ["3600"]},
                                       "Resources": {"CPU": 20, "MemoryMB": 16}}]}]}


def _get(cluster: LocalCluster, path: str) -> object:
    try:
        return cluster.request(0, "GET", path, timeout=1.0)
    except (OSError, urllib.error.URLError, ValueError):
        return None


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_job(cluster: LocalCluster, job_id: str, count: int) -> float | None:
    """Seconds from registering the job over HTTP until `count` allocations are running; None on failure."""
    submitted = time.perf_counter()
    if not cluster.register(0, sleep_job(job_id, count), timeout=10.0):
        return None

    def all_running() -> bool:
        allocs = _get(cluster, f"/v1/job/{job_id}/allocations")
        return isinstance(allocs, list) and sum(a.get("ClientStatus") == "running" for a in allocs) >= count

    if cluster.wait(all_running, timeout=TIMEOUT, interval=POLL) is None:
        return None
    return time.perf_counter() - submitted


def one(binary: str | None, count: int) -> tuple[float | None, float | None, float | None, float | None]:
    """(start → node ready, job run → all running, the same for a second job, agent RSS in MB with the
    tasks running); None on timeout. The first job on a fresh agent also pays for loading the schedulers."""
    # Plain `agent -dev` on the default ports when they are free (the figure itself), else with a ports config.
    with LocalCluster(dev=True, binary=binary, default_ports=default_ports_free()) as cluster:
        started = time.perf_counter()
        cluster.start()

        def node_ready() -> bool:
            nodes = _get(cluster, "/v1/nodes")
            return isinstance(nodes, list) and any(n.get("Status") == "ready" for n in nodes)

        ready = cluster.wait(node_ready, timeout=TIMEOUT, interval=POLL)
        if ready is None:
            return None, None, None, None
        ready = time.perf_counter() - started
        running = run_job(cluster, f"bench-{count}", count)
        proc = cluster.agents[0].proc
        rss = _rss_mb(proc.pid) if proc is not None else None
        time.sleep(0.5)  # past the client's update batching interval (200 ms), which the first job's updates opened
        warm = run_job(cluster, f"again-{count}", count) if running is not None else None
        return ready, running, warm, rss


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def measure(binary: str | None, runs: int, count: int) -> dict:
    readies: list[float] = []
    runnings: list[float] = []
    warms: list[float] = []
    rss: list[float] = []
    for _ in range(runs):
        ready, running, warm, memory = one(binary, count)
        for values, value in ((readies, ready), (runnings, running), (warms, warm), (rss, memory)):
            if value is not None:
                values.append(value)
    return {"runs": runs, "count": count, "node_ready_median_s": _median(readies),
            "running_median_s": _median(runnings), "running_second_job_median_s": _median(warms),
            "node_ready_all_s": [round(v, 3) for v in readies], "running_all_s": [round(v, 3) for v in runnings],
            "agent_rss_mb": _median(rss), "failed_runs": runs - len(runnings)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--nomad", help="path to a nomad binary to measure side by side")
    parser.add_argument("--source", action="store_true",
                        help="leave the modules uncompiled (start as a checkout that may not write bytecode does)")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    if not opts.source:
        ensure_bytecode()  # as pip leaves an installed agent
    figures = {"yurt": measure(None, opts.runs, opts.count)}
    if opts.nomad:
        figures["nomad"] = measure(opts.nomad, opts.runs, opts.count)
    for name, f in figures.items():
        print(f"{name}: agent -dev start -> node ready {f['node_ready_median_s']} s; job run (raw_exec, count "
              f"{f['count']}) -> all running {f['running_median_s']} s (a second job: "
              f"{f['running_second_job_median_s']} s); agent RSS {f['agent_rss_mb']} MB "
              f"(median of {f['runs']}; Nomad 1.0.18 per LAB.md: 1.62 s, 0.262 s for count 1, 1.95 s for 50)")
    if opts.json:
        print(json.dumps({**figures["yurt"], "nomad": figures.get("nomad")}))
    return 0 if not figures["yurt"]["failed_runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
