"""Task lifecycle, user restarts and shutdown_delay on a real dev agent with raw_exec tasks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from orchestrator.testing.local_cluster import LocalCluster
from tests.client_real.test_raw_exec_agent import Agent, eventually, start_agent, yurt

pytestmark = [pytest.mark.real]


def task(name: str, script: str, lifecycle: str = "", extra: str = "") -> str:
    return f"""
    task "{name}" {{
      driver = "raw_exec"
      {lifecycle}
      {extra}
      config {{
        command = "/bin/sh"
        args    = ["-c", {json.dumps(script)}]
      }}
      resources {{
        cpu    = 20
        memory = 16
      }}
    }}"""


JOB = f"""job "life" {{
  datacenters = ["dc1"]
  group "g" {{
    restart {{
      attempts = 1
      interval = "10m"
      delay    = "30s"
      mode     = "fail"
    }}
    {task("init", 'sleep 0.5; echo ready > "$NOMAD_ALLOC_DIR/init-done"', 'lifecycle { hook = "prestart" }')}
    {task("main", 'cat "$NOMAD_ALLOC_DIR/init-done" > "$NOMAD_TASK_DIR/seen"; echo $$ > "$NOMAD_TASK_DIR/pid"; '
                  'exec sleep 3600', extra='shutdown_delay = "1s"')}
    {task("cleanup", 'echo bye > "$NOMAD_ALLOC_DIR/cleanup-ran"', 'lifecycle { hook = "poststop" }')}
  }}
}}
"""


@pytest.fixture(scope="module")
def dev() -> Iterator[Agent]:
    with LocalCluster(dev=True) as cluster:
        yield start_agent(cluster, cluster.base / "data")


def test_lifecycle_restart_and_shutdown_delay(dev):
    dev.run(JOB)

    def running() -> str | None:
        allocs = [a for a in dev.allocs("life") if a["TaskStates"] and
                  a["TaskStates"].get("main", {}).get("State") == "running"]
        return allocs[0]["ID"] if allocs and dev.pid(allocs[0]["ID"], "main") else None

    alloc_id = eventually(running, timeout=20)
    assert dev.task_file(alloc_id, "main", "seen").read_text() == "ready\n"  # the init task ran first
    states = dev.alloc(alloc_id)["TaskStates"]
    assert states["init"]["State"] == "dead" and not states["init"]["Failed"]
    assert states["cleanup"]["State"] == "pending"

    # A user restart: back at once (the policy's 30 s delay is not waited), no attempt of the policy used.
    pid = dev.pid(alloc_id, "main")
    run = yurt(dev, "alloc", "restart", alloc_id, "main")
    assert (run.returncode, run.stdout) == (0, ""), run

    def restarted() -> bool:
        state = dev.alloc(alloc_id)["TaskStates"]["main"]
        return state["State"] == "running" and state["Restarts"] == 1 and dev.pid(alloc_id, "main") not in (None, pid)

    assert eventually(restarted, timeout=10), dev.alloc(alloc_id)["TaskStates"]["main"]
    types = [e["Type"] for e in dev.alloc(alloc_id)["TaskStates"]["main"]["Events"]]
    assert types[-4:] == ["Restart Signaled", "Terminated", "Restarting", "Started"], types

    # Stop: the shutdown delay, then the kill; the poststop task runs after.
    run = yurt(dev, "job", "stop", "life")
    assert run.returncode == 0, run
    cleanup = dev.data_dir / "alloc" / alloc_id / "alloc" / "cleanup-ran"
    assert eventually(cleanup.exists, timeout=20)
    main = dev.alloc(alloc_id)["TaskStates"]["main"]
    types = [e["Type"] for e in main["Events"]]
    assert types[-4:] == ["Killing", "Waiting for shutdown delay", "Terminated", "Killed"], types
    assert main["Events"][-2]["Time"] - main["Events"][-3]["Time"] >= 0.9e9
    assert eventually(lambda: dev.alloc(alloc_id)["ClientStatus"] == "complete", timeout=10)
