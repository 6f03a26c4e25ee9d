"""Nodes, allocations, evaluations, deployments, agent, status, operator and the error paths of the API."""

from __future__ import annotations

import pytest

from orchestrator.api.http import make_app
from orchestrator.api.metrics import client_exposition, handwritten_exposition
from orchestrator.rpc import methods
from tests.api.fake_agent import FakeAgent, job_dict, run_api
from tests.api.reference import REFERENCE, key_differences, load

needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason=f"no Nomad reference answers at {REFERENCE}")


async def _get(client, path, status=200):
    response = await client.get(path)
    assert response.status == status, (path, response.status, await response.text())
    return await response.json() if status == 200 else await response.text()


def _running_web(fake: FakeAgent) -> str:
    node_id = fake.register_node()
    fake.register_job()
    fake.advance(1.0)
    fake.run_allocs()
    fake.advance(0.5)
    return node_id


@needs_reference
def test_nodes_routes_have_nomads_keys_and_drain_and_eligibility_work():
    async def scenario(client, fake):
        node_id = _running_web(fake)
        nodes = await _get(client, "/v1/nodes")
        assert [n["ID"] for n in nodes] == [node_id]
        assert key_differences(nodes[0], load("nodes.json")[0]) == []
        assert await _get(client, f"/v1/nodes?prefix={node_id[:4]}") == nodes
        assert await _get(client, "/v1/nodes?prefix=ffff") == []
        node = await _get(client, f"/v1/node/{node_id}")
        assert key_differences(node, load("node-detail.json")) == []
        allocs = await _get(client, f"/v1/node/{node_id}/allocations")
        assert len(allocs) == 2 and allocs[0]["Job"]["ID"] == "web"  # whole allocations, as Nomad's
        assert await _get(client, "/v1/node/nope", 404) == "node not found"

        response = await client.post(f"/v1/node/{node_id}/drain",
                                     json={"DrainSpec": {"Deadline": 3_600_000_000_000, "IgnoreSystemJobs": False}})
        body = await response.json()
        assert response.status == 200 and list(body) == ["NodeModifyIndex", "EvalIDs", "EvalCreateIndex", "Index"]
        node = await _get(client, f"/v1/node/{node_id}")
        assert node["Drain"] is True and node["DrainStrategy"]["Deadline"] == 3_600_000_000_000
        assert node["SchedulingEligibility"] == "ineligible"
        response = await client.put(f"/v1/node/{node_id}/drain", json={"DrainSpec": None, "MarkEligible": True})
        assert response.status == 200
        node = await _get(client, f"/v1/node/{node_id}")
        assert node["Drain"] is False and node["SchedulingEligibility"] == "eligible"
        response = await client.post(f"/v1/node/{node_id}/eligibility", json={"Eligibility": "ineligible"})
        assert response.status == 200
        assert (await _get(client, f"/v1/node/{node_id}"))["SchedulingEligibility"] == "ineligible"
        response = await client.post(f"/v1/node/{node_id}/eligibility", json={"Eligibility": "maybe"})
        assert (response.status, await response.text()) == (400, 'invalid scheduling eligibility "maybe"')
        response = await client.post("/v1/node/nope/drain", json={"DrainSpec": None})
        assert response.status == 404 and "not found" in await response.text()
        response = await client.post(f"/v1/node/{node_id}/evaluate")
        assert response.status == 200 and "EvalIDs" in await response.json()
        response = await client.get(f"/v1/node/{node_id}/drain")
        assert (response.status, await response.text()) == (405, "Invalid method")
        response = await client.post(f"/v1/node/{node_id}/purge")
        assert response.status == 200 and list(await response.json())[:4] == ["HeartbeatTTL", "EvalIDs",
                                                                              "EvalCreateIndex", "NodeModifyIndex"]
        assert await _get(client, f"/v1/node/{node_id}", 404) == "node not found"

    run_api(scenario)


@needs_reference
def test_allocations_routes_have_nomads_keys_and_stop_works():
    async def scenario(client, fake):
        _running_web(fake)
        allocs = await _get(client, "/v1/allocations")
        assert len(allocs) == 2 and allocs == sorted(allocs, key=lambda a: a["ID"])
        assert key_differences(allocs[0], load("allocations.json")[0]) == []
        assert allocs[0]["AllocatedResources"] is None
        with_resources = await _get(client, "/v1/allocations?resources=true")
        assert with_resources[0]["AllocatedResources"]["Tasks"]["t"]["Cpu"]["CpuShares"] == 100
        first = allocs[0]["ID"]
        assert [a["ID"] for a in await _get(client, f"/v1/allocations?prefix={first[:6]}")] == [first]
        detail = await _get(client, f"/v1/allocation/{first}")
        # Zero fields are left out, as Nomad's: no health is known yet, so no DeploymentStatus.
        assert set(key_differences(detail, load("allocation-detail.json"))) <= {"$.DeploymentStatus: missing"}
        assert detail["Job"]["ID"] == "web" and detail["ClientStatus"] == "running"
        assert await _get(client, "/v1/allocation/deadbeef", 404) == "alloc not found"

        response = await client.post(f"/v1/allocation/{first}/stop")
        body = await response.json()
        assert response.status == 200 and list(body) == ["EvalID", "Index"] and body["EvalID"]
        assert response.headers["X-Nomad-Index"] == str(body["Index"])
        fake.advance(1.0)
        assert (await _get(client, f"/v1/allocation/{first}"))["DesiredStatus"] == "stop"
        response = await client.post("/v1/allocation/deadbeef/stop")
        assert response.status == 404

    run_api(scenario)


