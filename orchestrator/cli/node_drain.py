"""`yurt node drain` (set, unset or watch a drain) and `yurt node eligibility`."""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING

from .flags import CommandError, FlagSet, command, err, failing, out, q
from .format import format_time
from .resources import find_node, local_node_id

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient

DRAIN_HELP = """
Usage: yurt node drain [options] <node>

  Toggles node draining on a specified node. It is required that either
  -enable or -disable is specified, but not both.  The -self flag is useful to
  drain the local node.

{general}

Node Drain Options:

  -disable
    Disable draining for the specified node.

  -enable
    Enable draining for the specified node.

  -deadline <duration>
    Set the deadline by which all allocations must be moved off the node.
    Remaining allocations after the deadline are forced removed from the node.
    If unspecified, a default deadline of one hour is applied.

  -detach
    Return immediately instead of entering monitor mode.

  -monitor
    Enter monitor mode directly without modifying the drain status.

  -force
    Force remove allocations off the node immediately.

  -no-deadline
    No deadline allows the allocations to drain off the node without being force
    stopped after a certain deadline.

  -ignore-system
    Ignore system allows the drain to complete without stopping system job
    allocations. By default system jobs are stopped last.

  -keep-ineligible
    Keep ineligible will maintain the node's scheduling ineligibility even if
    the drain is being disabled. This is useful when an existing drain is being
    cancelled but additional scheduling on the node is not desired.

  -self
    Set the drain status of the local node.

  -yes
    Automatic yes to prompts.
"""

ELIGIBILITY_HELP = """
Usage: yurt node eligibility [options] <node>

  Toggles the nodes scheduling eligibility. When a node is marked as ineligible,
  no new allocations will be placed on it but existing allocations will remain.
  To remove existing allocations, use the node drain command.

  It is required that either -enable or -disable is specified, but not both.
  The -self flag is useful to set the scheduling eligibility of the local node.

{general}

Node Eligibility Options:

  -disable
    Mark the specified node as ineligible for new allocations.

  -enable
    Mark the specified node as eligible for new allocations.

  -self
    Set the eligibility of the local node.
"""

DEFAULT_DEADLINE_NS = 3600 * 1_000_000_000


@command
def drain(args: list[str]) -> int:
    flags = FlagSet("node drain", DRAIN_HELP).bool("enable").bool("disable").string("deadline").bool("detach")
    flags.bool("force").bool("no-deadline").bool("ignore-system").bool("keep-ineligible").bool("self").bool("yes")
    flags.bool("monitor").string("m").strings("meta")
    opts = flags.parse(args)
    if opts.monitor and (opts.enable or opts.disable):
        raise flags.usage_error("The -monitor flag cannot be used with the '-enable' or '-disable' flags")
    if (opts.enable and opts.disable) or (not opts.monitor and not opts.enable and not opts.disable):
        raise flags.usage_error("Either the '-enable' or '-disable' flag must be set, unless using '-monitor'")
    if (opts.self and opts.args) or (not opts.self and len(opts.args) != 1):
        raise flags.usage_error("Node ID must be specified if -self isn't being used")
    if opts.disable and (opts.deadline or opts.force or opts.no_deadline or opts.ignore_system):
        raise flags.usage_error("-disable can't be combined with flags configuring drain strategy")
    if opts.deadline and (opts.force or opts.no_deadline):
        raise flags.usage_error("-deadline can't be combined with -force or -no-deadline")
    if opts.force and opts.no_deadline:
        raise flags.usage_error("-force and -no-deadline are mutually exclusive")
    deadline = _deadline(opts.deadline, force=opts.force, no_deadline=opts.no_deadline)
    client = flags.client(opts)
    node_id = local_node_id(client) if opts.self else opts.args[0]
    stub = find_node(client, node_id, "Error toggling drain mode")
    with failing("Error toggling drain mode"):
        response = client.node(stub["ID"])
    node, index = response.data, response.index
    if opts.monitor:
        if not node.get("DrainStrategy"):
            err("No drain strategy set")
            return 0
        out(f"{format_time(time.time())}: Monitoring node {q(node['ID'])}: Ctrl-C to detach monitoring")
        return monitor_drain(client, node["ID"], index, opts.ignore_system)
    if node_id != node["ID"] and not opts.yes:
        from .job_ops import confirm

        verb = "disable" if opts.disable else "enable"
        confirm(f"Are you sure you want to {verb} drain mode for node {q(node['ID'])}? [y/N]", "Canceling drain toggle")
    spec = {"Deadline": deadline, "IgnoreSystemJobs": opts.ignore_system} if opts.enable else None
    with failing("Error updating drain specification"):
        answer = client.update_drain(node["ID"], spec, mark_eligible=not opts.keep_ineligible) or {}
    if not opts.enable or opts.detach:
        out(f"Node {q(node['ID'])} drain strategy {'set' if opts.enable else 'unset'}")
        return 0
    now = format_time(time.time())
    out(f"{now}: Ctrl-C to stop monitoring: will not cancel the node drain")
    out(f"{now}: Node {q(node['ID'])} drain strategy set")
    return monitor_drain(client, node["ID"], int(answer.get("Index") or answer.get("NodeModifyIndex") or 0),
                         opts.ignore_system)


