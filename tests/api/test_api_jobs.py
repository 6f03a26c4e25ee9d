"""The job routes over a real single-server cluster: bodies, headers, errors and blocking queries as Nomad's."""

from __future__ import annotations

import asyncio
import time

import pytest

from orchestrator.api.job import DISPATCH_RESPONSE as DISPATCH_KEYS
from orchestrator.api.job import PLAN_RESPONSE as PLAN_KEYS
from orchestrator.rpc import methods
from tests.api.fake_agent import JOB_HCL, job_dict, run_api
from tests.api.reference import REFERENCE, key_differences, load

needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason=f"no Nomad reference answers at {REFERENCE}")

REGISTER_KEYS = ["EvalID", "EvalCreateIndex", "JobModifyIndex", "Warnings", "Index", "LastContact", "KnownLeader"]


def _reference_http(name: str) -> tuple[int, str]:
    """(status, body) of a raw HTTP answer in the reference."""
    head, _, body = (REFERENCE / name).read_text().partition("\n\n")
    return int(head.split()[1]), body.rstrip("\n")


@needs_reference
def test_register_list_and_read_a_job_with_nomads_keys_and_headers():
    async def scenario(client, fake):
        fake.register_node()
        response = await client.put("/v1/jobs", json={"Job": job_dict()})
        assert response.status == 200
        body = await response.json()
        assert list(body) == REGISTER_KEYS and body["EvalID"] and body["Index"] > 0
        assert response.headers["X-Nomad-Index"] == str(body["Index"])
        fake.advance(1.0)

        response = await client.get("/v1/jobs")
        assert response.status == 200 and response.headers["Content-Type"] == "application/json"
        assert int(response.headers["X-Nomad-Index"]) >= body["Index"]
        assert response.headers["X-Nomad-KnownLeader"] == "true" and response.headers["X-Nomad-LastContact"] == "0"
        jobs = await response.json()
        assert [j["ID"] for j in jobs] == ["web"]
        assert key_differences(jobs[0], load("jobs.json")[0]) == []

        response = await client.get("/v1/job/web")
        job = await response.json()
        assert key_differences(job, load("job-sleeper.json")) == []
        assert job["Status"] == "running" and job["TaskGroups"][0]["Count"] == 2

    run_api(scenario)


@needs_reference
def test_unknown_job_is_404_with_nomads_body_and_query_headers():
    status, text = _reference_http("job-404-with-headers.txt")

    async def scenario(client, fake):
        response = await client.get("/v1/job/does-not-exist")
        assert (response.status, await response.text()) == (status, text)
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert {"X-Nomad-Index", "X-Nomad-KnownLeader", "X-Nomad-LastContact"} <= set(response.headers)
        for suffix in ("/summary", "/scale"):
            response = await client.get(f"/v1/job/does-not-exist{suffix}")
            assert (response.status, await response.text()) == (404, "job not found")
        response = await client.get("/v1/job/does-not-exist/versions")
        assert (response.status, await response.text()) == (404, "job versions not found")

    run_api(scenario)


@needs_reference
def test_bad_request_bodies_get_go_decoder_texts():
    status, text = _reference_http("jobs-put-badjson.txt")

    async def scenario(client, fake):
        response = await client.put("/v1/jobs", data="{not json")
        assert (response.status, await response.text()) == (status, text)
        cases = [
            ("", "EOF"),
            ("[1]", "json: cannot unmarshal array into Go value of type api.JobRegisterRequest"),
            ('{"Job": {"ID": "x"', "unexpected EOF"),
            ('{"Job" 1}', "invalid character '1' after object key"),
            ('{"Job": {} "x"}', "invalid character '\"' after object key:value pair"),
            ("{}", "Job must be specified"),
            ('{"Job": {"Name": "x"}}', "Job ID hasn't been provided"),
            ('{"Job": {"ID": "web"}, "EnforceIndex": "yes"}',
             "json: cannot unmarshal string into Go struct field JobRegisterRequest.EnforceIndex of type bool"),
        ]
        for data, expected in cases:
            response = await client.put("/v1/jobs", data=data)
            assert (response.status, await response.text()) == (400, expected), data
        response = await client.post("/v1/job/other", json={"Job": job_dict()})
        assert (response.status, await response.text()) == (400, "Job ID does not match name")

    run_api(scenario)


def test_rpc_errors_are_400_with_nomads_text():
    async def scenario(client, fake):
        invalid = job_dict(Type="nonsense")
        response = await client.put("/v1/jobs", json={"Job": invalid})
        text = await response.text()
        assert response.status == 400 and "error occurred" in text and 'Invalid job type: "nonsense"' in text
        fake.register_job()
        response = await client.put("/v1/jobs", json={"Job": job_dict(), "EnforceIndex": True, "JobModifyIndex": 1})
        text = await response.text()
        assert response.status == 400 and text.startswith("Enforcing job modify index 1: job exists with conflicting")

    run_api(scenario)