@needs_reference
def test_evaluations_and_deployments_routes():
    async def scenario(client, fake):
        _running_web(fake)
        evals = await _get(client, "/v1/evaluations")
        assert len(evals) == 1
        # Evaluations leave out zero fields, as Nomad's: SnapshotIndex is one while yurt's workers do not set it.
        # A service job's evaluation names the deployment it worked within, as Nomad's "sleeper" one does.
        nomads = next(e for e in load("evaluations.json") if e["Type"] == "service")
        assert evals[0]["DeploymentID"]
        assert set(key_differences(evals[0], nomads)) <= {"$.SnapshotIndex: missing"}
        eval_id = evals[0]["ID"]
        assert await _get(client, f"/v1/evaluation/{eval_id}") == evals[0]
        assert await _get(client, "/v1/evaluations?job=web&status=complete") == evals
        assert await _get(client, "/v1/evaluations?job=other") == []
        assert len(await _get(client, f"/v1/evaluation/{eval_id}/allocations")) == 2
        assert await _get(client, "/v1/evaluation/nope", 404) == "eval not found"

        deployments = await _get(client, "/v1/deployments")
        assert len(deployments) == 1 and key_differences(deployments[0], load("deployments.json")[0]) == []
        deployment_id = deployments[0]["ID"]
        assert await _get(client, f"/v1/deployment/{deployment_id}") == deployments[0]
        assert len(await _get(client, f"/v1/deployment/allocations/{deployment_id}")) == 2
        assert await _get(client, "/v1/deployment/nope", 404) == "deployment not found"

        response = await client.post(f"/v1/deployment/pause/{deployment_id}",
                                     json={"DeploymentID": deployment_id, "Pause": True})
        body = await response.json()
        assert response.status == 200
        assert list(body) == ["EvalID", "EvalCreateIndex", "DeploymentModifyIndex", "RevertedJobVersion", "Index"]
        assert (await _get(client, f"/v1/deployment/{deployment_id}"))["Status"] == "paused"
        response = await client.post(f"/v1/deployment/pause/{deployment_id}", json={"DeploymentID": "x"})
        assert (response.status, await response.text()) == (400, "Deployment ID does not match")
        response = await client.post(f"/v1/deployment/fail/{deployment_id}")
        assert response.status == 200
        assert (await _get(client, f"/v1/deployment/{deployment_id}"))["Status"] == "failed"
        response = await client.post(f"/v1/deployment/promote/{deployment_id}",
                                     json={"DeploymentID": deployment_id, "All": True})
        assert response.status == 400  # a failed deployment cannot be promoted: the caller's mistake

    run_api(scenario)


@needs_reference
def test_agent_and_status_routes():
    async def scenario(client, fake):
        members = await _get(client, "/v1/agent/members")
        reference = load("agent-members.json")
        assert key_differences(members, reference) == []
        assert members["Members"][0]["Tags"]["role"] == "nomad"
        assert await _get(client, "/v1/status/leader") == load("status-leader.json")
        assert await _get(client, "/v1/status/peers") == load("status-peers.json")
        assert await _get(client, "/v1/agent/servers") == ["127.0.0.1:4647"]
        assert await _get(client, "/v1/regions") == ["global"]
        assert await _get(client, "/v1/agent/health") == {"server": {"ok": True, "message": "ok"}}
        assert (await _get(client, "/v1/agent/self"))["config"]["Region"] == "global"
        configuration = await _get(client, "/v1/operator/raft/configuration")
        assert configuration["Servers"][0]["Leader"] is True

        response = await client.put("/v1/agent/join?address=10.0.0.2:4648&address=10.0.0.3:4648")
        assert await response.json() == {"num_joined": 2, "error": ""}
        response = await client.put("/v1/agent/join?address=unreachable:4648")
        body = await response.json()
        assert response.status == 200 and body["num_joined"] == 0 and "Failed to join" in body["error"]
        response = await client.put("/v1/agent/force-leave?node=s9.global")
        assert response.status == 200 and fake.left == ["s9.global"]
        response = await client.put("/v1/agent/force-leave")
        assert (response.status, await response.text()) == (400, "missing node to force leave")

        fake.rpc_calls.clear()
        response = await client.put("/v1/system/gc")
        assert response.status == 200 and fake.rpc_calls == [(methods.SYSTEM_GC, {})]
        response = await client.post("/v1/system/gc")
        assert response.status == 405
        response = await client.delete("/v1/operator/raft/peer")
        assert response.status == 400
        fake.rpc_calls.clear()
        await client.delete("/v1/operator/raft/peer?address=127.0.0.1:9999")
        assert fake.rpc_calls == [(methods.OPERATOR_RAFT_REMOVE_PEER, {"Address": "127.0.0.1:9999"})]

        for method, path in (("GET", "/v1/client/stats"), ("GET", "/v1/client/fs/logs/abc"),
                             ("PUT", "/v1/client/allocation/abc/restart")):
            response = await client.request(method, path)
            assert (response.status, await response.text()) == (501, "no client agent")

    run_api(scenario)


