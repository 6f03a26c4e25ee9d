"""Allocations: indexes through insert, update, move and delete; client updates; summaries; deployments."""

from dataclasses import replace

from state_builders import make_alloc, make_deployment, make_eval, make_job

from orchestrator.state import ALLOCS, StateStore
from orchestrator.structs import DesiredTransition, TaskState, encode
from orchestrator.structs.alloc import AllocDeploymentStatus


def _store_with_job(**job_fields):
    store = StateStore()
    job = store.upsert_job(10, make_job("web", **job_fields))
    return store, job


def test_insert_and_every_index():
    store, job = _store_with_job()
    store.upsert_allocs(11, [make_alloc("a1", job, "n1", eval_id="e1", deployment_id="d1"),
                             make_alloc("a2", job, "n2", eval_id="e1"),
                             make_alloc("b1", job, "n1", eval_id="e2")])
    a1 = store.alloc_by_id("a1")
    assert (a1.create_index, a1.modify_index, a1.alloc_modify_index) == (11, 11, 11)
    assert [a.id for a in store.allocs()] == ["a1", "a2", "b1"]
    assert [a.id for a in store.allocs("a")] == ["a1", "a2"]
    assert [a.id for a in store.allocs_by_node("n1")] == ["a1", "b1"]
    assert [a.id for a in store.allocs_by_job("default", "web")] == ["a1", "a2", "b1"]
    assert [a.id for a in store.allocs_by_eval("e1")] == ["a1", "a2"]
    assert [a.id for a in store.allocs_by_deployment("d1")] == ["a1"]
    assert store.allocs_by_node("n3") == []
    assert store.table_index(ALLOCS) == 11


def test_an_allocation_moving_node_moves_in_every_index():
    store, job = _store_with_job()
    store.upsert_allocs(11, [make_alloc("a1", job, "n1", eval_id="e1")])
    store.upsert_allocs(12, [make_alloc("a1", job, "n2", eval_id="e2", deployment_id="d2")])
    assert store.allocs_by_node("n1") == [] and store.allocs_by_eval("e1") == []
    assert [a.id for a in store.allocs_by_node("n2")] == ["a1"]
    assert [a.id for a in store.allocs_by_eval("e2")] == ["a1"]
    assert [a.id for a in store.allocs_by_deployment("d2")] == ["a1"]
    assert store.alloc_by_id("a1").create_index == 11


def test_delete_removes_from_every_index():
    store, job = _store_with_job()
    store.upsert_allocs(11, [make_alloc("a1", job, "n1", eval_id="e1", deployment_id="d1"),
                             make_alloc("a2", job, "n1")])
    store.delete_allocs(12, ["a1", "missing"])
    assert store.alloc_by_id("a1") is None
    assert [a.id for a in store.allocs_by_node("n1")] == ["a2"]
    assert store.allocs_by_eval("e1") == [] and store.allocs_by_deployment("d1") == []
    assert store.table_index(ALLOCS) == 12


def test_terminal_filter_by_node():
    store, job = _store_with_job()
    store.upsert_allocs(11, [make_alloc("a1", job, "n1"), make_alloc("a2", job, "n1", desired_status="stop")])
    assert [a.id for a in store.allocs_by_node_terminal("n1", False)] == ["a1"]
    assert [a.id for a in store.allocs_by_node_terminal("n1", True)] == ["a2"]


def test_server_update_keeps_the_clients_side_and_a_missing_job():
    store, job = _store_with_job()
    store.upsert_allocs(11, [make_alloc("a1", job)])
    store.update_allocs_from_client(12, [make_alloc("a1", job, client_status="running",
                                                    task_states={"t": TaskState(state="running")})])
    store.upsert_allocs(13, [replace(make_alloc("a1", job, desired_description="touched"), job=None)])
    a1 = store.alloc_by_id("a1")
    assert a1.client_status == "running" and a1.task_states["t"].state == "running"
    assert a1.job is not None and a1.desired_description == "touched"
    # The servers may mark an allocation lost themselves.
    store.upsert_allocs(14, [replace(a1, client_status="lost", desired_status="stop")])
    assert store.alloc_by_id("a1").client_status == "lost"


