"""Jobs: registration and versions, stability, purge, status, children, namespaces, periodic launches."""

from dataclasses import replace

import pytest
from state_builders import make_alloc, make_eval, make_job

from orchestrator.state import (
    JOB_SUMMARY,
    JOB_VERSIONS,
    JOBS,
    PERIODIC_LAUNCH,
    Namespace,
    NotFoundError,
    StateError,
    StateStore,
)
from orchestrator.structs import ParameterizedJobConfig, PeriodicConfig


def test_insert_sets_indexes_and_reads_back():
    store = StateStore()
    stored = store.upsert_job(10, make_job("web"))
    assert (stored.create_index, stored.modify_index, stored.job_modify_index, stored.version) == (10, 10, 10, 0)
    assert store.job_by_id("default", "web") is stored
    assert store.job_by_id("default", "nope") is None
    assert [j.id for j in store.job_versions("default", "web")] == ["web"]
    assert store.table_index(JOBS) == store.table_index(JOB_VERSIONS) == store.table_index(JOB_SUMMARY) == 10
    assert store.latest_index() == 10


def test_writes_never_change_the_callers_object():
    store = StateStore()
    job = make_job("web")
    store.upsert_job(10, job)
    assert (job.create_index, job.status) == (0, "")


def test_unchanged_spec_keeps_version_and_changed_spec_bumps_it():
    store = StateStore()
    store.upsert_job(10, make_job("web"))
    again = store.upsert_job(11, make_job("web"))
    assert (again.version, again.job_modify_index, again.modify_index, again.create_index) == (0, 10, 11, 10)
    changed = store.upsert_job(12, make_job("web", image="nginx:2"))
    assert (changed.version, changed.job_modify_index, changed.create_index) == (1, 12, 10)
    versions = store.job_versions("default", "web")
    assert [v.version for v in versions] == [1, 0]  # newest first
    assert versions[1].task_groups[0].tasks[0].config["image"] == "nginx:1"
    assert store.job_by_id_and_version("default", "web", 0).version == 0
    assert store.job_by_id_and_version("default", "web", 7) is None


def test_stop_is_a_spec_change():
    store = StateStore()
    store.upsert_job(10, make_job("web"))
    assert store.upsert_job(11, make_job("web", stop=True)).version == 1


def test_keep_version_stores_the_jobs_own_version():
    store = StateStore()
    store.upsert_job(10, make_job("web"))
    job = store.upsert_job(11, make_job("web", image="nginx:2"))
    kept = store.upsert_job(12, replace(job, meta={"x": "y"}), keep_version=True)
    assert (kept.version, kept.job_modify_index, kept.modify_index) == (1, 11, 12)


def test_versions_limit_keeps_the_newest_and_the_newest_stable():
    store = StateStore(job_versions_limit=3)
    for i in range(5):
        store.upsert_job(10 + i, make_job("web", image=f"nginx:{i}"))
    assert [v.version for v in store.job_versions("default", "web")] == [4, 3, 2]

    store = StateStore(job_versions_limit=3)
    store.upsert_job(10, make_job("web", image="v0"))
    store.set_job_stable(11, "default", "web", 0, True)
    for i in range(1, 4):
        store.upsert_job(11 + i, make_job("web", image=f"v{i}"))
    assert [v.version for v in store.job_versions("default", "web")] == [3, 2, 0]
    assert store.job_by_id_and_version("default", "web", 0).stable


def test_set_job_stable_updates_the_version_and_the_current_job():
    store = StateStore()
    store.upsert_job(10, make_job("web"))
    store.upsert_job(11, make_job("web", image="nginx:2"))
    store.set_job_stable(12, "default", "web", 0, True)
    assert store.job_by_id_and_version("default", "web", 0).stable
    assert not store.job_by_id("default", "web").stable  # version 1 is current
    store.set_job_stable(13, "default", "web", 1, True)
    assert store.job_by_id("default", "web").stable
    assert store.job_by_id("default", "web").version == 1
    with pytest.raises(NotFoundError):
        store.set_job_stable(14, "default", "web", 9, True)


