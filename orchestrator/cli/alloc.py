"""`yurt alloc status|stop|restart|signal|logs` (and the `yurt logs` alias); `alloc fs` is in alloc_fs."""

from __future__ import annotations

import queue
import random
import signal as signals
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .flags import CommandError, FlagSet, command, err, failing, group, out, q
from .format import (
    FULL_ID,
    SHORT_ID,
    duration,
    format_kv,
    format_list,
    format_list_with_spaces,
    format_task_time,
    format_time,
    ibytes,
    limit,
    megabytes,
    pretty_time_diff,
)
from .resources import find_alloc

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient

ALLOC_HELP = """
Usage: yurt alloc <subcommand> [options] [args]

  This command groups subcommands for interacting with allocations. Users can
  inspect the status, examine the filesystem or logs of an allocation.

  Examine an allocations status:

      $ yurt alloc status <alloc-id>

  Inspect the allocation's directory:

      $ yurt alloc fs <alloc-id> <path>

  Stream a task's logs:

      $ yurt alloc logs -f <alloc-id> <task>

Subcommands:
    fs         Inspect the contents of an allocation directory
    logs       Streams the logs of a task.
    restart    Restart a running allocation
    signal     Signal a running allocation
    status     Display allocation status information and metadata
    stop       Stop and reschedule a running allocation
"""

STATUS_HELP = """
Usage: yurt alloc status [options] <allocation>

  Display information about existing allocations and its tasks. This command can
  be used to inspect the current status of an allocation, including its running
  status, metadata, and verbose failure messages reported by internal
  subsystems.

{general}

Alloc Status Options:

  -short
    Display short output. Shows only the most recent task event.

  -stats
    Display detailed resource usage statistics.

  -verbose
    Show full information.

  -json
    Output the allocation in its JSON format.

  -t
    Format and display allocation using a Go template.
"""

STOP_HELP = """
Usage: yurt alloc stop [options] <allocation>

  Stop an existing allocation. This command is used to signal a specific alloc
  to shut down. When the allocation has been shut down, it will then be
  rescheduled.

{general}

Stop Specific Options:

  -detach
    Return immediately instead of entering monitor mode. After the
    stop command is submitted, a new evaluation ID is printed to the
    screen, which can be used to examine the rescheduling evaluation using the
    eval-status command.

  -verbose
    Show full information.
"""

RESTART_HELP = """
Usage: yurt alloc restart [options] <allocation> <task>

  Restart an existing allocation. This command is used to restart a specific alloc
  and its tasks. If no task is provided then all of the allocation's tasks will
  be restarted.

{general}

Restart Specific Options:

  -verbose
    Show full information.
"""

SIGNAL_HELP = """
Usage: yurt alloc signal [options] <allocation> <task>

  Signal an existing allocation. This command is used to signal a specific alloc
  and its subtasks. If no task is provided then all of the allocations subtasks
  will receive the signal.

{general}

Signal Specific Options:

  -s
    Specify the signal that the selected tasks should receive.

  -verbose
    Show full information.
"""

LOGS_HELP = """
Usage: yurt alloc logs [options] <allocation> <task>
Alias: yurt logs

  Streams the stdout/stderr of the given allocation and task.

{general}

Logs Specific Options:

  -stderr
    Display stderr logs.

  -verbose
    Show full information.

  -task <task-name>
    Sets the task to view the logs.

  -job <job-id>
    Use a random allocation from the specified job ID.

  -f
    Causes the output to not stop when the end of the logs are reached, but
    rather to wait for additional output.

  -tail
    Show the logs contents with offsets relative to the end of the logs. If no
    offset is given, -n is defaulted to 10.

  -n
    Sets the tail location in best-efforted number of lines relative to the end
    of the logs.

  -c
    Sets the tail location in number of bytes relative to the end of the logs.
"""

