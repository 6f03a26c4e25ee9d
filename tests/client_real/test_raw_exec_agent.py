"""raw_exec on real agent processes: a dev agent runs jobs whose tasks write logs and see their environment, go
through restart policies, get killed from outside and come back, are stopped with their whole process group,
survive a client restart, and the seeds' walkthrough (run, scale to 3, kill one, stop) with the `yurt` CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.testing.local_cluster import LocalCluster, eventually

pytestmark = [pytest.mark.real]

YURT = [sys.executable, "-m", "orchestrator.cli.main"]
CLIENT_STANZAS = """
client {
  enabled           = true
  network_interface = "lo"
}

plugin "raw_exec" {
  config {
    enabled = true
  }
}
"""


@dataclass
class Agent:
    cluster: LocalCluster
    data_dir: Path

    @property
    def address(self) -> str:
        return self.cluster.agents[0].address

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.address + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def run(self, hcl: str) -> str:
        """Parse and register a job; its ID."""
        job = self.api("/v1/jobs/parse", "POST", {"JobHCL": hcl, "Canonicalize": True})
        self.api("/v1/jobs", "PUT", {"Job": job})
        return job["ID"]

    def allocs(self, job_id: str) -> list[dict]:
        return self.api(f"/v1/job/{job_id}/allocations")

    def alloc(self, alloc_id: str) -> dict:
        return self.api(f"/v1/allocation/{alloc_id}")

    def task_file(self, alloc_id: str, task: str, name: str) -> Path:
        return self.data_dir / "alloc" / alloc_id / task / "local" / name

    def pid(self, alloc_id: str, task: str = "t", name: str = "pid") -> int | None:
        try:
            return int(self.task_file(alloc_id, task, name).read_text())
        except (OSError, ValueError):
            return None




def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"


def running(agent: Agent, job_id: str, count: int = 1) -> list[dict]:
    allocs = [a for a in agent.allocs(job_id) if a["ClientStatus"] == "running"]
    return allocs if len(allocs) >= count else []


def events(agent: Agent, alloc_id: str, task: str = "t") -> list[dict]:
    return agent.alloc(alloc_id)["TaskStates"][task]["Events"]


def start_agent(cluster: LocalCluster, data_dir: Path, extra: str = "") -> Agent:
    config = cluster.agents[0].config
    text = config.read_text()
    if "data_dir" not in text:  # the dev config has none: `-dev` with a data dir keeps its files there
        text += f'\ndata_dir = "{data_dir}"\n'
    config.write_text(text + extra)
    cluster.start()
    agent = Agent(cluster, data_dir)

    def node_ready() -> bool:
        if not cluster.agents[0].alive:
            return True  # the assertion below shows the log
        try:
            return any(n["Status"] == "ready" for n in agent.api("/v1/nodes"))
        except (OSError, urllib.error.URLError, ValueError):
            return False

    assert eventually(node_ready, timeout=30) and cluster.agents[0].alive, cluster.agents[0].log.read_text()[-3000:]
    return agent


@pytest.fixture(scope="module")
def dev() -> Iterator[Agent]:
    """A dev agent whose files go to a data dir the tests read (`-dev -data-dir` keeps them there)."""
    with LocalCluster(dev=True) as cluster:
        yield start_agent(cluster, cluster.base / "data")


def service(job_id: str, script: str, *, restart: str = "", extra_task: str = "", job_type: str = "service",
            count: int = 1, group: str = "g") -> str:
    return f"""job "{job_id}" {{
  datacenters = ["dc1"]
  type        = "{job_type}"
  meta {{
    owner = "tests"
  }}
  group "{group}" {{
    count = {count}
    {restart}
    reschedule {{
      attempts  = 0
      unlimited = false
    }}
    task "t" {{
      driver = "raw_exec"
      env {{
        WHERE = "${{NOMAD_JOB_NAME}}/${{NOMAD_TASK_NAME}} on ${{node.unique.name}}"
      }}
      config {{
        command = "/bin/sh"
        args    = ["-c", {json.dumps(script)}]
      }}
      resources {{
        cpu    = 20
        memory = 16
      }}
      {extra_task}
    }}
  }}
}}
"""


# -- logs and environment -----------------------------------------------------------------------------------


def test_a_task_writes_its_logs_and_sees_its_environment(dev):
    script = 'echo "to stdout $NOMAD_ALLOC_INDEX"; echo "to stderr" >&2; env > "$NOMAD_ALLOC_DIR/data/env.txt"'
    job_id = dev.run(service("envjob", script, job_type="batch"))
    done = eventually(lambda: [a for a in dev.allocs(job_id) if a["ClientStatus"] == "complete"])
    assert done, dev.allocs(job_id)
    alloc_id = done[0]["ID"]
    alloc_dir = dev.data_dir / "alloc" / alloc_id
    assert (alloc_dir / "alloc/logs/t.stdout.0").read_text() == "to stdout 0\n"
    assert (alloc_dir / "alloc/logs/t.stderr.0").read_text() == "to stderr\n"
    for sub in ("alloc/tmp", "t/local", "t/secrets", "t/tmp"):
        assert (alloc_dir / sub).is_dir(), sub
    env = dict(line.split("=", 1) for line in (alloc_dir / "alloc/data/env.txt").read_text().splitlines()
               if "=" in line)
    node = dev.api("/v1/nodes")[0]
    assert {k: env.get(k) for k in ("NOMAD_ALLOC_ID", "NOMAD_SHORT_ALLOC_ID", "NOMAD_ALLOC_NAME", "NOMAD_JOB_ID",
                                    "NOMAD_GROUP_NAME", "NOMAD_TASK_NAME", "NOMAD_DC", "NOMAD_REGION",
                                    "NOMAD_NAMESPACE", "NOMAD_META_owner", "NOMAD_CPU_LIMIT",
                                    "NOMAD_MEMORY_LIMIT", "NOMAD_ALLOC_DIR", "NOMAD_TASK_DIR", "WHERE")} == {
        "NOMAD_ALLOC_ID": alloc_id, "NOMAD_SHORT_ALLOC_ID": alloc_id[:8], "NOMAD_ALLOC_NAME": "envjob.g[0]",
        "NOMAD_JOB_ID": "envjob", "NOMAD_GROUP_NAME": "g", "NOMAD_TASK_NAME": "t", "NOMAD_DC": "dc1",
        "NOMAD_REGION": "global", "NOMAD_NAMESPACE": "default", "NOMAD_META_owner": "tests", "NOMAD_CPU_LIMIT": "20",
        "NOMAD_MEMORY_LIMIT": "16", "NOMAD_ALLOC_DIR": str(alloc_dir / "alloc"),
        "NOMAD_TASK_DIR": str(alloc_dir / "t/local"), "WHERE": f"envjob/t on {node['Name']}"}
    assert [e["Type"] for e in events(dev, alloc_id)] == ["Received", "Task Setup", "Started", "Terminated"]


# -- restart policies ---------------------------------------------------------------------------------------


def test_exits_go_through_the_restart_policy(dev):
    fail = 'restart {\n      attempts = 2\n      interval = "1m"\n      delay = "100ms"\n      mode = "fail"\n    }'
    delay = 'restart {\n      attempts = 1\n      interval = "1s"\n      delay = "100ms"\n      mode = "delay"\n    }'
    failing = dev.run(service("failing", "exit 3", restart=fail, job_type="batch"))
    delayed = dev.run(service("delayed", "exit 4", restart=delay))
    failed = eventually(lambda: [a for a in dev.allocs(failing) if a["ClientStatus"] == "failed"], timeout=10)
    assert failed, dev.allocs(failing)
    state = dev.alloc(failed[0]["ID"])["TaskStates"]["t"]
    kinds = [e["Type"] for e in state["Events"]]
    assert (state["State"], state["Failed"], state["Restarts"]) == ("dead", True, 2)
    assert kinds.count("Terminated") == 3 and kinds.count("Restarting") == 2 and kinds[-1] == "Not Restarting"
    assert state["Events"][-2]["DisplayMessage"] == "Exit Code: 3"
    assert state["Events"][-1]["DisplayMessage"] == 'Exceeded allowed attempts 2 in interval 1m0s and mode is "fail"'

    def applied_a_delay() -> list[str]:
        alloc = dev.allocs(delayed)[0]
        messages = [e["DisplayMessage"] for e in events(dev, alloc["ID"])]
        return [m for m in messages if m.startswith("Exceeded allowed attempts, applying a delay")]

    assert eventually(applied_a_delay, timeout=5)
    assert dev.allocs(delayed)[0]["ClientStatus"] != "failed"  # mode "delay" never gives up
    dev.api(f"/v1/job/{delayed}", "DELETE")


def test_a_task_killed_from_outside_is_restarted_within_its_delay_plus_a_second(dev):
    restart = 'restart {\n      attempts = 3\n      interval = "1m"\n      delay = "1s"\n      mode = "fail"\n    }'
    job_id = dev.run(service("victim", 'echo $$ > "$NOMAD_TASK_DIR/pid"; exec sleep 3600', restart=restart))
    alloc_id = eventually(lambda: running(dev, job_id))[0]["ID"]
    pid = eventually(lambda: dev.pid(alloc_id))
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    def back() -> bool:
        state = dev.alloc(alloc_id)["TaskStates"]["t"]
        new = dev.pid(alloc_id)
        return state["State"] == "running" and state["Restarts"] == 1 and new not in (None, pid) and alive(new)

    assert eventually(back, timeout=5)
    assert time.monotonic() - killed < 2.0  # delay 1 s (plus up to 25% jitter), and a second
    terminated = [e for e in events(dev, alloc_id) if e["Type"] == "Terminated"]
    assert terminated[-1]["DisplayMessage"] == "Exit Code: 137, Signal: 9"
    dev.api(f"/v1/job/{job_id}", "DELETE")
    assert eventually(lambda: not alive(dev.pid(alloc_id)))


def test_job_stop_kills_the_process_group_and_escalates_to_sigkill(dev):
    # The background sleep ignores SIGINT (sh's asynchronous commands do): only the group kill ends it.
    script = 'sleep 3600 & echo $! > "$NOMAD_TASK_DIR/child"; echo $$ > "$NOMAD_TASK_DIR/pid"; wait'
    stubborn = """task "stubborn" {
      driver       = "raw_exec"
      kill_timeout = "1s"
      config {
        command = "/bin/sh"
        args    = ["-c", "trap '' INT; echo $$ > $NOMAD_TASK_DIR/pid; while true; do sleep 0.1; done"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }"""
    job_id = dev.run(service("grouped", script).replace('    task "t" {', f'    {stubborn}\n    task "t" {{', 1))
    alloc_id = eventually(lambda: running(dev, job_id))[0]["ID"]
    pids = eventually(lambda: [p for p in (dev.pid(alloc_id), dev.pid(alloc_id, name="child"),
                                           dev.pid(alloc_id, "stubborn")) if p] if dev.pid(alloc_id, "stubborn")
                      and dev.pid(alloc_id, name="child") else [])
    assert len(pids) == 3 and all(alive(p) for p in pids)
    stopped = time.monotonic()
    stop = subprocess.run([*YURT, "job", "stop", "-address", dev.address, job_id], capture_output=True, text=True,
                          timeout=30)
    assert stop.returncode == 0, stop
    assert eventually(lambda: not any(alive(p) for p in pids), timeout=5), [p for p in pids if alive(p)]
    assert time.monotonic() - stopped < 3.0
    terminated = eventually(lambda: [e for e in events(dev, alloc_id, "stubborn") if e["Type"] == "Terminated"])
    assert terminated[0]["DisplayMessage"] == "Exit Code: 137, Signal: 9"
    assert [e["Type"] for e in events(dev, alloc_id, "stubborn")][-3:] == ["Killing", "Terminated", "Killed"]
    assert eventually(lambda: dev.allocs(job_id)[0]["ClientStatus"] == "complete")


# -- the agent going away -----------------------------------------------------------------------------------


def test_stopping_a_dev_agent_stops_its_tasks_and_leaves_nothing_behind():
    with LocalCluster(dev=True) as cluster:
        cluster.start()
        agent = Agent(cluster, Path("/nonexistent"))
        assert eventually(lambda: cluster.leader(0), timeout=30)
        alloc_root = Path(agent.api("/v1/agent/self")["config"]["Client"]["AllocDir"])
        agent.data_dir = alloc_root.parent
        job_id = agent.run(service("leftover", 'echo $$ > "$NOMAD_TASK_DIR/pid"; exec sleep 3600'))
        alloc_id = eventually(lambda: running(agent, job_id))[0]["ID"]
        pid = eventually(lambda: agent.pid(alloc_id))
        assert alive(pid)
        cluster.stop()  # SIGTERM: -dev leaves gracefully
        assert not alive(pid) and not alloc_root.exists()


def test_a_restarted_client_reattaches_to_its_running_task(tmp_path):
    with LocalCluster(servers=1) as cluster:
        agent = start_agent(cluster, cluster.base / "data" / "s1", CLIENT_STANZAS)
        script = 'echo $$ > "$NOMAD_TASK_DIR/pid"; i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.1; done'
        job_id = agent.run(service("durable", script))
        alloc_id = eventually(lambda: running(agent, job_id))[0]["ID"]
        pid = eventually(lambda: agent.pid(alloc_id))
        try:
            node_id = agent.api("/v1/nodes")[0]["ID"]
            cluster.kill(0)  # kill -9 of the agent
            assert alive(pid)
            time.sleep(0.3)
            cluster.start(0)
            log = agent.data_dir / "alloc" / alloc_id / "alloc/logs/t.stdout.0"
            lines = len(log.read_text().splitlines())
            assert eventually(lambda: len(log.read_text().splitlines()) > lines + 3, timeout=15)  # logs flow again
            state = agent.alloc(alloc_id)["TaskStates"]["t"]
            assert (state["State"], state["Restarts"], agent.pid(alloc_id)) == ("running", 0, pid)
            assert [n["ID"] for n in agent.api("/v1/nodes")] == [node_id]  # the same node, from its state dir
            ticks = [int(line.split()[1]) for line in log.read_text().splitlines()]
            assert ticks == list(range(len(ticks)))  # nothing lost while the client was down
            agent.api(f"/v1/job/{job_id}", "DELETE")
            assert eventually(lambda: not alive(pid))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # a real client leaves its tasks running when it stops


# -- the seeds' walkthrough ---------------------------------------------------------------------------------


def yurt(agent: Agent, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    argv = [*YURT, *args[:2], "-address", agent.address, *args[2:]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "YURT_"))}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


def test_seed_walkthrough_run_scale_kill_one_and_stop(dev, tmp_path):
    restart = 'restart {\n      attempts = 3\n      interval = "1m"\n      delay = "1s"\n      mode = "delay"\n    }'
    spec = tmp_path / "example.nomad"
    spec.write_text(service("example", 'echo $$ > "$NOMAD_TASK_DIR/pid"; exec sleep 3600', restart=restart,
                            group="cache"))
    run = yurt(dev, "job", "run", str(spec))
    assert run.returncode == 0, run
    assert 'Allocation "' in run.stdout and 'finished with status "complete"' in run.stdout, run.stdout
    assert eventually(lambda: running(dev, "example"))
    # As the seeds do: count = 3 in the file, and `job run` again.
    spec.write_text(spec.read_text().replace("count = 1", "count = 3"))
    scale = yurt(dev, "job", "run", str(spec))
    assert scale.returncode == 0, scale
    allocs = eventually(lambda: running(dev, "example", 3))
    assert len(allocs) == 3
    pids = {a["ID"]: eventually(lambda a=a: dev.pid(a["ID"])) for a in allocs}
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)

    def back() -> bool:
        state = dev.alloc(victim)["TaskStates"]["t"]
        return state["State"] == "running" and state["Restarts"] == 1 and dev.pid(victim) != pids[victim]

    assert eventually(back, timeout=5)
    status = yurt(dev, "job", "status", "example")
    assert status.returncode == 0, status
    rows = [line.split() for line in status.stdout.split("Allocations\n", 1)[1].splitlines()[1:]]
    assert sorted(row[5] for row in rows) == ["running"] * 3, status.stdout
    stop = yurt(dev, "job", "stop", "example")
    assert stop.returncode == 0, stop
    current = [dev.pid(a) for a in pids]
    assert eventually(lambda: not any(alive(p) for p in current if p), timeout=5)
    assert eventually(lambda: "Status        = dead (stopped)\n" in yurt(dev, "job", "status", "example").stdout)
