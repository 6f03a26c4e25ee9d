"""The host Clusters: agents deployed with remote/ onto an inventory's hosts, the netns lab's or any other."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from remote import deploy, hostctl
from remote.connect import open_connection
from remote.inventory import Inventory, hostport, load_inventory
from remote.lab import DOCKER_ENDPOINT, Lab, LabError
from scenarios.cluster import ClusterError, Unsupported
from scenarios.clusters.http import HttpCluster

# The lab hosts the scenarios use: the seeds' s1 (server) and s2, s3 (server and client in one agent).
LAB_HOSTS = ("s1", "s2", "s3")
ROOT = Path(__file__).resolve().parents[2]  # where fabfile.py is, for `fab` to find its tasks


class InventoryCluster(HttpCluster):
    """The cluster an inventory describes, already deployed (`fab deploy`). Faults are what SSH can do:
    kill -9 an agent, start it again, kill a task; partitions need the lab's namespaces (Unsupported here)."""

    kind = "inventory"

    def __init__(self, inventory: Inventory | Path, lab: Lab | None = None) -> None:
        self.inventory = inventory if isinstance(inventory, Inventory) else load_inventory(inventory)
        self.lab = lab
        self.servers = tuple(h.name for h in self.inventory.servers)
        self.clients = tuple(h.name for h in self.inventory.clients)
        self._stopped: set[str] = set()  # agents this cluster killed or stopped: not worth asking

    # -- HttpCluster's hooks ----------------------------------------------------------------------------

    def http_address(self, name: str) -> str:
        return deploy.http_address(self.inventory, name)

    def live_servers(self) -> list[str]:
        return [s for s in self.servers if s not in self._stopped]

    def server_name(self, rpc_address: str) -> str | None:
        rpc = self.inventory.cluster.ports.rpc
        return next((h.name for h in self.inventory.servers if rpc_address == hostport(h.ip(), rpc)), None)

    def kill_pid(self, name: str, pid: int) -> None:
        with open_connection(self.inventory, self.inventory.host(name)) as conn:
            out = hostctl.sh(conn, f"kill -9 {int(pid)}; {hostctl.CLOCK}", check=False)
        # Timed from the host's own clock at the kill, not from the SSH round trip around it.
        self.mark_fault(hostctl.parse_clock(out))

    # -- faults -----------------------------------------------------------------------------------------

    def _check_host(self, name: str) -> None:
        if name not in {h.name for h in self.inventory.hosts}:
            raise ClusterError(f"unknown host {name!r}; the inventory has {[h.name for h in self.inventory.hosts]}")

    def kill_server(self, name: str) -> None:
        self._check_host(name)
        self.mark_fault(deploy.kill(self.inventory, name))
        self._stopped.add(name)

    def start_server(self, name: str) -> None:
        self._check_host(name)
        deploy.start(self.inventory, [name])
        self._stopped.discard(name)

    def partition(self, *groups: tuple[str, ...] | list[str]) -> None:
        if self.lab is None:
            raise Unsupported("partitions need the netns lab's hosts (--cluster=lab)")
        try:
            self.lab.partition([list(g) for g in groups])
        except LabError as exc:
            raise ClusterError(str(exc)) from None
        self.mark_fault()

    def heal(self) -> None:
        if self.lab is not None:
            self.lab.heal()
        self.mark_fault()

    def lose_client(self, name: str) -> None:
        """The host drops off the network (its interface cut from every other host); the control machine still
        reaches it, as a monitoring network would, but no agent hears from it."""
        if self.lab is None:
            raise Unsupported("losing a host silently needs the netns lab (--cluster=lab)")
        self._check_host(name)
        self.lab.isolate(name)
        self.mark_fault()
        if name in self.servers:
            self._stopped.add(name)  # its stale views would only slow the others' answers

    def stop_all(self) -> None:
        deploy.stop(self.inventory)
        self._stopped = set(self.servers)

    def start_all(self) -> None:
        deploy.start(self.inventory)
        self._stopped.clear()

    def logs(self, lines: int = 60) -> str:
        parts = []
        for host in self.inventory.hosts:
            with contextlib.suppress(Exception):
                parts.append(f"--- {host.name}\n{deploy.logs(self.inventory, host.name, lines)}")
        return "\n".join(parts)

    def close(self) -> None:
        """Heal, and start what this cluster stopped: the next scenario on these hosts finds them whole."""
        self.heal()
        if self._stopped:
            with contextlib.suppress(Exception):
                deploy.start(self.inventory, sorted(self._stopped))
            self._stopped.clear()


