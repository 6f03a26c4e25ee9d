"""Node, deployment, system and operator RPCs end to end on real servers over a perfect network."""

from __future__ import annotations

import pytest

from orchestrator.fsm import commands
from orchestrator.jobspec import parse_job
from orchestrator.rpc import methods
from orchestrator.structs import Allocation, Deployment, DeploymentState, PlanResult, encode
from orchestrator.structs.alloc import AllocDeploymentStatus
from tests.scheduler.builders import make_node
from tests.server.loop import Loop

JOB = """
job "web" {
  datacenters = ["dc1"]
  type = "%s"
  update {
    max_parallel = 1
    auto_revert  = %s
  }
  group "g" {
    count = %d
    task "t" {
      driver = "raw_exec"
      config { command = "%s" }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"""


def job(count: int = 2, *, job_type: str = "service", auto_revert: bool = False, command: str = "/bin/sleep"):
    return parse_job(JOB % (job_type, str(auto_revert).lower(), count, command), "web.hcl")


def start(servers: int = 1) -> Loop:
    # The deployment watcher stays out of the way: these tests decide the deployments' fate themselves.
    loop = Loop(servers, deployment_interval=3600.0)
    leader = loop.elect()
    for i in range(2):
        assert not call(loop, methods.NODE_REGISTER, {"Node": encode(make_node(i + 1))}, leader.id).error
    return loop


def call(loop: Loop, method: str, args: dict, sid: str = "s1"):
    reply = loop.call(sid, method, args)
    assert reply is not None, f"{method} got no answer"
    return reply


def ok(loop: Loop, method: str, args: dict) -> dict:
    reply = call(loop, method, args)
    assert not reply.error, reply.error
    return reply.result


def store(loop: Loop):
    return loop.servers["s1"].store


def live(loop: Loop, job_id: str = "web") -> list[Allocation]:
    return [a for a in store(loop).allocs_by_job("default", job_id) if not a.terminal()]


def deployment_of(loop: Loop) -> Deployment:
    deployment = store(loop).latest_deployment_by_job("default", "web")
    assert deployment is not None
    return deployment


# -- nodes -----------------------------------------------------------------------------------------------


def test_node_evaluate_creates_one_eval_per_job_on_the_node():
    loop = start()
    ok(loop, methods.JOB_REGISTER, {"Job": job(1, job_type="batch")})
    loop.advance(0.5)
    node_id = live(loop)[0].node_id
    result = ok(loop, methods.NODE_EVALUATE, {"NodeID": node_id})
    assert len(result["EvalIDs"]) == 1 and result["EvalCreateIndex"] == result["Index"]
    evaluation = store(loop).eval_by_id(result["EvalIDs"][0])
    assert (evaluation.job_id, evaluation.node_id, evaluation.triggered_by) == ("web", node_id, "node-update")
    other = next(n.id for n in store(loop).nodes() if n.id != node_id)
    assert ok(loop, methods.NODE_EVALUATE, {"NodeID": other})["EvalIDs"] == []
    assert call(loop, methods.NODE_EVALUATE, {"NodeID": "nope"}).error == "node not found"


def test_node_purge_forgets_the_node_and_replaces_its_work():
    loop = start()
    ok(loop, methods.JOB_REGISTER, {"Job": job(1, job_type="batch")})
    loop.advance(0.5)
    node_id = live(loop)[0].node_id
    result = ok(loop, methods.NODE_PURGE, {"NodeID": node_id})
    assert result["EvalIDs"] and result["NodeModifyIndex"] == result["Index"]
    assert store(loop).node_by_id(node_id) is None
    loop.advance(0.5)
    assert [a.node_id != node_id for a in live(loop)] == [True]
    assert call(loop, methods.NODE_PURGE, {"NodeID": node_id}).error == "node not found"
    assert call(loop, methods.NODE_PURGE, {}).error == "missing node ID for client deregistration"


# -- deployments -----------------------------------------------------------------------------------------