def event_message(event: dict) -> str:
    """Nomad's buildDisplayMessage, used when the agent sent no DisplayMessage."""
    kind = event.get("Type", "")
    simple = {"Started": "Task started by client", "Received": "Task received by client",
              "Downloading Artifacts": "Client is downloading artifacts",
              "Leader Task Dead": "Leader Task in Group dead"}
    if kind in simple:
        return simple[kind]
    if kind == "Terminated":
        parts = [f"Exit Code: {event.get('ExitCode', 0)}"]
        if event.get("Signal"):
            parts.append(f"Signal: {event['Signal']}")
        if event.get("Message"):
            parts.append(f"Exit Message: {q(event['Message'])}")
        return ", ".join(parts)
    if kind == "Restarting":
        text = f"Task restarting in {duration(event.get('StartDelay'))}"
        reason = event.get("RestartReason", "")
        return f"{reason} - {text}" if reason and reason != "Restart within policy" else text
    fallbacks = {"Setup Failure": ("SetupError", "Task setup failed"),
                 "Driver Failure": ("DriverError", "Failed to start task"),
                 "Failed Validation": ("ValidationError", "Validation of task failed"),
                 "Failed Artifact Download": ("DownloadError", "Failed to download artifacts"),
                 "Killed": ("KillError", "Task successfully killed"),
                 "Not Restarting": ("RestartReason", "Task exceeded restart policy"),
                 "Restart Signaled": ("RestartReason", "Task signaled to restart"),
                 "Driver": ("DriverMessage", "")}
    if kind in fallbacks:
        key, default = fallbacks[kind]
        return event.get(key) or default
    if kind == "Killing":
        if event.get("KillReason"):
            return f"Killing task: {event['KillReason']}"
        if event.get("KillTimeout"):
            return f"Sent interrupt. Waiting {duration(event['KillTimeout'])} before force killing"
        return "Sent interrupt"
    if kind == "Sibling Task Failed":
        return f"Task's sibling {q(event['FailedSibling'])} failed" if event.get("FailedSibling") else \
            "Task's sibling failed"
    return event.get("Message", "")


@command
def status(args: list[str]) -> int:
    flags = FlagSet("alloc status", STATUS_HELP).bool("short").bool("stats").bool("verbose").bool("json").string("t")
    opts = flags.parse(args)
    client = flags.client(opts)
    if not opts.args and (opts.json or opts.t):
        from .job_status import _print_data

        with failing("Error querying allocations"):
            return _print_data(opts, client.allocations())
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one of the following argument conditions:",
                                " * A single <allocation>", " * No arguments, with output format specified")
    try:
        stub = find_alloc(client, opts.args[0], verbose=opts.verbose)
    except CommandError as exc:
        if not str(exc).startswith("Prefix matched multiple allocations"):
            raise
        # Nomad's alloc status (alone among the alloc commands) lists the matches on stdout and succeeds.
        out(str(exc))
        return 0
    with failing("Error querying allocation"):
        alloc = client.allocation(stub["ID"])
    if opts.json or opts.t:
        from .job_status import _print_data

        return _print_data(opts, alloc)
    length = FULL_ID if opts.verbose else SHORT_ID
    if opts.short:
        out(format_kv([f"ID|{alloc['ID']}", f"Name|{alloc.get('Name', '')}",
                       f"Created|{pretty_time_diff(alloc.get('CreateTime'))}",
                       f"Modified|{pretty_time_diff(alloc.get('ModifyTime'))}"]))
        _short_tasks(alloc)
        return 0
    out(_basic_info(alloc, length, opts.verbose))
    from orchestrator.api.client import ApiError

    stats = None
    try:
        stats = client.allocation_stats(alloc["ID"])
    except ApiError as exc:
        out("")
        err(f"Couldn't retrieve stats: {exc}")
    for task in sorted(alloc.get("TaskStates") or {}):
        state = alloc["TaskStates"][task]
        out(f"\nTask {q(task)} is {q(state.get('State'))}")
        _task_resources(alloc, task, stats)
        usage = (((stats or {}).get("Tasks") or {}).get(task) or {}).get("ResourceUsage")
        if opts.stats and usage:
            out("")
            _verbose_usage(usage)
        out("")
        _task_events(state)
    if opts.verbose:
        from .monitor import format_alloc_metrics

        out("\nPlacement Metrics")
        out(format_alloc_metrics(alloc.get("Metrics") or {}, "  ", scores=True))
    return 0