def test_search_resolves_prefixes():
    async def scenario(client, fake):
        node_id = _running_web(fake)
        response = await client.put("/v1/search", json={"Prefix": "we", "Context": "jobs"})
        body = await response.json()
        assert body["Matches"] == {"jobs": ["web"]} and body["Truncations"] == {"jobs": False}
        response = await client.post("/v1/search", json={"Prefix": node_id[:4], "Context": "all"})
        matches = (await response.json())["Matches"]
        assert matches["nodes"] == [node_id] and set(matches) == {"allocs", "deployments", "evals", "jobs", "nodes"}

    run_api(scenario)


def test_metrics_as_json_and_prometheus_text():
    async def scenario(client, fake):
        data = await _get(client, "/v1/metrics")
        assert {"Timestamp", "Gauges", "Counters", "Samples"} <= set(data)
        response = await client.get("/v1/metrics?format=prometheus")
        text = await response.text()
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "nomad_runtime_num_goroutines 42" in text
        assert 'nomad_client_allocated_cpu{datacenter="dc1",node_id="n1"} 250' in text
        assert "nomad_rpc_request_total 3" in text and "nomad_raft_apply_count 2" in text

    run_api(scenario)
    data = FakeAgent.metrics(None)  # type: ignore[arg-type]
    text = handwritten_exposition(data)
    assert text.splitlines()[:2] == ["# TYPE nomad_runtime_num_goroutines gauge", "nomad_runtime_num_goroutines 42"]
    assert "# TYPE nomad_raft_apply summary\nnomad_raft_apply_sum 1.5\nnomad_raft_apply_count 2\n" in text
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        assert client_exposition(data) is None  # the route falls back to the hand-written text
    else:
        assert "nomad_rpc_request_total 3.0" in client_exposition(data)


def test_region_pretty_and_a_failing_handler():
    class Broken(FakeAgent):
        def self_info(self):
            raise RuntimeError("self info exploded")

    async def scenario(client, fake):
        response = await client.get("/v1/jobs?region=europe")
        assert (response.status, await response.text()) == (500, "No path to region")
        response = await client.put("/v1/jobs", json={"Job": job_dict(Region="europe")})
        assert (response.status, await response.text()) == (500, "No path to region")
        assert (await client.get("/v1/jobs?region=global")).status == 200
        pretty = await (await client.get("/v1/agent/health?pretty")).text()
        assert pretty == '{\n    "server": {\n        "ok": true,\n        "message": "ok"\n    }\n}'
        response = await client.get("/v1/agent/self")
        assert (response.status, await response.text()) == (500, "self info exploded")
        assert (await client.get("/v1/status/leader")).status == 200  # still serving

    run_api(scenario, Broken())


def test_without_a_leader_reads_and_writes_are_500_no_cluster_leader_but_stale_reads_work():
    async def scenario(client, fake):
        assert fake.loop.leader() is None
        for method, path, body in (("GET", "/v1/jobs", None), ("GET", "/v1/job/web", None),
                                   ("PUT", "/v1/jobs", {"Job": job_dict()})):
            response = await client.request(method, path, json=body)
            assert (response.status, await response.text()) == (500, "No cluster leader"), path
        response = await client.get("/v1/jobs?stale")
        assert response.status == 200 and response.headers["X-Nomad-KnownLeader"] == "false"
        assert await _get(client, "/v1/status/leader") == ""

    run_api(scenario, FakeAgent(3, elect=False))


def test_three_servers_writes_through_a_follower_are_forwarded():
    async def scenario(client, fake):
        assert fake.loop.leader().id != fake.local
        fake.register_node()
        response = await client.put("/v1/jobs", json={"Job": job_dict()})
        assert response.status == 200
        fake.advance(1.0)
        assert len(await _get(client, "/v1/job/web/allocations")) == 2
        assert len(await _get(client, "/v1/status/peers")) == 3
        stale = await _get(client, "/v1/jobs?stale=true")
        assert [j["ID"] for j in stale] == ["web"]  # the follower has applied it too

    run_api(scenario, FakeAgent(3))


def test_make_app_takes_any_agent_handle():
    app = make_app(FakeAgent(), stream_heartbeat=1.0)
    assert any(r.resource.canonical == "/v1/event/stream" for r in app.router.routes() if r.resource)
