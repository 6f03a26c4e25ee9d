"""`fab deploy` onto the netns lab (3 servers, 2 of them clients): from nothing to healthy, and again unchanged.

    python benchmarks/deploy.py [--runs 3] [--dir .bench-lab] [--json]      (root; openssh-server)

Each run removes what the previous one installed (`fab teardown`) so the first deploy starts from nothing but the
locally cached wheelhouse (.build/); the second deploy of a run changes nothing and should be a no-op.
JSON keys: `runs`, `deploy_from_nothing_s` and `deploy_unchanged_s` (lists), their medians
`deploy_from_nothing_median_s` and `deploy_unchanged_median_s`, `lab_up_s`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from remote import deploy
from remote.lab import Lab
from scenarios.clusters.lab import LAB_HOSTS, fab_deploy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=".bench-lab", help="the lab's directory (keys, inventory, host dirs)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    lab = Lab(Path(args.dir), hosts=LAB_HOSTS)
    start = time.monotonic()
    lab.up()
    lab_up = time.monotonic() - start
    fresh, again = [], []
    try:
        for run in range(args.runs):
            deploy.teardown(lab.inventory_path)
            fresh.append(fab_deploy(lab.inventory_path))
            again.append(fab_deploy(lab.inventory_path))
            print(f"run {run + 1}: from nothing {fresh[-1]:.2f} s, unchanged {again[-1]:.2f} s", flush=True)
    finally:
        deploy.teardown(lab.inventory_path)
        lab.down()
    result = {"runs": args.runs, "lab_up_s": round(lab_up, 2),
              "deploy_from_nothing_s": [round(x, 2) for x in fresh], "deploy_unchanged_s": [round(x, 2) for x in again],
              "deploy_from_nothing_median_s": round(statistics.median(fresh), 2),
              "deploy_unchanged_median_s": round(statistics.median(again), 2)}
    print(f"lab up {lab_up:.2f} s; fab deploy from nothing: median {result['deploy_from_nothing_median_s']} s; "
          f"unchanged: median {result['deploy_unchanged_median_s']} s ({args.runs} runs)")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