def test_delete_job_purges_versions_summary_and_launch_but_not_allocs():
    store = StateStore()
    job = store.upsert_job(10, make_job("web"))
    store.upsert_allocs(11, [make_alloc("a1", job)])
    store.upsert_periodic_launch(12, "default", "web", 123)
    store.delete_job(13, "default", "web")
    assert store.job_by_id("default", "web") is None
    assert store.job_versions("default", "web") == []
    assert store.job_summary("default", "web") is None
    assert store.periodic_launch("default", "web") is None
    assert [a.id for a in store.allocs_by_job("default", "web")] == ["a1"]
    assert store.table_index(PERIODIC_LAUNCH) == 13
    with pytest.raises(NotFoundError):
        store.delete_job(14, "default", "web")


def test_allocs_of_an_earlier_registration_are_told_apart():
    store = StateStore()
    old = store.upsert_job(10, make_job("web"))
    store.upsert_allocs(11, [make_alloc("a1", old)])
    store.delete_job(12, "default", "web")
    new = store.upsert_job(13, make_job("web"))
    store.upsert_allocs(14, [make_alloc("a2", new)])
    assert [a.id for a in store.allocs_by_job("default", "web")] == ["a1", "a2"]
    assert [a.id for a in store.allocs_by_job("default", "web", any_create_index=False)] == ["a2"]
    assert store.job_summary("default", "web").summary["g"].starting == 1  # a1 not counted again


def test_job_listing_by_namespace_and_prefix():
    store = StateStore()
    store.upsert_namespace(1, Namespace("prod"))
    for i, (ns, job_id) in enumerate([("default", "web"), ("default", "api"), ("prod", "web"), ("default", "wax")]):
        store.upsert_job(10 + i, make_job(job_id, namespace=ns))
    assert [j.id for j in store.jobs()] == ["api", "wax", "web"]
    assert [j.id for j in store.jobs(prefix="w")] == ["wax", "web"]
    assert [(j.namespace, j.id) for j in store.jobs("prod")] == [("prod", "web")]
    assert [(j.namespace, j.id) for j in store.jobs(None, prefix="we")] == [("default", "web"), ("prod", "web")]


def test_unknown_namespace_is_refused():
    store = StateStore()
    with pytest.raises(NotFoundError, match="nonexistent namespace"):
        store.upsert_job(10, make_job("web", namespace="nope"))
    assert store.latest_index() == 0


def test_job_status_follows_allocations_and_evaluations():
    store = StateStore()
    job = store.upsert_job(10, make_job("web"))
    assert job.status == "pending"
    store.upsert_evals(11, [make_eval("e1")])
    assert store.job_by_id("default", "web").status == "pending"
    store.upsert_allocs(12, [make_alloc("a1", job)])
    assert store.job_by_id("default", "web").status == "running"
    assert store.job_by_id("default", "web").modify_index == 12
    store.upsert_evals(13, [make_eval("e1", status="complete")])
    store.update_allocs_from_client(14, [make_alloc("a1", job, client_status="complete")])
    assert store.job_by_id("default", "web").status == "dead"
    assert store.job_by_id("default", "web").modify_index == 14
    # Registering a new version with a new evaluation makes it pending again.
    store.upsert_job(15, make_job("web", image="nginx:2"))
    store.upsert_evals(16, [make_eval("e2")])
    assert store.job_by_id("default", "web").status == "pending"


def test_status_is_only_rewritten_when_it_changes():
    store = StateStore()
    job = store.upsert_job(10, make_job("web"))
    store.upsert_allocs(11, [make_alloc("a1", job)])
    store.upsert_allocs(12, [make_alloc("a2", job)])
    assert store.job_by_id("default", "web").modify_index == 11


