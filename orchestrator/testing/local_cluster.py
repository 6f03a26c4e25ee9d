"""Real agent processes on this machine: a dev agent or an N-server cluster on 127.0.0.1, for tests and
benchmarks (and for a real `nomad` binary side by side: the same configs work for both)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What every agent here shares: a name, a data dir, one loopback address (127.0.0.1 unless the agents stand
# for separate hosts, as the scenario suites' do) and its own three ports.
AGENT_HEADER = """name      = "{name}"
data_dir  = "{data_dir}"
bind_addr = "{addr}"
log_level = "{log_level}"

advertise {{
  http = "{addr}"
  rpc  = "{addr}"
  serf = "{addr}"
}}

ports {{
  http = {http}
  rpc  = {rpc}
  serf = {serf}
}}
"""

SERVER_CONFIG = AGENT_HEADER + """
server {{
  enabled          = true
  bootstrap_expect = {expect}
  server_join {{
    retry_join     = [{join}]
    retry_interval = "1s"
  }}
}}
"""

# A client-only agent of a LocalCluster's servers (`yurt agent -client -config ...`), running raw_exec tasks.
CLIENT_CONFIG = AGENT_HEADER + """
client {{
  enabled           = true
  network_interface = "lo"
  servers           = [{servers}]
}}

plugin "raw_exec" {{
  config {{
    enabled = true
  }}
}}
"""

DEV_PORTS = """ports {{
  http = {http}
  rpc  = {rpc}
  serf = {serf}
}}
"""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, *,
               tolerate: tuple[type[BaseException], ...] = ()) -> Any:
    """Poll `check` until it answers something truthy (returned) or `timeout` passes (its last answer; None
    when that try raised one of `tolerate`, e.g. an agent not listening yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except tolerate:
            result = None
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def default_ports_free() -> bool:
    """Whether Nomad's default ports (4646 HTTP and RPC 4647 on TCP, 4648 on TCP and UDP) are free here."""
    for port, kind in ((4646, socket.SOCK_STREAM), (4647, socket.SOCK_STREAM), (4648, socket.SOCK_STREAM),
                       (4648, socket.SOCK_DGRAM)):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:  # as the agent binds: a port in TIME_WAIT is free to it
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def ensure_bytecode() -> None:
    """Compile this checkout's modules to bytecode, as `pip install` does for an installed agent (and as any
    first run does unless PYTHONDONTWRITEBYTECODE is set): start-up benchmarks measure an installed agent,
    not one compiling ~200 modules from source (~140 ms here) on every start."""
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent), quiet=1)


def agent_command(binary: str | None) -> list[str]:
    """`yurt` from this checkout (the same Python), or a real `nomad` binary given by path."""
    if binary:
        return [binary]
    return [sys.executable, "-m", "orchestrator.cli.main"]


@dataclass
class AgentProcess:
    name: str
    config: Path
    http: int
    rpc: int
    serf: int
    log: Path
    proc: subprocess.Popen | None = None
    host: str = "127.0.0.1"

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.http}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class LocalCluster:
    """Agents as child processes, each with its own config, ports, data dir and log file."""

    servers: int = 3
    binary: str | None = None  # None: this checkout's yurt; else a path to `nomad`
    dev: bool = False
    # dev only: plain `agent -dev` on Nomad's default ports (4646-4648), no config file at all
    default_ports: bool = False
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="yurt-cluster-")))
    agents: list[AgentProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        count = 1 if self.dev else self.servers
        ports = ([(4646, 4647, 4648)] if self.dev and self.default_ports else
                 [(free_port(), free_port(), free_port()) for _ in range(count)])
        join = ", ".join(f'"127.0.0.1:{serf}"' for _, _, serf in ports)
        for i, (http, rpc, serf) in enumerate(ports):
            name = f"s{i + 1}"
            config = self.base / f"{name}.hcl"
            if self.dev:
                config.write_text(DEV_PORTS.format(http=http, rpc=rpc, serf=serf))
            else:
                config.write_text(SERVER_CONFIG.format(name=name, data_dir=self.base / "data" / name, addr="127.0.0.1",
                                                       log_level="DEBUG", http=http, rpc=rpc, serf=serf,
                                                       expect=count, join=join))
            self.agents.append(AgentProcess(name, config, http, rpc, serf, self.base / f"{name}.log"))

    # -- processes ------------------------------------------------------------------------------------------

    def start(self, index: int | None = None) -> None:
        for agent in self.agents if index is None else [self.agents[index]]:
            args = [*agent_command(self.binary), "agent"]
            if self.dev:
                args += ["-dev"] if self.default_ports else ["-dev", "-config", str(agent.config)]
            else:
                args += ["-config", str(agent.config)]
            log = agent.log.open("ab")
            agent.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          cwd=self.base, start_new_session=True)

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        agent = self.agents[index]
        if agent.proc is not None and agent.proc.poll() is None:
            os.kill(agent.proc.pid, sig)
            agent.proc.wait(timeout=10)

    def stop(self) -> None:
        for agent in self.agents:
            if agent.alive:
                agent.proc.terminate()  # type: ignore[union-attr]
        for agent in self.agents:
            if agent.proc is not None:
                try:
                    agent.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    agent.proc.kill()
                    agent.proc.wait(timeout=5)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- HTTP -----------------------------------------------------------------------------------------------

    def request(self, index: int, method: str, path: str, body: Any = None, timeout: float = 2.0) -> Any:
        """One HTTP call to agent `index`; the decoded JSON, or raises urllib errors / OSError."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.agents[index].address + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def leader(self, index: int) -> str:
        """What agent `index` says the leader is ("" when none or unreachable)."""
        try:
            return self.request(index, "GET", "/v1/status/leader") or ""
        except (OSError, urllib.error.URLError, ValueError):
            return ""

    def leader_index(self) -> int | None:
        """The agent whose RPC address is the leader some live agent reports."""
        for i, agent in enumerate(self.agents):
            if not agent.alive:
                continue
            leader = self.leader(i)
            if leader:
                return next((j for j, a in enumerate(self.agents) if leader.endswith(f":{a.rpc}")), None)
        return None

    def wait(self, predicate, timeout: float = 30.0, interval: float = 0.02) -> float | None:
        """Poll `predicate()` every `interval` (LAB.md polls every 20 ms); seconds it took, or None."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if predicate():
                return time.perf_counter() - start
            time.sleep(interval)
        return None

    def healthy(self) -> bool:
        """A leader known to every live agent, and every live server `alive` in `server members`."""
        live = [i for i, a in enumerate(self.agents) if a.alive]
        if not live or not all(self.leader(i) for i in live):
            return False
        try:
            members = self.request(live[0], "GET", "/v1/agent/members")
        except (OSError, urllib.error.URLError, ValueError):
            return False
        statuses = [m.get("Status") for m in (members or {}).get("Members") or []]
        return statuses.count("alive") >= len(live)

    def register(self, index: int, job: dict, timeout: float = 2.0) -> bool:
        try:
            self.request(index, "PUT", "/v1/jobs", {"Job": job}, timeout=timeout)
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return True


def count_zero_job(job_id: str) -> dict:
    """What LAB.md's measurements register: a service job of count 0 (no client needed)."""
    return {"ID": job_id, "Name": job_id, "Type": "service", "Datacenters": ["dc1"],
            "TaskGroups": [{"Name": "g", "Count": 0, "Tasks": [{"Name": "t", "Driver": "raw_exec",
                                                                 "Config": {"command": "/bin/true"}}]}]}
