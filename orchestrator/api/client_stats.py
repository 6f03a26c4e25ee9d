"""Resource usage read from /proc for /v1/client/stats and /v1/client/allocation/:id/stats, in Nomad's shapes."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# What Nomad's executor (raw_exec, exec) measures of a task's processes: the CLI prints exactly these.
MEMORY_MEASURED = ["RSS", "Swap"]
CPU_MEASURED = ["System Mode", "User Mode", "Percent"]
# Per-CPU percentages need two readings of /proc/stat: a reading younger than this is not compared against.
MIN_HOST_INTERVAL = 0.05
SAMPLE_TTL = 600.0  # seconds a process group's last reading is kept when nobody asks about it
# Percentages span at least this long (Nomad's collector samples every second). CPU times tick in 10 ms steps:
# over the few milliseconds between two requests in a row (the API, then `alloc status -stats`) a lightly
# loaded task shows no tick at all, and 0% where the request just before saw 0.44%.
STATS_WINDOW = 1.0


@dataclass(slots=True)
class ProcessSample:
    """CPU seconds (user, system) a process group had used at a wall-clock instant."""

    at: float
    user: float
    system: float


@dataclass(slots=True)
class Samples:
    """The previous readings, so that percentages cover the time between two requests (Nomad's collector
    keeps them for its 1 s ticker; yurt reads on demand)."""

    # Per process group: the newest reading at least STATS_WINDOW old (or the oldest kept), then the younger ones.
    groups: dict[int, list[ProcessSample]] = field(default_factory=dict)
    host: tuple[float, list[tuple[str, list[int]]]] | None = None
    host_cpus: tuple[list[dict[str, Any]], float] | None = None  # the last CPU percentages, and ticks consumed


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _uptime() -> float:
    text = _read("/proc/uptime")
    return float(text.split()[0]) if text else 0.0


def _stat_fields(pid: str) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses): state is [0]."""
    text = _read(f"/proc/{pid}/stat")
    if not text or ")" not in text:
        return None
    return text.rsplit(")", 1)[1].split()


def _swap_bytes(pid: str) -> int:
    text = _read(f"/proc/{pid}/status") or ""
    for line in text.splitlines():
        if line.startswith("VmSwap:"):
            return int(line.split()[1]) * 1024
    return 0


def group_usage(pgid: int) -> dict[str, Any] | None:
    """The live processes of a process group: CPU seconds, RSS and swap summed, and the leader's start (in
    seconds since boot); None when none is left. Blocking (scans /proc): run it off the event loop."""
    user = system = 0.0
    rss = swap = 0
    started: float | None = None
    found = False
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        fields = _stat_fields(pid)
        # Zombies are gone but for their exit status; their CPU time shows up in the parent's cutime.
        if fields is None or len(fields) < 22 or fields[0] == "Z" or int(fields[2]) != pgid:
            continue
        found = True
        user += int(fields[11]) / CLK_TCK
        system += int(fields[12]) / CLK_TCK
        rss += int(fields[21]) * PAGE_SIZE
        swap += _swap_bytes(pid)
        if int(pid) == pgid:
            started = int(fields[19]) / CLK_TCK
    if not found:
        return None
    return {"user": user, "system": system, "rss": rss, "swap": swap, "started": started, "uptime": _uptime()}


def task_usage(pgid: int, usage: dict[str, Any], samples: Samples, ticks_per_core: float) -> dict[str, Any]:
    """Nomad's ResourceUsage of one task from its process group's `group_usage`: percentages since the newest
    earlier reading at least STATS_WINDOW old (on the first request, since the group's leader started)."""
    now = time.monotonic()
    history = samples.groups.get(pgid)
    if not history:
        elapsed = usage["uptime"] - usage["started"] if usage["started"] is not None else 0.0
        history = [ProcessSample(now - elapsed, 0.0, 0.0)]
    base = next((s for s in reversed(history) if now - s.at >= STATS_WINDOW), history[0])
    samples.groups[pgid] = [s for s in history if s.at >= base.at] + [ProcessSample(now, usage["user"],
                                                                                    usage["system"])]
    elapsed = now - base.at
    user = max(0.0, (usage["user"] - base.user) / elapsed * 100) if elapsed > 0 else 0.0
    system = max(0.0, (usage["system"] - base.system) / elapsed * 100) if elapsed > 0 else 0.0
    return resource_usage(rss=usage["rss"], swap=usage["swap"], user=user, system=system, percent=user + system,
                          ticks=(user + system) / 100 * ticks_per_core)


def forget_gone(samples: Samples, live: set[int]) -> None:
    """Drop the readings of process groups no request asked about for a while (their tasks are gone)."""
    cutoff = time.monotonic() - SAMPLE_TTL
    for pgid in [p for p, s in samples.groups.items() if p not in live and s[-1].at < cutoff]:
        del samples.groups[pgid]


def resource_usage(*, rss: int = 0, swap: int = 0, user: float = 0.0, system: float = 0.0, percent: float = 0.0,
                   ticks: float = 0.0) -> dict[str, Any]:
    """Nomad's ResourceUsage (MemoryStats, CpuStats, DeviceStats) with the figures an executor measures."""
    return {"MemoryStats": {"RSS": rss, "Cache": 0, "Swap": swap, "Usage": 0, "MaxUsage": 0, "KernelUsage": 0,
                            "KernelMaxUsage": 0, "Measured": list(MEMORY_MEASURED)},
            "CpuStats": {"SystemMode": system, "UserMode": user, "TotalTicks": ticks, "ThrottledPeriods": 0,
                         "ThrottledTime": 0, "Percent": percent, "Measured": list(CPU_MEASURED)},
            "DeviceStats": None}