def test_alloc_modify_index_moves_only_when_the_servers_change_what_runs():
    store, job = _store_with_job()
    store.upsert_allocs(11, [make_alloc("a1", job)])
    store.upsert_allocs(12, [make_alloc("a1", job)])  # same job, same resources
    assert (store.alloc_by_id("a1").modify_index, store.alloc_by_id("a1").alloc_modify_index) == (12, 11)
    store.upsert_allocs(13, [make_alloc("a1", job, cpu=200)])
    assert store.alloc_by_id("a1").alloc_modify_index == 13
    new_job = store.upsert_job(14, make_job("web", image="nginx:2"))
    store.upsert_allocs(15, [make_alloc("a1", new_job, cpu=200)])
    assert store.alloc_by_id("a1").alloc_modify_index == 15
    store.upsert_allocs(16, [make_alloc("a1", new_job, cpu=200, desired_status="stop")])
    assert store.alloc_by_id("a1").alloc_modify_index == 16
    store.update_allocs_from_client(17, [make_alloc("a1", new_job, client_status="complete")])
    assert (store.alloc_by_id("a1").modify_index, store.alloc_by_id("a1").alloc_modify_index) == (17, 16)


def test_client_update_merges_only_client_fields_and_ignores_unknown_ids():
    store, job = _store_with_job()
    store.upsert_allocs(11, [make_alloc("a1", job, "n1", desired_description="placed")])
    report = make_alloc("a1", job, "n9", client_status="running", client_description="Tasks are running",
                        desired_description="client has no say", modify_time=777)
    store.update_allocs_from_client(12, [report, make_alloc("ghost", job, client_status="running")])
    a1 = store.alloc_by_id("a1")
    assert (a1.client_status, a1.client_description, a1.modify_time) == ("running", "Tasks are running", 777)
    assert (a1.node_id, a1.desired_description, a1.modify_index) == ("n1", "placed", 12)
    assert store.alloc_by_id("ghost") is None


def test_desired_transition_merges_set_fields_and_stores_evals():
    store, job = _store_with_job()
    store.upsert_allocs(11, [make_alloc("a1", job, desired_transition=DesiredTransition(reschedule=True))])
    store.update_alloc_desired_transition(12, {"a1": DesiredTransition(migrate=True), "ghost": DesiredTransition()},
                                          [make_eval("e9")])
    a1 = store.alloc_by_id("a1")
    assert a1.desired_transition == DesiredTransition(migrate=True, reschedule=True)
    assert (a1.modify_index, a1.alloc_modify_index) == (12, 11)
    assert store.eval_by_id("e9").create_index == 12


def test_summary_counts_follow_client_status():
    store, job = _store_with_job(groups=("g", "h"))
    store.update_queued(11, "default", "web", {"g": 2, "h": 1, "gone": 5})
    summary = store.job_summary("default", "web")
    assert (summary.summary["g"].queued, summary.summary["h"].queued, summary.modify_index) == (2, 1, 11)
    assert "gone" not in summary.summary

    store.upsert_allocs(12, [make_alloc("a1", job), make_alloc("a2", job), make_alloc("b1", job, group="h")])
    g = store.job_summary("default", "web").summary["g"]
    assert (g.queued, g.starting) == (0, 2)

    def report(index, alloc_id, status, group="g"):
        store.update_allocs_from_client(index, [make_alloc(alloc_id, job, group=group, client_status=status)])

    report(13, "a1", "running")
    report(14, "a2", "running")
    report(15, "a2", "failed")
    report(16, "a1", "complete")
    report(17, "b1", "lost", group="h")
    summary = store.job_summary("default", "web")
    g, h = summary.summary["g"], summary.summary["h"]
    assert (g.starting, g.running, g.complete, g.failed) == (0, 0, 1, 1)
    assert (h.starting, h.lost) == (0, 1)
    assert summary.modify_index == 17 and summary.create_index == 10
    assert encode(summary) == {
        "JobID": "web", "Namespace": "default",
        "Summary": {"g": {"Queued": 0, "Complete": 1, "Failed": 1, "Running": 0, "Starting": 0, "Lost": 0},
                    "h": {"Queued": 0, "Complete": 0, "Failed": 0, "Running": 0, "Starting": 0, "Lost": 1}},
        "Children": {"Pending": 0, "Running": 0, "Dead": 0}, "CreateIndex": 10, "ModifyIndex": 17}


