"""Real Nomad 1.0.18's API answers (shared/reference) and a recursive comparison of JSON key sets."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "nomad-1.0.18" / "api"

# Maps keyed by names (task groups, tasks, drivers, datacenters...), not structs: their values are compared
# with the reference's first value, their keys not at all. Free-form maps are not compared inside.
KEYED_MAPS = frozenset({"Summary", "TaskGroups", "TaskStates", "Drivers", "Tasks", "TaskLifecycles",
                        "TaskResources", "QueuedAllocations"})
FREE_FORM = frozenset({"Attributes", "Meta", "Config", "Details", "Tags", "Links", "NodesAvailable", "Scores",
                       "Env", "ClassFiltered", "ConstraintFiltered", "ClassExhausted", "DimensionExhausted"})
# Fields newer Nomad versions added, which yurt supports and prints too.
NEWER_FIELDS = frozenset({"Cores", "MemoryMaxMB", "MinDynamicPort", "MaxDynamicPort", "TotalCpuCores",
                          "ReservableCpuCores"})


@cache
def load(name: str) -> Any:
    return json.loads((REFERENCE / name).read_text())


def key_differences(actual: Any, reference: Any, path: str = "$", *, exact: bool = True) -> list[str]:
    """Where `actual` lacks a key the reference has (or, with `exact`, has one it lacks), recursively.

    Lists compare their first elements; a null on either side ends the comparison there (Nomad prints
    absent objects as null, so shapes can only be compared where both have a value).
    """
    if isinstance(actual, list) and isinstance(reference, list):
        if actual and reference:
            return key_differences(actual[0], reference[0], f"{path}[0]", exact=exact)
        return []
    if not isinstance(actual, dict) or not isinstance(reference, dict):
        return []
    problems = [f"{path}.{key}: missing" for key in reference if key not in actual]
    if exact:
        problems += [f"{path}.{key}: not in Nomad's answer" for key in actual
                     if key not in reference and key not in NEWER_FIELDS]
    for key, value in actual.items():
        if key not in reference or key in FREE_FORM:
            continue
        if key in KEYED_MAPS and isinstance(value, dict) and isinstance(reference[key], dict):
            if value and reference[key]:
                sample = next(iter(reference[key].values()))
                problems += [p for v in value.values()
                             for p in key_differences(v, sample, f"{path}.{key}.*", exact=exact)]
            continue
        problems += key_differences(value, reference[key], f"{path}.{key}", exact=exact)
    return sorted(set(problems))
