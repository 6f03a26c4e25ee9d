"""Steps the scenarios share: faults that may be unsupported, and waits phrased in the operator's terms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scenarios.cluster import Cluster, Unsupported


def require(fault: Callable[..., Any], *args: Any) -> Any:
    """Run a fault; skip the scenario (with the runtime's reason) when this runtime cannot inject it."""
    try:
        return fault(*args)
    except Unsupported as exc:
        pytest.skip(str(exc))


def running_on(cluster: Cluster, job_id: str) -> dict[str, int]:
    """{node name: allocations of the job running there}."""
    found: dict[str, int] = {}
    for alloc in cluster.running(job_id):
        found[alloc["NodeName"]] = found.get(alloc["NodeName"], 0) + 1
    return found


def wait_running(cluster: Cluster, job_id: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The job's `count` running allocations, once exactly that many run; fails the scenario otherwise."""
    def exactly() -> list[dict[str, Any]] | None:
        running = cluster.running(job_id)
        return running if len(running) == count else None

    allocs = cluster.wait_for(exactly, timeout)
    assert allocs, f"{job_id}: {count} running expected within {timeout}s, saw {cluster.allocations(job_id)}"
    return allocs


def restarts(alloc: dict[str, Any], task: str) -> int:
    return int(((alloc.get("TaskStates") or {}).get(task) or {}).get("Restarts") or 0)


def write_until_accepted(cluster: Cluster, hcl: str, timeout: float) -> bool:
    """Retry a registration until some server accepts it (LAB.md's failover method)."""
    return bool(cluster.wait_for(lambda: cluster.run_job(hcl, timeout=1.0), timeout, interval=0.02))


def summary(allocs: list[dict[str, Any]]) -> list[str]:
    """One line per allocation, for failure messages: id, node, version, desired/client status, restarts."""
    lines = []
    for a in sorted(allocs, key=lambda a: a.get("CreateIndex", 0)):
        transition = {k: v for k, v in (a.get("DesiredTransition") or {}).items() if v}
        health = (a.get("DeploymentStatus") or {}).get("Healthy")
        lines.append(f"{a['ID'][:8]} {a.get('Name', '')} node={a.get('NodeName')} v{a.get('JobVersion')} "
                     f"{a['DesiredStatus']}/{a['ClientStatus']} transition={transition or '-'} healthy={health}")
    return lines