@needs_reference
def test_parse_gives_the_job_or_located_hcl_errors():
    status, reference_text = _reference_http("jobs-parse-bad-hcl.txt")

    async def scenario(client, fake):
        response = await client.post("/v1/jobs/parse", json={"JobHCL": 'job "x" {', "Canonicalize": True})
        text = await response.text()
        assert response.status == status
        assert text.startswith(reference_text.split(" ")[0].split(",")[0] + ",")  # "input.hcl:1,<column>"
        response = await client.post("/v1/jobs/parse", json={"JobHCL": "job \"x\" {\n  bogus = 1\n}\n"})
        assert response.status == 400 and "input.hcl:2,3: " in await response.text()
        response = await client.post("/v1/jobs/parse", json={"Canonicalize": True})
        assert (response.status, await response.text()) == (400, "Job spec is empty")

        hcl = ('variable "n" {\n  type = number\n  default = 1\n}\n'
               + 'job "v" {\n  datacenters = ["dc1"]\n  group "g" {\n    count = var.n\n    task "t" {\n'
               + '      driver = "raw_exec"\n      config { command = "/bin/true" }\n    }\n  }\n}\n')
        response = await client.post("/v1/jobs/parse", json={"JobHCL": hcl})
        raw = await response.json()
        assert response.status == 200 and raw["TaskGroups"][0]["Count"] == 1 and "Region" not in raw
        response = await client.post("/v1/jobs/parse", json={"JobHCL": hcl, "Canonicalize": True,
                                                              "Variables": {"n": "3"}})
        canonical = await response.json()
        assert canonical["TaskGroups"][0]["Count"] == 3 and canonical["Region"] == "global"
        assert key_differences(canonical, load("job-sleeper.json")) == []
        response = await client.post("/v1/jobs/parse", json={"JobHCL": hcl, "Variables": "n = 5\n"})
        assert (await response.json())["TaskGroups"][0]["Count"] == 5

    run_api(scenario)


def test_validate_answers_200_with_the_validation_errors():
    async def scenario(client, fake):
        response = await client.post("/v1/validate/job", json={"Job": job_dict()})
        assert await response.json() == {"DriverConfigValidated": True, "ValidationErrors": None, "Error": "",
                                         "Warnings": ""}
        response = await client.put("/v1/validate/job", json={"Job": job_dict(Type="nonsense", Priority=500)})
        body = await response.json()
        assert response.status == 200 and len(body["ValidationErrors"]) == 2
        assert body["Error"].startswith("2 errors occurred:")
        response = await client.post("/v1/validate/job", json={})
        assert (response.status, await response.text()) == (400, "Job must be specified")

    run_api(scenario)


def test_blocking_query_returns_when_a_job_is_registered_and_after_the_wait_otherwise():
    async def scenario(client, fake):
        first = await client.get("/v1/jobs")
        index = int(first.headers["X-Nomad-Index"])

        async def register_soon():
            await asyncio.sleep(0.05)
            return await client.put("/v1/jobs", json={"Job": job_dict()})

        started = time.monotonic()
        blocked, registered = await asyncio.gather(client.get(f"/v1/jobs?index={index}&wait=5m"), register_soon())
        assert registered.status == 200
        assert int(blocked.headers["X-Nomad-Index"]) > index
        assert [j["ID"] for j in await blocked.json()] == ["web"]
        assert time.monotonic() - started < 5.0

        now = int(blocked.headers["X-Nomad-Index"])
        waited = await client.get(f"/v1/job/web?index={now}&wait=1s")
        assert waited.status == 200 and int(waited.headers["X-Nomad-Index"]) <= now
        response = await client.get("/v1/jobs?index=abc")
        assert (response.status, await response.text()) == (400, "Invalid index")
        response = await client.get("/v1/jobs?index=1&wait=5")
        assert (response.status, await response.text()) == (400, "Invalid wait time")

    run_api(scenario)


def test_prefix_and_namespace_filters():
    async def scenario(client, fake):
        fake.add_namespace("other")
        for job_id in ("web", "web-2", "api"):
            fake.register_job(job_id)
        fake.register_job("web", Namespace="other")

        async def ids(query):
            return [(j["ID"], j["Namespace"]) for j in await (await client.get(f"/v1/jobs{query}")).json()]

        assert await ids("") == [("api", "default"), ("web", "default"), ("web-2", "default")]
        assert await ids("?prefix=we") == [("web", "default"), ("web-2", "default")]
        assert await ids("?namespace=other") == [("web", "other")]
        assert await ids("?namespace=*&prefix=web") == [("web", "default"), ("web", "other"), ("web-2", "default")]
        assert (await (await client.get("/v1/job/web?namespace=other")).json())["Namespace"] == "other"
        allocs = await (await client.get("/v1/allocations?namespace=nope")).json()
        assert allocs == []

    run_api(scenario)


