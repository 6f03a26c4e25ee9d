"""Simulation speed: virtual seconds simulated per wall second, with the real server and client code.

    python benchmarks/sim_speed.py --servers 3 --clients 1000 [--sim-seconds 3600] [--jobs 100] [--json]

3 servers and N clients with Nomad's heartbeat timing boot, then 100 service jobs of 10 allocations each
are registered and run for the rest of the simulated hour. The figure is simulated seconds divided by
the wall seconds the whole run took (boot included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.rpc import methods
from sim.cluster import ClusterSpec, SimCluster
from sim.progress import ProgressBar

JOB = """
job "svc-%(i)d" {
  datacenters = ["dc1"]
  group "g" {
    count = %(count)d
    task "t" {
      driver = "docker"
      config { image = "nginx" }
      resources {
        cpu    = 20
        memory = 32
      }
    }
  }
}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--sim-seconds", type=float, default=3600.0)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()

    started = time.perf_counter()
    cluster = SimCluster(ClusterSpec(seed=opts.seed, servers=opts.servers, clients=opts.clients,
                                     check_invariants=False))
    # On a terminal only (stderr), redrawn at most 5 times a wall second: stdout's last line stays the JSON.
    bar = ProgressBar(opts.sim_seconds, label="sim_speed")
    if bar.active:
        cluster.on_progress = bar.update
    boot = cluster.run_until(lambda: cluster.leader() is not None and
                             cluster.state().node_count() == opts.clients, 300, poll=1.0)
    boot_wall = time.perf_counter() - started
    from orchestrator.jobspec import parse_job
    calls = [cluster.call(methods.JOB_REGISTER, {"Job": parse_job(JOB % {"i": i, "count": opts.count}, "job.hcl")})
             for i in range(opts.jobs)]
    placed_at = cluster.run_until(lambda: all(c.done for c in calls) and
                                  sum(1 for a in cluster.state().allocs() if a.client_status == "running")
                                  >= opts.jobs * opts.count, 600, poll=1.0)
    remaining = opts.sim_seconds - cluster.now
    if remaining > 0:
        cluster.run(remaining)
    bar.close()
    wall = time.perf_counter() - started
    counters = cluster.runtime.counters
    figures = {
        "servers": opts.servers, "clients": opts.clients, "jobs": opts.jobs, "allocs": opts.jobs * opts.count,
        "sim_seconds": round(cluster.now, 1), "wall_seconds": round(wall, 2),
        "sim_seconds_per_wall_second": round(cluster.now / wall, 1),
        "boot_virtual_seconds": boot, "boot_wall_seconds": round(boot_wall, 2),
        "all_running_after_virtual_seconds": placed_at,
        "messages_delivered": counters.delivered, "events": counters.events,
        "events_per_wall_second": round(counters.events / wall),
        "running_allocs": sum(1 for a in cluster.state().allocs() if a.client_status == "running"),
    }
    print(f"{opts.servers} servers + {opts.clients} clients, {figures['allocs']} allocations: "
          f"{figures['sim_seconds']:.0f} simulated seconds in {wall:.1f} s wall = "
          f"{figures['sim_seconds_per_wall_second']}x real time")
    print(f"boot {boot} virtual s ({boot_wall:.1f} s wall); all running after {placed_at} virtual s; "
          f"{counters.delivered} messages, {figures['events_per_wall_second']} events/s")
    if opts.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
