"""`/v1/jobs` (list and register), `/v1/jobs/parse` and `/v1/validate/job`."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from aiohttp import web

from orchestrator.agent.handle import QueryMeta
from orchestrator.jobspec import JobspecError
from orchestrator.rpc import methods
from orchestrator.state import JOB_SUMMARY, JOBS, StateReader
from orchestrator.structs import DecodeError, format_errors, job_from_api, job_to_api, validate_job

from .query import (
    AGENT,
    NO_PATH_TO_REGION,
    ApiError,
    bad_request,
    blocking_read,
    json_body,
    json_response,
    options,
    shaped,
    typed,
    write_response,
)
from .views import job_list_stub

routes = web.RouteTableDef()

# The keys of Nomad's JobRegisterResponse (register, revert, evaluate and scale answer with it).
REGISTER_RESPONSE = {"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": 0, "Warnings": "", "Index": 0,
                     "LastContact": 0, "KnownLeader": False}


@routes.get("/v1/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    opts = options(request)

    def compute(reader: StateReader, meta: QueryMeta, index: int) -> list[dict[str, Any]]:
        jobs = reader.jobs(None if opts.all_namespaces() else opts.namespace, opts.prefix)
        return [job_list_stub(job, reader.job_summary(job.namespace, job.id)) for job in jobs]

    return await blocking_read(request, (JOBS, JOB_SUMMARY), compute)


def job_for_request(request: web.Request, job: Any, name: str = "") -> dict[str, Any]:
    """The body's job checked as Nomad's HTTP layer checks it, with its namespace and region filled in."""
    if job is None:
        raise bad_request("Job must be specified")
    typed({"Job": job}, "Job", (dict,), "JobRegisterRequest.Job", "api.Job")
    job_id = typed(job, "ID", (str,), "Job.ID", "string")
    if job_id is None:
        raise bad_request("Job ID hasn't been provided")
    if name and job_id != name:
        raise bad_request("Job ID does not match name")
    job = dict(job)
    # The job's own namespace and region win; a job without them takes the request's, as Nomad does.
    job["Namespace"] = job.get("Namespace") or options(request).namespace
    region = request.app[AGENT].region
    job["Region"] = job.get("Region") or region
    if job["Region"] != region:
        raise ApiError(500, NO_PATH_TO_REGION)  # Nomad forwards the write to the job's region: there is none
    return job


async def register(request: web.Request, name: str = "") -> web.Response:
    """PUT/POST `/v1/jobs` and `/v1/job/:id`: {Job, EnforceIndex, JobModifyIndex, PolicyOverride...}."""
    body = await json_body(request, "api.JobRegisterRequest")
    job = job_for_request(request, body.get("Job"), name)
    args = {
        "Job": job,
        "EnforceIndex": typed(body, "EnforceIndex", (bool,), "JobRegisterRequest.EnforceIndex", "bool", False),
        "JobModifyIndex": typed(body, "JobModifyIndex", (int,), "JobRegisterRequest.JobModifyIndex", "uint64", 0),
        "PolicyOverride": bool(body.get("PolicyOverride")),
        "PreserveCounts": bool(body.get("PreserveCounts")),
    }
    result = await request.app[AGENT].rpc(methods.JOB_REGISTER, args)
    return write_response(request, shaped(result, REGISTER_RESPONSE))


@routes.put("/v1/jobs")
@routes.post("/v1/jobs")
async def register_job(request: web.Request) -> web.Response:
    return await register(request)


def _var_file_variables(text: str) -> list[str]:
    """A `Variables` string is the content of an HCL var file; the parser reads var files from paths."""
    handle, path = tempfile.mkstemp(suffix=".hcl", prefix="yurt-vars-")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    return [path]


@routes.put("/v1/jobs/parse")
@routes.post("/v1/jobs/parse")
async def parse(request: web.Request) -> web.Response:
    """{JobHCL, Canonicalize, Variables}: the job as API JSON, or 400 with the located HCL errors."""
    body = await json_body(request, "api.JobsParseRequest")
    hcl = typed(body, "JobHCL", (str,), "JobsParseRequest.JobHCL", "string", "")
    if not hcl:
        raise bad_request("Job spec is empty")
    raw_vars = body.get("Variables")
    variables: dict[str, str] | None = None
    var_files: list[str] = []
    if isinstance(raw_vars, dict):
        variables = {str(k): v if isinstance(v, str) else str(v) for k, v in raw_vars.items()}
    elif isinstance(raw_vars, str) and raw_vars.strip():
        var_files = _var_file_variables(raw_vars)
    from orchestrator.jobspec import parse_job  # python-hcl2, loaded on the first parse

    try:
        # Nomad names the text "input.hcl" in its diagnostics; so do we.
        job = parse_job(hcl, "input.hcl", variables=variables, var_files=var_files)
        if body.get("Canonicalize"):
            job = job_to_api(job_from_api(job))
    except JobspecError as exc:
        raise bad_request(str(exc)) from None
    except (DecodeError, ValueError, TypeError) as exc:
        raise bad_request(str(exc)) from None
    finally:
        for path in var_files:
            os.unlink(path)
    return json_response(request, job)


@routes.put("/v1/validate/job")
@routes.post("/v1/validate/job")
async def validate(request: web.Request) -> web.Response:
    """{Job}: Nomad's JobValidateResponse; a job that does not validate is still a 200 listing why."""
    body = await json_body(request, "api.JobValidateRequest")
    raw = body.get("Job")
    if not isinstance(raw, dict):
        raise bad_request("Job must be specified")
    try:
        errors = validate_job(job_from_api(raw))
    except (DecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        errors = [str(exc)]
    return json_response(request, {"DriverConfigValidated": True, "ValidationErrors": errors or None,
                                   "Error": format_errors(errors) if errors else "", "Warnings": ""})
