"""Snapshot isolation for every table and index, table indexes, and listener calls."""

from dataclasses import replace

import pytest
from state_builders import make_alloc, make_deployment, make_eval, make_job, make_node

from orchestrator.state import TABLE_NAMES, Namespace, StateSnapshot, StateStore
from orchestrator.structs import PeriodicConfig


def _populated() -> tuple[StateStore, object]:
    store = StateStore()
    job = store.upsert_job(10, make_job("web"))
    store.upsert_job(11, make_job("web/child", parent_id="web"))
    store.upsert_node(12, make_node("n1"))
    store.upsert_allocs(13, [make_alloc("a1", job, "n1", eval_id="e1", deployment_id="d1")])
    store.upsert_evals(14, [make_eval("e1", status="blocked")])
    store.upsert_deployment(15, make_deployment("d1", job))
    store.upsert_periodic_launch(16, "default", "web", 1)
    return store, job


def _picture(state) -> dict:
    """Everything a reader can see, as plain values."""
    return {
        "jobs": [(j.id, j.version, j.status, j.modify_index) for j in state.jobs(None)],
        "versions": [j.version for j in state.job_versions("default", "web")],
        "children": [j.id for j in state.jobs_by_parent("default", "web")],
        "periodic": [j.id for j in state.periodic_jobs()],
        "nodes": [(n.id, n.status, n.scheduling_eligibility) for n in state.nodes()],
        "allocs": [(a.id, a.node_id, a.client_status) for a in state.allocs()],
        "by_node": {n: [a.id for a in state.allocs_by_node(n)] for n in ("n1", "n2")},
        "by_job": [a.id for a in state.allocs_by_job("default", "web")],
        "by_eval": {e: [a.id for a in state.allocs_by_eval(e)] for e in ("e1", "e2")},
        "by_deployment": {d: [a.id for a in state.allocs_by_deployment(d)] for d in ("d1", "d2")},
        "evals": [(e.id, e.status) for e in state.evals()],
        "evals_by_job": [e.id for e in state.evals_by_job("default", "web")],
        "blocked": [e.id for e in state.blocked_evals()],
        "deployments": [(d.id, d.status, d.task_groups["g"].placed_allocs) for d in state.deployments()],
        "deployments_by_job": [d.id for d in state.deployments_by_job("default", "web")],
        "launch": state.periodic_launch("default", "web"),
        "namespaces": [n.name for n in state.namespaces()],
        "summary": state.job_summary("default", "web"),
        "indexes": {name: state.table_index(name) for name in TABLE_NAMES},
        "latest": state.latest_index(),
    }


def _write_everything(store: StateStore, job) -> None:
    store.upsert_job(20, make_job("web", image="nginx:2"))
    store.upsert_job(21, make_job("web/child2", parent_id="web"))
    store.upsert_node(22, make_node("n2"))
    store.update_node_eligibility(23, "n1", "ineligible")
    store.upsert_allocs(24, [make_alloc("a1", job, "n2", eval_id="e2", deployment_id="d2"),
                             make_alloc("a2", job, "n1", eval_id="e1", deployment_id="d1")])
    store.update_allocs_from_client(25, [make_alloc("a2", job, "n1", client_status="running")])
    store.upsert_evals(26, [make_eval("e1", status="complete"), make_eval("e2")])
    store.update_deployment_status(27, "d1", "failed", "no")
    store.upsert_periodic_launch(28, "default", "web", 2)
    store.upsert_namespace(29, Namespace("prod"))
    store.delete_job(30, "default", "web/child")
    store.upsert_job(31, make_job("cron", job_type="batch", periodic=PeriodicConfig(enabled=True)))
    store.upsert_deployment(32, make_deployment("d2", job))


def test_a_snapshot_sees_none_of_the_writes_after_it():
    store, job = _populated()
    snapshot = store.snapshot()
    assert isinstance(snapshot, StateSnapshot)
    before = _picture(snapshot)
    assert before == _picture(store)
    _write_everything(store, job)
    assert _picture(snapshot) == before
    after = _picture(store)
    for key in before:
        assert after[key] != before[key], key  # every table and index did change in the store
    assert snapshot.index == 16 and store.latest_index() == 32


def test_snapshots_taken_between_writes_each_keep_their_own_picture():
    store, job = _populated()
    first = store.snapshot()
    store.upsert_allocs(20, [make_alloc("a2", job, "n1")])
    second = store.snapshot()
    store.upsert_allocs(21, [make_alloc("a3", job, "n1")])
    store.delete_allocs(22, ["a1"])
    assert [a.id for a in first.allocs_by_node("n1")] == ["a1"]
    assert [a.id for a in second.allocs_by_node("n1")] == ["a1", "a2"]
    assert [a.id for a in store.allocs_by_node("n1")] == ["a2", "a3"]


def test_objects_read_from_a_snapshot_never_change():
    store, job = _populated()
    alloc = store.snapshot().alloc_by_id("a1")
    store.update_allocs_from_client(20, [make_alloc("a1", job, client_status="running")])
    assert alloc.client_status == "pending" and alloc.modify_index == 13
    summary = store.snapshot().job_summary("default", "web")
    store.update_allocs_from_client(21, [make_alloc("a1", job, client_status="complete")])
    assert summary.summary["g"].running == 1


def test_table_indexes_move_only_for_changed_tables():
    store, job = _populated()
    assert store.table_index("nodes") == 12
    assert store.table_index("allocs") == 13
    assert store.table_index("namespaces") == 0
    assert store.latest_index() == 16
    store.update_allocs_from_client(20, [make_alloc("ghost", job)])  # nothing to change
    assert store.latest_index() == 16


def test_listeners_hear_each_write_with_the_tables_it_changed():
    store, job = _populated()
    heard = []

    def listener(tables, index):
        heard.append((tables, index))

    store.add_listener(listener)
    store.upsert_node(20, make_node("n2"))
    store.upsert_allocs(21, [make_alloc("a2", job, "n2")])
    store.update_allocs_from_client(22, [make_alloc("a2", job, "n2", client_status="running")])
    store.update_allocs_from_client(23, [make_alloc("ghost", job)])
    store.upsert_job(24, make_job("web", image="v2"))
    store.remove_listener(listener)
    store.upsert_node(25, make_node("n3"))
    assert heard == [
        (frozenset({"nodes"}), 20),
        (frozenset({"allocs", "job_summary"}), 21),
        (frozenset({"allocs", "job_summary"}), 22),
        (frozenset({"jobs", "job_versions"}), 24),  # same groups: the summary is unchanged
    ]


def test_a_refused_write_tells_no_listener():
    store, _ = _populated()
    heard = []
    store.add_listener(lambda tables, index: heard.append(index))
    with pytest.raises(LookupError):
        store.delete_node(20, "missing")
    assert heard == []


def test_snapshot_reads_are_consistent_with_store_reads_after_many_writes():
    store, job = _populated()
    for i in range(50):
        snapshot = store.snapshot()
        store.upsert_allocs(100 + i, [replace(make_alloc(f"x{i}", job, f"n{i % 3}"), eval_id=f"e{i % 2}")])
        assert snapshot.alloc_by_id(f"x{i}") is None
    assert len(store.allocs_by_node("n0")) == 17
    assert len(store.allocs_by_eval("e0")) == 25
