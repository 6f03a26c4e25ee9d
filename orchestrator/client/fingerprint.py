"""Node fingerprinting: CPU, memory, disk, kernel and OS, network address, drivers, and a stable node ID."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import platform
import shutil
import signal
import socket
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from orchestrator.structs import DriverInfo, Node, NodeResources
from orchestrator.structs.node import HostVolume
from orchestrator.structs.resources import NetworkResource, NodeReservedResources

log = logging.getLogger(__name__)

NOMAD_VERSION = "1.0.18"  # the Nomad release yurt's API and attributes follow
NOMAD_REVISION = "7eb2ad21"  # that release's commit, as its `nomad.revision` attribute shows it
# Nomad's client fills these into the node's meta unless the configuration sets them (client.go setupNode).
CONNECT_META_DEFAULTS = {"connect.sidecar_image": "envoyproxy/envoy:v${NOMAD_envoy_version}",
                         "connect.gateway_image": "envoyproxy/envoy:v${NOMAD_envoy_version}",
                         "connect.log_level": "info", "connect.proxy_concurrency": "1"}
DEFAULT_MHZ = 1000  # when neither /proc/cpuinfo nor cpu_total_compute says
DEFAULT_MBITS = 1000  # Nomad's default link speed when it cannot be read
_SIOCGIFADDR = 0x8915
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "i386": "386", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x"}


@dataclass(slots=True)
class NodeSpec:
    """What the agent configuration says about the node (`client { ... }`, name, datacenter, addresses)."""

    name: str
    datacenter: str = "dc1"
    node_class: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    http_addr: str = ""
    data_dir: str = "/"  # whose file system's free space is the node's disk
    network_interface: str = ""
    network_speed: int = 0
    cpu_total_compute: int = 0
    memory_total_mb: int = 0
    reserved_cpu: int = 0
    reserved_memory: int = 0
    reserved_disk: int = 0
    reserved_ports: str = ""
    host_volumes: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (path, read_only)


# -- the node ID ------------------------------------------------------------------------------------------


def node_identity(state_dir: Path | None) -> tuple[str, str]:
    """(node ID, secret ID): kept in `<state dir>/client-id` and `secret-id` as Nomad keeps them, so a
    restarted client is the same node; fresh ones for every run without a state dir (-dev)."""
    if state_dir is None:
        return str(uuid.uuid4()), str(uuid.uuid4())
    state_dir.mkdir(parents=True, exist_ok=True)
    return _persisted_id(state_dir / "client-id"), _persisted_id(state_dir / "secret-id")


def _persisted_id(path: Path) -> str:
    with contextlib.suppress(FileNotFoundError):
        text = path.read_text().strip()
        if text:
            return text
    value = str(uuid.uuid4())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value)
    os.replace(tmp, path)
    return value


# -- hardware and OS --------------------------------------------------------------------------------------


def cpu_info() -> tuple[int, int, str]:
    """(cores, MHz per core, model name) from /proc/cpuinfo; MHz 0 when unknown."""
    cores, mhz, model = 0, 0.0, ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "processor":
                cores += 1
            elif key == "cpu MHz" and not mhz:
                with contextlib.suppress(ValueError):
                    mhz = float(value)
            elif key == "model name" and not model:
                model = value
    if not mhz:
        with contextlib.suppress(OSError, ValueError):
            mhz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1000
    return cores or os.cpu_count() or 1, int(mhz), model


def memory_bytes() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def os_release() -> tuple[str, str]:
    """(ID, version) from /etc/os-release, e.g. ("debian", "12.11"): Debian's point release from
    /etc/debian_version, as Nomad's host fingerprint (gopsutil) reports it."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip()] = value.strip().strip('"')
    name, version = fields.get("ID", platform.system().lower()), fields.get("VERSION_ID", "")
    if name == "debian":
        with contextlib.suppress(OSError):
            version = Path("/etc/debian_version").read_text().strip() or version
    return name, version


def storage_device(path: str) -> str:
    """The device mounted where `path` lives (Nomad's unique.storage.volume), else the path itself."""
    best, device = "", path
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            mount = parts[1]
            inside = path == mount or path.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best):
                best, device = mount, parts[0]
    return device


def interface_ipv4(name: str) -> str:
    """The IPv4 address of interface `name`, "" when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
        except OSError:
            return ""
    return socket.inet_ntoa(packed[20:24])


def default_interface() -> tuple[str, str]:
    """(interface, IPv4) of the default route, the way Nomad picks one when `network_interface` is unset."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))  # a UDP connect sends nothing: it only picks the route
            ip = sock.getsockname()[0]
        except OSError:
            ip = "127.0.0.1"
    for _, name in socket.if_nameindex():
        if interface_ipv4(name) == ip:
            return name, ip
    return ("lo", ip) if ipaddress.ip_address(ip).is_loopback else ("", ip)


def interface_speed(name: str, configured: int) -> int:
    if configured:
        return configured
    with contextlib.suppress(OSError, ValueError):
        speed = int(Path(f"/sys/class/net/{name}/speed").read_text())
        if speed > 0:
            return speed
    return DEFAULT_MBITS