def test_job_routes_under_the_job():
    async def scenario(client, fake):
        node_id = fake.register_node()
        fake.register_job()
        fake.advance(1.0)
        fake.run_allocs()
        fake.advance(0.5)
        allocs = await (await client.get("/v1/job/web/allocations")).json()
        assert len(allocs) == 2 and {a["NodeID"] for a in allocs} == {node_id}
        evals = await (await client.get("/v1/job/web/evaluations")).json()
        assert evals[0]["TriggeredBy"] == "job-register" and evals[0]["Status"] == "complete"
        summary = await (await client.get("/v1/job/web/summary")).json()
        assert summary["Summary"]["g"]["Running"] == 2
        versions = await (await client.get("/v1/job/web/versions?diffs=true")).json()
        assert [v["Version"] for v in versions["Versions"]] == [0] and "Index" in versions
        deployments = await (await client.get("/v1/job/web/deployments")).json()
        latest = await (await client.get("/v1/job/web/deployment")).json()
        assert deployments and latest["ID"] == deployments[0]["ID"]
        scale = await (await client.get("/v1/job/web/scale")).json()
        assert scale["TaskGroups"]["g"] == {"Desired": 2, "Placed": 2, "Running": 2, "Healthy": 0,
                                            "Unhealthy": 0, "Events": None}

        response = await client.post("/v1/job/web/scale", json={"Count": 3, "Target": {}})
        assert (response.status, await response.text()) == (400, "missing task group name")
        response = await client.post("/v1/job/web/scale", json={"Count": 3, "Target": {"Group": "g"}})
        assert response.status == 400  # Nomad too refuses to scale while a deployment is running
        fake.register_job("batch", Type="batch")
        response = await client.post("/v1/job/batch/scale", json={"Count": 3, "Target": {"Group": "g"}})
        assert response.status == 200 and list(await response.json()) == REGISTER_KEYS
        fake.advance(1.0)
        assert len(await (await client.get("/v1/job/batch/allocations")).json()) == 3

        response = await client.delete("/v1/job/web")
        body = await response.json()
        assert response.status == 200 and body["EvalID"] and "VolumeEvalID" in body
        assert (await (await client.get("/v1/job/web")).json())["Stop"] is True
        response = await client.delete("/v1/job/web?purge=true")
        assert response.status == 200
        assert (await client.get("/v1/job/web")).status == 404
        assert len(await (await client.get("/v1/job/web/allocations?all=true")).json()) == 2

    run_api(scenario)


def test_job_ids_with_a_slash_are_routed_as_nomad_does():
    async def scenario(client, fake):
        fake.register_job("batch/dispatch-1", Type="batch")
        for path in ("/v1/job/batch%2Fdispatch-1/summary", "/v1/job/batch/dispatch-1/summary"):
            response = await client.get(path)
            assert response.status == 200 and (await response.json())["JobID"] == "batch/dispatch-1"
        assert (await (await client.get("/v1/job/batch/dispatch-1")).json())["ID"] == "batch/dispatch-1"

    run_api(scenario)


def test_wrong_methods_are_405_and_unknown_paths_404():
    async def scenario(client, fake):
        for method, path in (("DELETE", "/v1/jobs"), ("GET", "/v1/job/web/plan"), ("DELETE", "/v1/job/web/summary"),
                             ("PATCH", "/v1/job/web"), ("GET", "/v1/jobs/parse"), ("POST", "/v1/allocations")):
            response = await client.request(method, path)
            assert (response.status, await response.text()) == (405, "Invalid method"), (method, path)
        response = await client.get("/v1/nothing-here")
        assert (response.status, await response.text()) == (404, "404 page not found")

    run_api(scenario)


JOB_WRITES = [
    ("/v1/job/web/evaluate", {"EvalOptions": {"ForceReschedule": True}}, methods.JOB_EVALUATE,
     {"Namespace": "default", "JobID": "web", "EvalOptions": {"ForceReschedule": True}}),
    ("/v1/job/web/revert", {"JobID": "web", "JobVersion": 0, "EnforcePriorVersion": 1}, methods.JOB_REVERT,
     {"Namespace": "default", "JobID": "web", "JobVersion": 0, "EnforcePriorVersion": 1}),
    ("/v1/job/web/stable", {"JobID": "web", "JobVersion": 0, "Stable": True}, methods.JOB_STABLE,
     {"Namespace": "default", "JobID": "web", "JobVersion": 0, "Stable": True}),
    ("/v1/job/web/dispatch", {"Meta": {"k": "v"}, "Payload": "aGk="}, methods.JOB_DISPATCH,
     {"Namespace": "default", "JobID": "web", "Payload": "aGk=", "Meta": {"k": "v"}}),
    ("/v1/job/web/periodic/force", None, methods.JOB_PERIODIC_FORCE, {"Namespace": "default", "JobID": "web"}),
]


