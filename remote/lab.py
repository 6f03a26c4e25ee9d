"""The netns lab: hosts as network namespaces on a bridge, each with its own sshd, hostname and /opt."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from remote.lab_faults import LabFaults
from remote.procs import LabError, alive, descendants, end, run, tcp_open

__all__ = ["BRIDGE", "Lab", "LabError", "alive", "main", "tcp_open", "unavailable"]

BRIDGE = "yurtbr0"
NS_PREFIX = "yurt-"  # namespaces are prefixed so the lab never deletes one it did not create
VETH_PREFIX = "yv-"
KEY_NAME = "yurt_lab"
DOCKER_ENDPOINT = "unix:///opt/docker/docker.sock"  # a host's own engine, as its processes see it
FORWARD_RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]


def unavailable(firewall: bool = False) -> str | None:
    """Why a lab cannot come up on this machine (None when it can): for tests and fixtures to skip with."""
    if os.geteuid() != 0:
        return "the netns lab needs root"
    for tool in ("ip", "nsenter", "unshare", "ssh-keygen"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if not (shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")):
        return "sshd is not installed (apt-get install openssh-server)"
    if firewall and not (shutil.which("iptables") or shutil.which("nft")):
        return "neither iptables nor nft is installed"
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        return f"bridge {BRIDGE} exists: another lab is up"
    return None



class Lab(LabFaults):
    """A set of hosts as network namespaces on bridge yurtbr0, with sshd, key, known_hosts and inventory in base_dir."""

    def __init__(self, base_dir: str | os.PathLike[str], hosts: Sequence[str] = ("s1", "s2", "s3"),
                 subnet: str = "10.250.0") -> None:
        self.base_dir = Path(base_dir).resolve()
        self.hosts = tuple(hosts)
        self.subnet = subnet
        for host in self.hosts:
            if len(VETH_PREFIX + host) > 15:
                raise LabError(f"host name {host!r} too long for an interface name")
        self._paused: dict[str, list[int]] = {}
        self._docker: dict[str, Any] = {}  # engines this object started (DockerEngine), stopped by down()

    # -- naming ---------------------------------------------------------------------------------
    def address(self, host: str) -> str:
        return f"{self.subnet}.{11 + self.hosts.index(host)}"

    def netns(self, host: str) -> str:
        return NS_PREFIX + host

    def netns_path(self, host: str) -> str:
        return f"/run/netns/{self.netns(host)}"

    def host_dir(self, host: str) -> Path:
        return self.base_dir / host

    def pid_file(self, host: str) -> Path:
        return self.host_dir(host) / "sshd.pid"

    @property
    def key_path(self) -> Path:
        return self.base_dir / KEY_NAME

    @property
    def known_hosts_path(self) -> Path:
        return self.base_dir / "known_hosts"

    @property
    def state_path(self) -> Path:
        return self.base_dir / "lab.json"

    @property
    def inventory_path(self) -> Path:
        return self.base_dir / "inventory.yml"

    # -- lifecycle ------------------------------------------------------------------------------
    def up(self, timeout: float = 15.0) -> None:
        """Create bridge, namespaces, keys and sshds; return once every sshd accepts TCP."""
        for tool in ("ip", "ssh-keygen", "unshare", "nsenter"):
            if not shutil.which(tool):
                raise LabError(f"{tool} not found")
        sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
        if not sshd:
            raise LabError("sshd not found (apt-get install openssh-server)")
        # Start from a clean slate so a crashed earlier run of this lab does not make up() fail half-way.
        self.down()
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            raise LabError(f"bridge {BRIDGE} exists: another lab is up (its `down` removes it)")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # Written before anything is created, so down() after a crash knows the network is ours to remove.
        self.state_path.write_text(json.dumps({"hosts": self.hosts, "subnet": self.subnet}) + "\n")
        try:
            self._network()
            self._keys()
            for host in self.hosts:
                self._start_sshd(host, sshd)
            deadline = time.monotonic() + timeout
            for host in self.hosts:
                while not tcp_open(self.address(host), 22, 0.2):
                    if time.monotonic() > deadline:
                        raise LabError(f"sshd on {host} ({self.address(host)}) did not accept TCP in {timeout}s")
                    time.sleep(0.02)
            self._write_known_hosts()
            self._write_inventory()
        except BaseException:
            self.down()
            raise

    def _network(self) -> None:
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{self.subnet}.1/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        # Docker's FORWARD DROP policy would otherwise drop bridged host-to-host traffic (br_netfilter).
        if shutil.which("iptables") and run("iptables", "-C", *FORWARD_RULE, check=False).returncode != 0:
            run("iptables", "-I", *FORWARD_RULE, check=False)
        for host in self.hosts:
            ns, veth = self.netns(host), VETH_PREFIX + host
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            run("ip", "link", "set", veth, "master", BRIDGE, "up")
            run("ip", "-n", ns, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def _keys(self) -> None:
        if not self.key_path.exists():
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "yurt-lab", "-f", str(self.key_path))
        shutil.copyfile(f"{self.key_path}.pub", self.base_dir / "authorized_keys")
        for host in self.hosts:
            hdir = self.host_dir(host)
            (hdir / "opt").mkdir(parents=True, exist_ok=True)
            hkey = hdir / "ssh_host_ed25519_key"
            if not hkey.exists():
                run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host, "-f", str(hkey))

    def _start_sshd(self, host: str, sshd: str) -> None:
        hdir = self.host_dir(host)
        config = hdir / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {self.address(host)}",
            "Port 22",
            f"HostKey {hdir / 'ssh_host_ed25519_key'}",
            f"PidFile {self.pid_file(host)}",
            f"AuthorizedKeysFile {self.base_dir / 'authorized_keys'}",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "StrictModes no",
            "UsePAM no",
            "PrintMotd no",
            "Subsystem sftp internal-sftp",
            "",
        ]))
        # Debian's sshd refuses to start without its privilege-separation directory.
        os.makedirs("/run/sshd", exist_ok=True)
        script = (f"echo {host} > /proc/sys/kernel/hostname && mount --bind {hdir / 'opt'} /opt"
                  f" && exec {sshd} -f {config} -E {hdir / 'sshd.log'}")
        # nsenter rather than `ip netns exec`, which remounts /sys and would hide it from daemons started later.
        run("nsenter", f"--net={self.netns_path(host)}", "unshare", "--mount", "--uts", "--propagation", "private",
             "sh", "-c", script)

    def _host_keys(self) -> dict[str, str]:
        keys = {}
        for host in self.hosts:
            kind, blob = (self.host_dir(host) / "ssh_host_ed25519_key.pub").read_text().split()[:2]
            keys[host] = f"{kind} {blob}"
        return keys

    def _write_known_hosts(self) -> None:
        lines = [f"{self.address(h)} {key}" for h, key in self._host_keys().items()]
        self.known_hosts_path.write_text("\n".join(lines) + "\n")

    def inventory(self) -> dict:
        """The inventory for these hosts, in the schema of inventory/lab.yml (first host server only)."""
        hosts = []
        for i, host in enumerate(self.hosts):
            entry: dict = {"name": host, "address": self.address(host)}
            if i == 0 and len(self.hosts) > 1:
                entry["roles"] = ["server"]
            else:
                entry.update(roles=["server", "client"], node_class="worker",
                             host_volumes={"scratch": {"path": "/opt/yurt/volumes/scratch"}})
            hosts.append(entry)
        return {
            "cluster": {"region": "global", "datacenter": "dc1", "ports": {"http": 4646, "rpc": 4647, "serf": 4648},
                        "install_dir": "/opt/yurt", "data_dir": "/opt/yurt/data", "python": "python3",
                        "agent_config": {"log_level": "INFO", "leave_on_terminate": True}},
            "defaults": {"user": "root", "port": 22, "key": KEY_NAME},
            "known_hosts": self.known_hosts_path.name,
            "accept_unknown_host_keys": False,
            "hosts": hosts,
        }

    def _write_inventory(self) -> None:
        header = "# Written by `python -m remote.lab up`; paths are relative to this file's directory.\n"
        self.inventory_path.write_text(header + yaml.safe_dump(self.inventory(), sort_keys=False))

    def down(self) -> None:
        """Stop this lab's sshds (by pid file only) and delete its namespaces, veths and bridge; idempotent."""
        for host in self.hosts:
            self._resume_all(host)
            self._stop_docker(host)
            self._stop_sshd(host)
        # Without our state file the bridge and namespaces (same names) may belong to another lab directory.
        if not self.state_path.exists():
            return
        # Whatever deployments started there (agents under setsid, their tasks) would outlive the namespace
        # and keep writing to the host's /opt, which the next `up` reuses: end them, found by namespace.
        end([pid for host in self.hosts for pid in self.host_pids(host)], signal.SIGKILL, timeout=5.0)
        for host in self.hosts:
            if os.path.exists(self.netns_path(host)):
                run("ip", "netns", "del", self.netns(host), check=False)
            if Path(f"/sys/class/net/{VETH_PREFIX}{host}").exists():
                run("ip", "link", "del", VETH_PREFIX + host, check=False)
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            run("ip", "link", "del", BRIDGE, check=False)
        if shutil.which("iptables"):
            while run("iptables", "-C", *FORWARD_RULE, check=False).returncode == 0:
                if run("iptables", "-D", *FORWARD_RULE, check=False).returncode != 0:
                    break
        self.state_path.unlink(missing_ok=True)

    def _sshd_pid(self, host: str) -> int | None:
        try:
            pid = int(self.pid_file(host).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        # Guard against pid reuse: only a process running with this host's config is ours.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return None
        return pid if str(self.host_dir(host) / "sshd_config") in cmdline and alive(pid) else None

    def _stop_sshd(self, host: str) -> None:
        pid = self._sshd_pid(host)
        if pid is not None:
            # Session processes too: left running they would keep the namespace alive after `ip netns del`.
            end([pid, *descendants(pid)])
        self.pid_file(host).unlink(missing_ok=True)

    # -- a host's own Docker engine ------------------------------------------------------------------------
    def docker_dir(self, host: str) -> Path:
        """The engine's socket, data and state: under the host's private /opt, so the same path inside every
        host (DOCKER_ENDPOINT) names that host's own engine."""
        return self.host_dir(host) / "opt" / "docker"

    def docker_url(self, host: str) -> str:
        """The host's engine as this machine reaches it."""
        return f"unix://{self.docker_dir(host) / 'docker.sock'}"

    def start_docker(self, host: str) -> str:
        """Start a Docker engine inside the host's network namespace (its containers get the host's network);
        returns the endpoint as the host's own processes see it. LabError saying why when it cannot start."""
        from orchestrator.testing.dockerd import DockerUnavailable, dockerd_in_netns

        try:
            self._docker[host] = dockerd_in_netns(self.netns_path(host), self.docker_dir(host) / "docker.sock",
                                                  self.docker_dir(host))
        except DockerUnavailable as exc:
            raise LabError(f"{host}: no Docker engine: {exc}") from None
        return DOCKER_ENDPOINT

    def _engine_pid(self, host: str) -> int | None:
        try:
            pid = int((self.docker_dir(host) / "docker.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid in self.host_pids(host) else None

    def _stop_docker(self, host: str) -> None:
        """Stop the host's engine by its pid file (it unmounts its containers' filesystems as it goes)."""
        from orchestrator.testing.dockerd import DockerEngine

        engine = self._docker.pop(host, None)
        if engine is None:  # started by another process (`yurt lab down` after a test run, say)
            pid = self._engine_pid(host)
            if pid is None:
                return
            engine = DockerEngine(base_url=self.docker_url(host), pid=pid)
        engine.stop()

    def status(self) -> dict:
        hosts = {}
        for host in self.hosts:
            pid = self._sshd_pid(host)
            hosts[host] = {
                "address": self.address(host),
                "netns": os.path.exists(self.netns_path(host)),
                "sshd_pid": pid,
                "ssh": tcp_open(self.address(host), 22, 0.2) if pid else False,
                "paused": self._paused.get(host, []),
            }
        return {"bridge": Path(f"/sys/class/net/{BRIDGE}").exists(), "dir": str(self.base_dir), "hosts": hosts}


def main(argv: list[str] | None = None, prog: str = "python -m remote.lab") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("action", choices=("up", "down", "status"))
    # The default matches inventory/lab.yml, whose key and known_hosts are under inventory/.lab.
    parser.add_argument("--dir", default="inventory/.lab",
                        help="directory for keys, known_hosts, inventory and host dirs (default: inventory/.lab)")
    parser.add_argument("--hosts", default="s1,s2,s3", help="comma-separated host names")
    parser.add_argument("--subnet", default="10.250.0", help="first three octets of the lab's /24")
    args = parser.parse_args(argv)
    lab = Lab(args.dir, hosts=tuple(h for h in args.hosts.split(",") if h), subnet=args.subnet)
    try:
        if args.action == "up":
            start = time.monotonic()
            lab.up()
            print(f"lab up in {time.monotonic() - start:.2f}s; inventory {lab.inventory_path}")
        elif args.action == "down":
            lab.down()
            print("lab down")
        else:
            print(json.dumps(lab.status(), indent=2))
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
