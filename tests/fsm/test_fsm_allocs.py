"""Allocation commands: plan results (job re-attached), client updates, desired transitions, stops."""

from dataclasses import replace

from builders import make_job, make_node
from fsm_helpers import RaftHarness, tables_of
from state_builders import make_eval

from orchestrator.fsm import commands as c
from orchestrator.structs import Allocation, DesiredTransition, PlanResult, TaskState, UpdateStrategy
from orchestrator.structs.alloc import AllocDeploymentStatus

T0 = 1_700_000_000_000_000_000


def _running(count: int = 3, job=None):
    h = RaftHarness(seed=7)
    for i in range(3):
        h.log.ok(c.node_register(node=make_node(i)))
    h.register_and_schedule(job or make_job("web", count=count))
    return h


def test_plan_results_place_allocations_sharing_the_stored_job():
    h = _running()
    result = h.results[-1]
    # The plan's job is the version stored when the scheduler ran (the job row has moved on to running).
    version = h.store.job_by_id_and_version("default", "web", 0)
    allocs = h.store.allocs_by_job("default", "web")
    assert len(allocs) == 3 and all(a.job is version for a in allocs)
    assert result.alloc_index == allocs[0].create_index
    summary = h.store.job_summary("default", "web").summary["g"]
    assert (summary.starting, summary.queued) == (3, 0)


def test_plan_results_report_the_nodes_whose_clients_must_pull():
    h = _running()
    job = h.store.job_by_id("default", "web")
    victim = h.store.allocs_by_job("default", "web")[0]
    stop = replace(victim, desired_status="stop", desired_description="alloc not needed")
    placed = Allocation(id="new1", namespace="default", job_id="web", job=job, task_group="g",
                        node_id=make_node(2).id, name="web.g[9]")
    applied = h.log.ok(c.apply_plan_results(result=PlanResult(node_update={victim.node_id: [stop]},
                                                              node_allocation={placed.node_id: [placed]}),
                                            job=job, eval_id="e9", evals=[make_eval("e9", status="complete")],
                                            updated_at=T0))
    assert set(applied.alloc_nodes) == {victim.node_id, placed.node_id}
    node_class = h.store.node_by_id(victim.node_id).computed_class
    assert set(applied.unblock_classes) == {node_class}  # the stopped allocation freed its resources
    assert applied.response == {"Index": applied.response["Index"], "AllocIndex": applied.response["Index"],
                                "EvalID": "e9"}
    assert [e.id for e in applied.evals] == ["e9"]
    stopped, new = h.store.alloc_by_id(victim.id), h.store.alloc_by_id("new1")
    assert (stopped.desired_status, stopped.modify_time) == ("stop", T0)
    assert (new.create_time, new.modify_time) == (T0, T0) and new.job is h.store.job_by_id("default", "web")


def test_placements_for_another_version_get_that_version_back():
    h = _running(count=2)
    v0 = h.store.job_by_id("default", "web")
    kept = h.store.allocs_by_job("default", "web")[0]
    h.log.ok(c.job_register(job=make_job("web", count=2, memory=256)))
    v1 = h.store.job_by_id("default", "web")
    assert v1.version == 1
    # An attribute update of an allocation left on v0, and a (made up) new allocation still for v0.
    moved = replace(kept, deployment_id="d7")
    fresh = Allocation(id="fresh", namespace="default", job_id="web", job=v0, task_group="g",
                       node_id=kept.node_id, name="web.g[5]")
    h.log.ok(c.apply_plan_results(result=PlanResult(node_allocation={kept.node_id: [moved, fresh]}), job=v1))
    assert h.store.alloc_by_id(kept.id).job is kept.job
    assert h.store.alloc_by_id(kept.id).deployment_id == "d7"
    assert h.store.alloc_by_id("fresh").job is h.store.job_by_id_and_version("default", "web", 0)


