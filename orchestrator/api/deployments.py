"""`/v1/deployments`, `/v1/deployment/:id`, its allocations, and promote, fail and pause."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from orchestrator.agent.handle import QueryMeta
from orchestrator.rpc import methods
from orchestrator.state import ALLOCS, DEPLOYMENTS, StateReader

from .query import AGENT, bad_request, blocking_read, json_body, not_found, options, shaped, typed, write_response
from .views import alloc_list_stub, deployment_view

routes = web.RouteTableDef()

# Nomad's DeploymentUpdateResponse, the answer of promote, fail and pause.
UPDATE_RESPONSE = {"EvalID": "", "EvalCreateIndex": 0, "DeploymentModifyIndex": 0, "RevertedJobVersion": None,
                   "Index": 0}


@routes.get("/v1/deployments")
async def list_deployments(request: web.Request) -> web.Response:
    opts = options(request)

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> list[dict[str, Any]]:
        return [deployment_view(d) for d in reader.deployments(opts.prefix) if opts.in_namespace(d.namespace)]

    return await blocking_read(request, (DEPLOYMENTS,), compute)


@routes.get("/v1/deployment/{deployment_id}")
async def get_deployment(request: web.Request) -> web.Response:
    deployment_id = request.match_info["deployment_id"]

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> dict[str, Any]:
        deployment = reader.deployment_by_id(deployment_id)
        if deployment is None:
            raise not_found("deployment not found")
        return deployment_view(deployment)

    return await blocking_read(request, (DEPLOYMENTS,), compute)


@routes.get("/v1/deployment/allocations/{deployment_id}")
async def deployment_allocations(request: web.Request) -> web.Response:
    deployment_id = request.match_info["deployment_id"]

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> list[dict[str, Any]]:
        allocs = reader.allocs_by_deployment(deployment_id)
        return [alloc_list_stub(a) for a in sorted(allocs, key=lambda a: a.id)]

    return await blocking_read(request, (ALLOCS,), compute)


def _check_id(body: dict[str, Any], deployment_id: str, go_struct: str) -> None:
    given = typed(body, "DeploymentID", (str,), f"{go_struct}.DeploymentID", "string", "")
    if given != deployment_id:
        raise bad_request("Deployment ID does not match")


async def _update(request: web.Request, method: str, args: dict[str, Any]) -> web.Response:
    result = await request.app[AGENT].rpc(method, args)
    answer = shaped(result, UPDATE_RESPONSE)
    answer["DeploymentModifyIndex"] = answer["DeploymentModifyIndex"] or answer["Index"]
    return write_response(request, answer)


@routes.put("/v1/deployment/promote/{deployment_id}")
@routes.post("/v1/deployment/promote/{deployment_id}")
async def promote(request: web.Request) -> web.Response:
    deployment_id = request.match_info["deployment_id"]
    body = await json_body(request, "api.DeploymentPromoteRequest")
    _check_id(body, deployment_id, "DeploymentPromoteRequest")
    groups = typed(body, "Groups", (list,), "DeploymentPromoteRequest.Groups", "[]string", [])
    all_groups = typed(body, "All", (bool,), "DeploymentPromoteRequest.All", "bool", False)
    return await _update(request, methods.DEPLOYMENT_PROMOTE,
                         {"DeploymentID": deployment_id, "All": all_groups, "Groups": groups or None})


@routes.put("/v1/deployment/fail/{deployment_id}")
@routes.post("/v1/deployment/fail/{deployment_id}")
async def fail(request: web.Request) -> web.Response:
    # Nomad reads no body here: the ID in the path is the whole request.
    return await _update(request, methods.DEPLOYMENT_FAIL, {"DeploymentID": request.match_info["deployment_id"]})


@routes.put("/v1/deployment/pause/{deployment_id}")
@routes.post("/v1/deployment/pause/{deployment_id}")
async def pause(request: web.Request) -> web.Response:
    deployment_id = request.match_info["deployment_id"]
    body = await json_body(request, "api.DeploymentPauseRequest")
    _check_id(body, deployment_id, "DeploymentPauseRequest")
    paused = typed(body, "Pause", (bool,), "DeploymentPauseRequest.Pause", "bool", False)
    return await _update(request, methods.DEPLOYMENT_PAUSE, {"DeploymentID": deployment_id, "Pause": paused})
