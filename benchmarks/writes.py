"""3 local servers: job registrations per second at a given concurrency, and their latency.

    python benchmarks/writes.py [--concurrency 32] [--seconds 20] [--client aiohttp|threads] [--nomad PATH] [--json]

Count-0 service jobs registered with `PUT /v1/jobs` on the leader by `concurrency` workers for
`seconds`; as LAB.md measured real Nomad 1.0.18 (266/s, p50 111 ms, p99 301 ms at 32 concurrent).

Two load generators send the same requests at the same concurrency, each worker waiting for its answer
before sending the next, and time every request on its own:
- `aiohttp` (the default): one event loop, `concurrency` coroutines over keep-alive connections. On this
  2-core machine the generator shares the CPU with the three servers, and this one costs it the least.
- `threads`: `concurrency` threads of urllib, a new connection per request (what LAB.md's figures used).
Both report the CPU seconds each process spent during the run (`cpu_s`), which shows who the bottleneck is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.testing.local_cluster import LocalCluster, count_zero_job

REQUEST_TIMEOUT = 10.0


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process `pid` so far (all its threads), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_threads(cluster: LocalCluster, leader: int, concurrency: int, seconds: float,
                 latencies: list[float]) -> int:
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(w: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            started = time.perf_counter()
            ok = cluster.register(leader, count_zero_job(f"w{w}-{n}"), timeout=REQUEST_TIMEOUT)
            took = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append(took)
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors[0]


def _run_aiohttp(cluster: LocalCluster, leader: int, concurrency: int, seconds: float,
                 latencies: list[float]) -> int:
    import aiohttp

    url = cluster.agents[leader].address + "/v1/jobs"
    errors = 0

    async def worker(session: aiohttp.ClientSession, w: int, deadline: float) -> None:
        nonlocal errors
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            # The very body `LocalCluster.register` sends (json.dumps of {"Job": ...}), built per request.
            body = json.dumps({"Job": count_zero_job(f"w{w}-{n}")}).encode()
            started = time.perf_counter()
            try:
                async with session.put(url, data=body) as resp:
                    raw = await resp.read()
                    ok = resp.status == 200
                if ok:
                    json.loads(raw)  # as register() does: an answer that is not JSON is an error
            except (aiohttp.ClientError, TimeoutError, ValueError):
                ok = False
            took = time.perf_counter() - started
            if ok:
                latencies.append(took)
            else:
                errors += 1

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            deadline = time.perf_counter() + seconds
            await asyncio.gather(*(worker(session, w, deadline) for w in range(concurrency)))

    asyncio.run(main())
    return errors


def measure(binary: str | None, concurrency: int, seconds: float, client: str = "aiohttp") -> dict:
    with LocalCluster(servers=3, binary=binary) as cluster:
        cluster.start()
        if cluster.wait(cluster.healthy, timeout=60) is None:
            return {"error": "cluster did not become healthy"}
        leader = cluster.leader_index()
        assert leader is not None
        latencies: list[float] = []
        pids = {("leader" if i == leader else f"follower{i}"): a.proc.pid
                for i, a in enumerate(cluster.agents) if a.proc is not None}
        cpu_before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
        own_before = time.process_time()
        run = _run_aiohttp if client == "aiohttp" else _run_threads
        started = time.perf_counter()
        errors = run(cluster, leader, concurrency, seconds, latencies)
        wall = time.perf_counter() - started
        cpu = {name: round(_cpu_seconds(pid) - cpu_before[name], 2) for name, pid in pids.items()}
        cpu["load_generator"] = round(time.process_time() - own_before, 2)
    ordered = sorted(latencies)
    return {"client": client, "concurrency": concurrency, "seconds": round(wall, 2), "writes": len(latencies),
            "errors": errors, "writes_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 1) if ordered else None,
            "max_ms": round(ordered[-1] * 1000, 1) if ordered else None, "cpu_s": cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--client", choices=("aiohttp", "threads"), default="aiohttp",
                        help="the load generator: one asyncio client with keep-alive, or urllib threads")
    parser.add_argument("--nomad", help="path to a nomad binary to measure side by side")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    figures = {"yurt": measure(None, opts.concurrency, opts.seconds, opts.client)}
    if opts.nomad:
        figures["nomad"] = measure(opts.nomad, opts.concurrency, opts.seconds, opts.client)
    for name, f in figures.items():
        print(f"{name}: {f.get('writes_per_s')} registrations/s at concurrency {opts.concurrency} ({opts.client} "
              f"client), p50 {f.get('p50_ms')} ms, p99 {f.get('p99_ms')} ms (real Nomad 1.0.18 per LAB.md: 266/s, "
              f"p50 111 ms, p99 301 ms); CPU seconds {f.get('cpu_s')}")
    if opts.json:
        print(json.dumps({**figures["yurt"], "nomad": figures.get("nomad")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
