"""`/v1/job/:id` and everything under it: read, register, stop, versions, allocations, plan, dispatch, scale..."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from orchestrator.agent.handle import QueryMeta
from orchestrator.rpc import methods
from orchestrator.scheduler.jobdiff import diff_to_api, job_diff
from orchestrator.state import ALLOCS, DEPLOYMENTS, EVALS, JOB_SUMMARY, JOB_VERSIONS, JOBS, StateReader

from .jobs import REGISTER_RESPONSE, job_for_request, register
from .query import (
    AGENT,
    bad_request,
    blocking_read,
    invalid_method,
    json_body,
    meta_fields,
    not_found,
    options,
    parse_bool,
    shaped,
    typed,
    write_response,
)
from .views import (
    ZERO_TIME,
    alloc_list_stub,
    deployment_view,
    eval_view,
    job_summary_view,
    job_view,
    scale_status_view,
)

routes = web.RouteTableDef()

JobHandler = Callable[[web.Request, str], Awaitable[web.Response]]

DEREGISTER_RESPONSE = {"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": 0, "VolumeEvalID": "",
                       "VolumeEvalIndex": 0, "Index": 0, "LastContact": 0, "KnownLeader": False}
PLAN_RESPONSE = {"Annotations": None, "FailedTGAllocs": None, "JobModifyIndex": 0, "CreatedEvals": None,
                 "Diff": None, "NextPeriodicLaunch": ZERO_TIME, "Warnings": "", "Index": 0}
DISPATCH_RESPONSE = {"DispatchedJobID": "", "EvalID": "", "EvalCreateIndex": 0, "JobCreateIndex": 0, "Index": 0}
PERIODIC_FORCE_RESPONSE = {"EvalID": "", "EvalCreateIndex": 0, "Index": 0}


def _namespace(request: web.Request) -> str:
    return options(request).namespace


async def _rpc(request: web.Request, method: str, args: dict[str, Any]) -> Any:
    return await request.app[AGENT].rpc(method, args)


# -- reads -----------------------------------------------------------------------------------------------


async def get_job(request: web.Request, job_id: str) -> web.Response:
    namespace = _namespace(request)

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> dict[str, Any]:
        job = reader.job_by_id(namespace, job_id)
        if job is None:
            raise not_found("job not found")
        return job_view(job)

    return await blocking_read(request, (JOBS,), compute)


async def versions(request: web.Request, job_id: str) -> web.Response:
    namespace = _namespace(request)
    with_diffs = parse_bool(request, "diffs")

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> dict[str, Any]:
        found = reader.job_versions(namespace, job_id)  # newest first
        if not found:
            raise not_found("job versions not found")
        diffs = None
        if with_diffs:
            # As Nomad: one diff per version but the oldest, each from the version before it.
            diffs = [diff_to_api(job_diff(older, newer)) for newer, older in itertools.pairwise(found)] or None
        return {"Versions": [job_view(j) for j in found], "Diffs": diffs, **meta_fields(index, meta)}

    return await blocking_read(request, (JOB_VERSIONS,), compute)


async def allocations(request: web.Request, job_id: str) -> web.Response:
    namespace = _namespace(request)
    include_old = parse_bool(request, "all")

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> list[dict[str, Any]]:
        allocs = reader.allocs_by_job(namespace, job_id, any_create_index=include_old)
        return [alloc_list_stub(a) for a in sorted(allocs, key=lambda a: a.id)]

    return await blocking_read(request, (ALLOCS,), compute)


async def evaluations(request: web.Request, job_id: str) -> web.Response:
    namespace = _namespace(request)

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> list[dict[str, Any]]:
        return [eval_view(e) for e in sorted(reader.evals_by_job(namespace, job_id), key=lambda e: e.id)]

    return await blocking_read(request, (EVALS,), compute)


def _job_deployments(reader: StateReader, namespace: str, job_id: str, include_old: bool) -> list[Any]:
    """A job's deployments, newest first; only those of the job registered now unless `include_old`."""
    found = reader.deployments_by_job(namespace, job_id)
    job = reader.job_by_id(namespace, job_id)
    if not include_old and job is not None:
        found = [d for d in found if d.job_create_index == job.create_index]
    return sorted(found, key=lambda d: d.create_index, reverse=True)