def sum_usage(usages: list[dict[str, Any]]) -> dict[str, Any]:
    """The allocation's ResourceUsage: its tasks' added up, as Nomad's alloc runner does."""
    total = resource_usage()
    for usage in usages:
        for group in ("MemoryStats", "CpuStats"):
            for key, value in usage[group].items():
                if key != "Measured":
                    total[group][key] += value
    return total


# -- the host ---------------------------------------------------------------------------------------------


def _cpu_times() -> list[tuple[str, list[int]]]:
    """(cpuN, [user, nice, system, idle, iowait, irq, softirq, steal]) per CPU from /proc/stat."""
    rows = []
    for line in (_read("/proc/stat") or "").splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name != "cpu":
            rows.append((name, [int(v) for v in rest.split()[:8]]))
    return rows


def cpu_reading() -> tuple[float, list[tuple[str, list[int]]]]:
    return time.monotonic(), _cpu_times()


def cpu_percentages(before: list[tuple[str, list[int]]], after: list[tuple[str, list[int]]],
                    ticks_per_core: float) -> tuple[list[dict[str, Any]], float]:
    """Nomad's HostCPUStats per CPU between two readings, and CPUTicksConsumed (MHz in use over all cores)."""
    previous = dict(before)
    cpus: list[dict[str, Any]] = []
    consumed = 0.0
    for name, times in after:
        old = previous.get(name, [0] * len(times))
        delta = [a - b for a, b in zip(times, old, strict=False)]
        total = sum(delta) or 1
        idle = (delta[3] + (delta[4] if len(delta) > 4 else 0)) / total * 100
        user = (delta[0] + delta[1]) / total * 100
        system = sum(delta[2:3] + delta[5:8]) / total * 100
        busy = max(0.0, 100 - idle)
        cpus.append({"CPU": name, "User": user, "System": system, "Idle": idle, "Total": busy})
        consumed += busy / 100 * ticks_per_core
    return cpus, consumed


def memory() -> dict[str, int]:
    info: dict[str, int] = {}
    for line in (_read("/proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            info[key] = int(parts[0]) * 1024
    total, free = info.get("MemTotal", 0), info.get("MemFree", 0)
    # gopsutil's Used, which Nomad reports: what is neither free nor buffers nor page cache.
    used = total - free - info.get("Buffers", 0) - info.get("Cached", 0) - info.get("SReclaimable", 0)
    return {"Total": total, "Available": info.get("MemAvailable", free), "Used": max(0, used), "Free": free}


def disk_usage(path: str, device: str = "", mountpoint: str = "") -> dict[str, Any] | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    size = st.f_blocks * st.f_frsize
    available = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    inodes_used = st.f_files - st.f_ffree
    return {"Device": device, "Mountpoint": mountpoint, "Size": size, "Used": used, "Available": available,
            "UsedPercent": used / (used + available) * 100 if used + available else 0.0,
            "InodesUsedPercent": inodes_used / st.f_files * 100 if st.f_files else 0.0}


def disks(alloc_root: str) -> list[dict[str, Any]]:
    """Usage of the block-device file systems (Nomad's gopsutil partitions), plus the one holding the alloc
    dir whatever it is (an overlay in a container): `node status` looks that one up by device."""
    mounts: list[tuple[str, str]] = []
    for line in (_read("/proc/mounts") or "").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            mounts.append((parts[0], parts[1].replace("\\040", " ")))
    holder = max((m for m in mounts if alloc_root == m[1] or alloc_root.startswith(m[1].rstrip("/") + "/")),
                 key=lambda m: len(m[1]), default=None)
    wanted = [m for m in mounts if m[0].startswith("/dev/")]
    if holder is not None and holder not in wanted:
        wanted.append(holder)
    seen: set[str] = set()
    out = []
    for device, mountpoint in wanted:
        if mountpoint in seen:
            continue
        seen.add(mountpoint)
        usage = disk_usage(mountpoint, device, mountpoint)
        if usage is not None and usage["Size"]:
            out.append(usage)
    return out


def host_stats(cpus: list[dict[str, Any]], consumed: float, alloc_root: str) -> dict[str, Any]:
    """Nomad's HostStats around the CPU figures. Blocking (statvfs of every mount): run it off the event loop."""
    return {"Memory": memory(), "CPU": cpus, "DiskStats": disks(alloc_root),
            "AllocDirStats": disk_usage(alloc_root) if alloc_root else None, "DeviceStats": [],
            "Uptime": int(_uptime()), "Timestamp": time.time_ns(), "CPUTicksConsumed": consumed}


def ticks_per_core(attributes: dict[str, str]) -> float:
    """MHz of one core from the node's fingerprint (cpu.totalcompute / cpu.numcores)."""
    try:
        return float(attributes.get("cpu.totalcompute", 0)) / max(1, int(attributes.get("cpu.numcores", 1)))
    except ValueError:
        return 0.0
