"""Draining a node moves its service allocations to another client: one server agent and two client-only agents
as processes on this machine, each client with its own name, data dir and ports."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.error
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from orchestrator.testing.local_cluster import CLIENT_CONFIG, AgentProcess, LocalCluster, free_port
from orchestrator.testing.local_cluster import eventually as poll_until

pytestmark = [pytest.mark.real, pytest.mark.slow]

YURT = [sys.executable, "-m", "orchestrator.cli.main"]
# The task writes its pid where the test finds it, so the test can tell that the drained node's processes are gone
# (and kill any left over: client agents that stop leave their tasks running for the next agent to reattach).
JOB = """job "drainme" {
  datacenters = ["dc1"]
  type        = "service"
  group "g" {
    count = 2
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo $$ > \\"$NOMAD_TASK_DIR/pid\\"; exec sleep 3600"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
"""


eventually = partial(poll_until, interval=0.1, tolerate=(OSError, urllib.error.URLError, ValueError, KeyError))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


class TwoClients:
    """A one-server LocalCluster plus two client-only agents started the way LocalCluster starts its own."""

    def __init__(self) -> None:
        self.cluster = LocalCluster(servers=1)
        self.clients: list[AgentProcess] = []
        server_rpc = self.cluster.agents[0].rpc
        for name in ("c1", "c2"):
            http, rpc, serf = free_port(), free_port(), free_port()
            config = self.cluster.base / f"{name}.hcl"
            config.write_text(CLIENT_CONFIG.format(name=name, data_dir=self.data_dir(name), addr="127.0.0.1",
                                                   log_level="DEBUG", http=http, rpc=rpc, serf=serf,
                                                   servers=f'"127.0.0.1:{server_rpc}"'))
            self.clients.append(AgentProcess(name, config, http, rpc, serf, self.cluster.base / f"{name}.log"))

    def data_dir(self, name: str) -> Path:
        return self.cluster.base / "data" / name

    def start(self) -> None:
        self.cluster.start()
        for client in self.clients:
            log = client.log.open("ab")
            client.proc = subprocess.Popen([*YURT, "agent", "-client", "-config", str(client.config)], stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.cluster.base,
                                           start_new_session=True)

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        return self.cluster.request(0, method, path, body, timeout=10)

    def yurt(self, *args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "YURT_"))}
        env["NOMAD_ADDR"] = self.cluster.agents[0].address
        return subprocess.run([*YURT, *args], capture_output=True, text=True, timeout=60, env=env)

    def task_pids(self) -> list[int]:
        pids = []
        for path in self.cluster.base.glob("data/c*/alloc/*/t/local/pid"):
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(path.read_text()))
        return pids

    def logs(self) -> str:
        return "\n".join(f"--- {a.name}\n{a.log.read_text()[-2000:]}" for a in [*self.cluster.agents, *self.clients]
                         if a.log.exists())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api("/v1/job/drainme?purge=true", "DELETE")
        eventually(lambda: not any(alive(p) for p in self.task_pids()), timeout=10)
        for client in self.clients:
            if client.proc is not None and client.proc.poll() is None:
                client.proc.terminate()
                try:
                    client.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    client.proc.kill()
                    client.proc.wait(timeout=5)
        # Whatever the stop did not reach: the tests leave no `sleep 3600` behind.
        for pid in self.task_pids():
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        self.cluster.cleanup()


@pytest.fixture
def two_clients() -> Iterator[TwoClients]:
    setup = TwoClients()
    try:
        setup.start()
        yield setup
    finally:
        setup.close()


def test_drain_moves_the_service_allocations_to_the_other_client(two_clients):
    env = two_clients

    def two_ready_nodes() -> dict[str, str]:
        nodes = {n["Name"]: n["ID"] for n in env.api("/v1/nodes") if n["Status"] == "ready"}
        return nodes if len(nodes) == 2 else {}

    nodes = eventually(two_ready_nodes, timeout=60)
    assert nodes, env.logs()
    job = env.api("/v1/jobs/parse", "POST", {"JobHCL": JOB, "Canonicalize": True})
    env.api("/v1/jobs", "PUT", {"Job": job})

    def running() -> list[dict]:
        allocs = [a for a in env.api("/v1/job/drainme/allocations") if a["ClientStatus"] == "running"]
        return allocs if len(allocs) == 2 else []

    before = eventually(running, timeout=30)
    assert before, env.logs()
    names = {v: k for k, v in nodes.items()}
    # The node holding allocations (both, when the scheduler packed them on one).
    drained_id = sorted(a["NodeID"] for a in before)[0]
    drained, other = names[drained_id], next(n for n in nodes if n != names[drained_id])
    drained_pids = eventually(lambda: [int(p.read_text()) for p in
                                       env.data_dir(drained).glob("alloc/*/t/local/pid")], timeout=10)
    assert drained_pids

    result = env.yurt("node", "drain", "-enable", "-yes", "-deadline", "30s", drained_id)
    assert result.returncode == 0, (result.stdout, result.stderr)

    def moved() -> list[dict]:
        allocs = [a for a in env.api("/v1/job/drainme/allocations") if a["ClientStatus"] == "running"]
        ok = len(allocs) == 2 and all(a["NodeID"] == nodes[other] for a in allocs)
        return allocs if ok else []

    assert eventually(moved, timeout=45), (env.api("/v1/job/drainme/allocations"), env.logs())
    assert eventually(lambda: not any(alive(p) for p in drained_pids), timeout=15)

    def drain_complete() -> str:
        out = env.yurt("node", "status", drained_id).stdout
        return out if "Drain = false" in " ".join(out.split()) else ""  # columns padded: compare words

    status = eventually(drain_complete, timeout=30)
    assert status, env.yurt("node", "status", drained_id).stdout
    assert "Eligibility = ineligible" in " ".join(status.split()), status
    node = env.api(f"/v1/node/{drained_id}")
    assert node["SchedulingEligibility"] == "ineligible" and not node["Drain"] and not node.get("DrainStrategy")
    assert any("drain complete" in e.get("Message", "").lower() for e in node.get("Events") or []), node["Events"]


TALKER = """job "talker" {
  datacenters = ["dc1"]
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo $$ > \\"$NOMAD_TASK_DIR/pid\\"; echo hello from $NOMAD_SHORT_ALLOC_ID; exec sleep 3600"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
"""


def test_alloc_logs_asked_of_the_server_come_from_the_client_running_it(two_clients):
    env = two_clients
    assert eventually(lambda: len([n for n in env.api("/v1/nodes") if n["Status"] == "ready"]) == 2, timeout=30), \
        env.logs()
    job = env.api("/v1/jobs/parse", "POST", {"JobHCL": TALKER, "Canonicalize": True})
    env.api("/v1/jobs", "PUT", {"Job": job})
    alloc = eventually(lambda: next((a for a in env.api("/v1/job/talker/allocations")
                                     if a["ClientStatus"] == "running"), None), timeout=30)
    # The server runs no client: it forwards to the node's HTTP address, as Nomad's agents do.
    logs = eventually(lambda: (r := env.yurt("alloc", "logs", alloc["ID"])).stdout.strip() and r, timeout=10)
    assert logs.returncode == 0 and logs.stdout.strip() == f"hello from {alloc['ID'][:8]}", logs
    with contextlib.suppress(Exception):
        env.api("/v1/job/talker?purge=true", "DELETE")
