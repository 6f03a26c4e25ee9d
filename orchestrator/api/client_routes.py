"""`/v1/client/*`: the local client's allocation files and logs, resource usage, and task restarts and signals."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from aiohttp import web

from orchestrator.agent.handle import AgentHandle, LocalAlloc
from orchestrator.structs import Node

from . import client_fs, client_stats
from .query import (
    AGENT,
    INVALID_METHOD,
    NOT_FOUND_PAGE,
    ApiError,
    bad_request,
    dumps,
    json_body,
    json_response,
    not_found,
    parse_bool,
    typed,
)
from .stream import STREAMS

routes = web.RouteTableDef()

NO_CLIENT = "no client agent"
HEARTBEAT = 1.0  # Nomad's streamHeartbeatRate: `{}` frames on an idle framed stream
TASK_NOT_RUNNING = "Task not running"
# Readings of process groups and of the host's CPUs, kept between requests so that percentages cover the
# time between two of them. Process ids are the host's, so one set serves every app in the process.
_SAMPLES = client_stats.Samples()


# -- what every route needs ---------------------------------------------------------------------------------


def _client(request: web.Request) -> tuple[AgentHandle, Node]:
    """The agent and its client's node; 501 when the agent runs no client (a server-only agent, or an API
    test fake that has none of the client methods)."""
    agent = request.app[AGENT]
    node_of = getattr(agent, "client_node", None)
    node = node_of() if node_of is not None else None
    if node is None:
        raise ApiError(501, NO_CLIENT)
    return agent, node


def _local(request: web.Request) -> LocalAlloc:
    agent, _ = _client(request)
    alloc_id = request.match_info["alloc_id"]
    local = agent.local_alloc(alloc_id)
    if local is None:
        # Nomad's agents forward a request for an allocation of another node to that node's client (through
        # the servers when need be). yurt has no client RPC yet: only allocations this agent runs are served.
        raise not_found(f'Unknown allocation "{alloc_id}"')
    return local


def _alloc_dir(local: LocalAlloc) -> Path:
    if local.dir is None:
        raise not_found(f'allocation "{local.id}" has no directory on this client yet')
    return local.dir


def _go_int(request: web.Request, name: str, what: str, default: int | None = None) -> int:
    """An integer query parameter, or 400 with Nomad's wording around strconv's error."""
    value = request.query.get(name, "")
    if value == "" and default is not None:
        return default
    try:
        return int(value)
    except ValueError:
        raise bad_request(f'{what}: strconv.ParseInt: parsing "{value}": invalid syntax') from None


def _required_path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise bad_request("must provide a file name")
    return path


async def _stream(request: web.Request, frames: AsyncGenerator[client_fs.Frame | None, None], *,
                  plain: bool) -> web.StreamResponse:
    """Write frames as Nomad does: plain, the bytes alone; otherwise one JSON StreamFrame per line, and `{}`
    after HEARTBEAT seconds of nothing. Ends with the frames, or as soon as the caller has gone."""
    content_type = "text/plain; charset=utf-8" if plain else "application/json"
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    task = asyncio.current_task()
    request.app[STREAMS].add(task)
    last = time.monotonic()
    try:
        async for frame in frames:
            # A follower with nothing to send would never notice a caller that hung up: look at the socket.
            if request.transport is None or request.transport.is_closing():
                return response
            if frame is None:
                if not plain and time.monotonic() - last >= HEARTBEAT:
                    await response.write(b"{}\n")
                    last = time.monotonic()
                continue
            if plain:
                if frame.data:
                    await response.write(frame.data)
            else:
                await response.write((dumps(frame.encode()) + "\n").encode())
            last = time.monotonic()
    except ConnectionResetError:
        return response
    finally:
        request.app[STREAMS].discard(task)
        await frames.aclose()
    await response.write_eof()
    return response


# -- file system ------------------------------------------------------------------------------------------


@routes.get("/v1/client/fs/logs/{alloc_id}")
async def fs_logs(request: web.Request) -> web.StreamResponse:
    _client(request)
    task = request.query.get("task", "")
    if not task:
        raise bad_request("must provide task name")
    kind = request.query.get("type", "")
    if kind not in ("stdout", "stderr"):
        raise bad_request("must provide log type (stdout/stderr)")
    follow = parse_bool(request, "follow")
    plain = parse_bool(request, "plain")
    offset = max(0, _go_int(request, "offset", "failed to parse offset field to integer", 0))
    origin = request.query.get("origin") or "start"
    if origin not in ("start", "end"):
        raise bad_request("origin must be start or end")
    local = _local(request)
    state = local.tasks.get(task)
    if state is None:
        raise bad_request(f'task group "{local.task_group}" does not have task with name "{task}"')
    if not state.started:
        raise not_found(f'task "{task}" not started yet. No logs available')
    log_dir = _alloc_dir(local) / "alloc" / "logs"
    if not client_fs.has_logs(log_dir, task, kind):
        raise not_found(f'log entry for task "{task}" and log type "{kind}" not found')
    frames = client_fs.read_logs(log_dir, task, kind, origin=origin, offset=offset, follow=follow)
    return await _stream(request, frames, plain=plain)


@routes.get("/v1/client/fs/ls/{alloc_id}")
async def fs_ls(request: web.Request) -> web.Response:
    _client(request)
    path = request.query.get("path") or "/"
    alloc_dir = _alloc_dir(_local(request))
    return json_response(request, client_fs.list_dir(alloc_dir, path))


@routes.get("/v1/client/fs/stat/{alloc_id}")
async def fs_stat(request: web.Request) -> web.Response:
    _client(request)
    path = _required_path(request)
    alloc_dir = _alloc_dir(_local(request))
    return json_response(request, client_fs.stat_file(alloc_dir, path))


@routes.get("/v1/client/fs/cat/{alloc_id}")
async def fs_cat(request: web.Request) -> web.StreamResponse:
    _client(request)
    path = _required_path(request)
    fd, size = client_fs.open_regular(_alloc_dir(_local(request)), path)
    return await _send_range(request, fd, 0, size)


@routes.get("/v1/client/fs/readat/{alloc_id}")
async def fs_readat(request: web.Request) -> web.StreamResponse:
    _client(request)
    path = _required_path(request)
    offset = _go_int(request, "offset", "error parsing offset")
    limit = _go_int(request, "limit", "error parsing limit")
    if offset < 0:
        raise bad_request("offset must not be negative")
    fd, size = client_fs.open_regular(_alloc_dir(_local(request)), path)
    # A negative limit (Nomad's CLI sends -1 to tail a file) reads to the end of the file.
    return await _send_range(request, fd, offset, limit if limit >= 0 else max(0, size - offset))


async def _send_range(request: web.Request, fd: int, offset: int, limit: int) -> web.StreamResponse:
    """`limit` bytes of an open file from `offset` (fewer at its end), as plain bytes; closes `fd`."""
    try:
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        end = offset + limit
        while offset < end:
            data = os.pread(fd, min(client_fs.CHUNK, end - offset), offset)
            if not data:
                break
            offset += len(data)
            await response.write(data)
        await response.write_eof()
        return response
    finally:
        os.close(fd)


@routes.get("/v1/client/fs/stream/{alloc_id}")
async def fs_stream(request: web.Request) -> web.StreamResponse:
    _client(request)
    path = _required_path(request)
    follow = parse_bool(request, "follow", default=True)
    offset = max(0, _go_int(request, "offset", "failed to parse offset field to integer", 0))
    origin = request.query.get("origin") or "start"
    if origin not in ("start", "end"):
        raise bad_request("origin must be start or end")
    alloc_dir = _alloc_dir(_local(request))
    target = client_fs.resolve(alloc_dir, path)
    fd, size = client_fs.open_regular(alloc_dir, path)
    position = min(offset, size) if origin == "start" else max(0, size - offset)
    relative = str(target.relative_to(alloc_dir.resolve()))
    try:
        frames = client_fs.read_file(fd, relative, position=position, follow=follow, path=target)
        return await _stream(request, frames, plain=False)  # closes `frames` before returning
    finally:
        os.close(fd)


# -- resource usage ---------------------------------------------------------------------------------------


@routes.get("/v1/client/allocation/{alloc_id}/stats")
async def allocation_stats(request: web.Request) -> web.Response:
    _, node = _client(request)
    local = _local(request)
    groups = {name: t.pid for name, t in local.tasks.items() if t.state == "running" and t.pid}
    # Scanning /proc for the groups' processes blocks: off the event loop.
    usages = await asyncio.to_thread(lambda: {name: client_stats.group_usage(pid) for name, pid in groups.items()})
    per_core = client_stats.ticks_per_core(node.attributes)
    now = time.time_ns()
    tasks: dict[str, Any] = {}
    for name, usage in usages.items():
        if usage is not None:
            task_usage = client_stats.task_usage(groups[name], usage, _SAMPLES, per_core)
            # Nomad lists each process of the task; yurt measures the task's process group as one, under its
            # leader's pid (which the scenario suites use to kill -9 a task).
            tasks[name] = {"ResourceUsage": task_usage, "Timestamp": now, "Pids": {str(groups[name]): task_usage}}
    # Tasks without a process of ours (docker containers) report through their driver; the engine's stats call
    # blocks for about a second, so off the event loop and all at once.
    agent = request.app[AGENT]
    drivers = getattr(agent, "drivers", None)
    others = {name: t.handle for name, t in local.tasks.items()
              if t.state == "running" and not t.pid and t.handle and name not in tasks}
    if others and drivers is not None and hasattr(drivers, "stats"):
        found = await asyncio.gather(*(asyncio.to_thread(drivers.stats, h, per_core) for h in others.values()))
        pids = await asyncio.gather(*(asyncio.to_thread(drivers.main_pid, h) for h in others.values()))
        for name, usage, pid in zip(others, found, pids, strict=True):
            if usage is not None:
                # The container's init on the host, measured as the whole container (Nomad lists each process).
                tasks[name] = {"ResourceUsage": usage, "Timestamp": now, "Pids": {str(pid): usage} if pid else None}
    client_stats.forget_gone(_SAMPLES, set(groups.values()))
    total = client_stats.sum_usage([t["ResourceUsage"] for t in tasks.values()])
    return json_response(request, {"ResourceUsage": total, "Tasks": tasks, "Timestamp": now})


@routes.get("/v1/client/stats")
async def host_stats(request: web.Request) -> web.Response:
    agent, node = _client(request)
    node_id = request.query.get("node_id", "")
    if node_id and node_id != node.id:
        # Another node's client would answer in Nomad (forwarded by the servers); yurt has no client RPC yet.
        raise not_found(f'Unknown node "{node_id}"')
    per_core = client_stats.ticks_per_core(node.attributes)
    previous, reading = _SAMPLES.host, client_stats.cpu_reading()
    age = reading[0] - previous[0] if previous is not None else -1.0
    if client_stats.MIN_HOST_INTERVAL <= age <= 60.0 and previous is not None:
        _SAMPLES.host_cpus = client_stats.cpu_percentages(previous[1], reading[1], per_core)
        _SAMPLES.host = reading
    elif not (0 <= age < client_stats.MIN_HOST_INTERVAL and _SAMPLES.host_cpus is not None):
        # No reading to compare with, or a stale one: CPU percentages over the next tenth of a second. (A
        # reading too young to compare with leaves the last percentages standing.)
        await asyncio.sleep(0.1)
        later = client_stats.cpu_reading()
        _SAMPLES.host_cpus = client_stats.cpu_percentages(reading[1], later[1], per_core)
        _SAMPLES.host = later
    cpus, consumed = _SAMPLES.host_cpus or ([], 0.0)
    alloc_root = agent.self_info().get("config", {}).get("Client", {}).get("AllocDir", "")
    stats = await asyncio.to_thread(client_stats.host_stats, cpus, consumed, alloc_root)
    return json_response(request, stats)


# -- restart and signal -----------------------------------------------------------------------------------


def _running_targets(local: LocalAlloc, task: str) -> list[str]:
    """The task named (it must exist and run), or every running task of the allocation."""
    if task:
        state = local.tasks.get(task)
        if state is None:
            raise bad_request(f"Could not find task runner for task: {task}")
        if state.state != "running":
            raise bad_request(TASK_NOT_RUNNING)
        return [task]
    running = sorted(name for name, t in local.tasks.items() if t.state == "running")
    if not running:
        raise bad_request(TASK_NOT_RUNNING)
    return running


def _signal_number(name: str) -> int:
    """A signal by name ("SIGUSR1" or "usr1"); no name is SIGINT, as Nomad's drivers default to."""
    if not name:
        return int(signal.SIGINT)
    upper = name.upper()
    try:
        return int(signal.Signals[upper if upper.startswith("SIG") else f"SIG{upper}"])
    except KeyError:
        raise bad_request(f'unknown signal "{name}"') from None