def _basic_info(alloc: dict, length: int, verbose: bool) -> str:
    when = format_time if verbose else pretty_time_diff
    rows = [f"ID|{alloc['ID']}", f"Eval ID|{limit(alloc.get('EvalID'), length)}", f"Name|{alloc.get('Name', '')}",
            f"Node ID|{limit(alloc.get('NodeID'), length)}", f"Node Name|{alloc.get('NodeName', '')}",
            f"Job ID|{alloc.get('JobID', '')}",
            f"Job Version|{(alloc.get('Job') or {}).get('Version', alloc.get('JobVersion', 0))}",
            f"Client Status|{alloc.get('ClientStatus', '')}",
            f"Client Description|{alloc.get('ClientDescription', '')}",
            f"Desired Status|{alloc.get('DesiredStatus', '')}",
            f"Desired Description|{alloc.get('DesiredDescription', '')}",
            f"Created|{when(alloc.get('CreateTime'))}", f"Modified|{when(alloc.get('ModifyTime'))}"]
    if alloc.get("DeploymentID"):
        health = (alloc.get("DeploymentStatus") or {}).get("Healthy")
        rows += [f"Deployment ID|{limit(alloc['DeploymentID'], length)}",
                 f"Deployment Health|{'unset' if health is None else ('healthy' if health else 'unhealthy')}"]
        if (alloc.get("DeploymentStatus") or {}).get("Canary"):
            rows.append("Canary|true")
    if alloc.get("NextAllocation"):
        rows.append(f"Replacement Alloc ID|{limit(alloc['NextAllocation'], length)}")
    if verbose:
        metrics = alloc.get("Metrics") or {}
        rows += [f"Evaluated Nodes|{metrics.get('NodesEvaluated', 0)}",
                 f"Filtered Nodes|{metrics.get('NodesFiltered', 0)}",
                 f"Exhausted Nodes|{metrics.get('NodesExhausted', 0)}",
                 f"Allocation Time|{duration(metrics.get('AllocationTime'))}",
                 f"Failures|{metrics.get('CoalescedFailures', 0)}"]
    return format_kv(rows)


def _task_resources(alloc: dict, task: str, stats: dict | None) -> None:
    resources = (alloc.get("TaskResources") or {}).get(task)
    if resources is None:
        return
    out("Task Resources")
    addresses = [f"{p.get('Label')}: {n.get('IP')}:{p.get('Value')}" for n in resources.get("Networks") or []
                 for p in (n.get("DynamicPorts") or []) + (n.get("ReservedPorts") or [])]
    cpu, memory = str(resources.get("CPU", 0)), megabytes(resources.get("MemoryMB"))
    usage = (((stats or {}).get("Tasks") or {}).get(task) or {}).get("ResourceUsage") or {}
    if usage.get("CpuStats") is not None:
        cpu = f"{int(usage['CpuStats'].get('TotalTicks', 0))}/{cpu}"
    if usage.get("MemoryStats") is not None:
        memory = f"{ibytes(usage['MemoryStats'].get('RSS', 0))}/{memory}"
    disk = megabytes((alloc.get("Resources") or {}).get("DiskMB"))
    rows = ["CPU|Memory|Disk|Addresses", f"{cpu} MHz|{memory}|{disk}|{addresses[0] if addresses else ''}"]
    rows += [f"||||{address}" for address in addresses[1:]]
    out(format_list_with_spaces(rows))


_MEMORY_MEASURES = {"RSS": "RSS", "Cache": "Cache", "Swap": "Swap", "Usage": "Usage", "Max Usage": "MaxUsage",
                    "Kernel Usage": "KernelUsage", "Kernel Max Usage": "KernelMaxUsage"}
_CPU_PERCENTS = {"Percent": "Percent", "User Mode": "UserMode", "System Mode": "SystemMode"}
_CPU_COUNTS = {"Throttled Periods": "ThrottledPeriods", "Throttled Time": "ThrottledTime"}


def _verbose_usage(usage: dict) -> None:
    """-stats: every memory and CPU figure the task driver measured, as Nomad's alloc status prints them."""
    memory, cpu = usage.get("MemoryStats") or {}, usage.get("CpuStats") or {}
    measured = sorted(m for m in memory.get("Measured") or [] if m in _MEMORY_MEASURES)
    if measured:
        out("Memory Stats")
        out(format_list(["|".join(measured), "|".join(ibytes(memory.get(_MEMORY_MEASURES[m], 0)) for m in measured)]))
        out("")
    measured = sorted(m for m in cpu.get("Measured") or [] if m in _CPU_PERCENTS or m in _CPU_COUNTS)
    if measured:
        values = [f"{cpu.get(_CPU_PERCENTS[m], 0):.2f}%" if m in _CPU_PERCENTS else str(cpu.get(_CPU_COUNTS[m], 0))
                  for m in measured]
        out("CPU Stats")
        out(format_list(["|".join(measured), "|".join(values)]))