async def deployments(request: web.Request, job_id: str) -> web.Response:
    namespace = _namespace(request)
    include_old = parse_bool(request, "all")

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> list[dict[str, Any]]:
        return [deployment_view(d) for d in _job_deployments(reader, namespace, job_id, include_old)]

    return await blocking_read(request, (DEPLOYMENTS,), compute)


async def latest_deployment(request: web.Request, job_id: str) -> web.Response:
    namespace = _namespace(request)

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> dict[str, Any] | None:
        found = _job_deployments(reader, namespace, job_id, False)
        return deployment_view(found[0]) if found else None

    return await blocking_read(request, (DEPLOYMENTS,), compute)


async def summary(request: web.Request, job_id: str) -> web.Response:
    namespace = _namespace(request)

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> dict[str, Any] | None:
        found = reader.job_summary(namespace, job_id)
        if found is None:
            raise not_found("job not found")
        return job_summary_view(found)

    return await blocking_read(request, (JOB_SUMMARY,), compute)


async def scale_status(request: web.Request, job_id: str) -> web.Response:
    namespace = _namespace(request)

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> dict[str, Any]:
        job = reader.job_by_id(namespace, job_id)
        if job is None:
            raise not_found("job not found")
        return scale_status_view(job, reader.allocs_by_job(namespace, job_id, any_create_index=False))

    return await blocking_read(request, (JOBS, ALLOCS), compute)


# -- writes ----------------------------------------------------------------------------------------------


async def deregister(request: web.Request, job_id: str) -> web.Response:
    args = {"Namespace": _namespace(request), "JobID": job_id, "Purge": parse_bool(request, "purge"),
            "Global": parse_bool(request, "global")}
    result = await _rpc(request, methods.JOB_DEREGISTER, args)
    return write_response(request, shaped(result, DEREGISTER_RESPONSE))


async def update(request: web.Request, job_id: str) -> web.Response:
    return await register(request, job_id)


def _check_job_id(body: dict[str, Any], job_id: str, go_struct: str) -> None:
    given = typed(body, "JobID", (str,), f"{go_struct}.JobID", "string", "")
    if given and given != job_id:
        raise bad_request("Job ID does not match")


async def plan(request: web.Request, job_id: str) -> web.Response:
    body = await json_body(request, "api.JobPlanRequest")
    raw = body.get("Job")
    if not isinstance(raw, dict):
        raise bad_request("Job must be specified")
    if not raw.get("ID"):
        raise bad_request("Job must have a valid ID")
    if raw["ID"] != job_id:
        raise bad_request("Job ID does not match")
    args = {"Job": job_for_request(request, raw, job_id), "Diff": bool(body.get("Diff")),
            "PolicyOverride": bool(body.get("PolicyOverride"))}
    result = await _rpc(request, methods.JOB_PLAN, args)
    return write_response(request, shaped(result, PLAN_RESPONSE, keep_extra=True))


async def evaluate(request: web.Request, job_id: str) -> web.Response:
    body = await json_body(request, "api.JobEvaluateRequest", optional=True)
    _check_job_id(body, job_id, "JobEvaluateRequest")
    eval_options = body.get("EvalOptions") if isinstance(body.get("EvalOptions"), dict) else {}
    args = {"Namespace": _namespace(request), "JobID": job_id,
            "EvalOptions": {"ForceReschedule": bool(eval_options.get("ForceReschedule"))}}
    result = await _rpc(request, methods.JOB_EVALUATE, args)
    return write_response(request, shaped(result, REGISTER_RESPONSE))


async def dispatch(request: web.Request, job_id: str) -> web.Response:
    body = await json_body(request, "api.JobDispatchRequest", optional=True)
    _check_job_id(body, job_id, "JobDispatchRequest")
    args = {"Namespace": _namespace(request), "JobID": job_id,
            "Payload": typed(body, "Payload", (str,), "JobDispatchRequest.Payload", "[]uint8", ""),
            "Meta": typed(body, "Meta", (dict,), "JobDispatchRequest.Meta", "map[string]string", {})}
    result = await _rpc(request, methods.JOB_DISPATCH, args)
    return write_response(request, shaped(result, DISPATCH_RESPONSE))


async def periodic_force(request: web.Request, job_id: str) -> web.Response:
    result = await _rpc(request, methods.JOB_PERIODIC_FORCE, {"Namespace": _namespace(request), "JobID": job_id})
    return write_response(request, shaped(result, PERIODIC_FORCE_RESPONSE))