def test_stopped_job_is_dead_once_its_allocations_are_stopped():
    store = StateStore()
    job = store.upsert_job(10, make_job("web"))
    store.upsert_allocs(11, [make_alloc("a1", job, client_status="running")])
    store.upsert_job(12, make_job("web", stop=True))
    assert store.job_by_id("default", "web").status == "running"
    store.upsert_allocs(13, [replace(store.alloc_by_id("a1"), desired_status="stop")])
    assert store.job_by_id("default", "web").status == "dead"


def test_garbage_collecting_everything_leaves_a_dead_job():
    store = StateStore()
    job = store.upsert_job(10, make_job("web"))
    store.upsert_evals(11, [make_eval("e1")])
    store.delete_evals(12, ["e1"])
    assert store.job_by_id("default", "web").status == "dead"
    assert store.job_by_id("default", job.id).modify_index == 12


def test_periodic_and_parameterized_parents_run_until_stopped_and_count_children():
    store = StateStore()
    periodic = make_job("cron", job_type="batch", periodic=PeriodicConfig(enabled=True, spec="* * * * *"))
    assert store.upsert_job(10, periodic).status == "running"
    store.upsert_job(11, make_job("param", job_type="batch", parameterized_job=ParameterizedJobConfig()))
    assert [j.id for j in store.periodic_jobs()] == ["cron"]
    assert [j.id for j in store.jobs_by_periodic(False)] == ["param"]
    assert [j.id for j in store.jobs_by_type("batch")] == ["cron", "param"]

    child = store.upsert_job(12, make_job("cron/periodic-1", job_type="batch", parent_id="cron"))
    assert [j.id for j in store.jobs_by_parent("default", "cron")] == ["cron/periodic-1"]
    children = store.job_summary("default", "cron").children
    assert (children.pending, children.running, children.dead) == (1, 0, 0)
    store.upsert_allocs(13, [make_alloc("a1", child)])
    children = store.job_summary("default", "cron").children
    assert (children.pending, children.running, children.dead) == (0, 1, 0)
    store.update_allocs_from_client(14, [make_alloc("a1", child, client_status="complete")])
    children = store.job_summary("default", "cron").children
    assert (children.pending, children.running, children.dead) == (0, 0, 1)
    store.delete_job(15, "default", "cron/periodic-1")
    assert store.job_summary("default", "cron").children.dead == 0
    assert store.job_summary("default", "cron").modify_index == 15

    assert store.upsert_job(16, replace(periodic, stop=True)).status == "dead"


def test_system_jobs_run_until_stopped():
    store = StateStore()
    assert store.upsert_job(10, make_job("sys", job_type="system")).status == "running"


def test_namespaces():
    store = StateStore()
    assert [n.name for n in store.namespaces()] == ["default"]
    store.upsert_namespace(5, Namespace("prod", "production"))
    store.upsert_namespace(6, Namespace("prod", "prod!"))
    prod = store.namespace_by_name("prod")
    assert (prod.description, prod.create_index, prod.modify_index) == ("prod!", 5, 6)
    store.upsert_job(7, make_job("web", namespace="prod"))
    with pytest.raises(StateError, match="non-terminal job"):
        store.delete_namespace(8, "prod")
    with pytest.raises(StateError):
        store.delete_namespace(8, "default")
    store.delete_job(8, "prod", "web")
    store.delete_namespace(9, "prod")
    assert [n.name for n in store.namespaces()] == ["default"]
    assert store.table_index("namespaces") == 9


def test_periodic_launches():
    store = StateStore()
    store.upsert_periodic_launch(5, "default", "cron", 1_000)
    store.upsert_periodic_launch(6, "default", "cron", 2_000)
    launch = store.periodic_launch("default", "cron")
    assert (launch.launch, launch.create_index, launch.modify_index) == (2_000, 5, 6)
    assert store.periodic_launches() == [launch]
    store.delete_periodic_launch(7, "default", "cron")
    assert store.periodic_launch("default", "cron") is None
    with pytest.raises(NotFoundError):
        store.delete_periodic_launch(8, "default", "cron")