@routes.put("/v1/client/allocation/{alloc_id}/restart")
@routes.post("/v1/client/allocation/{alloc_id}/restart")
async def allocation_restart(request: web.Request) -> web.Response:
    """Restart one task, or every running one, as Nomad's client does: stopped with its kill signal and
    timeout and started again at once, without using an attempt of its restart policy. Agents without the
    client's restart hook (API fakes) fall back to SIGKILL and the restart policy."""
    agent, _ = _client(request)
    body = await json_body(request, "struct { TaskName string }", optional=True)
    task = typed(body, "TaskName", (str,), ".TaskName", "string", "")
    local = _local(request)
    targets = _running_targets(local, task)
    restart = getattr(agent, "restart_task", None)
    if restart is not None:
        if not restart(local.id, task):
            raise bad_request("Failed to restart: no client to restart the task")
        return json_response(request, {"Index": 0})
    for name in targets:
        if not agent.signal_task(local.id, name, signal.SIGKILL):
            raise bad_request(f"Failed to restart task {name}: its driver cannot restart it")
    return json_response(request, {"Index": 0})


@routes.put("/v1/client/allocation/{alloc_id}/signal")
@routes.post("/v1/client/allocation/{alloc_id}/signal")
async def allocation_signal(request: web.Request) -> web.Response:
    agent, _ = _client(request)
    body = await json_body(request, "structs.AllocSignalRequest", optional=True)
    task = typed(body, "Task", (str,), "AllocSignalRequest.Task", "string", "")
    sig = _signal_number(typed(body, "Signal", (str,), "AllocSignalRequest.Signal", "string", ""))
    local = _local(request)
    for name in _running_targets(local, task):
        if not agent.signal_task(local.id, name, sig):
            raise bad_request(f"Failed to signal task: {name}, err: its driver cannot signal it")
    return json_response(request, {"Index": 0})


