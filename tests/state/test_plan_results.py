"""apply_plan_result: stops, preemptions, placements, deployments and evaluations in one write."""

from dataclasses import replace

from state_builders import make_alloc, make_deployment, make_eval, make_job

from orchestrator.state import StateStore
from orchestrator.structs import Plan, PlanResult, TaskState


def _running_store():
    store = StateStore()
    job = store.upsert_job(10, make_job("web"))
    store.upsert_allocs(11, [make_alloc("old1", job, "n1"), make_alloc("old2", job, "n2"),
                             make_alloc("victim", job, "n2")])
    store.update_allocs_from_client(12, [make_alloc("old1", job, "n1", client_status="running",
                                                    task_states={"t": TaskState(state="running")})])
    return store, job


def test_one_write_applies_everything_and_calls_listeners_once():
    store, job = _running_store()
    stale_view = store.snapshot()  # what the scheduler planned from: old1 still pending there
    plan = Plan(eval_id="e1", job=job)
    plan.append_stopped_alloc(stale_view.alloc_by_id("old1"), "alloc is being updated")
    plan.append_preempted_alloc(stale_view.alloc_by_id("victim"), "new1")
    deployment = make_deployment("d1", job)
    result = PlanResult(node_update=plan.node_update, node_preemptions=plan.node_preemptions,
                        node_allocation={"n3": [make_alloc("new1", job, "n3", eval_id="e1", deployment_id="d1")]},
                        deployment=deployment,
                        deployment_updates=[{"DeploymentID": "d0", "Status": "cancelled",
                                             "StatusDescription": "newer"}])
    store.upsert_deployment(13, make_deployment("d0", job))
    heard = []
    store.add_listener(lambda tables, index: heard.append((tables, index)))

    store.apply_plan_result(14, result, [make_eval("e1", status="complete"), make_eval("pre", "other")])

    assert heard == [(frozenset({"allocs", "deployments", "evals", "job_summary"}), 14)]
    old1 = store.alloc_by_id("old1")
    # The stop is applied to the stored allocation: the client's newer status and task states survive.
    assert (old1.desired_status, old1.desired_description) == ("stop", "alloc is being updated")
    assert old1.client_status == "running" and old1.task_states["t"].state == "running"
    assert (old1.modify_index, old1.alloc_modify_index, old1.create_index) == (14, 14, 11)
    victim = store.alloc_by_id("victim")
    assert (victim.desired_status, victim.preempted_by_allocation) == ("evict", "new1")
    new1 = store.alloc_by_id("new1")
    assert new1.create_index == 14 and [a.id for a in store.allocs_by_node("n3")] == ["new1"]
    d1 = store.deployment_by_id("d1")
    assert (d1.create_index, d1.task_groups["g"].placed_allocs) == (14, 1)
    assert store.deployment_by_id("d0").status == "cancelled"
    assert store.eval_by_id("e1").status == "complete" and store.eval_by_id("pre").create_index == 14
    assert store.job_summary("default", "web").summary["g"].starting == 3  # old2, victim, new1


def test_stops_of_collected_allocations_are_skipped_and_lost_is_kept():
    store, job = _running_store()
    gone = make_alloc("gone", job, "n1")
    lost = replace(store.alloc_by_id("old2"), desired_status="stop", client_status="lost")
    store.apply_plan_result(20, PlanResult(node_update={"n1": [gone], "n2": [lost]}))
    assert store.alloc_by_id("gone") is None
    old2 = store.alloc_by_id("old2")
    assert (old2.desired_status, old2.client_status) == ("stop", "lost")
    assert store.job_summary("default", "web").summary["g"].lost == 1


def test_thin_stop_diffs_keep_the_stored_job_and_resources():
    store, job = _running_store()
    thin = replace(make_alloc("old2", job, "n2"), job=None, allocated_resources=None, desired_status="stop")
    store.apply_plan_result(20, PlanResult(node_update={"n2": [thin]}))
    old2 = store.alloc_by_id("old2")
    assert old2.job is not None and old2.allocated_resources is not None
    assert old2.desired_status == "stop"
