"""`agent -dev` start-up: time from spawning the process to the HTTP API answering, and to a leader.

    python benchmarks/agent_start.py [--runs 5] [--nomad PATH] [--source] [--json]

LAB.md measured real Nomad 1.0.18 here: 0.205 s to HTTP, 1.62 s to a ready node. Polls every 20 ms as
LAB.md did. With --nomad the same measurement runs against that binary too, side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.testing.local_cluster import LocalCluster, default_ports_free, ensure_bytecode


def one(binary: str | None, default_ports: bool) -> tuple[float | None, float | None]:
    with LocalCluster(dev=True, binary=binary, default_ports=default_ports) as cluster:
        started = time.perf_counter()
        cluster.start()
        agent = cluster.agents[0]

        def answers() -> bool:
            try:
                urllib.request.urlopen(agent.address + "/v1/status/leader", timeout=0.5).read()
            except urllib.error.HTTPError:
                return True  # an HTTP answer, even an error, is an answer
            except (OSError, urllib.error.URLError):
                return False
            return True

        http = None
        leader = None
        while time.perf_counter() - started < 30:
            now = time.perf_counter() - started
            if http is None and answers():
                http = now
            if http is not None and cluster.leader(0):
                leader = now
                break
            time.sleep(0.02)
        return http, leader


def measure(binary: str | None, runs: int, default_ports: bool) -> dict:
    https, leaders = [], []
    for _ in range(runs):
        http, leader = one(binary, default_ports)
        if http is not None:
            https.append(http)
        if leader is not None:
            leaders.append(leader)
    return {"runs": runs, "http_median_s": round(statistics.median(https), 3) if https else None,
            "leader_median_s": round(statistics.median(leaders), 3) if leaders else None,
            "http_min_s": round(min(https), 3) if https else None,
            "failed_runs": runs - len(leaders)}


def both(binary: str | None, runs: int) -> dict:
    """Plain `agent -dev` (the figure itself) on the default ports when they are free, and `agent -dev -config
    ports.hcl` as tests run agents side by side (an HCL file to parse: ~80 ms of python-hcl2 here)."""
    plain = default_ports_free()
    with_config = measure(binary, runs, False)
    figures = measure(binary, runs, True) if plain else dict(with_config)
    figures["ports"] = "default" if plain else "config"
    figures["config_http_median_s"] = with_config["http_median_s"]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--nomad", help="path to a nomad binary to measure side by side")
    parser.add_argument("--source", action="store_true",
                        help="leave the modules uncompiled (start as a checkout that may not write bytecode does)")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    if not opts.source:
        ensure_bytecode()  # as pip leaves an installed agent
    figures = {name: both(binary, opts.runs) for name, binary in (("yurt", None), ("nomad", opts.nomad))
               if name == "yurt" or binary}
    for name, f in figures.items():
        print(f"{name}: agent -dev start -> HTTP answers {f['http_median_s']} s, -> leader {f['leader_median_s']} s "
              f"({f['ports']} ports), with a -config file naming the ports {f['config_http_median_s']} s "
              f"(median of {f['runs']}; real Nomad 1.0.18 per LAB.md: 0.205 s to HTTP)")
    if opts.json:
        print(json.dumps({**figures["yurt"], "nomad": figures.get("nomad")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