async def revert(request: web.Request, job_id: str) -> web.Response:
    body = await json_body(request, "api.JobRevertRequest")
    _check_job_id(body, job_id, "JobRevertRequest")
    args: dict[str, Any] = {
        "Namespace": _namespace(request), "JobID": job_id,
        "JobVersion": typed(body, "JobVersion", (int,), "JobRevertRequest.JobVersion", "uint64", 0)}
    prior = typed(body, "EnforcePriorVersion", (int,), "JobRevertRequest.EnforcePriorVersion", "uint64")
    if prior is not None:
        args["EnforcePriorVersion"] = prior
    result = await _rpc(request, methods.JOB_REVERT, args)
    return write_response(request, shaped(result, REGISTER_RESPONSE))


async def stable(request: web.Request, job_id: str) -> web.Response:
    body = await json_body(request, "api.JobStabilityRequest")
    _check_job_id(body, job_id, "JobStabilityRequest")
    args = {"Namespace": _namespace(request), "JobID": job_id,
            "JobVersion": typed(body, "JobVersion", (int,), "JobStabilityRequest.JobVersion", "uint64", 0),
            "Stable": typed(body, "Stable", (bool,), "JobStabilityRequest.Stable", "bool", False)}
    result = await _rpc(request, methods.JOB_STABLE, args)
    return write_response(request, shaped(result, {"Index": 0}))


async def scale(request: web.Request, job_id: str) -> web.Response:
    body = await json_body(request, "api.ScalingRequest")
    target = typed(body, "Target", (dict,), "ScalingRequest.Target", "map[string]string", {})
    if target.get("Job") and target["Job"] != job_id:
        raise bad_request("job ID in payload did not match URL")
    if not target.get("Group"):
        raise bad_request("missing task group name")
    args = {"Namespace": _namespace(request), "JobID": job_id, "Group": target["Group"],
            "Count": typed(body, "Count", (int,), "ScalingRequest.Count", "int64"),
            "Message": body.get("Message") or "", "Error": bool(body.get("Error")), "Meta": body.get("Meta")}
    result = await _rpc(request, methods.JOB_SCALE, args)
    return write_response(request, shaped(result, REGISTER_RESPONSE))


# -- dispatch by suffix, as Nomad's jobSpecificRequest --------------------------------------------------

_READ = ("GET", "HEAD")
_WRITE = ("PUT", "POST")

# Suffix -> {method: handler}. Job IDs may hold "/" (dispatched and periodic children), so the ID is
# whatever precedes a known suffix, and the whole rest when none matches (read, update or stop the job).
SUFFIXES: tuple[tuple[str, dict[str, JobHandler]], ...] = (
    ("/evaluate", dict.fromkeys(_WRITE, evaluate)),
    ("/allocations", dict.fromkeys(_READ, allocations)),
    ("/evaluations", dict.fromkeys(_READ, evaluations)),
    ("/periodic/force", dict.fromkeys(_WRITE, periodic_force)),
    ("/plan", dict.fromkeys(_WRITE, plan)),
    ("/summary", dict.fromkeys(_READ, summary)),
    ("/dispatch", dict.fromkeys(_WRITE, dispatch)),
    ("/versions", dict.fromkeys(_READ, versions)),
    ("/revert", dict.fromkeys(_WRITE, revert)),
    ("/deployments", dict.fromkeys(_READ, deployments)),
    ("/deployment", dict.fromkeys(_READ, latest_deployment)),
    ("/stable", dict.fromkeys(_WRITE, stable)),
    ("/scale", {**dict.fromkeys(_READ, scale_status), **dict.fromkeys(_WRITE, scale)}),
)
CRUD: dict[str, JobHandler] = {**dict.fromkeys(_READ, get_job), **dict.fromkeys(_WRITE, update),
                               "DELETE": deregister}


@routes.route("*", "/v1/job/{rest:.+}")
async def job_specific(request: web.Request) -> web.Response:
    rest = request.match_info["rest"]
    for suffix, handlers in SUFFIXES:
        if rest.endswith(suffix) and len(rest) > len(suffix):
            handler = handlers.get(request.method)
            if handler is None:
                raise invalid_method()
            return await handler(request, rest[: -len(suffix)])
    handler = CRUD.get(request.method)
    if handler is None:
        raise invalid_method()
    return await handler(request, rest)