def _task_events(state: dict) -> None:
    out("Task Events:")
    out(format_kv([f"Started At|{format_task_time(state.get('StartedAt'))}",
                   f"Finished At|{format_task_time(state.get('FinishedAt'))}",
                   f"Total Restarts|{state.get('Restarts', 0)}",
                   f"Last Restart|{format_task_time(state.get('LastRestart'))}"]))
    out("")
    out("Recent Events:")
    rows = ["Time|Type|Description"]
    for event in reversed(state.get("Events") or []):
        rows.append(f"{format_time(event.get('Time'))}|{event.get('Type', '')}|"
                    f"{event.get('DisplayMessage') or event_message(event)}")
    out(format_list(rows))


def _short_tasks(alloc: dict) -> None:
    rows = ["Name|State|Last Event|Time|Lifecycle"]
    for task in sorted(alloc.get("TaskStates") or {}):
        state = alloc["TaskStates"][task]
        events = state.get("Events") or []
        last = events[-1] if events else {}
        rows.append(f"{task}|{state.get('State', '')}|{last.get('Type', '')}|{format_time(last.get('Time'))}|main")
    out("\nTasks")
    out(format_list(rows))


@command
def stop(args: list[str]) -> int:
    flags = FlagSet("alloc stop", STOP_HELP).bool("detach").bool("verbose").bool("no-shutdown-delay")
    opts = flags.parse(args)
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument: <alloc-id>")
    client = flags.client(opts)
    stub = find_alloc(client, opts.args[0])
    with failing("Error stopping allocation"):
        response = client.stop_allocation(stub["ID"])
    if opts.detach:
        out(response.get("EvalID", ""))
        return 0
    from .monitor import EvalMonitor

    return EvalMonitor(client, FULL_ID if opts.verbose else SHORT_ID).monitor(response["EvalID"])


def _tasks(client: ApiClient, stub: dict) -> list[str]:
    """The allocation's task names: from its task states, else from its job's task group."""
    if stub.get("TaskStates"):
        return sorted(stub["TaskStates"])
    with failing("Error querying allocation"):
        alloc = client.allocation(stub["ID"])
    if alloc.get("TaskStates"):
        return sorted(alloc["TaskStates"])
    groups = (alloc.get("Job") or {}).get("TaskGroups") or []
    group = next((g for g in groups if g.get("Name") == alloc.get("TaskGroup")), {})
    return sorted(t["Name"] for t in group.get("Tasks") or [])


def _task_of(client: ApiClient, stub: dict, task: str) -> str:
    tasks = _tasks(client, stub)
    if task and task not in tasks:
        raise CommandError(f"Could not find task named: {task}, found:\n" + "\n".join(f"* {t}" for t in tasks))
    return task


@command
def restart(args: list[str]) -> int:
    flags = FlagSet("alloc restart", RESTART_HELP).bool("verbose").string("task")
    opts = flags.parse(args)
    if not 1 <= len(opts.args) <= 2:
        raise flags.usage_error("This command takes one or two arguments: <alloc-id> <task-name>")
    client = flags.client(opts)
    stub = find_alloc(client, opts.args[0])
    task = _task_of(client, stub, opts.task or (opts.args[1] if len(opts.args) == 2 else ""))
    from orchestrator.api.client import ApiError

    try:
        client.restart_allocation(stub["ID"], task)
    except ApiError as exc:
        raise CommandError(f"Failed to restart allocation:\n\n{exc}") from exc
    return 0


@command
def signal(args: list[str]) -> int:
    flags = FlagSet("alloc signal", SIGNAL_HELP).bool("verbose").string("s").string("task")
    opts = flags.parse(args)
    if not 1 <= len(opts.args) <= 2:
        raise flags.usage_error("This command takes up to two arguments: <alloc-id> <task>")
    client = flags.client(opts)
    stub = find_alloc(client, opts.args[0])
    task = _task_of(client, stub, opts.task or (opts.args[1] if len(opts.args) == 2 else ""))
    with failing("Error signalling allocation"):
        client.signal_allocation(stub["ID"], task, opts.s)
    return 0


DEFAULT_TAIL_LINES = 10
BYTES_TO_LINES = 120  # Nomad's guess of a line's length: -n N asks for the last N * 120 bytes
LINE_LIMIT_WAIT = 1.0  # seconds Nomad's LineLimitReader buffers, at most, before cutting the tail


