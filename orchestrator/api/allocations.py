"""`/v1/allocations`, `/v1/allocation/:id`, `/v1/allocation/:id/stop`, and the evaluations routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from orchestrator.agent.handle import QueryMeta
from orchestrator.rpc import methods
from orchestrator.state import ALLOCS, EVALS, StateReader

from .query import AGENT, blocking_read, not_found, options, parse_bool, shaped, write_response
from .views import alloc_list_stub, alloc_view, eval_view

routes = web.RouteTableDef()


@routes.get("/v1/allocations")
async def list_allocations(request: web.Request) -> web.Response:
    opts = options(request)
    resources = parse_bool(request, "resources")

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> list[dict[str, Any]]:
        return [alloc_list_stub(a, resources=resources) for a in reader.allocs(opts.prefix)
                if opts.in_namespace(a.namespace)]

    return await blocking_read(request, (ALLOCS,), compute)


@routes.get("/v1/allocation/{alloc_id}")
async def get_allocation(request: web.Request) -> web.Response:
    alloc_id = request.match_info["alloc_id"]

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> dict[str, Any]:
        alloc = reader.alloc_by_id(alloc_id)
        if alloc is None:
            raise not_found("alloc not found")
        return alloc_view(alloc)

    return await blocking_read(request, (ALLOCS,), compute)


@routes.put("/v1/allocation/{alloc_id}/stop")
@routes.post("/v1/allocation/{alloc_id}/stop")
async def stop_allocation(request: web.Request) -> web.Response:
    result = await request.app[AGENT].rpc(methods.ALLOC_STOP, {"AllocID": request.match_info["alloc_id"]})
    return write_response(request, shaped(result, {"EvalID": "", "Index": 0}))


# -- evaluations -----------------------------------------------------------------------------------------


@routes.get("/v1/evaluations")
async def list_evaluations(request: web.Request) -> web.Response:
    opts = options(request)
    # Filters newer Nomad versions take (`yurt eval list -job -status` sends them).
    job_id = request.query.get("job", "")
    status = request.query.get("status", "")

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> list[dict[str, Any]]:
        return [eval_view(e) for e in reader.evals(opts.prefix)
                if opts.in_namespace(e.namespace) and (not job_id or e.job_id == job_id)
                and (not status or e.status == status)]

    return await blocking_read(request, (EVALS,), compute)


@routes.get("/v1/evaluation/{eval_id}")
async def get_evaluation(request: web.Request) -> web.Response:
    eval_id = request.match_info["eval_id"]

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> dict[str, Any]:
        evaluation = reader.eval_by_id(eval_id)
        if evaluation is None:
            raise not_found("eval not found")
        return eval_view(evaluation)

    return await blocking_read(request, (EVALS,), compute)


@routes.get("/v1/evaluation/{eval_id}/allocations")
async def evaluation_allocations(request: web.Request) -> web.Response:
    eval_id = request.match_info["eval_id"]

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> list[dict[str, Any]]:
        return [alloc_list_stub(a) for a in sorted(reader.allocs_by_eval(eval_id), key=lambda a: a.id)]

    return await blocking_read(request, (ALLOCS,), compute)
