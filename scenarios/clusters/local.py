"""The local Cluster: real agent processes on this machine, each on its own 127.0.0.x as if it were a host."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from orchestrator.testing.local_cluster import (
    CLIENT_CONFIG,
    SERVER_CONFIG,
    AgentProcess,
    agent_command,
    free_port,
)
from scenarios.cluster import Unsupported
from scenarios.clusters.http import HttpCluster

SERVER_NET = "127.0.0.1{}"  # s1 on 127.0.0.11, s2 on .12...
CLIENT_NET = "127.0.0.2{}"  # c1 on 127.0.0.21...
# Clients run containers on the session's engine (one per test session, see the root conftest).
DOCKER_PLUGIN = '''
plugin "docker" {{
  config {{
    endpoint = "{endpoint}"
  }}
}}
'''
CHAIN = "YURT_SCENARIO"  # the iptables chain of this suite's partitions, jumped to from INPUT


class LocalProcessCluster(HttpCluster):
    """`servers` server agents and `clients` client-only agents as child processes, each bound to its own
    loopback address so a firewall rule can cut one from another (partitions need root and iptables).
    Everything lives in a temporary directory removed by close()."""

    kind = "local"

    def __init__(self, servers: int = 3, clients: int = 2, base: Path | None = None,
                 docker_endpoint: str | None = None) -> None:
        self.base = base or Path(tempfile.mkdtemp(prefix="yurt-scenario-"))
        self.agents: dict[str, AgentProcess] = {}
        server_names = [f"s{i + 1}" for i in range(servers)]
        client_names = [f"c{i + 1}" for i in range(clients)]
        hosts = {n: SERVER_NET.format(i + 1) for i, n in enumerate(server_names)}
        hosts |= {n: CLIENT_NET.format(i + 1) for i, n in enumerate(client_names)}
        ports = {n: (free_port(h), free_port(h), free_port(h)) for n, h in hosts.items()}
        join = ", ".join(f'"{hosts[n]}:{ports[n][2]}"' for n in server_names)
        rpcs = ", ".join(f'"{hosts[n]}:{ports[n][1]}"' for n in server_names)
        for name, host in hosts.items():
            http, rpc, serf = ports[name]
            # INFO: scenarios need no debug chatter, and each agent's log stays readable when one fails.
            fields = dict(name=name, data_dir=self.base / "data" / name, addr=host, log_level="INFO", http=http,
                          rpc=rpc, serf=serf)
            if name in server_names:
                text = SERVER_CONFIG.format(**fields, expect=servers, join=join)
            else:
                text = CLIENT_CONFIG.format(**fields, servers=rpcs)
                if docker_endpoint:
                    text += DOCKER_PLUGIN.format(endpoint=docker_endpoint)
            config = self.base / f"{name}.hcl"
            config.write_text(text)
            self.agents[name] = AgentProcess(name, config, http, rpc, serf, self.base / f"{name}.log", host=host)
        self.servers = tuple(server_names)
        self.clients = tuple(client_names)
        self._partitioned = False
        self.start_all()

    # -- HttpCluster's hooks ----------------------------------------------------------------------------

    def http_address(self, name: str) -> str:
        return self.agents[name].address

    def live_servers(self) -> list[str]:
        return [n for n in self.servers if self.agents[n].alive]

    def server_name(self, rpc_address: str) -> str | None:
        return next((n for n in self.servers if rpc_address == f"{self.agents[n].host}:{self.agents[n].rpc}"), None)

    def kill_pid(self, name: str, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self.mark_fault()

    # -- processes --------------------------------------------------------------------------------------

    def _start(self, name: str) -> None:
        agent = self.agents[name]
        if agent.alive:
            return
        with agent.log.open("ab") as log:
            agent.proc = subprocess.Popen([*agent_command(None), "agent", "-config", str(agent.config)],
                                          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          cwd=self.base, start_new_session=True)

    def _kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        agent = self.agents[name]
        if agent.alive:
            agent.proc.send_signal(sig)  # type: ignore[union-attr]
            self.mark_fault()
            try:
                agent.proc.wait(timeout=15)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                agent.proc.kill()  # type: ignore[union-attr]
                agent.proc.wait(timeout=5)  # type: ignore[union-attr]

    def _task_pids(self, name: str) -> list[int]:
        """Pids of the tasks a client runs, from the process groups of its task processes in /proc."""
        root = str(self.base / "data" / name) + os.sep
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if (entry / "cwd").resolve().as_posix().startswith(root) and int(entry.name) != os.getpid():
                    pids.append(int(entry.name))
        return pids

    def kill_server(self, name: str) -> None:
        self._check(name, self.servers)
        self._kill(name)  # SIGKILL: kill -9

    def start_server(self, name: str) -> None:
        self._check(name, (*self.servers, *self.clients))
        self._start(name)

    def lose_client(self, name: str) -> None:
        """The client's machine dies: kill -9 of its agent and of every task it started."""
        self._check(name, self.clients)
        self._kill(name)
        for pid in self._task_pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in (*self.clients, *self.servers):
            self._kill(name, signal.SIGTERM)

    def start_all(self) -> None:
        for name in (*self.servers, *self.clients):
            self._start(name)

    # -- partitions -------------------------------------------------------------------------------------

    def _iptables(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=check)

    def partition(self, *groups: tuple[str, ...] | list[str]) -> None:
        if os.geteuid() != 0 or not shutil.which("iptables"):
            raise Unsupported("partitions of local processes need root and iptables")
        for group in groups:
            for name in group:
                self._check(name, tuple(self.agents))
        if self._iptables("-N", CHAIN, check=False).returncode != 0:
            self._iptables("-F", CHAIN)
        # Both ways, as the lab's per-host rules do: a sender's packets are dropped on its way out too, so the
        # same fault reads the same on local processes and on lab hosts.
        for hook in ("INPUT", "OUTPUT"):
            if self._iptables("-C", hook, "-j", CHAIN, check=False).returncode != 0:
                self._iptables("-I", hook, "-j", CHAIN)
        self._partitioned = True
        # Agents connect from their own address (the transport binds it on loopback), so a pair of addresses
        # names both ends; agents in no group keep reaching everyone, as in the simulator.
        for i, group in enumerate(groups):
            for other in groups[i + 1:]:
                for a in group:
                    for b in other:
                        src, dst = self.agents[a].host, self.agents[b].host
                        self._iptables("-A", CHAIN, "-s", src, "-d", dst, "-j", "DROP")
                        self._iptables("-A", CHAIN, "-s", dst, "-d", src, "-j", "DROP")
        self.mark_fault()

    def heal(self) -> None:
        if not self._partitioned:
            return
        for hook in ("INPUT", "OUTPUT"):
            self._iptables("-D", hook, "-j", CHAIN, check=False)
        self._iptables("-F", CHAIN, check=False)
        self._iptables("-X", CHAIN, check=False)
        self._partitioned = False
        self.mark_fault()

    # -- the end ----------------------------------------------------------------------------------------

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {a.name}\n{a.log.read_text(errors='replace')[-tail:]}"
                         for a in self.agents.values() if a.log.exists())

    def close(self) -> None:
        self.heal()
        task_pids = {n: self._task_pids(n) for n in self.clients}
        for name in (*self.clients, *self.servers):
            self._kill(name, signal.SIGTERM)
        # Client agents that stop leave their tasks for the next agent to reattach: none comes, so end them.
        for pids in task_pids.values():
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)

    def describe(self) -> dict[str, Any]:
        return {name: {"host": a.host, "http": a.http, "alive": a.alive} for name, a in self.agents.items()}
