"""Micro-benchmark (not a test): 1,000 toy clients heartbeating ~every 20 s to 3 toy servers for a virtual hour.

    python tests/sim/bench_sim_runtime.py [--clients 1000] [--hours 1] [--seed 1] [--json]

Prints events per wall second: the runtime's own cost, since the toy agents do almost nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent)]  # the toys beside this file, and the repository root

from sim_toys import heartbeat_cluster  # noqa: E402

from sim.progress import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    env, runtime, _network, trace = heartbeat_cluster(args.seed, args.clients, args.servers)
    built = time.perf_counter()
    run(env, args.hours * 3600.0, label="heartbeats")
    finished = time.perf_counter()
    c = runtime.counters
    figures = {
        "clients": args.clients, "servers": args.servers, "virtual_s": args.hours * 3600.0,
        "build_s": round(built - started, 3), "run_s": round(finished - built, 3),
        "events": c.events, "events_per_s": round(c.events / (finished - built)),
        "sent": c.sent, "delivered": c.delivered, "ticks": c.ticks, "stale_timers": c.stale_timers,
        "trace": trace.hexdigest(),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>14}: {value:,}" if isinstance(value, int) else f"{key:>14}: {value}")


if __name__ == "__main__":
    main()
