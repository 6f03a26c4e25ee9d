"""`/v1/event/stream`: the agent's events as NDJSON, one `{"Index": N, "Events": [...]}` line per index."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from .query import AGENT, bad_request, dumps, options

routes = web.RouteTableDef()

HEARTBEAT = web.AppKey("stream_heartbeat", float)  # seconds between `{}` lines while nothing happens
STREAMS = web.AppKey("streams", set)  # open stream tasks, cancelled when the app shuts down

_END = object()


def parse_topics(values: list[str]) -> dict[str, list[str]]:
    """`?topic=Job:web&topic=Node` -> {"Job": ["web"], "Node": ["*"]}; no topic at all means every event."""
    topics: dict[str, list[str]] = {}
    for value in values:
        topic, _, key = value.partition(":")
        if not topic:
            raise bad_request(f"Invalid topic format: {value!r}")
        topics.setdefault(topic, []).append(key or "*")
    return topics or {"*": ["*"]}


async def _pump(source: Any, queue: asyncio.Queue[Any]) -> None:
    """Move events from the agent's iterator to a queue, so the writer can wait with a heartbeat timeout
    (waiting on the iterator itself with a timeout would close it)."""
    try:
        async for event in source:
            await queue.put(event)
    finally:
        await queue.put(_END)


def _batches(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive events of one Raft index grouped into Nomad's `{"Index", "Events"}` frames."""
    frames: list[dict[str, Any]] = []
    for event in events:
        if frames and frames[-1]["Index"] == event["Index"]:
            frames[-1]["Events"].append(event)
        else:
            frames.append({"Index": event["Index"], "Events": [event]})
    return frames


@routes.get("/v1/event/stream")
async def event_stream(request: web.Request) -> web.StreamResponse:
    opts = options(request)
    try:
        index = int(request.query.get("index") or 0)
    except ValueError:
        raise bad_request(f"Unable to parse index: {request.query['index']!r}") from None
    topics = parse_topics(request.query.getall("topic", []))
    agent = request.app[AGENT]
    heartbeat = request.app[HEARTBEAT]
    source = agent.events(topics, index)  # before the headers go out, so a failure here is still a plain 500
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    pump = asyncio.create_task(_pump(source, queue))
    request.app[STREAMS].add(asyncio.current_task())
    try:
        while True:
            try:
                first = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                await response.write(b"{}\n")
                continue
            pending = [first]
            while not queue.empty():
                pending.append(queue.get_nowait())
            # Node events have no namespace and reach every subscriber, as in Nomad.
            events = [e for e in pending if e is not _END and (not e["Namespace"] or opts.in_namespace(e["Namespace"]))]
            for frame in _batches(events):
                await response.write((dumps(frame) + "\n").encode())
            if _END in pending:
                break
    except ConnectionResetError:
        return response  # the caller hung up
    finally:
        request.app[STREAMS].discard(asyncio.current_task())
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
    await response.write_eof()
    return response


async def cancel_streams(app: web.Application) -> None:
    """on_shutdown: end open streams now, rather than have the runner wait its shutdown timeout for them."""
    for task in list(app[STREAMS]):
        task.cancel()