def add_canary(loop: Loop) -> tuple[str, str]:
    """A deployment of the current version waiting on one canary, committed through Raft as a plan would."""
    server = loop.servers["s1"]
    current = store(loop).job_by_id("default", "web")
    node = store(loop).nodes()[0]
    deployment = Deployment(id="dddddddd-0000-4000-8000-000000000001", job_id="web", job_version=current.version,
                            job_modify_index=current.modify_index, job_create_index=current.create_index,
                            task_groups={"g": DeploymentState(desired_canaries=1, desired_total=2)},
                            status_description="Deployment is running but requires manual promotion")
    canary = Allocation(id="cccccccc-0000-4000-8000-000000000001", name="web.g[0]", node_id=node.id,
                        node_name=node.name, job_id="web", job=current, task_group="g",
                        deployment_id=deployment.id, deployment_status=AllocDeploymentStatus(canary=True))
    server.propose(commands.apply_plan_results(result=PlanResult(node_allocation={node.id: [canary]},
                                                                 deployment=deployment), job=current))
    loop.drain("s1")
    loop.advance(0.1)
    assert store(loop).deployment_by_id(deployment.id).task_groups["g"].placed_canaries == [canary.id]
    return deployment.id, canary.id


def test_promote_needs_healthy_canaries_then_promotes():
    loop = start()
    ok(loop, methods.JOB_REGISTER, {"Job": job(2)})
    loop.advance(0.5)
    first = deployment_of(loop)
    assert call(loop, methods.DEPLOYMENT_PROMOTE, {"DeploymentID": first.id, "All": True}).error == \
        "no canaries to promote"
    deployment_id, canary_id = add_canary(loop)
    error = call(loop, methods.DEPLOYMENT_PROMOTE, {"DeploymentID": deployment_id, "All": True}).error
    assert error == f'1 error occurred:\n\t* Canary allocation "{canary_id}" for group "g" is not healthy\n\n'
    assert call(loop, methods.DEPLOYMENT_PROMOTE, {"DeploymentID": deployment_id, "Groups": ["other"]}).error == \
        "no canaries to promote"
    ok(loop, methods.NODE_UPDATE_ALLOC, {"Alloc": [{"ID": canary_id, "ClientStatus": "running",
                                                    "DeploymentStatus": {"Healthy": True}}]})
    result = ok(loop, methods.DEPLOYMENT_PROMOTE, {"DeploymentID": deployment_id, "Groups": ["g"]})
    assert result["EvalID"] and result["DeploymentModifyIndex"] == result["Index"]
    promoted = store(loop).deployment_by_id(deployment_id)
    assert promoted.task_groups["g"].promoted and promoted.status_description == "Deployment is running"
    assert store(loop).eval_by_id(result["EvalID"]).deployment_id == deployment_id


def test_deployment_requests_name_an_active_deployment():
    loop = start()
    for method in (methods.DEPLOYMENT_PROMOTE, methods.DEPLOYMENT_FAIL, methods.DEPLOYMENT_PAUSE):
        assert call(loop, method, {"DeploymentID": "nope"}).error == "deployment not found"
        assert call(loop, method, {}).error == "missing deployment ID"


def test_pause_resume_and_fail():
    loop = start()
    ok(loop, methods.JOB_REGISTER, {"Job": job(2)})
    loop.advance(0.5)
    deployment_id = deployment_of(loop).id
    paused = ok(loop, methods.DEPLOYMENT_PAUSE, {"DeploymentID": deployment_id, "Pause": True})
    assert paused["EvalID"] == ""
    deployment = store(loop).deployment_by_id(deployment_id)
    assert (deployment.status, deployment.status_description) == ("paused", "Deployment is paused")
    resumed = ok(loop, methods.DEPLOYMENT_PAUSE, {"DeploymentID": deployment_id, "Pause": False})
    assert resumed["EvalID"] and store(loop).deployment_by_id(deployment_id).status == "running"
    failed = ok(loop, methods.DEPLOYMENT_FAIL, {"DeploymentID": deployment_id})
    assert failed["EvalID"] and "RevertedJobVersion" not in failed
    deployment = store(loop).deployment_by_id(deployment_id)
    assert (deployment.status, deployment.status_description) == ("failed", "Deployment marked as failed")
    for pause, verb in ((True, "pause"), (False, "resume")):
        error = call(loop, methods.DEPLOYMENT_PAUSE, {"DeploymentID": deployment_id, "Pause": pause}).error
        assert error == f"can't {verb} terminal deployment"
    assert call(loop, methods.DEPLOYMENT_FAIL, {"DeploymentID": deployment_id}).error == \
        "can't fail terminal deployment"
    assert call(loop, methods.DEPLOYMENT_PROMOTE, {"DeploymentID": deployment_id}).error == \
        "can't promote terminal deployment"


