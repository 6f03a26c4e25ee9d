"""`/v1/nodes` and `/v1/node/:id`: read, allocations, drain, eligibility, evaluate and purge."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from orchestrator.agent.handle import QueryMeta
from orchestrator.rpc import methods
from orchestrator.state import ALLOCS, NODES, StateReader

from .query import (
    AGENT,
    bad_request,
    blocking_read,
    json_body,
    not_found,
    options,
    parse_bool,
    shaped,
    typed,
    write_response,
)
from .views import alloc_view, node_list_stub, node_view

routes = web.RouteTableDef()

# Nomad's NodeDrainUpdateResponse and NodeEligibilityUpdateResponse (the same keys).
DRAIN_RESPONSE = {"NodeModifyIndex": 0, "EvalIDs": None, "EvalCreateIndex": 0, "Index": 0}
# Nomad's NodeUpdateResponse, the answer of evaluate and purge.
UPDATE_RESPONSE = {"HeartbeatTTL": 0, "EvalIDs": None, "EvalCreateIndex": 0, "NodeModifyIndex": 0,
                   "LeaderRPCAddr": "", "NumNodes": 0, "Servers": None, "Index": 0, "LastContact": 0,
                   "KnownLeader": False}


@routes.get("/v1/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    prefix = options(request).prefix
    resources = parse_bool(request, "resources")

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> list[dict[str, Any]]:
        return [node_list_stub(n, resources=resources) for n in reader.nodes(prefix)]

    return await blocking_read(request, (NODES,), compute)


@routes.get("/v1/node/{node_id}")
async def get_node(request: web.Request) -> web.Response:
    node_id = request.match_info["node_id"]

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> dict[str, Any]:
        node = reader.node_by_id(node_id)
        if node is None:
            raise not_found("node not found")
        return node_view(node)

    return await blocking_read(request, (NODES,), compute)


@routes.get("/v1/node/{node_id}/allocations")
async def node_allocations(request: web.Request) -> web.Response:
    node_id = request.match_info["node_id"]

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> list[dict[str, Any]]:
        # Nomad answers whole allocations here, not list stubs: clients and `node status` read their jobs.
        return [alloc_view(a) for a in sorted(reader.allocs_by_node(node_id), key=lambda a: a.id)]

    return await blocking_read(request, (ALLOCS,), compute)


def _node_write_response(result: Any, keys: dict[str, Any]) -> dict[str, Any]:
    answer = shaped(result, keys)
    answer["NodeModifyIndex"] = answer["NodeModifyIndex"] or answer["Index"]
    return answer


@routes.put("/v1/node/{node_id}/drain")
@routes.post("/v1/node/{node_id}/drain")
async def drain(request: web.Request) -> web.Response:
    """{DrainSpec: {Deadline (ns; -1 forces), IgnoreSystemJobs} or null to stop draining, MarkEligible}."""
    node_id = request.match_info["node_id"]
    body = await json_body(request, "api.NodeUpdateDrainRequest")
    spec = typed(body, "DrainSpec", (dict,), "NodeUpdateDrainRequest.DrainSpec", "api.DrainSpec")
    strategy = None
    if spec is not None:
        deadline = typed(spec, "Deadline", (int,), "DrainSpec.Deadline", "time.Duration", 0)
        ignore = typed(spec, "IgnoreSystemJobs", (bool,), "DrainSpec.IgnoreSystemJobs", "bool", False)
        strategy = {"DrainSpec": {"Deadline": deadline, "IgnoreSystemJobs": ignore}}
    args = {"NodeID": node_id, "DrainStrategy": strategy,
            "MarkEligible": typed(body, "MarkEligible", (bool,), "NodeUpdateDrainRequest.MarkEligible", "bool",
                                  False)}
    result = await request.app[AGENT].rpc(methods.NODE_UPDATE_DRAIN, args)
    return write_response(request, _node_write_response(result, DRAIN_RESPONSE))


@routes.put("/v1/node/{node_id}/eligibility")
@routes.post("/v1/node/{node_id}/eligibility")
async def eligibility(request: web.Request) -> web.Response:
    node_id = request.match_info["node_id"]
    body = await json_body(request, "api.NodeUpdateEligibilityRequest")
    value = typed(body, "Eligibility", (str,), "NodeUpdateEligibilityRequest.Eligibility", "string", "")
    if value not in ("eligible", "ineligible"):
        raise bad_request(f'invalid scheduling eligibility "{value}"')
    result = await request.app[AGENT].rpc(methods.NODE_UPDATE_ELIGIBILITY,
                                          {"NodeID": node_id, "Eligibility": value})
    return write_response(request, _node_write_response(result, DRAIN_RESPONSE))


@routes.put("/v1/node/{node_id}/evaluate")
@routes.post("/v1/node/{node_id}/evaluate")
async def evaluate(request: web.Request) -> web.Response:
    result = await request.app[AGENT].rpc(methods.NODE_EVALUATE, {"NodeID": request.match_info["node_id"]})
    return write_response(request, _node_write_response(result, UPDATE_RESPONSE))


@routes.put("/v1/node/{node_id}/purge")
@routes.post("/v1/node/{node_id}/purge")
async def purge(request: web.Request) -> web.Response:
    result = await request.app[AGENT].rpc(methods.NODE_PURGE, {"NodeID": request.match_info["node_id"]})
    return write_response(request, _node_write_response(result, UPDATE_RESPONSE))
