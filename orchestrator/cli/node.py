"""`yurt node status`, `node drain` (with its monitor) and `node eligibility`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .flags import CommandError, FlagSet, command, failing, group, out
from .format import (
    FULL_ID,
    SHORT_ID,
    duration,
    format_kv,
    format_list,
    format_time,
    limit,
    megabytes,
    pretty_time_diff,
)
from .resources import find_node, local_node_id

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient

NODE_HELP = """
Usage: yurt node <subcommand> [options] [args]

  This command groups subcommands for interacting with nodes. Nodes in Nomad are
  agent's that can run submitted workloads.

  List and examine the nodes in the cluster:

      $ yurt node status

  Mark a node as ineligible for running workloads, and migrate its work away:

      $ yurt node drain -enable <node_id>

Subcommands:
    drain          Toggle drain mode on a given node
    eligibility    Toggle scheduling eligibility for a given node
    status         Display status information about nodes
"""

STATUS_HELP = """
Usage: yurt node status [options] <node>

  Display status information about a given node. The list of nodes returned
  includes only nodes which jobs may be scheduled to, and includes status and
  other high-level information.

  If a node ID is passed, information for that specific node will be displayed,
  including resource usage statistics. If no node ID's are passed, then a
  short-hand list of all nodes will be displayed. The -self flag is useful to
  quickly access the status of the local node.

{general}

Node Status Options:

  -self
    Query the status of the local node.

  -stats
    Display detailed resource usage statistics.

  -allocs
    Display a count of running allocations for each node.

  -short
    Display short output. Used only when a single node is being
    queried, and drops verbose output about node allocations.

  -verbose
    Display full information.

  -quiet
    Display only node IDs.

  -json
    Output the node in its JSON format.

  -t
    Format and display node using a Go template.
"""


@command
def status(args: list[str]) -> int:
    flags = FlagSet("node status", STATUS_HELP).bool("self").bool("stats").bool("allocs").bool("short")
    flags.bool("verbose").bool("quiet").bool("json").string("t").bool("os")
    opts = flags.parse(args)
    if len(opts.args) > 1:
        raise flags.usage_error("This command takes either one or no arguments")
    client = flags.client(opts)
    if not opts.args and not opts.self:
        return _list(client, opts)
    node_id = opts.args[0] if opts.args else local_node_id(client)
    stub = find_node(client, node_id, "Error querying node info", missing="No node(s) with prefix {} found",
                     verbose_matches=opts.verbose)
    with failing("Error querying node info"):
        node = client.node(stub["ID"]).data
    if opts.json or opts.t:
        from .job_status import _print_data

        return _print_data(opts, node)
    NodeStatus(client, node, verbose=opts.verbose, stats=opts.stats).show(opts.short)
    return 0


def _list(client: ApiClient, opts: object) -> int:
    if opts.quiet and (opts.verbose or opts.json):  # type: ignore[attr-defined]
        raise CommandError("-quiet cannot be used with -verbose or -json")
    with failing("Error querying node status"):
        nodes = client.nodes()
    if opts.json or opts.t:  # type: ignore[attr-defined]
        from .job_status import _print_data

        return _print_data(opts, nodes)
    if not nodes:
        out("No nodes registered")
        return 0
    if opts.quiet:  # type: ignore[attr-defined]
        out("\n".join(n["ID"] for n in nodes))
        return 0
    verbose, with_allocs = opts.verbose, opts.allocs  # type: ignore[attr-defined]
    header = "ID|DC|Name|Class|" + ("Address|Version|" if verbose else "") + "Drain|Eligibility|Status"
    rows = [header + ("|Running Allocs" if with_allocs else "")]
    for n in nodes:
        row = f"{limit(n['ID'], FULL_ID if verbose else SHORT_ID)}|{n.get('Datacenter', '')}|{n.get('Name', '')}|"
        row += f"{n.get('NodeClass', '')}|"
        if verbose:
            row += f"{n.get('Address', '')}|{n.get('Version', '')}|"
        row += f"{str(bool(n.get('Drain'))).lower()}|{n.get('SchedulingEligibility', '')}|{n.get('Status', '')}"
        if with_allocs:
            with failing("Error querying node allocations"):
                running = [a for a in client.node_allocations(n["ID"]).data if a.get("ClientStatus") == "running"]
            row += f"|{len(running)}"
        rows.append(row)
    out(format_list(rows))
    return 0


def format_drain(node: dict) -> str:
    strategy = node.get("DrainStrategy")
    if not strategy:
        return str(bool(node.get("Drain"))).lower()
    text = "true"
    if (strategy.get("Deadline") or 0) < 0:
        text += "; force drain"
    elif not format_time(strategy.get("ForceDeadline")):
        text += "; no deadline"
    else:
        text += f"; {format_time(strategy['ForceDeadline'])} deadline"
    if strategy.get("IgnoreSystemJobs"):
        text += "; ignoring system jobs"
    return text


def format_alloc_list(allocs: list[dict], verbose: bool) -> str:
    """Nomad's formatAllocList (full allocations, version from the embedded job)."""
    if not allocs:
        return "No allocations placed"
    length = FULL_ID if verbose else SHORT_ID
    if verbose:
        rows = ["ID|Eval ID|Node ID|Task Group|Version|Desired|Status|Created|Modified"]
    else:
        rows = ["ID|Node ID|Task Group|Version|Desired|Status|Created|Modified"]
    for a in allocs:
        version = (a.get("Job") or {}).get("Version", a.get("JobVersion", 0))
        ids = [limit(a["ID"], length)] + ([limit(a.get("EvalID"), length)] if verbose else [])
        ids.append(limit(a.get("NodeID"), length))
        created, modified = a.get("CreateTime"), a.get("ModifyTime")
        when = [format_time(created), format_time(modified)] if verbose else [
            pretty_time_diff(created), pretty_time_diff(modified)]
        rows.append("|".join([*ids, a.get("TaskGroup", ""), str(version), a.get("DesiredStatus", ""),
                              a.get("ClientStatus", ""), *when]))
    return format_list(rows)


