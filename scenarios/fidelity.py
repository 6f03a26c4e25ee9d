"""The fidelity report: each scenario's outcome and timings on the simulator beside real runs, side by side.

    python -m scenarios.fidelity                 # every cluster kind recorded under .scenario-results
    python -m scenarios.fidelity sim local lab   # these columns, in this order
    python -m scenarios.fidelity --json          # the same as one JSON object on the last line
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from scenarios.record import Record, load_records

ORDER = ("sim", "local", "lab")


def _kinds(found: dict[str, dict[str, Record]], wanted: list[str]) -> list[str]:
    if wanted:
        return wanted
    return sorted(found, key=lambda k: (ORDER.index(k) if k in ORDER else len(ORDER), k))


def compare(found: dict[str, dict[str, Record]], kinds: list[str]) -> list[dict[str, Any]]:
    """One row per (scenario, timing) and one per scenario's outcome; each with a value per cluster kind and,
    where the simulator and a real kind both have a timing, the real one as a multiple of the sim's."""
    scenarios = sorted({name for kind in kinds for name in found.get(kind, {})})
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        records = {kind: found.get(kind, {}).get(scenario) for kind in kinds}
        rows.append({"scenario": scenario, "metric": "outcome",
                     "values": {k: (r.outcome if r else None) for k, r in records.items()}})
        metrics = sorted({m for r in records.values() if r for m in r.timings})
        for metric in metrics:
            values = {k: (r.timings.get(metric) if r else None) for k, r in records.items()}
            row: dict[str, Any] = {"scenario": scenario, "metric": metric, "values": values}
            sim = values.get("sim")
            if sim:
                row["ratio_to_sim"] = {k: round(v / sim, 2) for k, v in values.items()
                                       if k != "sim" and isinstance(v, int | float)}
            rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return str(value)


def render(rows: list[dict[str, Any]], kinds: list[str]) -> str:
    header = ["scenario", "metric", *kinds]
    if any("ratio_to_sim" in r for r in rows):
        header += [f"{k}/sim" for k in kinds if k != "sim" and "sim" in kinds]
    table = [header]
    last = None
    for row in rows:
        line = [row["scenario"] if row["scenario"] != last else "", row["metric"]]
        line += [_cell(row["values"].get(k)) for k in kinds]
        ratios = row.get("ratio_to_sim", {})
        line += [f"{ratios[k]:.2f}x" if k in ratios else "" for k in kinds if k != "sim" and "sim" in kinds]
        table.append(line[:len(header)])
        last = row["scenario"]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)).rstrip() for r in table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenarios.fidelity", description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", help="cluster kinds as columns (default: every kind recorded)")
    parser.add_argument("--results", default=".scenario-results", help="where the scenarios wrote their records")
    parser.add_argument("--json", action="store_true", help="end with the comparison as one JSON object")
    args = parser.parse_args(argv)
    found = load_records(Path(args.results))
    if not found:
        print(f"no scenario records under {args.results}: run `pytest scenarios --cluster=sim,local` first",
              file=sys.stderr)
        return 1
    kinds = _kinds(found, args.kinds)
    rows = compare(found, kinds)
    print(render(rows, kinds))
    if args.json:
        print(json.dumps({"kinds": kinds, "rows": rows}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