@routes.get("/v1/client/gc")
@routes.put("/v1/client/gc")
async def client_gc(request: web.Request) -> web.Response:
    """Collect every terminal allocation of this client now (their directories go), as `nomad system gc`
    does for clients; running allocations are never touched."""
    agent, _ = _client(request)
    collect = getattr(agent, "collect_garbage", None)
    if collect is None or not collect(""):
        raise ApiError(501, "no client agent")
    return json_response(request, None)


@routes.get("/v1/client/allocation/{alloc_id}/gc")
@routes.put("/v1/client/allocation/{alloc_id}/gc")
async def allocation_gc(request: web.Request) -> web.Response:
    agent, _ = _client(request)
    local = _local(request)
    if any(t.state != "dead" for t in local.tasks.values()):
        raise bad_request(f"Allocation {local.id} is not terminal")
    collect = getattr(agent, "collect_garbage", None)
    if collect is None or not collect(local.id):
        raise ApiError(501, "no client agent")
    return json_response(request, None)


# -- everything else under /v1/client -----------------------------------------------------------------------

_SERVED = re.compile(r"^/v1/client/(fs/(logs|ls|stat|cat|readat|stream)/[^/]+|allocation/[^/]+/"
                     r"(stats|restart|signal|gc)|stats|gc)$")
_NOT_YET = re.compile(r"^/v1/client/metadata$")


@routes.route("*", "/v1/client/{tail:.*}")
async def other_client_routes(request: web.Request) -> web.Response:
    # Registered after the routes above: reached by their paths only with another method.
    _client(request)
    if _SERVED.match(request.path):
        raise ApiError(405, INVALID_METHOD)
    if _NOT_YET.match(request.path):
        raise ApiError(501, f"{request.path} is not implemented by yurt yet")
    raise ApiError(404, NOT_FOUND_PAGE)
