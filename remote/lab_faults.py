"""The netns lab's faults and probes: partitions, isolation, pauses, kills and latency on its hosts."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from remote.procs import LabError, descendants, run, signal_pid

CHAIN = "YURT_LAB"
NFT_TABLE = "yurtlab"


class LabFaults:
    """What Lab can do to its running hosts; Lab supplies the naming (address, netns_path, host_dir) and
    the sshd pid of each host."""

    hosts: tuple[str, ...]
    _paused: dict[str, list[int]]

    def address(self, host: str) -> str:
        raise NotImplementedError

    def netns_path(self, host: str) -> str:
        raise NotImplementedError

    def host_dir(self, host: str) -> Path:
        raise NotImplementedError

    def _sshd_pid(self, host: str) -> int | None:
        raise NotImplementedError

    def _engine_pid(self, host: str) -> int | None:
        """The host's own dockerd, when it has one."""
        raise NotImplementedError

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
            if run(*ipt, "-N", CHAIN, check=False).returncode == 0:
                run(*ipt, "-I", "INPUT", "-j", CHAIN)
                run(*ipt, "-I", "OUTPUT", "-j", CHAIN)
            for addr in addrs:
                run(*ipt, "-A", CHAIN, "-s", addr, "-j", "DROP")
                run(*ipt, "-A", CHAIN, "-d", addr, "-j", "DROP")
        else:
            rules = "".join(f"add rule inet {NFT_TABLE} {c} ip {d} {a} drop\n"
                            for a in addrs for c, d in (("input", "saddr"), ("output", "daddr")))
            run("nsenter", f"--net={ns}", "nft", "-f", "-", input=(
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
                    while run(*ipt, "-D", chain, "-j", CHAIN, check=False).returncode == 0:
                        pass
                run(*ipt, "-F", CHAIN, check=False)
                run(*ipt, "-X", CHAIN, check=False)
            if shutil.which("nft"):
                run("nsenter", f"--net={ns}", "nft", "delete", "table", "inet", NFT_TABLE, check=False)

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
        """The host's processes other than its services (sshd and the sessions it serves, its Docker engine with
        its containerd and the containers it runs): what deployments started."""
        keep: set[int] = set()
        for service in (self._sshd_pid(host), self._engine_pid(host)):
            if service:
                keep.update((service, *descendants(service)))
        return [p for p in self.host_pids(host) if p not in keep]

    def pause(self, host: str, pids: Iterable[int] | None = None) -> list[int]:
        """SIGSTOP the given pids (default: every process of the host, sshd included); returns them."""
        chosen = list(pids) if pids is not None else self.host_pids(host)
        for pid in chosen:
            signal_pid(pid, signal.SIGSTOP)
        self._paused.setdefault(host, []).extend(chosen)
        return chosen

    def resume(self, host: str, pids: Iterable[int] | None = None) -> None:
        chosen = list(pids) if pids is not None else list(self._paused.get(host, []))
        for pid in chosen:
            signal_pid(pid, signal.SIGCONT)
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
        signal_pid(pid, sig)
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
