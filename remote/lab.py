"""The netns lab: hosts as network namespaces on a bridge, each with its own sshd, plus fault helpers."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

BRIDGE = "yurtbr0"
NS_PREFIX = "yurt-"  # namespaces are prefixed so the lab never deletes one it did not create
VETH_PREFIX = "yv-"
KEY_NAME = "yurt_lab"
FORWARD_RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]
CHAIN = "YURT_LAB"
NFT_TABLE = "yurtlab"


class LabError(RuntimeError):
    pass


def _run(*cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0) but is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _signal(pid: int, sig: int) -> None:
    # The process may exit between our check and the signal; that is the outcome we wanted anyway.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _children(pid: int) -> list[int]:
    """All descendants of pid (sshd's session processes), found through /proc since there is no pgrep contract."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tcp_open(address: str, port: int = 22, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


class Lab:
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
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{self.subnet}.1/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        # Docker's FORWARD DROP policy would otherwise drop bridged host-to-host traffic (br_netfilter).
        if shutil.which("iptables") and _run("iptables", "-C", *FORWARD_RULE, check=False).returncode != 0:
            _run("iptables", "-I", *FORWARD_RULE, check=False)
        for host in self.hosts:
            ns, veth = self.netns(host), VETH_PREFIX + host
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "link", "set", veth, "master", BRIDGE, "up")
            _run("ip", "-n", ns, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")

    def _keys(self) -> None:
        if not self.key_path.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "yurt-lab", "-f", str(self.key_path))
        shutil.copyfile(f"{self.key_path}.pub", self.base_dir / "authorized_keys")
        for host in self.hosts:
            hdir = self.host_dir(host)
            (hdir / "opt").mkdir(parents=True, exist_ok=True)
            hkey = hdir / "ssh_host_ed25519_key"
            if not hkey.exists():
                _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host, "-f", str(hkey))

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
        _run("nsenter", f"--net={self.netns_path(host)}", "unshare", "--mount", "--uts", "--propagation", "private",
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
            self._stop_sshd(host)
        # Without our state file the bridge and namespaces (same names) may belong to another lab directory.
        if not self.state_path.exists():
            return
        for host in self.hosts:
            if os.path.exists(self.netns_path(host)):
                _run("ip", "netns", "del", self.netns(host), check=False)
            if Path(f"/sys/class/net/{VETH_PREFIX}{host}").exists():
                _run("ip", "link", "del", VETH_PREFIX + host, check=False)
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            _run("ip", "link", "del", BRIDGE, check=False)
        if shutil.which("iptables"):
            while _run("iptables", "-C", *FORWARD_RULE, check=False).returncode == 0:
                if _run("iptables", "-D", *FORWARD_RULE, check=False).returncode != 0:
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
        return pid if str(self.host_dir(host) / "sshd_config") in cmdline and _alive(pid) else None

    def _stop_sshd(self, host: str) -> None:
        pid = self._sshd_pid(host)
        if pid is not None:
            # Session processes too: left running they would keep the namespace alive after `ip netns del`.
            pids = [pid, *_children(pid)]
            for p in pids:
                # SIGCONT first: a paused sshd would not act on SIGTERM.
                _signal(p, signal.SIGCONT)
                _signal(p, signal.SIGTERM)
            deadline = time.monotonic() + 2
            while any(_alive(p) for p in pids) and time.monotonic() < deadline:
                time.sleep(0.01)
            for p in pids:
                if _alive(p):
                    _signal(p, signal.SIGKILL)
        self.pid_file(host).unlink(missing_ok=True)

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

    # -- probes ---------------------------------------------------------------------------------
    def exec_in(self, host: str, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """Run a command in host's network namespace (not its mount/UTS namespace)."""
        return subprocess.run(["nsenter", f"--net={self.netns_path(host)}", *cmd], capture_output=True, text=True,
                              timeout=timeout)

    def can_connect(self, src: str, dst: str, port: int = 22, timeout: float = 0.5) -> bool:
        code = (f"import socket\ntry:\n socket.create_connection(({self.address(dst)!r},{port}),{timeout}).close()\n"
                "except OSError:\n raise SystemExit(1)")
        return self.exec_in(src, sys.executable, "-c", code).returncode == 0

    # -- faults ---------------------------------------------------------------------------------
    def _firewall(self) -> str:
        # Prefer iptables (the Docker hosts have it), fall back to nft; either works inside a namespace.
        for tool in ("iptables", "nft"):
            if shutil.which(tool):
                return tool
        raise LabError("neither iptables nor nft is installed")

    def _block(self, host: str, peers: Iterable[str]) -> None:
        addrs = [self.address(p) for p in peers]
        if not addrs:
            return
        ns = self.netns_path(host)
        if self._firewall() == "iptables":
            ipt = ["nsenter", f"--net={ns}", "iptables"]
            if _run(*ipt, "-N", CHAIN, check=False).returncode == 0:
                _run(*ipt, "-I", "INPUT", "-j", CHAIN)
                _run(*ipt, "-I", "OUTPUT", "-j", CHAIN)
            for addr in addrs:
                _run(*ipt, "-A", CHAIN, "-s", addr, "-j", "DROP")
                _run(*ipt, "-A", CHAIN, "-d", addr, "-j", "DROP")
        else:
            rules = "".join(f"add rule inet {NFT_TABLE} {c} ip {d} {a} drop\n"
                            for a in addrs for c, d in (("input", "saddr"), ("output", "daddr")))
            _run("nsenter", f"--net={ns}", "nft", "-f", "-", input=(
                f"table inet {NFT_TABLE} {{\n chain input {{ type filter hook input priority 0; }}\n"
                f" chain output {{ type filter hook output priority 0; }}\n}}\n" + rules))

    def partition(self, groups: Sequence[Sequence[str]]) -> None:
        """Cut traffic between hosts of different groups; hosts in no group keep talking to everyone."""
        member = {h: i for i, g in enumerate(groups) for h in g}
        for host in member:
            if host not in self.hosts:
                raise LabError(f"unknown host {host!r}")
        for host, i in member.items():
            self._block(host, [p for p, j in member.items() if j != i])

    def isolate(self, host: str) -> None:
        self.partition([[host], [h for h in self.hosts if h != host]])

    def heal(self) -> None:
        """Remove every partition rule the lab added."""
        for host in self.hosts:
            ns = self.netns_path(host)
            if not os.path.exists(ns):
                continue
            if shutil.which("iptables"):
                ipt = ["nsenter", f"--net={ns}", "iptables"]
                for chain in ("INPUT", "OUTPUT"):
                    while _run(*ipt, "-D", chain, "-j", CHAIN, check=False).returncode == 0:
                        pass
                _run(*ipt, "-F", CHAIN, check=False)
                _run(*ipt, "-X", CHAIN, check=False)
            if shutil.which("nft"):
                _run("nsenter", f"--net={ns}", "nft", "delete", "table", "inet", NFT_TABLE, check=False)

    def host_pids(self, host: str) -> list[int]:
        """Every process living in host's network namespace."""
        try:
            target = os.stat(self.netns_path(host)).st_ino
        except OSError:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.stat(entry / "ns" / "net").st_ino == target:
                        pids.append(int(entry.name))
                except OSError:
                    pass
        return pids

    def workload_pids(self, host: str) -> list[int]:
        """The host's processes other than its sshd and the sessions it serves: what deployments started."""
        sshd = self._sshd_pid(host)
        keep = {sshd, *_children(sshd)} if sshd else set()
        return [p for p in self.host_pids(host) if p not in keep]

    def pause(self, host: str, pids: Iterable[int] | None = None) -> list[int]:
        """SIGSTOP the given pids (default: every process of the host, sshd included); returns them."""
        chosen = list(pids) if pids is not None else self.host_pids(host)
        for pid in chosen:
            _signal(pid, signal.SIGSTOP)
        self._paused.setdefault(host, []).extend(chosen)
        return chosen

    def resume(self, host: str, pids: Iterable[int] | None = None) -> None:
        chosen = list(pids) if pids is not None else list(self._paused.get(host, []))
        for pid in chosen:
            _signal(pid, signal.SIGCONT)
        self._paused[host] = [p for p in self._paused.get(host, []) if p not in chosen]

    def _resume_all(self, host: str) -> None:
        if self._paused.get(host):
            self.resume(host)

    def host_path(self, host: str, path: str) -> Path:
        """Where a path under the host's private /opt lives in this machine's filesystem."""
        if not path.startswith("/opt/"):
            raise LabError(f"{path}: only /opt is private to a lab host")
        return self.host_dir(host) / "opt" / path.removeprefix("/opt/")

    def kill(self, host: str, pid_file: str, sig: int = signal.SIGKILL) -> int | None:
        """kill -9 (by default) of the process named in `pid_file` on `host`, only if it lives in the host's
        network namespace (a stale pid file must not kill a stranger); its pid, or None."""
        try:
            pid = int(self.host_path(host, pid_file).read_text().strip())
        except (OSError, ValueError):
            return None
        if pid not in self.host_pids(host):
            return None
        _signal(pid, sig)
        return pid

    def add_latency(self, host: str, delay_ms: float, jitter_ms: float = 0.0) -> None:
        """Delay every packet leaving `host` with netem; LabError saying why where the kernel has no netem
        (LAB.md: these machines do not), so a scenario can skip with that reason."""
        args = ["tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", f"{delay_ms}ms"]
        if jitter_ms:
            args.append(f"{jitter_ms}ms")
        if not shutil.which("tc"):
            raise LabError("latency needs tc (iproute2)")
        done = self.exec_in(host, *args)
        if done.returncode != 0:
            raise LabError(f"netem is not available on this kernel: {done.stderr.strip() or done.stdout.strip()}")

    def clear_latency(self, host: str) -> None:
        if shutil.which("tc"):
            self.exec_in(host, "tc", "qdisc", "del", "dev", "eth0", "root")


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