def test_summary_untouched_when_client_status_is_unchanged():
    store, job = _store_with_job()
    store.upsert_allocs(11, [make_alloc("a1", job)])
    store.update_allocs_from_client(12, [make_alloc("a1", job)])  # still pending
    assert store.job_summary("default", "web").modify_index == 11


def test_new_task_groups_join_the_summary():
    store, _ = _store_with_job()
    store.upsert_job(11, make_job("web", groups=("g", "extra")))
    assert sorted(store.job_summary("default", "web").summary) == ["extra", "g"]


def test_deployment_counts_placements_health_and_canaries():
    store, job = _store_with_job()
    store.upsert_deployment(11, make_deployment("d1", job))
    canary = AllocDeploymentStatus(canary=True)
    store.upsert_allocs(12, [make_alloc("a1", job, deployment_id="d1", deployment_status=canary),
                             make_alloc("a2", job, deployment_id="d1")])
    state = store.deployment_by_id("d1").task_groups["g"]
    assert (state.placed_allocs, state.placed_canaries) == (2, ["a1"])
    assert store.deployment_by_id("d1").modify_index == 12

    healthy = make_alloc("a1", job, deployment_id="d1", client_status="running",
                         deployment_status=AllocDeploymentStatus(healthy=True, timestamp="t1"))
    unhealthy = make_alloc("a2", job, deployment_id="d1", client_status="running",
                           deployment_status=AllocDeploymentStatus(healthy=False))
    store.update_allocs_from_client(13, [healthy, unhealthy])
    state = store.deployment_by_id("d1").task_groups["g"]
    assert (state.healthy_allocs, state.unhealthy_allocs) == (1, 1)
    a1 = store.alloc_by_id("a1")
    assert a1.deployment_status.canary and a1.deployment_status.healthy
    assert a1.deployment_status.modify_index == 13

    store.update_allocs_from_client(14, [replace(healthy, deployment_status=AllocDeploymentStatus(healthy=False))])
    state = store.deployment_by_id("d1").task_groups["g"]
    assert (state.healthy_allocs, state.unhealthy_allocs) == (0, 2)


def test_deployment_crud_and_status():
    store, job = _store_with_job()
    store.upsert_deployment(11, make_deployment("d1", job))
    store.upsert_deployment(12, make_deployment("d2", job))
    assert store.latest_deployment_by_job("default", "web").id == "d2"
    assert [d.id for d in store.deployments_by_job("default", "web")] == ["d1", "d2"]
    assert [d.id for d in store.deployments("d")] == ["d1", "d2"]
    store.update_deployment_status(13, "d2", "successful", "Deployment completed successfully")
    d2 = store.deployment_by_id("d2")
    assert (d2.status, d2.status_description, d2.create_index, d2.modify_index) == (
        "successful", "Deployment completed successfully", 12, 13)
    assert store.job_by_id("default", "web").stable  # a successful deployment marks its version stable
    store.delete_deployments(14, ["d2"])
    assert store.latest_deployment_by_job("default", "web").id == "d1"
    assert store.latest_deployment_by_job("default", "nope") is None


def test_deployment_progress_deadline_starts_at_placement_and_moves_with_health():
    store, job = _store_with_job()
    deployment = make_deployment("d1", job)
    deployment.task_groups["g"].progress_deadline = 600 * 10**9
    store.upsert_deployment(11, deployment)
    store.upsert_allocs(12, [make_alloc("a1", job, deployment_id="d1", create_time=1_700_000_000 * 10**9)])
    assert store.deployment_by_id("d1").task_groups["g"].require_progress_by == "2023-11-14T22:23:20Z"
    healthy = make_alloc("a1", job, deployment_id="d1", client_status="running",
                         deployment_status=AllocDeploymentStatus(healthy=True, timestamp="2023-11-14T22:20:00Z"))
    store.update_allocs_from_client(13, [healthy])
    assert store.deployment_by_id("d1").task_groups["g"].require_progress_by == "2023-11-14T22:30:00Z"
