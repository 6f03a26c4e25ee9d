"""A scenario's record: its outcome, key timings and facts, written as JSON for the fidelity report."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Record:
    scenario: str
    cluster: str  # the Cluster's kind: sim, local, lab, inventory
    outcome: str = "unknown"  # passed, failed, skipped
    timings: dict[str, float] = field(default_factory=dict)  # seconds on the cluster's clock
    facts: dict[str, Any] = field(default_factory=dict)  # counts and names the scenario observed
    started: float = field(default_factory=time.time)  # wall time of the run, for the report's header
    host: str = field(default_factory=platform.node)

    def time(self, name: str, seconds: float | None) -> float | None:
        """Note a timing (None: it never happened, kept so the report says so)."""
        self.timings[name] = round(seconds, 4) if seconds is not None else None  # type: ignore[assignment]
        return seconds

    def fact(self, name: str, value: Any) -> Any:
        self.facts[name] = value
        return value

    def path(self, results: Path) -> Path:
        return results / self.cluster / f"{self.scenario}.json"

    def write(self, results: Path) -> Path:
        path = self.path(results)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path


def load_records(results: Path) -> dict[str, dict[str, Record]]:
    """{cluster kind: {scenario: Record}} of every record under `results`."""
    found: dict[str, dict[str, Record]] = {}
    for path in sorted(results.glob("*/*.json")):
        data = json.loads(path.read_text())
        record = Record(**{k: v for k, v in data.items() if k in Record.__dataclass_fields__})
        found.setdefault(record.cluster, {})[record.scenario] = record
    return found
