"""exec and java tasks through a real dev agent: they run isolated, their output comes back through
`/v1/client/fs/logs` and `yurt alloc logs`, a failing exec task goes through its restart policy, an exec or java
task killed from outside (`kill -9`) is back within its restart delay and a second, a java task sees its NOMAD_*
environment and is force-killed after its kill timeout when it ignores the interrupt."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.testing.local_cluster import LocalCluster
from tests.client_real.test_raw_exec_agent import Agent, alive, events, eventually, running, start_agent, yurt

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


RESTART_1S = ('restart {\n      attempts = 3\n      interval = "1m"\n      delay    = "1s"\n'
              '      mode     = "fail"\n    }')
needs_javac = pytest.mark.skipif(shutil.which("javac") is None,
                                 reason="javac (a JDK) is needed to build the test class")


def host_pid(agent: Agent, alloc_id: str, task: str = "t") -> int | None:
    """The host pid of the task's process group leader, as the stats endpoint lists it (the task itself sees
    another one in its own PID namespace)."""
    try:
        pids = agent.api(f"/v1/client/allocation/{alloc_id}/stats")["Tasks"][task]["Pids"]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return int(next(iter(pids))) if pids else None


def assert_back_within_delay_plus_a_second(agent: Agent, alloc_id: str) -> None:
    """kill -9 the running task from outside; it must be running again, restarted once, within 2 s (its
    restart delay of 1 s, up to 25% jitter, and a second)."""
    pid = eventually(lambda: host_pid(agent, alloc_id), timeout=10)
    assert pid and alive(pid)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    def back() -> bool:
        state = agent.alloc(alloc_id)["TaskStates"]["t"]
        return state["State"] == "running" and state["Restarts"] == 1

    assert eventually(back, timeout=5), agent.alloc(alloc_id)["TaskStates"]["t"]
    assert time.monotonic() - killed < 2.0
    terminated = [e for e in events(agent, alloc_id) if e["Type"] == "Terminated"]
    assert terminated[-1]["DisplayMessage"] == "Exit Code: 137, Signal: 9"
    new = eventually(lambda: (p := host_pid(agent, alloc_id)) not in (None, pid) and p, timeout=5)
    assert new and alive(new) and not alive(pid)


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


def test_an_exec_task_killed_from_outside_is_restarted_within_its_delay_plus_a_second(dev):
    job = EXEC_JOB.replace('"isolated"', '"exec-victim"').replace('delay    = "100ms"', 'delay    = "1s"')
    job = job.replace("attempts = 1", "attempts = 3")
    assert 'delay    = "1s"' in job
    job_id = dev.run(job)
    (alloc,) = eventually(lambda: running(dev, job_id), timeout=20)
    assert_back_within_delay_plus_a_second(dev, alloc["ID"])
    yurt(dev, "job", "stop", "-purge", job_id)


@needs_javac
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


JAVA_SOURCE = """
public class Stubborn {
    public static void main(String[] args) throws Exception {
        for (String name : new String[] {"NOMAD_ALLOC_ID", "NOMAD_SHORT_ALLOC_ID", "NOMAD_ALLOC_NAME",
                "NOMAD_ALLOC_INDEX", "NOMAD_JOB_ID", "NOMAD_JOB_NAME", "NOMAD_GROUP_NAME", "NOMAD_TASK_NAME",
                "NOMAD_DC", "NOMAD_REGION", "NOMAD_NAMESPACE", "NOMAD_META_owner", "NOMAD_CPU_LIMIT",
                "NOMAD_MEMORY_LIMIT", "NOMAD_ALLOC_DIR", "NOMAD_TASK_DIR", "NOMAD_SECRETS_DIR", "GREETING"}) {
            System.out.println(name + "=" + System.getenv(name));
        }
        System.out.flush();
        // The interrupt runs the shutdown hooks: this one never ends, so only SIGKILL stops the JVM.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("interrupted, not stopping");
            System.out.flush();
            while (true) {
                try { Thread.sleep(60000); } catch (InterruptedException e) { }
            }
        }));
        while (true) { Thread.sleep(1000); }
    }
}
"""


def java_job(tmp_path: Path) -> str:
    return f"""job "java-stubborn" {{
  datacenters = ["dc1"]
  meta {{
    owner = "tests"
  }}
  group "g" {{
    {RESTART_1S}
    task "fetch" {{
      driver = "raw_exec"
      lifecycle {{
        hook = "prestart"
      }}
      config {{
        command = "/bin/sh"
        args    = ["-c", "install -m 0644 {tmp_path}/Stubborn.class $NOMAD_ALLOC_DIR/data/"]
      }}
    }}
    task "t" {{
      driver       = "java"
      kill_timeout = "2s"
      env {{
        GREETING = "hello ${{NOMAD_TASK_NAME}}"
      }}
      config {{
        class      = "Stubborn"
        class_path = "/alloc/data"
      }}
      resources {{
        cpu    = 200
        memory = 256
      }}
    }}
  }}
}}
"""


@needs_javac
def test_a_java_task_sees_its_environment_comes_back_after_kill_9_and_is_force_killed_after_its_timeout(
        dev, tmp_path: Path):
    (tmp_path / "Stubborn.java").write_text(JAVA_SOURCE)
    subprocess.run(["javac", "-d", str(tmp_path), str(tmp_path / "Stubborn.java")], check=True, timeout=120)
    job_id = dev.run(java_job(tmp_path))
    (alloc,) = eventually(lambda: running(dev, job_id), timeout=60)
    alloc_id = alloc["ID"]

    def printed() -> dict[str, str]:
        text = yurt(dev, "alloc", "logs", alloc_id, "t").stdout
        found = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        return found if "GREETING" in found else {}

    env = eventually(printed, timeout=30)
    assert env, yurt(dev, "alloc", "logs", "-stderr", alloc_id, "t").stdout
    assert {k: env[k] for k in ("NOMAD_ALLOC_ID", "NOMAD_SHORT_ALLOC_ID", "NOMAD_ALLOC_NAME", "NOMAD_ALLOC_INDEX",
                                "NOMAD_JOB_ID", "NOMAD_JOB_NAME", "NOMAD_GROUP_NAME", "NOMAD_TASK_NAME", "NOMAD_DC",
                                "NOMAD_REGION", "NOMAD_NAMESPACE", "NOMAD_META_owner", "NOMAD_CPU_LIMIT",
                                "NOMAD_MEMORY_LIMIT", "GREETING")} == {
        "NOMAD_ALLOC_ID": alloc_id, "NOMAD_SHORT_ALLOC_ID": alloc_id[:8], "NOMAD_ALLOC_NAME": "java-stubborn.g[0]",
        "NOMAD_ALLOC_INDEX": "0", "NOMAD_JOB_ID": "java-stubborn", "NOMAD_JOB_NAME": "java-stubborn",
        "NOMAD_GROUP_NAME": "g", "NOMAD_TASK_NAME": "t", "NOMAD_DC": "dc1", "NOMAD_REGION": "global",
        "NOMAD_NAMESPACE": "default", "NOMAD_META_owner": "tests", "NOMAD_CPU_LIMIT": "200",
        "NOMAD_MEMORY_LIMIT": "256", "GREETING": "hello t"}
    for name in ("NOMAD_ALLOC_DIR", "NOMAD_TASK_DIR", "NOMAD_SECRETS_DIR"):
        assert env[name] not in ("", "null"), env

    assert_back_within_delay_plus_a_second(dev, alloc_id)

    # Stopped: the interrupt is ignored (the hook never ends), SIGKILL follows after the 2 s kill timeout.
    pid = eventually(lambda: host_pid(dev, alloc_id), timeout=10)
    eventually(lambda: "GREETING" in (dev.data_dir / "alloc" / alloc_id / "alloc/logs/t.stdout.0").read_text()
               if (dev.data_dir / "alloc" / alloc_id / "alloc/logs/t.stdout.0").exists() else False, timeout=30)
    time.sleep(0.5)  # the JVM has registered its hook once it printed
    stopped = time.monotonic()
    assert yurt(dev, "job", "stop", "-detach", job_id).returncode == 0
    assert eventually(lambda: not alive(pid), timeout=10)
    took = time.monotonic() - stopped
    assert 1.8 < took < 4.0, took
    kinds = eventually(lambda: (k := [e for e in events(dev, alloc_id) if e["Type"] in ("Killing", "Terminated",
                                                                                        "Killed")])[-1:]
                       and k[-1]["Type"] == "Killed" and k, timeout=10)
    killing, terminated = kinds[-3], kinds[-2]
    assert killing["Type"] == "Killing" and killing["KillTimeout"] == 2_000_000_000
    assert killing["DisplayMessage"] == "Sent interrupt. Waiting 2s before force killing"
    assert terminated["DisplayMessage"] == "Exit Code: 137, Signal: 9"
    assert "interrupted, not stopping" in yurt(dev, "alloc", "logs", alloc_id, "t").stdout
    yurt(dev, "job", "stop", "-purge", job_id)