def test_client_updates_change_only_client_fields_and_unblock_on_terminal():
    h = _running()
    alloc = h.store.allocs_by_job("default", "web")[0]
    running = replace(alloc, client_status="running", desired_status="stop", node_id="elsewhere",
                      task_states={"t": TaskState(state="running")})
    result = h.log.ok(c.alloc_client_update(allocs=[running], update_time=T0))
    stored = h.store.alloc_by_id(alloc.id)
    assert (stored.client_status, stored.desired_status, stored.node_id) == ("running", "run", alloc.node_id)
    assert stored.task_states["t"].state == "running" and stored.modify_time == T0
    assert stored.alloc_modify_index == alloc.alloc_modify_index
    assert not result.unblock_classes and not result.alloc_nodes
    failed = replace(alloc, client_status="failed")
    reschedule = make_eval("r1", "web", triggered_by="alloc-failure")
    result = h.log.ok(c.alloc_client_update(allocs=[failed, replace(alloc, id="ghost")], evals=[reschedule]))
    assert set(result.unblock_classes) == {h.store.node_by_id(alloc.node_id).computed_class}
    assert [e.id for e in result.evals] == ["r1"] and h.store.eval_by_id("r1").status == "pending"
    assert h.store.alloc_by_id("ghost") is None
    assert h.store.job_summary("default", "web").summary["g"].failed == 1


def test_a_stale_client_update_never_brings_a_client_terminal_allocation_back():
    h = _running()
    alloc = h.store.allocs_by_job("default", "web")[0]
    for final in ("failed", "complete", "lost"):
        h.log.ok(c.alloc_client_update(allocs=[replace(alloc, client_status=final)]))
        before = h.store.alloc_by_id(alloc.id)
        for stale in ("pending", "running", ""):
            update = replace(alloc, client_status=stale, task_states={"t": TaskState(state="running")})
            result = h.log.ok(c.alloc_client_update(allocs=[update], update_time=T0))
            assert h.store.alloc_by_id(alloc.id) is before, (final, stale)
            assert not result.alloc_nodes and not result.unblock_classes
    # Another terminal report still lands (a lost allocation the client saw complete), and so does the
    # rest of a command that carries a stale report.
    other = h.store.allocs_by_job("default", "web")[1]
    h.log.ok(c.alloc_client_update(allocs=[replace(alloc, client_status="complete"),
                                           replace(other, client_status="running")]))
    assert h.store.alloc_by_id(alloc.id).client_status == "complete"
    assert h.store.alloc_by_id(other.id).client_status == "running"


def test_client_health_reports_count_in_the_deployment():
    job = replace(make_job("web", count=2), task_groups=[replace(make_job("web", count=2).task_groups[0],
                                                                  update=UpdateStrategy(max_parallel=2))])
    h = _running(job=job)
    deployment = h.store.latest_deployment_by_job("default", "web")
    assert deployment is not None and deployment.task_groups["g"].placed_allocs == 2
    alloc = h.store.allocs_by_deployment(deployment.id)[0]
    healthy = replace(alloc, client_status="running",
                      deployment_status=AllocDeploymentStatus(healthy=True, timestamp="t"))
    result = h.log.ok(c.alloc_client_update(allocs=[healthy]))
    assert set(result.deployments) == {deployment.id}
    assert h.store.deployment_by_id(deployment.id).task_groups["g"].healthy_allocs == 1


def test_desired_transition_marks_allocations_with_their_evaluations():
    h = _running()
    alloc = h.store.allocs_by_job("default", "web")[0]
    result = h.log.ok(c.alloc_desired_transition(allocs={alloc.id: DesiredTransition(migrate=True), "ghost":
                                                         DesiredTransition(migrate=True)},
                                                 evals=[make_eval("m1", "web", triggered_by="node-drain")]))
    assert h.store.alloc_by_id(alloc.id).desired_transition.migrate is True
    assert [e.id for e in result.evals] == ["m1"]
    assert not result.alloc_nodes  # nothing the client runs changed yet: the eval's plan will do that


def test_alloc_stop_marks_the_allocation_to_migrate():
    h = _running()
    alloc = h.store.allocs_by_job("default", "web")[0]
    result = h.log.ok(c.alloc_stop(alloc_id=alloc.id, evaluation=make_eval("s1", "web", triggered_by="alloc-stop")))
    assert h.store.alloc_by_id(alloc.id).desired_transition.migrate is True
    assert result.response["EvalID"] == "s1" and result.response["EvalCreateIndex"] == result.response["Index"]
    assert [e.id for e in result.evals] == ["s1"] and result.evals[0].status == "pending"


def test_stopping_an_unknown_allocation_is_refused():
    h = _running()
    before = tables_of(h.store)
    result = h.log.apply(c.alloc_stop(alloc_id="ghost", evaluation=make_eval("s1", "web")))
    assert result.error == 'Unknown allocation "ghost"' and tables_of(h.store) == before