def _deadline(text: str, *, force: bool, no_deadline: bool) -> int:
    """The drain deadline in nanoseconds: -1s forces, 0 waits forever, default one hour."""
    if force:
        return -1_000_000_000
    if no_deadline:
        return 0
    if not text:
        return DEFAULT_DEADLINE_NS
    from orchestrator.structs.timefmt import parse_duration

    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise CommandError(f"Failed to parse deadline {q(text)}: time: {exc}") from None
    if value <= 0:
        raise CommandError("A positive drain duration must be given")
    return value


def monitor_drain(client: ApiClient, node_id: str, index: int, ignore_system: bool) -> int:
    """Nomad's MonitorDrain: one watcher on the node's drain strategy, one on its allocations, merged."""
    messages: queue.Queue[tuple[str, str] | None] = queue.Queue()
    watchers = [threading.Thread(target=_watch_node, args=(client, node_id, index, messages), daemon=True),
                threading.Thread(target=_watch_allocs, args=(client, node_id, ignore_system, messages), daemon=True)]
    for watcher in watchers:
        watcher.start()
    running = len(watchers)
    while running:
        item = messages.get()
        if item is None:
            running -= 1
            continue
        level, text = item
        line = f"{format_time(time.time())}: {text}"
        if level == "error":
            err(line)
            return 1
        (err if level == "warn" else out)(line)
    return 0


POLL_SECONDS = 1.0


def _blocking(previous: int, current: int, started: float) -> None:
    # An agent that answers at once (no blocking queries) must not be polled in a tight loop.
    if current <= previous and time.monotonic() - started < POLL_SECONDS:
        time.sleep(POLL_SECONDS)


def _watch_node(client: ApiClient, node_id: str, index: int, messages: queue.Queue) -> None:
    from orchestrator.api.client import ApiError

    last = None
    try:
        while True:
            started = time.monotonic()
            try:
                response = client.node(node_id, index=index, wait=300)
            except ApiError as exc:
                messages.put(("error", f"Error monitoring node: {exc}"))
                return
            node = response.data or {}
            strategy = node.get("DrainStrategy")
            if not strategy:
                messages.put(("info", f"Drain complete for node {node_id}"))
                return
            if node.get("Status") == "down":
                messages.put(("warn", f"Node {q(node_id)} down"))
            if last is not None and strategy != last:
                messages.put(("info", f"Node {q(node_id)} drain updated: {strategy}"))
            last = strategy
            _blocking(index, response.index, started)
            index = max(index, response.index)
    finally:
        messages.put(None)


def _watch_allocs(client: ApiClient, node_id: str, ignore_system: bool, messages: queue.Queue) -> None:
    from orchestrator.api.client import ApiError

    known: dict[str, dict] = {}
    index = 0
    try:
        while True:
            started = time.monotonic()
            try:
                response = client.node_allocations(node_id, index=index, wait=300)
            except ApiError as exc:
                messages.put(("error", f"Error monitoring allocations: {exc}"))
                return
            running = 0
            for alloc in response.data:
                before, known[alloc["ID"]] = known.get(alloc["ID"]), alloc
                for message in _alloc_change(before, alloc) if before is not None else ():
                    messages.put(("normal", f"Alloc {q(alloc['ID'])} {message}"))
                job_type = (alloc.get("Job") or {}).get("Type")
                if job_type is None or (ignore_system and job_type == "system"):
                    continue
                running += alloc.get("ClientStatus") in ("pending", "running")
            if running == 0:
                messages.put(("info", f"All allocations on node {q(node_id)} have stopped"))
                return
            _blocking(index, response.index, started)
            index = max(index, response.index)
    finally:
        messages.put(None)


def _should_migrate(alloc: dict) -> bool:
    return bool((alloc.get("DesiredTransition") or {}).get("Migrate"))


def _alloc_change(before: dict, alloc: dict) -> list[str]:
    """What Nomad's drain monitor says of an allocation's change. Every transition is told, also when one
    answer carries several (yurt's drainer marks and stops faster than a blocking query returns)."""
    messages = []
    if _should_migrate(alloc):  # in the order they happen: marked, stopped by the scheduler, ended on the client
        if not _should_migrate(before):
            messages.append("marked for migration")
        if before.get("DesiredStatus") != alloc.get("DesiredStatus") and alloc.get("DesiredStatus") == "stop":
            messages.append("draining")
    if before.get("ClientStatus") != alloc.get("ClientStatus"):
        messages.append(f"status {before.get('ClientStatus')} -> {alloc.get('ClientStatus')}")
    return messages


@command
def eligibility(args: list[str]) -> int:
    flags = FlagSet("node eligibility", ELIGIBILITY_HELP).bool("enable").bool("disable").bool("self")
    opts = flags.parse(args)
    if opts.enable == opts.disable:
        raise flags.usage_error("Either the '-enable' or '-disable' flag must be set")
    if (opts.self and opts.args) or (not opts.self and len(opts.args) != 1):
        raise flags.usage_error("Node ID must be specified if -self isn't being used")
    client = flags.client(opts)
    node_id = local_node_id(client) if opts.self else opts.args[0]
    stub = find_node(client, node_id, "Error updating scheduling eligibility")
    with failing("Error updating scheduling eligibility"):
        client.update_eligibility(stub["ID"], opts.enable)
    state = "eligible" if opts.enable else "ineligible"
    out(f"Node {q(stub['ID'])} scheduling eligibility set: {state} for scheduling")
    return 0
