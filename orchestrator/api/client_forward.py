"""Requests for an allocation another agent's client runs (`yurt alloc logs` against a server, say) are
proxied to that client's HTTP API, found through the allocation's node, as Nomad's agents forward them."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from .query import AGENT, ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Client routes about one allocation: its id is the segment after fs/<op>/ or allocation/.
_ALLOC_ROUTE = re.compile(r"^/v1/client/(?:fs/[a-z]+|allocation)/([^/]+)")
_HOP = "X-Yurt-Forwarded"  # set on a forwarded request: never forward twice (no loops between agents)
_PASSED_HEADERS = ("Content-Type", "X-Nomad-Index", "X-Nomad-KnownLeader", "X-Nomad-LastContact")


@web.middleware
async def forward_client_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    match = _ALLOC_ROUTE.match(request.path)
    if match is None or request.headers.get(_HOP):
        return await handler(request)
    agent = request.app[AGENT]
    local_alloc = getattr(agent, "local_alloc", None)
    if local_alloc is not None and getattr(agent, "client_node", lambda: None)() is not None \
            and local_alloc(match.group(1)) is not None:
        return await handler(request)
    address = await _node_address(agent, match.group(1))
    if address is None or address == getattr(agent, "http_address", lambda: "")():
        return await handler(request)  # nobody else to ask: the handler answers (404 / 501)
    return await _proxy(request, address)


async def _node_address(agent: object, alloc_id: str) -> str | None:
    """The HTTP address of the node running `alloc_id` (a full id or a unique prefix), from this agent's state."""
    state_of = getattr(agent, "state", None)
    if state_of is None:
        return None
    try:
        state, _ = await state_of(stale=True)
    except Exception:
        return None
    alloc = state.alloc_by_id(alloc_id)
    if alloc is None:
        return None
    node = state.node_by_id(alloc.node_id)
    return node.http_addr if node is not None and node.http_addr else None


async def _proxy(request: web.Request, address: str) -> web.StreamResponse:
    url = f"http://{address}{request.path_qs}"
    body = await request.read() if request.can_read_body else None
    headers = {_HOP: "1"}
    if request.content_type:
        headers["Content-Type"] = request.content_type
    # No total timeout: `logs -f` streams for as long as the caller listens.
    timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.request(request.method, url, data=body, headers=headers) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for name in _PASSED_HEADERS:
                if name in upstream.headers:
                    response.headers[name] = upstream.headers[name]
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
    except aiohttp.ClientError as exc:
        raise ApiError(500, f"failed to reach the client agent at {address}: {exc}") from exc
