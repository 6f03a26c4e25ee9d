"""Deployment commands: status (auto-revert), promotion, allocation health and deletion."""

from dataclasses import replace

import pytest
from fsm_helpers import Log, tables_of
from state_builders import make_alloc, make_eval, make_job, make_node

from orchestrator.fsm import commands as c
from orchestrator.structs import Deployment, DeploymentState, PlanResult
from orchestrator.structs.alloc import AllocDeploymentStatus

T0 = 1_700_000_000_000_000_000
MINUTE = 60_000_000_000


def _canary_deployment():
    """Job web v1 rolling out under d1 with one canary (c1) beside the old allocation (a0) of v0."""
    log = Log()
    log.ok(c.node_register(node=make_node("n1")))
    log.ok(c.job_register(job=make_job("web")))
    v0 = log.store.job_by_id("default", "web")
    log.ok(c.apply_plan_results(result=PlanResult(node_allocation={"n1": [make_alloc("a0", v0, "n1")]}), job=v0))
    log.ok(c.job_register(job=make_job("web", image="nginx:2")))
    v1 = log.store.job_by_id("default", "web")
    deployment = Deployment(id="d1", job_id="web", job_version=1, status_description="Deployment is running but "
                            "requires manual promotion",
                            task_groups={"g": DeploymentState(desired_canaries=1, desired_total=1,
                                                              progress_deadline=10 * MINUTE,
                                                              require_progress_by="2023-01-01T00:00:00Z")})
    canary = make_alloc("c1", v1, "n1", deployment_id="d1", deployment_status=AllocDeploymentStatus(canary=True))
    log.ok(c.apply_plan_results(result=PlanResult(node_allocation={"n1": [canary]}, deployment=deployment), job=v1))
    return log


def test_status_update_marks_a_successful_version_stable():
    log = _canary_deployment()
    result = log.ok(c.deployment_status_update(deployment_id="d1", status="successful",
                                               status_description="Deployment completed successfully"))
    assert log.store.deployment_by_id("d1").status == "successful"
    assert log.store.job_by_id("default", "web").stable
    assert set(result.deployments) == {"d1"} and result.response["DeploymentModifyIndex"] == result.response["Index"]


def test_a_failed_deployment_reverts_in_the_same_write():
    log = _canary_deployment()
    v0 = log.store.job_by_id_and_version("default", "web", 0)
    heard = []
    log.store.add_listener(lambda tables, index: heard.append(index))
    result = log.ok(c.deployment_status_update(deployment_id="d1", status="failed", status_description="failed",
                                               job=v0, evaluation=make_eval("e1", triggered_by="rolling-update")))
    job = log.store.job_by_id("default", "web")
    assert job.version == 2 and job.task_groups == v0.task_groups
    assert result.response["RevertedJobVersion"] == 2 and result.response["EvalID"] == "e1"
    assert set(result.jobs) == {("default", "web")} and len(heard) == 1


@pytest.mark.parametrize("deployment_id, message", [
    ("ghost", 'Deployment ID "ghost" couldn\'t be updated as it does not exist'),
    ("d1", 'Deployment "d1" has terminal status "cancelled":'),
])
def test_status_updates_of_missing_or_terminal_deployments_are_refused(deployment_id, message):
    log = _canary_deployment()
    log.ok(c.deployment_status_update(deployment_id="d1", status="cancelled"))
    before = tables_of(log.store)
    result = log.apply(c.deployment_status_update(deployment_id=deployment_id, status="failed",
                                                  evaluation=make_eval("e1")))
    assert result.error == message and tables_of(log.store) == before


def test_promotion_needs_healthy_canaries():
    log = _canary_deployment()
    before = tables_of(log.store)
    result = log.apply(c.deployment_promote(deployment_id="d1", all_groups=True, evaluation=make_eval("e1")))
    assert result.error == 'Task group "g" has 0/1 healthy allocations'
    assert tables_of(log.store) == before


def test_promotion_clears_the_canary_flag_and_restarts_the_deadline():
    log = _canary_deployment()
    log.ok(c.deployment_alloc_health(deployment_id="d1", healthy_ids=["c1"], timestamp=T0))
    result = log.ok(c.deployment_promote(deployment_id="d1", groups=["g"], evaluation=make_eval("e1"),
                                         updated_at=T0))
    state = log.store.deployment_by_id("d1").task_groups["g"]
    assert state.promoted and state.require_progress_by == "2023-11-14T22:23:20Z"
    assert log.store.deployment_by_id("d1").status_description == "Deployment is running"
    canary = log.store.alloc_by_id("c1")
    assert canary.deployment_status.canary is False and canary.alloc_modify_index == result.response["Index"]
    assert set(result.alloc_nodes) == {"n1"} and set(result.deployments) == {"d1"}
    assert result.response["EvalID"] == "e1"


def test_alloc_health_counts_in_the_deployment():
    log = _canary_deployment()
    result = log.ok(c.deployment_alloc_health(deployment_id="d1", healthy_ids=["c1"], timestamp=T0 + 5))
    status = log.store.alloc_by_id("c1").deployment_status
    assert (status.healthy, status.timestamp, status.canary) == (True, "2023-11-14T22:13:20.000000005Z", True)
    assert log.store.deployment_by_id("d1").task_groups["g"].healthy_allocs == 1
    assert set(result.deployments) == {"d1"} and not result.alloc_nodes


def test_unhealthy_allocations_fail_and_revert_in_one_write():
    log = _canary_deployment()
    v0 = log.store.job_by_id_and_version("default", "web", 0)
    result = log.ok(c.deployment_alloc_health(deployment_id="d1", unhealthy_ids=["c1"], status="failed",
                                              status_description="Failed due to unhealthy allocations",
                                              job=v0, evaluation=make_eval("e1")))
    assert log.store.deployment_by_id("d1").status == "failed"
    assert log.store.deployment_by_id("d1").task_groups["g"].unhealthy_allocs == 1
    assert log.store.job_by_id("default", "web").version == 2
    assert set(result.jobs) == {("default", "web")} and [e.id for e in result.evals] == ["e1"]


@pytest.mark.parametrize("healthy, message", [
    (["c1", "ghost"], 'unknown alloc "ghost"'),
    (["c1", "a0"], 'alloc "a0" is not part of deployment "d1"'),
])
def test_alloc_health_is_refused_whole(healthy, message):
    log = _canary_deployment()
    before = tables_of(log.store)
    result = log.apply(c.deployment_alloc_health(deployment_id="d1", healthy_ids=healthy, status="failed",
                                                 evaluation=make_eval("e1")))
    assert result.error == message and tables_of(log.store) == before


def test_delete_is_refused_whole_when_one_is_unknown():
    log = _canary_deployment()
    before = tables_of(log.store)
    assert log.apply(c.deployment_delete(deployment_ids=["d1", "ghost"])).error == "deployment not found"
    assert tables_of(log.store) == before
    result = log.ok(c.deployment_delete(deployment_ids=["d1"]))
    assert log.store.deployment_by_id("d1") is None and set(result.deployments) == {"d1"}


def test_plan_results_report_new_and_updated_deployments():
    log = _canary_deployment()
    v1 = log.store.job_by_id("default", "web")
    d2 = replace(log.store.deployment_by_id("d1"), id="d2", create_index=0)
    result = log.ok(c.apply_plan_results(
        result=PlanResult(deployment=d2, deployment_updates=[{"DeploymentID": "d1", "Status": "cancelled",
                                                              "StatusDescription": "newer"}]), job=v1))
    assert set(result.deployments) == {"d1", "d2"} and log.store.deployment_by_id("d1").status == "cancelled"
