"""Agent and cluster routes: agent, status, regions, operator raft, system gc and search."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from orchestrator.agent.handle import QueryMeta
from orchestrator.rpc import methods
from orchestrator.state import ALLOCS, DEPLOYMENTS, EVALS, JOBS, NODES, StateReader

from .query import (
    AGENT,
    bad_request,
    blocking_read,
    json_body,
    json_response,
    meta_fields,
    options,
    typed,
)
from .views import member_view

routes = web.RouteTableDef()

SEARCH_LIMIT = 20  # Nomad's truncation limit per context
SEARCH_CONTEXTS = ("allocs", "deployments", "evals", "jobs", "nodes")


@routes.get("/v1/agent/self")
async def agent_self(request: web.Request) -> web.Response:
    return json_response(request, request.app[AGENT].self_info())


@routes.get("/v1/agent/members")
async def agent_members(request: web.Request) -> web.Response:
    agent = request.app[AGENT]
    members = [member_view(m.name, m.addr, m.port, m.status, m.tags) for m in agent.members()]
    return json_response(request, {"ServerName": agent.name, "ServerRegion": agent.region,
                                   "ServerDC": agent.datacenter, "Members": members})


@routes.get("/v1/agent/servers")
async def agent_servers(request: web.Request) -> web.Response:
    # A client agent lists the servers it talks to; a server (or a dev agent, whose client talks to its own
    # servers) answers with the Raft peers, which is the same list there.
    return json_response(request, request.app[AGENT].peers())


@routes.put("/v1/agent/join")
@routes.post("/v1/agent/join")
async def agent_join(request: web.Request) -> web.Response:
    addresses = request.query.getall("address", [])
    if not addresses:
        raise bad_request("missing address to join")
    try:
        joined = await request.app[AGENT].join(addresses)
    except Exception as exc:
        # Nomad answers 200 with the error in the body: `server join` prints it.
        return json_response(request, {"num_joined": 0, "error": str(exc)})
    return json_response(request, {"num_joined": joined, "error": ""})


@routes.put("/v1/agent/force-leave")
@routes.post("/v1/agent/force-leave")
async def agent_force_leave(request: web.Request) -> web.Response:
    node = request.query.get("node", "")
    if not node:
        raise bad_request("missing node to force leave")
    await request.app[AGENT].force_leave(node)
    return json_response(request, None)


@routes.get("/v1/agent/health")
async def agent_health(request: web.Request) -> web.Response:
    # A server that answers HTTP is healthy to Nomad even without a leader (`status leader` tells that apart).
    return json_response(request, {"server": {"ok": True, "message": "ok"}})


@routes.get("/v1/status/leader")
async def status_leader(request: web.Request) -> web.Response:
    return json_response(request, request.app[AGENT].leader_address())


@routes.get("/v1/status/peers")
async def status_peers(request: web.Request) -> web.Response:
    return json_response(request, request.app[AGENT].peers())


@routes.get("/v1/regions")
async def regions(request: web.Request) -> web.Response:
    return json_response(request, [request.app[AGENT].region])


@routes.get("/v1/operator/raft/configuration")
async def raft_configuration(request: web.Request) -> web.Response:
    return json_response(request, request.app[AGENT].raft_configuration())


@routes.delete("/v1/operator/raft/peer")
async def raft_remove_peer(request: web.Request) -> web.Response:
    address = request.query.get("address", "")
    peer_id = request.query.get("id", "")
    if not address and not peer_id:
        raise bad_request("Must specify either ?id with the server's ID or ?address with IP:port of peer to remove")
    if address and peer_id:
        raise bad_request("Must specify only one of ?id or ?address")
    args = {"Address": address} if address else {"ID": peer_id}
    await request.app[AGENT].rpc(methods.OPERATOR_RAFT_REMOVE_PEER, args)
    return json_response(request, None)


@routes.put("/v1/system/gc")
async def system_gc(request: web.Request) -> web.Response:
    await request.app[AGENT].rpc(methods.SYSTEM_GC, {})
    return json_response(request, None)


# -- search ----------------------------------------------------------------------------------------------


def _search(reader: StateReader, prefix: str, context: str, in_namespace: Any) -> dict[str, list[str]]:
    """IDs starting with `prefix` per context, each list sorted and at most SEARCH_LIMIT + 1 long."""
    found: dict[str, list[str]] = {}
    wanted = SEARCH_CONTEXTS if context == "all" else (context,)
    for name in wanted:
        if name == "jobs":
            ids = [j.id for j in reader.jobs(None, prefix) if in_namespace(j.namespace)]
        elif name == "nodes":
            ids = [n.id for n in reader.nodes(prefix)]
        elif name == "allocs":
            ids = [a.id for a in reader.allocs(prefix) if in_namespace(a.namespace)]
        elif name == "evals":
            ids = [e.id for e in reader.evals(prefix) if in_namespace(e.namespace)]
        else:
            ids = [d.id for d in reader.deployments(prefix) if in_namespace(d.namespace)]
        found[name] = ids[: SEARCH_LIMIT + 1]
    return found


@routes.put("/v1/search")
@routes.post("/v1/search")
async def search(request: web.Request) -> web.Response:
    """{Prefix, Context}: Nomad's SearchResponse, the IDs the CLI resolves short prefixes with."""
    body = await json_body(request, "api.SearchRequest")
    prefix = typed(body, "Prefix", (str,), "SearchRequest.Prefix", "string", "")
    context = typed(body, "Context", (str,), "SearchRequest.Context", "structs.Context", "all")
    if context not in (*SEARCH_CONTEXTS, "all"):
        raise bad_request(f"context must be one of {[*SEARCH_CONTEXTS, 'all']}; got {context!r}")
    opts = options(request)

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> dict[str, Any]:
        found = _search(reader, prefix, context, opts.in_namespace)
        matches = {name: ids[:SEARCH_LIMIT] for name, ids in found.items()}
        truncations = {name: len(ids) > SEARCH_LIMIT for name, ids in found.items()}
        return {"Matches": matches, "Truncations": truncations, **meta_fields(index, meta)}

    return await blocking_read(request, (JOBS, NODES, ALLOCS, EVALS, DEPLOYMENTS), compute)