class LabCluster(InventoryCluster):
    kind = "lab"


class LabDeployment:
    """The netns lab brought up and deployed once; each scenario gets a fresh cluster on it (fresh_cluster)."""

    def __init__(self, lab: Lab, inventory: Inventory, deploy_seconds: float, redeploy_seconds: float) -> None:
        self.lab = lab
        self.inventory = inventory
        self.deploy_seconds = deploy_seconds
        self.redeploy_seconds = redeploy_seconds
        self.docker_missing = "not asked for"  # why the agents have no docker driver; "" when they have one

    @classmethod
    def up(cls, base: Path, docker: bool = False) -> LabDeployment:
        """Hosts up and `fab deploy`ed. With `docker`, each client host first gets its own Docker engine (in its
        network namespace, with the busybox image) and its agent the docker driver; when no engine can start,
        the lab comes up without, and `docker_missing` says why."""
        lab = Lab(base, hosts=LAB_HOSTS)
        lab.up()
        missing = "not asked for"
        try:
            if docker:
                missing = _start_engines(lab, [h for h in LAB_HOSTS if h != LAB_HOSTS[0]])
                if not missing:
                    _add_docker_plugin(lab.inventory_path, DOCKER_ENDPOINT)
            inventory = load_inventory(lab.inventory_path, check_files=True)
            first = fab_deploy(lab.inventory_path)
            again = fab_deploy(lab.inventory_path)  # nothing changed: must change nothing, and fast
            deployment = cls(lab, inventory, first, again)
            deployment.docker_missing = missing
            return deployment
        except BaseException:
            lab.down()
            raise

    def fresh_cluster(self) -> LabCluster:
        """Every agent stopped, its data and leftover tasks gone, started again: a new cluster per scenario
        without reinstalling anything."""
        self.lab.heal()
        deploy.stop(self.inventory)
        data = self.inventory.cluster.data_dir
        for host in self.lab.hosts:
            # The client agents leave their tasks running when they stop (as Nomad's do): end them here, found
            # by the host's network namespace, never by name; containers through the host's own engine.
            if not self.docker_missing and host != LAB_HOSTS[0]:
                _remove_containers(self.lab.docker_url(host))
            for pid in self.lab.workload_pids(host):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with open_connection(self.inventory, self.inventory.host(host)) as conn:
                hostctl.sh(conn, f"rm -rf {shlex.quote(data)}")
        deploy.start(self.inventory)
        cluster = LabCluster(self.inventory, self.lab)
        cluster.wait_healthy(90)
        return cluster

    def down(self) -> None:
        with contextlib.suppress(Exception):
            deploy.teardown(self.inventory)
        self.lab.down()

    def describe(self) -> dict[str, Any]:
        return {"hosts": list(self.lab.hosts), "deploy_seconds": round(self.deploy_seconds, 2),
                "redeploy_seconds": round(self.redeploy_seconds, 2)}


def _start_engines(lab: Lab, hosts: list[str]) -> str:
    """Each host's own engine with the busybox image (no registry is reachable); "" or why not."""
    import docker

    from orchestrator.testing.dockerd import DockerUnavailable, ensure_busybox_image

    for host in hosts:
        try:
            lab.start_docker(host)
            client = docker.DockerClient(base_url=lab.docker_url(host), timeout=60)
            try:
                ensure_busybox_image(client)
            finally:
                client.close()
        except (LabError, DockerUnavailable) as exc:
            return str(exc)
    return ""


def _remove_containers(base_url: str) -> None:
    import docker

    client = docker.DockerClient(base_url=base_url, timeout=30)
    try:
        for container in client.containers.list(all=True):
            container.remove(force=True)
    finally:
        client.close()


def _add_docker_plugin(inventory_path: Path, endpoint: str) -> None:
    """Give the lab's inventory an agent config (HCL, as its agent_config) naming each host's engine."""
    data = yaml.safe_load(inventory_path.read_text())
    settings = data["cluster"].get("agent_config") or {}
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    lines.append(f'plugin "docker" {{\n  config {{\n    endpoint = {json.dumps(endpoint)}\n  }}\n}}')
    data["cluster"]["agent_config"] = "\n".join(lines) + "\n"
    inventory_path.write_text(yaml.safe_dump(data, sort_keys=False))


def fab_deploy(inventory_path: Path) -> float:
    """`fab deploy --inventory PATH`, the command users run (not just its Python API): its wall seconds."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "fabric", "deploy", "--inventory", str(inventory_path)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600, cwd=ROOT)
    if done.returncode != 0:
        raise ClusterError(f"fab deploy failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.monotonic() - start