def test_fail_with_auto_revert_registers_the_latest_stable_version():
    loop = start()
    ok(loop, methods.JOB_REGISTER, {"Job": job(2, auto_revert=True)})
    ok(loop, methods.JOB_STABLE, {"JobID": "web", "JobVersion": 0, "Stable": True})
    ok(loop, methods.JOB_REGISTER, {"Job": job(2, auto_revert=True, command="/bin/true")})
    loop.advance(0.5)
    deployment = deployment_of(loop)
    assert deployment.job_version == 1
    result = ok(loop, methods.DEPLOYMENT_FAIL, {"DeploymentID": deployment.id})
    assert result["RevertedJobVersion"] == 0
    assert store(loop).deployment_by_id(deployment.id).status_description == \
        "Deployment marked as failed - rolling back to job version 0"
    current = store(loop).job_by_id("default", "web")
    assert current.version == 2 and current.task_groups[0].tasks[0].config["command"] == "/bin/sleep"


# -- system and operator ---------------------------------------------------------------------------------


def test_system_gc_collects_finished_work_at_once():
    loop = start()
    ok(loop, methods.JOB_REGISTER, {"Job": job(1, job_type="batch")})
    loop.advance(0.5)
    alloc = live(loop)[0]
    ok(loop, methods.NODE_UPDATE_ALLOC, {"Alloc": [{"ID": alloc.id, "ClientStatus": "complete"}]})
    loop.advance(0.5)
    assert store(loop).job_by_id("default", "web").status == "dead"
    result = ok(loop, methods.SYSTEM_GC, {})
    assert result["Index"] > 0
    loop.advance(0.5)
    assert store(loop).job_by_id("default", "web") is None
    assert store(loop).alloc_by_id(alloc.id) is None


def test_raft_remove_peer_by_id_or_address():
    loop = start(3)
    leader = loop.leader()
    followers = [sid for sid in loop.ids if sid != leader.id]
    errors = [({"ID": "s9"}, 'id "s9" was not found in the Raft configuration'),
              ({"Address": "10.0.0.9:4647"}, 'address "10.0.0.9:4647" was not found in the Raft configuration'),
              ({}, "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove")]
    for args, error in errors:
        assert call(loop, methods.OPERATOR_RAFT_REMOVE_PEER, args, leader.id).error == error
    result = call(loop, methods.OPERATOR_RAFT_REMOVE_PEER, {"ID": followers[0]}, leader.id).result
    assert result["Index"] > 0
    loop.advance(0.5)
    assert set(leader.raft.voters) == {leader.id, followers[1]}
    # Forwarded from a follower like every write; by address (yurt's server IDs are their addresses).
    result = call(loop, methods.OPERATOR_RAFT_REMOVE_PEER, {"Address": followers[1]}, followers[1])
    assert not result.error
    loop.advance(0.5)
    assert set(leader.raft.voters) == {leader.id}


@pytest.mark.parametrize("method", [methods.SYSTEM_GC, methods.OPERATOR_RAFT_REMOVE_PEER, methods.NODE_EVALUATE])
def test_cluster_writes_are_answered_by_followers_through_the_leader(method: str):
    loop = start(3)
    follower = next(sid for sid in loop.ids if sid != loop.leader().id)
    reply = call(loop, method, {"ID": "s9", "NodeID": "nope"}, follower)
    assert reply.leader == loop.leader().id