def test_job_writes_send_nomads_arguments_and_check_the_job_id():
    async def scenario(client, fake):
        fake.register_job()
        for path, body, method, args in JOB_WRITES:
            fake.rpc_calls.clear()
            await client.post(path, json=body)
            assert fake.rpc_calls == [(method, args)], path
        fake.rpc_calls.clear()
        await client.put("/v1/job/web/plan", json={"Job": job_dict(), "Diff": True})
        (method, args), = fake.rpc_calls
        assert method == methods.JOB_PLAN and args["Diff"] is True and args["Job"]["ID"] == "web"
        response = await client.post("/v1/job/web/revert", json={"JobID": "other", "JobVersion": 0})
        assert (response.status, await response.text()) == (400, "Job ID does not match")
        response = await client.put("/v1/job/web/plan", json={"Job": job_dict("other")})
        assert (response.status, await response.text()) == (400, "Job ID does not match")
        response = await client.put("/v1/job/web/plan", json={"Diff": True})
        assert (response.status, await response.text()) == (400, "Job must be specified")

    run_api(scenario)


PARAMETERIZED = JOB_HCL.replace('group "g"', 'type = "batch"\n  parameterized { meta_required = ["k"] }\n  group "g"')
PERIODIC = JOB_HCL.replace('group "g"', 'type = "batch"\n  periodic { cron = "*/5 * * * *" }\n  group "g"')


def test_job_writes_end_to_end():
    async def scenario(client, fake):
        fake.register_node()
        fake.register_job()
        fake.advance(1.0)
        response = await client.post("/v1/job/web/evaluate")
        assert response.status == 200 and list(await response.json()) == REGISTER_KEYS
        response = await client.post("/v1/job/web/stable", json={"JobID": "web", "JobVersion": 0, "Stable": True})
        assert response.status == 200 and list(await response.json()) == ["Index"]
        assert (await (await client.get("/v1/job/web")).json())["Stable"] is True

        changed = job_dict()
        changed["TaskGroups"][0]["Count"] = 3
        response = await client.post("/v1/job/web/plan", json={"Job": changed, "Diff": True})
        plan = await response.json()
        assert response.status == 200 and list(plan)[:8] == list(PLAN_KEYS)
        assert plan["Diff"]["Type"] == "Edited" and plan["Annotations"]["DesiredTGUpdates"]["g"]["Place"] == 1
        await client.put("/v1/jobs", json={"Job": changed})
        versions = await (await client.get("/v1/job/web/versions?diffs=true")).json()
        assert [v["Version"] for v in versions["Versions"]] == [1, 0]
        assert len(versions["Diffs"]) == 1 and versions["Diffs"][0]["Type"] == "Edited"
        response = await client.post("/v1/job/web/revert", json={"JobID": "web", "JobVersion": 0})
        assert response.status == 200 and (await response.json())["EvalID"]
        assert (await (await client.get("/v1/job/web")).json())["TaskGroups"][0]["Count"] == 2
        response = await client.post("/v1/job/web/revert", json={"JobID": "web", "JobVersion": 7})
        assert response.status == 404  # Nomad: "job ... at version 7 not found"

        response = await client.put("/v1/jobs", json={"Job": job_dict("param", hcl=PARAMETERIZED)})
        assert response.status == 200
        response = await client.post("/v1/job/param/dispatch", json={"Meta": {"k": "v"}})
        dispatched = await response.json()
        assert response.status == 200 and list(dispatched) == list(DISPATCH_KEYS)
        assert dispatched["DispatchedJobID"].startswith("param/dispatch-")
        child = await client.get(f"/v1/job/{dispatched['DispatchedJobID']}")
        assert (await child.json())["ParentID"] == "param"
        response = await client.post("/v1/job/web/dispatch", json={"Meta": {}})
        assert (response.status, await response.text()) == (400, 'Specified job "web" is not a parameterized job')

        response = await client.put("/v1/jobs", json={"Job": job_dict("cron", hcl=PERIODIC)})
        assert response.status == 200
        response = await client.post("/v1/job/cron/periodic/force")
        assert response.status == 200 and list(await response.json()) == ["EvalID", "EvalCreateIndex", "Index"]
        children = [j["ID"] for j in await (await client.get("/v1/jobs?prefix=cron/")).json()]
        assert len(children) == 1 and children[0].startswith("cron/periodic-")

    run_api(scenario)