class NodeStatus:
    """One node's detail: header, drivers, events, resources, allocations and (verbose) attributes."""

    def __init__(self, client: ApiClient, node: dict, *, verbose: bool, stats: bool) -> None:
        self.client = client
        self.node = node
        self.verbose = verbose
        self.stats = stats

    def show(self, short: bool) -> None:
        from orchestrator.api.client import ApiError

        node = self.node
        with failing("Error querying node allocations"):
            allocs = self.client.node_allocations(node["ID"]).data
        running = [a for a in allocs if a.get("ClientStatus") == "running"]
        rows = [f"ID|{node['ID']}", f"Name|{node.get('Name', '')}", f"Class|{node.get('NodeClass', '')}",
                f"DC|{node.get('Datacenter', '')}", f"Drain|{format_drain(node)}",
                f"Eligibility|{node.get('SchedulingEligibility', '')}", f"Status|{node.get('Status', '')}",
                f"CSI Controllers|{','.join(sorted(node.get('CSIControllerPlugins') or {}))}",
                f"CSI Drivers|{','.join(sorted(node.get('CSINodePlugins') or {}))}"]
        volumes = f"Host Volumes|{','.join(sorted(node.get('HostVolumes') or {}))}"
        if short:
            out(format_kv([*rows, volumes, "CSI Volumes|", f"Drivers|{','.join(self._drivers())}"]))
            self._allocations(allocs)
            return
        host = None
        try:
            host = self.client.node_stats(node["ID"])
        except ApiError as exc:
            out("")
            from .flags import err

            err(f"error fetching node stats: {exc}")
        if host:
            rows.append(f"Uptime|{duration(int(host.get('Uptime', 0)) * 1_000_000_000)}")
        if not self.verbose:
            rows += [volumes, "CSI Volumes|", f"Driver Status| {','.join(self._healthy_drivers())}"]
        out(format_kv(rows))
        if self.verbose:
            self._driver_table()
        self._events()
        self._resources(running, host)
        self._allocations(allocs)

    def _drivers(self) -> list[str]:
        attrs = self.node.get("Attributes") or {}
        return sorted(k.split(".")[1] for k, v in attrs.items() if k.count(".") == 1 and k.startswith("driver.")
                      and v == "1")

    def _healthy_drivers(self) -> list[str]:
        names = []
        for name, info in (self.node.get("Drivers") or {}).items():
            if info.get("Detected"):
                names.append(name if info.get("Healthy") else f"{name} (unhealthy)")
        return sorted(names)

    def _driver_table(self) -> None:
        volumes = self.node.get("HostVolumes") or {}
        if volumes:
            out("\nHost Volumes")
            out(format_list(["Name|ReadOnly|Source", *(f"{n}|{str(bool(v.get('ReadOnly'))).lower()}|{v.get('Path')}"
                                                       for n, v in sorted(volumes.items()))]))
        out("\nDrivers")
        rows = ["Driver|Detected|Healthy|Message|Time"]
        for name, info in sorted((self.node.get("Drivers") or {}).items()):
            rows.append(f"{name}|{str(bool(info.get('Detected'))).lower()}|{str(bool(info.get('Healthy'))).lower()}|"
                        f"{info.get('HealthDescription', '')}|{format_time(info.get('UpdateTime'))}")
        out(format_list(rows))

    def _events(self) -> None:
        out("\nNode Events")
        rows = ["Time|Subsystem|Message" + ("|Details" if self.verbose else "")]
        for event in reversed(self.node.get("Events") or []):
            details = event.get("Details") or {}
            subsystem = f"Driver: {details['driver']}" if details.get("driver") else event.get("Subsystem", "")
            row = f"{format_time(event.get('Timestamp'))}|{subsystem}|{event.get('Message', '')}"
            if self.verbose:
                row += "|" + ", ".join(f"{k}: {v}" for k, v in sorted(details.items()))
            rows.append(row)
        out(format_list(rows))

    def _totals(self) -> tuple[int, int, int]:
        """Allocatable CPU (MHz), memory and disk (MB): the node's resources less what it reserves."""
        legacy, reserved = self.node.get("Resources"), self.node.get("Reserved") or {}
        if legacy:
            return (legacy.get("CPU", 0) - reserved.get("CPU", 0), legacy.get("MemoryMB", 0)
                    - reserved.get("MemoryMB", 0), legacy.get("DiskMB", 0) - reserved.get("DiskMB", 0))
        res = self.node.get("NodeResources") or {}
        return ((res.get("Cpu") or {}).get("CpuShares", 0), (res.get("Memory") or {}).get("MemoryMB", 0),
                (res.get("Disk") or {}).get("DiskMB", 0))

    def _resources(self, running: list[dict], host: dict | None) -> None:
        from orchestrator.api.client import ApiError

        cpu_total, mem_total, disk_total = self._totals()
        cpu = sum((a.get("Resources") or {}).get("CPU", 0) for a in running)
        mem = sum((a.get("Resources") or {}).get("MemoryMB", 0) for a in running)
        disk = sum((a.get("Resources") or {}).get("DiskMB", 0) for a in running)
        out("\nAllocated Resources")
        out(format_list(["CPU|Memory|Disk", f"{cpu}/{cpu_total} MHz|{megabytes(mem)}/{megabytes(mem_total)}|"
                                            f"{megabytes(disk)}/{megabytes(disk_total)}"]))
        try:
            usage = [self.client.allocation_stats(a["ID"]).get("ResourceUsage") or {} for a in running]
        except ApiError:
            usage = None
        if usage is not None:
            ticks = sum((u.get("CpuStats") or {}).get("TotalTicks", 0) for u in usage)
            used = sum((u.get("MemoryStats") or {}).get("Usage") or (u.get("MemoryStats") or {}).get("RSS", 0)
                       for u in usage)
            from .format import ibytes

            out("\nAllocation Resource Utilization")
            out(format_list(["CPU|Memory", f"{int(ticks)}/{cpu_total} MHz|{ibytes(used)}/{megabytes(mem_total)}"]))
        if host is None:
            out("")
            from .flags import err

            err("error fetching node stats: actual resource usage not present")
            return
        self._host_resources(host)

    def _host_resources(self, host: dict) -> None:
        from .format import ibytes

        device = (self.node.get("Attributes") or {}).get("unique.storage.volume", "")
        disk = next((d for d in host.get("DiskStats") or [] if d.get("Device") == device), None)
        memory = host.get("Memory") or {}
        cpu = f"{int(host.get('CPUTicksConsumed', 0))}/{(self.node.get('Resources') or {}).get('CPU', 0)} MHz"
        mem = f"{ibytes(memory.get('Used', 0))}/{ibytes(memory.get('Total', 0))}"
        disk_text = f"{ibytes(disk.get('Used', 0))}/{ibytes(disk.get('Size', 0))}" if disk else f"({device})"
        out("\nHost Resource Utilization")
        out(format_list(["CPU|Memory|Disk", f"{cpu}|{mem}|{disk_text}"]))
        if self.stats:
            self._host_stats(host)

    def _host_stats(self, host: dict) -> None:
        """-stats: per-CPU, memory and per-disk figures from the client's host stats."""
        from .format import ibytes

        out("\nCPU Stats")
        cpus = host.get("CPU") or []
        for i, cpu in enumerate(cpus):
            out(format_kv([f"CPU|{cpu.get('CPU', '')}", f"User|{cpu.get('User', 0):,.2f}%",
                           f"System|{cpu.get('System', 0):,.2f}%", f"Idle|{cpu.get('Idle', 0):,.2f}%"]))
            if i + 1 < len(cpus):
                out("")
        memory = host.get("Memory") or {}
        out("\nMemory Stats")
        out(format_kv([f"{k}|{ibytes(memory.get(k, 0))}" for k in ("Total", "Available", "Used", "Free")]))
        out("\nDisk Stats")
        disks = host.get("DiskStats") or []
        for i, disk in enumerate(disks):
            out(format_kv([f"Device|{disk.get('Device', '')}", f"MountPoint|{disk.get('Mountpoint', '')}",
                           f"Size|{ibytes(disk.get('Size', 0))}", f"Used|{ibytes(disk.get('Used', 0))}",
                           f"Available|{ibytes(disk.get('Available', 0))}",
                           f"Used Percent|{disk.get('UsedPercent', 0):,.2f}%",
                           f"Inodes Percent|{disk.get('InodesUsedPercent', 0):,.2f}%"]))
            if i + 1 < len(disks):
                out("")

    def _allocations(self, allocs: list[dict]) -> None:
        out("\nAllocations")
        out(format_alloc_list(allocs, self.verbose))
        if not self.verbose:
            return
        attrs = self.node.get("Attributes") or {}
        out("\nAttributes")
        out(format_kv([f"{k}|{attrs[k]}" for k in sorted(attrs) if k]))
        meta = self.node.get("Meta") or {}
        out("\nMeta")
        out(format_kv([f"{k}|{meta[k]}" for k in sorted(meta) if k]))


main = group("node", NODE_HELP, {
    "status": "orchestrator.cli.node:status",
    "drain": "orchestrator.cli.node_drain:drain",
    "eligibility": "orchestrator.cli.node_drain:eligibility",
})

