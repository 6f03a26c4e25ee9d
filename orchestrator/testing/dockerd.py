"""A Docker engine for tests and benchmarks: a reachable one or a private dockerd, and a local busybox image."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import struct
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUSYBOX_TAG = "yurt/busybox:1"
START_TIMEOUT = 30.0  # dockerd is ready in about a second here; its managed containerd can take longer cold
STOP_TIMEOUT = 20.0
BRIDGE_MARKER = "created-docker0"
SYSTEM_SOCKET = "/var/run/docker.sock"


class DockerUnavailable(RuntimeError):
    """No engine can be reached or started here; the message says why (tests skip with it)."""


@dataclass
class DockerEngine:
    """An engine reachable at `base_url`; `stop()` ends it only when this process started it."""

    base_url: str
    pid: int | None = None  # set when we started dockerd ourselves
    base_dir: Path | None = None
    created_bridge: bool = False  # docker0 did not exist before our dockerd made it; nor did its iptables rules
    forward_policy: str = ""  # the FORWARD chain's policy before our dockerd set it to DROP
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def owned(self) -> bool:
        return self.pid is not None

    def client(self, timeout: float = 60) -> Any:
        import docker

        return docker.DockerClient(base_url=self.base_url, timeout=timeout)

    def env(self) -> dict[str, str]:
        """Environment for child processes (agents, the docker CLI) that should use this engine."""
        return {**os.environ, "DOCKER_HOST": self.base_url}

    def stop(self) -> None:
        if self.pid is None:
            return
        _remove_our_containers(self)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(self.pid, self._proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(self.pid, self._proc):
            # Its whole process group: the containerd it started would otherwise live on.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            if self._proc is not None:
                self._proc.wait(timeout=STOP_TIMEOUT)
        if self.created_bridge:
            # Nothing else uses the bridge and rules our engine made; leave the machine as we found it (a DROP
            # policy on FORWARD would also cut the lab's own bridges).
            with contextlib.suppress(OSError):
                subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True, check=False)
                remove_docker_iptables(self.forward_policy)
        self.pid = None


def missing_tools() -> str | None:
    """Why a private engine cannot be started here, or None when everything is installed."""
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (apt-get install docker.io; .ci/run does this)"
    if busybox_path() is None:
        return "busybox-static is not installed (apt-get install busybox-static; .ci/run does this)"
    if os.geteuid() != 0:
        return "starting dockerd needs root"
    return None


def busybox_path() -> Path | None:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.is_file() and _is_static(path):
            return path
    return None


def ping(base_url: str, timeout: float = 2.0) -> bool:
    """Whether an engine answers `/_ping` at `base_url`."""
    import docker

    try:
        client = docker.APIClient(base_url=base_url, timeout=timeout, version="1.24")
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def ensure_dockerd(base_dir: str | Path) -> DockerEngine:
    """The engine at DOCKER_HOST (else the system socket) when it answers, else a private dockerd whose files
    all live in `base_dir`.

    Raises DockerUnavailable with the reason when neither is possible.
    """
    host = os.environ.get("DOCKER_HOST", "")
    if host and ping(host):
        return DockerEngine(base_url=host)
    if not host and Path(SYSTEM_SOCKET).exists() and ping(f"unix://{SYSTEM_SOCKET}"):
        # The machine's own engine: a second one would fight it over the docker0 bridge.
        return DockerEngine(base_url=f"unix://{SYSTEM_SOCKET}")
    base = Path(base_dir).resolve()
    sock = base / "docker.sock"
    base_url = f"unix://{sock}"
    if ping(base_url):  # a private engine left running by an earlier run in the same directory
        return DockerEngine(base_url=base_url, pid=_read_pid(base / "docker.pid"), base_dir=base,
                            created_bridge=(base / BRIDGE_MARKER).exists(),
                            forward_policy=_read_marker(base / BRIDGE_MARKER))
    reason = missing_tools()
    if reason is not None:
        if host:
            reason = f"DOCKER_HOST={host} does not answer and {reason}"
        raise DockerUnavailable(reason)
    if len(str(sock)) > 100:  # sun_path holds 108 bytes
        raise DockerUnavailable(f"socket path too long for a unix socket: {sock}")
    for sub in ("data", "exec"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
    bridge_existed = Path("/sys/class/net/docker0").exists()
    forward_policy = _forward_policy()
    (base / BRIDGE_MARKER).unlink(missing_ok=True)
    if not bridge_existed:  # so a later run reusing this engine still cleans up after it
        (base / BRIDGE_MARKER).write_text(forward_policy)
    engine = _spawn([], base_url, base, base)
    engine.created_bridge, engine.forward_policy = not bridge_existed, forward_policy
    return _wait_ready(engine)


def dockerd_in_netns(netns_path: str, sock: Path, state_dir: Path) -> DockerEngine:
    """A private dockerd inside a network namespace (a lab host's own engine): listening on `sock`, its data and
    runtime state under `state_dir`. Its bridge and iptables rules live in that namespace and go with it.

    Started with nsenter rather than `ip netns exec`, which remounts /sys and hides the cgroup mounts from it.
    Raises DockerUnavailable with the reason when it cannot start.
    """
    reason = missing_tools()
    if reason is not None:
        raise DockerUnavailable(reason)
    if len(str(sock)) > 100:  # sun_path holds 108 bytes
        raise DockerUnavailable(f"socket path too long for a unix socket: {sock}")
    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
    for sub in ("data", "exec"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    return _wait_ready(_spawn(["nsenter", f"--net={netns_path}"], f"unix://{sock}", state_dir, state_dir))


def _spawn(prefix: list[str], base_url: str, state_dir: Path, log_dir: Path) -> DockerEngine:
    log = open(log_dir / "dockerd.log", "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        proc = subprocess.Popen(
            [*prefix, "dockerd", "--host", base_url, "--data-root", str(state_dir / "data"),
             "--exec-root", str(state_dir / "exec"), "--pidfile", str(state_dir / "docker.pid")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()
    return DockerEngine(base_url=base_url, pid=proc.pid, base_dir=log_dir, _proc=proc)


def _wait_ready(engine: DockerEngine) -> DockerEngine:
    proc, base_url = engine._proc, engine.base_url
    assert proc is not None and engine.base_dir is not None
    base = engine.base_dir
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DockerUnavailable(f"dockerd exited with {proc.returncode}: {_tail(base / 'dockerd.log')}")
        if ping(base_url, timeout=1.0):
            return engine
        time.sleep(0.05)
    engine.stop()
    raise DockerUnavailable(f"dockerd did not answer within {START_TIMEOUT:.0f}s: {_tail(base / 'dockerd.log')}")


def ensure_busybox_image(client: Any, tag: str = BUSYBOX_TAG) -> str:
    """Make `tag` a local image of Debian's static busybox with its applet links; returns the tag."""
    import docker

    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    busybox = busybox_path()
    if busybox is None:
        raise DockerUnavailable("busybox-static is not installed (apt-get install busybox-static)")
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    client.api.import_image_from_data(busybox_rootfs(busybox), repository=repository, tag=version,
                                      changes=['CMD ["sh"]', "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
    client.images.get(tag)
    return tag


def busybox_rootfs(busybox: Path) -> bytes:
    """A root filesystem tarball: /bin/busybox, a link per applet where busybox installs it, a minimal /etc."""
    applets = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = {"bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "etc": 0o755,
                "tmp": 0o1777, "proc": 0o555, "sys": 0o555, "dev": 0o755, "root": 0o700, "home": 0o755,
                "var": 0o755, "var/tmp": 0o1777}
        for name, mode in dirs.items():
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in sorted(set(applets)):
            if applet == "bin/busybox":
                continue
            info = tarfile.TarInfo(applet)
            info.type, info.linkname = tarfile.SYMTYPE, "/bin/busybox"
            tar.addfile(info)
        files = {"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
                 "etc/group": "root:x:0:\nnogroup:x:65534:\n",
                 "etc/hosts": "127.0.0.1 localhost\n"}
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def remove_docker_iptables(forward_policy: str) -> None:
    """Delete the rules and chains dockerd added to the filter and nat tables; restore FORWARD's policy."""
    for table in ("filter", "nat"):
        listing = _iptables(table, "-S")
        for line in listing.splitlines():
            words = line.split()
            if words[:1] == ["-A"] and not words[1].startswith("DOCKER") and ("DOCKER" in line or "docker0" in line):
                _iptables(table, "-D", *words[1:])
        chains = [line.split()[1] for line in listing.splitlines() if line.startswith("-N DOCKER")]
        for chain in chains:
            _iptables(table, "-F", chain)
        for chain in chains:
            _iptables(table, "-X", chain)
    if forward_policy:
        _iptables("filter", "-P", "FORWARD", forward_policy)


def _iptables(table: str, *args: str) -> str:
    try:
        return subprocess.run(["iptables", "-w", "5", "-t", table, *args], capture_output=True, text=True,
                              check=False).stdout
    except OSError:
        return ""


def _forward_policy() -> str:
    first = _iptables("filter", "-S", "FORWARD").split("\n", 1)[0].split()
    return first[2] if first[:2] == ["-P", "FORWARD"] and len(first) > 2 else ""


def _read_marker(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _remove_our_containers(engine: DockerEngine) -> None:
    # A private engine's containers are all ours; removing them first makes dockerd's shutdown quick.
    try:
        client = engine.client(timeout=10)
        for container in client.containers.list(all=True):
            container.remove(force=True)
        client.close()
    except Exception:
        pass


def _is_static(path: Path) -> bool:
    # Debian's `busybox` package is dynamically linked; only busybox-static runs in an empty rootfs.
    # A static ELF has no PT_INTERP program header (no dynamic loader to name).
    try:
        data = path.read_bytes()[:65536]
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit ELF only: what Debian ships here
        return False
    order = "<" if data[5] == 1 else ">"
    phoff, = struct.unpack_from(order + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
    for i in range(phnum):
        offset = phoff + i * phentsize
        if offset + 4 > len(data):
            break
        if struct.unpack_from(order + "I", data, offset)[0] == 3:  # PT_INTERP
            return False
    return True


def _alive(pid: int, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
