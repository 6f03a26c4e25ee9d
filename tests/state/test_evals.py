"""Evaluations: CRUD, indexes, blocked evaluations, queued counts they report, garbage collection."""

from state_builders import make_alloc, make_eval, make_job

from orchestrator.state import EVALS, StateStore
from orchestrator.structs import AllocMetric


def test_crud_and_indexes():
    store = StateStore()
    store.upsert_evals(10, [make_eval("e1", "web"), make_eval("e2", "api", status="blocked"),
                            make_eval("f1", "web")])
    assert [e.id for e in store.evals()] == ["e1", "e2", "f1"]
    assert [e.id for e in store.evals("e")] == ["e1", "e2"]
    assert [e.id for e in store.evals_by_job("default", "web")] == ["e1", "f1"]
    assert [e.id for e in store.blocked_evals()] == ["e2"]
    store.upsert_evals(11, [make_eval("e2", "api", status="pending")])
    e2 = store.eval_by_id("e2")
    assert (e2.create_index, e2.modify_index) == (10, 11)
    assert store.blocked_evals() == []
    store.delete_evals(12, ["e1", "missing"])
    assert store.eval_by_id("e1") is None
    assert [e.id for e in store.evals_by_job("default", "web")] == ["f1"]
    assert store.table_index(EVALS) == 12


def test_a_successful_eval_cancels_its_jobs_blocked_evals():
    store = StateStore()
    store.upsert_evals(10, [make_eval("blocked", status="blocked"), make_eval("other", "api", status="blocked")])
    store.upsert_evals(11, [make_eval("e1", status="complete", failed_tg_allocs={"g": AllocMetric()})])
    assert store.eval_by_id("blocked").status == "blocked"  # it failed to place: still waiting
    store.upsert_evals(12, [make_eval("e2", status="complete")])
    cancelled = store.eval_by_id("blocked")
    assert (cancelled.status, cancelled.status_description, cancelled.modify_index) == (
        "canceled", 'evaluation "e2" successful', 12)
    assert store.eval_by_id("other").status == "blocked"
    assert [e.id for e in store.blocked_evals()] == ["other"]


def test_an_eval_reports_queued_allocations_into_the_summary():
    store = StateStore()
    store.upsert_job(10, make_job("web", groups=("g", "h")))
    store.upsert_evals(11, [make_eval("e1", status="complete", queued_allocations={"g": 3, "h": 0})])
    summary = store.job_summary("default", "web")
    assert (summary.summary["g"].queued, summary.summary["h"].queued, summary.modify_index) == (3, 0, 11)


def test_gc_of_evals_and_allocs_together():
    store = StateStore()
    job = store.upsert_job(10, make_job("web"))
    store.upsert_evals(11, [make_eval("e1", status="complete")])
    store.upsert_allocs(12, [make_alloc("a1", job, eval_id="e1", client_status="complete")])
    store.delete_evals(13, ["e1"], ["a1"])
    assert store.eval_by_id("e1") is None and store.alloc_by_id("a1") is None
    assert store.allocs_by_eval("e1") == []
    assert store.job_by_id("default", "web").status == "dead"
    # Summary counts keep garbage-collected allocations, as Nomad's do.
    assert store.job_summary("default", "web").summary["g"].complete == 1