def cgroup_mountpoint(mountinfo: str = "/proc/self/mountinfo") -> str:
    """Nomad's cgroup fingerprint (FindCgroupMountpointDir): the mount point of the first cgroup v1 hierarchy
    in the mount table, else of the unified (v2) one; "" when there is none."""
    unified = ""
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        fields, _, rest = line.partition(" - ")
        parts, kind = fields.split(), rest.split(" ", 1)[0]
        if len(parts) < 5:
            continue
        if kind == "cgroup":
            return parts[4]
        if kind == "cgroup2" and not unified:
            unified = parts[4]
    return unified


# -- the node -------------------------------------------------------------------------------------------


def fingerprint_node(spec: NodeSpec, node_id: str, secret_id: str, drivers: Mapping[str, DriverInfo],
                     driver_attributes: Mapping[str, str]) -> Node:
    """The Node this client registers: attributes and resources as Nomad's fingerprinters report them."""
    cores, mhz, model = cpu_info()
    total_mhz = spec.cpu_total_compute or cores * (mhz or DEFAULT_MHZ)
    mem_bytes = spec.memory_total_mb * 1024 * 1024 if spec.memory_total_mb else memory_bytes()
    disk_dir = spec.data_dir if os.path.isdir(spec.data_dir) else "/"
    disk = shutil.disk_usage(disk_dir)
    os_name, os_version = os_release()
    if spec.network_interface:
        device, ip = spec.network_interface, interface_ipv4(spec.network_interface)
        if not ip:
            log.warning("fingerprint: interface %r has no IPv4 address; using the default route's", device)
            device, ip = default_interface()
    else:
        device, ip = default_interface()
    attributes = {
        "cpu.arch": _ARCH.get(platform.machine(), platform.machine()),
        "cpu.numcores": str(cores),
        "cpu.frequency": str(total_mhz // cores if spec.cpu_total_compute else (mhz or DEFAULT_MHZ)),
        "cpu.totalcompute": str(total_mhz),
        "memory.totalbytes": str(mem_bytes),
        "kernel.name": platform.system().lower(),
        "kernel.version": platform.release(),
        "os.name": os_name,
        "os.version": os_version,
        "unique.hostname": socket.gethostname(),
        "unique.network.ip-address": ip,
        "unique.storage.volume": storage_device(os.path.realpath(disk_dir)),
        "unique.storage.bytestotal": str(disk.total),
        "unique.storage.bytesfree": str(disk.free),
        "nomad.version": NOMAD_VERSION,
        "nomad.revision": NOMAD_REVISION,
        "nomad.advertise.address": spec.http_addr,
        "os.signals": ",".join(s.name for s in signal.Signals if not s.name.startswith("SIGRT")),
        **driver_attributes,
    }
    if model:
        attributes["cpu.modelname"] = model
    if platform.system() == "Linux" and (mountpoint := cgroup_mountpoint()):
        attributes["unique.cgroup.mountpoint"] = mountpoint
    networks = []
    if ip:
        prefix = 128 if ":" in ip else 32
        networks.append(NetworkResource(mode="host", device=device, cidr=f"{ip}/{prefix}", ip=ip,
                                        mbits=interface_speed(device, spec.network_speed)))
    node = Node(id=node_id, secret_id=secret_id, name=spec.name, datacenter=spec.datacenter,
                http_addr=spec.http_addr, attributes=attributes,
                meta={**CONNECT_META_DEFAULTS, **spec.meta}, node_class=spec.node_class,
                node_resources=NodeResources.of(total_mhz, mem_bytes // (1024 * 1024), disk.free // (1024 * 1024),
                                                networks=networks),
                reserved_resources=NodeReservedResources.of(spec.reserved_cpu, spec.reserved_memory,
                                                            spec.reserved_disk, spec.reserved_ports),
                drivers=dict(drivers),
                host_volumes={name: HostVolume(name=name, path=path, read_only=read_only)
                              for name, (path, read_only) in spec.host_volumes.items()})
    node.computed_class = node.compute_class()
    return node


def with_drivers(node: Node, drivers: Mapping[str, DriverInfo], attributes: Mapping[str, str]) -> Node | None:
    """`node` with these driver fingerprints, or None when they change nothing the servers see (whether each
    driver is detected and healthy, its health description and attributes; not the time of the check)."""

    def seen(infos: Mapping[str, DriverInfo]) -> dict[str, tuple]:
        return {n: (i.detected, i.healthy, i.health_description, sorted(i.attributes.items()))
                for n, i in infos.items()}

    others = {k: v for k, v in node.attributes.items() if not k.startswith("driver.")}
    merged = {**others, **attributes}
    if seen(node.drivers) == seen(drivers) and merged == node.attributes:
        return None
    changed = replace(node, drivers=dict(drivers), attributes=merged)
    changed.computed_class = changed.compute_class()
    return changed
