"""Client-side garbage collection on demand: `/v1/client/gc` and `/v1/client/allocation/:id/gc` remove
terminal allocations' directories on a real dev agent and never touch running ones."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from orchestrator.testing.local_cluster import LocalCluster
from tests.client_real.test_raw_exec_agent import Agent, eventually, running, service, start_agent

pytestmark = [pytest.mark.real]


@pytest.fixture(scope="module")
def dev() -> Iterator[Agent]:
    with LocalCluster(dev=True) as cluster:
        yield start_agent(cluster, cluster.base / "data")


def _put(agent: Agent, path: str) -> int:
    request = urllib.request.Request(agent.address + path, data=b"", method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_gc_removes_terminal_allocations_and_keeps_running_ones(dev):
    done_job = dev.run(service("finished", "echo done", job_type="batch"))
    live_job = dev.run(service("alive", "sleep 300"))
    (finished,) = eventually(lambda: [a for a in dev.allocs(done_job) if a["ClientStatus"] == "complete"] or None,
                             timeout=20)
    (alive,) = eventually(lambda: running(dev, live_job), timeout=20)
    finished_dir = dev.data_dir / "alloc" / finished["ID"]
    alive_dir = dev.data_dir / "alloc" / alive["ID"]
    assert finished_dir.exists() and alive_dir.exists()
    assert _put(dev, f"/v1/client/allocation/{alive['ID']}/gc") == 400  # not terminal
    assert _put(dev, "/v1/client/gc") == 200
    assert eventually(lambda: not finished_dir.exists(), timeout=10)
    assert alive_dir.exists() and running(dev, live_job)
