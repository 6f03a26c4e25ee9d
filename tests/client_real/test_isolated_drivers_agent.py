"""exec and java tasks through a real dev agent: they run isolated, their output comes back through
`/v1/client/fs/logs` and `yurt alloc logs`, and a failing exec task goes through its restart policy."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.testing.local_cluster import LocalCluster
from tests.client_real.test_raw_exec_agent import Agent, eventually, running, start_agent, yurt

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(os.geteuid() != 0, reason="the exec driver isolates tasks with namespaces: root only"),
]

EXEC_JOB = """job "isolated" {
  datacenters = ["dc1"]
  group "g" {
    restart {
      attempts = 1
      interval = "1m"
      delay    = "100ms"
      mode     = "fail"
    }
    task "t" {
      driver = "exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo pid=$$ user=$(id -un) host=$(hostname); echo to-stderr >&2; sleep 300"]
      }
      resources {
        cpu    = 50
        memory = 64
      }
    }
  }
}
"""

FAILING_JOB = EXEC_JOB.replace('"isolated"', '"failing"').replace("sleep 300", "exit 3")


@pytest.fixture(scope="module")
def dev() -> Iterator[Agent]:
    with LocalCluster(dev=True) as cluster:
        yield start_agent(cluster, cluster.base / "data")


def test_an_exec_task_runs_isolated_and_its_logs_come_back(dev):
    job_id = dev.run(EXEC_JOB)
    (alloc,) = eventually(lambda: running(dev, job_id), timeout=20)
    out = eventually(lambda: (r := yurt(dev, "alloc", "logs", alloc["ID"], "t")).stdout.strip() and r, timeout=10)
    assert out.returncode == 0
    line = out.stdout.strip().splitlines()[0]
    assert line.startswith("pid=1 user=nobody host="), line  # PID 1 of its own namespace, as nobody
    err = yurt(dev, "alloc", "logs", "-stderr", alloc["ID"], "t")
    assert err.stdout.strip() == "to-stderr"
    assert yurt(dev, "job", "stop", "-purge", job_id).returncode == 0


def test_a_failing_exec_task_goes_through_its_restart_policy(dev):
    job_id = dev.run(FAILING_JOB)

    def failed() -> dict | None:
        allocs = dev.allocs(job_id)
        return allocs[0] if allocs and allocs[0]["ClientStatus"] == "failed" else None

    alloc = eventually(failed, timeout=20)
    state = dev.alloc(alloc["ID"])["TaskStates"]["t"]
    assert state["Restarts"] == 1 and state["Failed"] is True
    assert "Exceeded allowed attempts 1" in " ".join(e.get("DisplayMessage", "") for e in state["Events"])
    yurt(dev, "job", "stop", "-purge", job_id)


@pytest.mark.skipif(shutil.which("javac") is None, reason="javac (a JDK) is needed to build the test class")
def test_a_java_task_runs_and_its_output_comes_back(dev, tmp_path: Path):
    source = tmp_path / "Hello.java"
    source.write_text('public class Hello { public static void main(String[] a) { '
                      'System.out.println("hello from java " + a[0]); } }\n')
    subprocess.run(["javac", "-d", str(tmp_path), str(source)], check=True, timeout=120)
    # The task's root is a chroot: like an artifact would, a prestart task copies the class into the shared
    # alloc dir, which the java task sees at /alloc.
    job = f"""job "javajob" {{
  datacenters = ["dc1"]
  type = "batch"
  group "g" {{
    task "fetch" {{
      driver = "raw_exec"
      lifecycle {{
        hook = "prestart"
      }}
      config {{
        command = "/bin/sh"
        args    = ["-c", "install -m 0644 {tmp_path}/Hello.class $NOMAD_ALLOC_DIR/data/"]
      }}
    }}
    task "t" {{
      driver = "java"
      config {{
        class      = "Hello"
        class_path = "/alloc/data"
        args       = ["42"]
      }}
      resources {{
        cpu    = 200
        memory = 256
      }}
    }}
  }}
}}
"""
    job_id = dev.run(job)

    def complete() -> dict | None:
        allocs = dev.allocs(job_id)
        return allocs[0] if allocs and allocs[0]["ClientStatus"] in ("complete", "failed") else None

    alloc = eventually(complete, timeout=60)
    logs = yurt(dev, "alloc", "logs", alloc["ID"], "t")
    assert alloc["ClientStatus"] == "complete", (logs.stdout, yurt(dev, "alloc", "logs", "-stderr", alloc["ID"]).stdout)
    assert logs.stdout.strip() == "hello from java 42"
    yurt(dev, "job", "stop", "-purge", job_id)
