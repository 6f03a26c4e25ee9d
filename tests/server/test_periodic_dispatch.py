"""Tests for the periodic dispatcher: launch times, overlap, force, and the missed launch on restore."""

from dataclasses import replace
from datetime import UTC, datetime

from orchestrator.server.periodic_dispatch import (
    PeriodicDispatcher,
    child_job_id,
    derive_child,
    running_children,
)
from orchestrator.state import StateStore
from orchestrator.structs import Allocation, Evaluation, PeriodicConfig
from tests.scheduler.builders import make_job

SEC = 10**9


def at(hour: int, minute: int, second: int = 0, day: int = 1) -> float:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC).timestamp()


def ns(t: float) -> int:
    return round(t * SEC)


def periodic_job(job_id: str = "report", spec: str = "*/15 * * * *", tz: str = "UTC", **periodic):
    job = make_job(job_id, job_type="batch", count=1)
    return replace(job, periodic=PeriodicConfig(enabled=True, spec=spec, time_zone=tz, **periodic))


def test_due_returns_each_launch_once_at_its_time():
    d = PeriodicDispatcher()
    job = periodic_job()
    assert d.add(job, at(10, 1))
    assert d.next_deadline() == at(10, 15)
    assert d.due(at(10, 14, 59)) == []
    assert d.due(at(10, 15)) == [(job, ns(at(10, 15)))]
    assert d.due(at(10, 15, 1)) == []
    assert d.next_launch("default", "report") == ns(at(10, 30))


def test_launches_follow_the_job_time_zone():
    d = PeriodicDispatcher()
    job = periodic_job(spec="0 9 * * *", tz="America/New_York")
    d.add(job, at(12, 0))
    assert d.next_deadline() == at(14, 0)  # 09:00 EST is 14:00 UTC on March 1st


def test_a_late_tick_launches_once_and_skips_the_backlog():
    d = PeriodicDispatcher()
    job = periodic_job()
    d.add(job, at(10, 1))
    launches = d.due(at(11, 7))
    assert launches == [(job, ns(at(10, 15)))]
    assert d.next_deadline() == at(11, 15)


def test_inactive_jobs_are_not_tracked():
    d = PeriodicDispatcher()
    assert not d.add(replace(periodic_job(), stop=True), at(10, 0))
    assert not d.add(make_job("plain"), at(10, 0))
    assert not d.add(periodic_job(spec="not a cron"), at(10, 0))
    job = periodic_job()
    d.add(job, at(10, 0))
    d.add(replace(job, stop=True), at(10, 1))
    assert d.tracked() == [] and d.next_deadline() is None and d.due(at(12, 0)) == []


def test_remove_and_update_of_the_spec():
    d = PeriodicDispatcher()
    job = periodic_job()
    d.add(job, at(10, 1))
    d.add(replace(job, priority=70), at(10, 14))  # same schedule: the pending launch is kept
    assert d.next_deadline() == at(10, 15)
    assert d.due(at(10, 15))[0][0].priority == 70
    d.add(periodic_job(spec="0 * * * *"), at(10, 20))
    assert d.next_deadline() == at(11, 0)
    d.remove("default", "report")
    assert d.due(at(12, 0)) == [] and d.next_deadline() is None


def test_prohibit_overlap_skips_while_a_child_runs():
    d = PeriodicDispatcher()
    job = periodic_job(prohibit_overlap=True)
    d.add(job, at(10, 1))
    running = {("default", "report")}
    assert d.due(at(10, 15), lambda ns_, id_: (ns_, id_) in running) == []
    running.clear()
    assert d.due(at(10, 30), lambda ns_, id_: (ns_, id_) in running) == [(job, ns(at(10, 30)))]


def test_force_launches_now_without_moving_the_schedule():
    d = PeriodicDispatcher()
    job = periodic_job()
    assert d.force("default", "report", at(10, 2)) is None
    d.add(job, at(10, 1))
    assert d.force("default", "report", at(10, 2)) == (job, ns(at(10, 2)))
    assert d.next_deadline() == at(10, 15)


def test_child_job_is_derived_like_nomads():
    job = periodic_job()
    child = derive_child(replace(job, version=3, create_index=9, status="running"), ns(at(10, 15)))
    stamp = int(at(10, 15))
    assert child.id == child.name == f"report/periodic-{stamp}" == child_job_id("report", ns(at(10, 15)))
    assert child.parent_id == "report" and child.periodic is None
    assert (child.status, child.version, child.create_index) == ("", 0, 0)
    assert child.task_groups == job.task_groups


def _store_with(job, launch: float | None) -> StateStore:
    store = StateStore()
    store.upsert_job(10, job)
    if launch is not None:
        store.upsert_periodic_launch(11, job.namespace, job.id, ns(launch))
    return store


def test_restore_launches_one_missed_launch_immediately():
    job = periodic_job()
    # The old leader last launched at 10:00; leadership came back at 10:47: 10:15, 10:30, 10:45 were missed.
    d = PeriodicDispatcher()
    assert d.restore_from(_store_with(job, at(10, 0)), at(10, 47)) == 1
    assert d.next_deadline() == at(10, 47)
    launches = d.due(at(10, 47))
    assert [(j.id, launch) for j, launch in launches] == [("report", ns(at(10, 47)))]
    assert d.next_deadline() == at(11, 0)


def test_restore_does_not_repeat_a_recorded_launch():
    job = periodic_job()
    d = PeriodicDispatcher()
    # The 10:45 launch was recorded just before the old leader died.
    assert d.restore_from(_store_with(job, at(10, 45)), at(10, 47)) == 0
    assert d.due(at(10, 47)) == []
    assert d.next_deadline() == at(11, 0)


def test_restore_without_a_launch_record_only_schedules():
    d = PeriodicDispatcher()
    assert d.restore_from(_store_with(periodic_job(), None), at(10, 47)) == 0
    assert d.next_deadline() == at(11, 0)


def test_running_children_looks_at_child_evals_and_allocs():
    store = StateStore()
    parent = periodic_job()
    store.upsert_job(1, parent)
    check = running_children(store)
    assert not check("default", "report")
    child = derive_child(parent, ns(at(10, 15)))
    store.upsert_job(2, child)
    store.upsert_evals(3, [Evaluation(id="e1", job_id=child.id, type="batch")])
    assert check("default", "report")
    store.upsert_evals(4, [Evaluation(id="e1", job_id=child.id, type="batch", status="complete")])
    assert not check("default", "report")
    store.upsert_allocs(5, [Allocation(id="a1", job_id=child.id, job=child, task_group="g", eval_id="e1",
                                       node_id="n1", client_status="running")])
    assert check("default", "report")