@command
def logs(args: list[str]) -> int:
    flags = FlagSet("alloc logs", LOGS_HELP).bool("stderr").bool("verbose").string("task").bool("f").bool("tail")
    flags.int("n", -1).int("c", -1).bool("job")
    opts = flags.parse(args)
    if not opts.args:
        raise flags.usage_error("A job ID is required" if opts.job else "An allocation ID is required")
    if len(opts.args) > 2:
        raise flags.usage_error("This command takes one or two arguments")
    client = flags.client(opts)
    alloc_id = _random_job_alloc(client, opts.args[0]) if opts.job else opts.args[0]
    stub = find_alloc(client, alloc_id, verbose=opts.verbose)
    tasks = _tasks(client, stub)
    if opts.task:
        task = _task_of(client, stub, opts.task)
    elif len(opts.args) == 2:
        task = opts.args[1]
        if not task:
            raise CommandError("Task name required")
    elif len(tasks) == 1:
        task = tasks[0]
    else:
        shown = limit(stub["ID"], FULL_ID if opts.verbose else SHORT_ID)
        raise CommandError(f"Allocation {q(shown)} is running the following tasks:\n"
                           + "".join(f"  * {t}\n" for t in tasks) + "\nPlease specify the task.")
    origin, offset, lines = "start", 0, -1
    if opts.tail:
        if opts.n != -1 and opts.c != -1:
            raise CommandError("Both -n and -c set")
        # As Nomad: -c is bytes from the end; otherwise -n (10 by default) lines, best effort, out of the last
        # 120 bytes per line. Without -tail, -n and -c are ignored.
        lines = opts.n if opts.n != -1 else (DEFAULT_TAIL_LINES if opts.c == -1 else -1)
        origin, offset = "end", opts.c if opts.c != -1 else lines * BYTES_TO_LINES
    chunks = client.alloc_logs(stub["ID"], task, stderr=opts.stderr, follow=opts.f, origin=origin, offset=offset)
    context = "Error tailing file" if opts.tail else "Error reading file"
    previous = signals.signal(signals.SIGTERM, _interrupted) if opts.f else None
    try:
        with failing(context):
            _copy_logs(chunks, lines, lines * BYTES_TO_LINES)
    except KeyboardInterrupt:
        return 0  # Nomad stops following on an interrupt or SIGTERM, successfully
    finally:
        if previous is not None:
            signals.signal(signals.SIGTERM, previous)
    return 0


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _random_job_alloc(client: ApiClient, job_id: str) -> str:
    """-job: a random running allocation of the job, else its newest one (Nomad's getRandomJobAllocID)."""
    with failing("Error fetching allocations"):
        allocs = client.job_allocations(job_id)
    if not allocs:
        raise CommandError(f"Error fetching allocations: job {q(job_id)} doesn't exist or it has no allocations")
    running = [a for a in allocs if a.get("ClientStatus") == "running"]
    if running:
        return random.choice(running)["ID"]
    return max(allocs, key=lambda a: a.get("CreateIndex", 0))["ID"]


def _write(data: bytes) -> None:
    if data:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def _last_lines(data: bytes, lines: int) -> bytes:
    return b"".join(data.splitlines(keepends=True)[-lines:]) if lines else b""


def _copy_logs(chunks: Iterator[bytes], lines: int, search_limit: int) -> None:
    """Log bytes to stdout as they come. With `lines`, as Nomad's LineLimitReader: what arrives first (up to
    `search_limit` bytes, or for LINE_LIMIT_WAIT seconds) is cut to its last `lines` lines, the rest follows."""
    if lines < 0:
        for chunk in chunks:
            _write(chunk)
        return
    # The stream is read by a thread so that the wait for the first bytes can end on time while following.
    arrived: queue.Queue[bytes | BaseException | None] = queue.Queue()

    def pump() -> None:
        try:
            for chunk in chunks:
                arrived.put(chunk)
        except BaseException as exc:  # handed to the main thread, which reports it
            arrived.put(exc)
        else:
            arrived.put(None)

    threading.Thread(target=pump, name="logs", daemon=True).start()
    deadline = time.monotonic() + LINE_LIMIT_WAIT
    head = bytearray()
    done = False
    while len(head) < search_limit:
        try:
            item = arrived.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if isinstance(item, BaseException):
            raise item
        if item is None:
            done = True
            break
        head += item
    _write(_last_lines(bytes(head), lines))
    while not done:
        item = arrived.get()
        if isinstance(item, BaseException):
            raise item
        if item is None:
            return
        _write(item)


main = group("alloc", ALLOC_HELP, {
    "status": "orchestrator.cli.alloc:status",
    "stop": "orchestrator.cli.alloc:stop",
    "restart": "orchestrator.cli.alloc:restart",
    "signal": "orchestrator.cli.alloc:signal",
    "logs": "orchestrator.cli.alloc:logs",
    "fs": "orchestrator.cli.alloc_fs:fs",
})
