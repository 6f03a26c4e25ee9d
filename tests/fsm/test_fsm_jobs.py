"""Job commands: register with its evaluation, check-index, deregister (stop or purge), stability, launches."""

from dataclasses import replace

import pytest
from fsm_helpers import Log, tables_of
from state_builders import make_eval, make_job

from orchestrator.fsm import commands as c
from orchestrator.structs import ParameterizedJobConfig, PeriodicConfig

SECOND = 1_000_000_000


def _registered(job=None, **kwargs):
    log = Log()
    result = log.ok(c.job_register(job=job or make_job("web"), **kwargs))
    return log, result


def test_register_stores_the_job_and_its_evaluation_in_one_write():
    log = Log()
    heard = []
    log.store.add_listener(lambda tables, index: heard.append((tables, index)))
    result = log.ok(c.job_register(job=make_job("web"), evaluation=make_eval("e1", triggered_by="job-register"),
                                   submit_time=42))
    job = log.store.job_by_id("default", "web")
    assert (job.version, job.job_modify_index, job.submit_time, job.status) == (0, 1, 42, "pending")
    assert result.response == {"Index": 1, "JobModifyIndex": 1, "EvalID": "e1", "EvalCreateIndex": 1}
    evaluation = log.store.eval_by_id("e1")
    assert evaluation.job_modify_index == 1 and evaluation.create_index == 1
    assert result.evals == (evaluation,)
    assert set(result.jobs) == {("default", "web")}
    assert heard == [(frozenset({"jobs", "job_versions", "job_summary", "evals"}), 1)]


def test_registering_an_unchanged_spec_keeps_its_version():
    log, _ = _registered()
    result = log.ok(c.job_register(job=make_job("web"), evaluation=make_eval("e2")))
    assert result.response["JobModifyIndex"] == 1
    assert log.store.eval_by_id("e2").job_modify_index == 1
    result = log.ok(c.job_register(job=make_job("web", image="nginx:2")))
    assert result.response["JobModifyIndex"] == 3 and result.response["EvalID"] == ""
    assert log.store.job_by_id("default", "web").version == 1


def test_check_index_registers_only_over_the_version_seen():
    log = Log()
    log.ok(c.job_register(job=make_job("web"), enforce_index=True, job_modify_index=0))
    rejections = {
        0: "Enforcing job modify index 0: job exists",
        5: "Enforcing job modify index 5: job exists with conflicting job modify index: 1",
    }
    for index, message in rejections.items():
        before = tables_of(log.store)
        result = log.apply(c.job_register(job=make_job("web", image="v2"), enforce_index=True,
                                          job_modify_index=index, evaluation=make_eval("e9")))
        assert result.error == message and not result.evals and not result.jobs
        assert tables_of(log.store) == before
    result = log.apply(c.job_register(job=make_job("other"), enforce_index=True, job_modify_index=3))
    assert result.error == "Enforcing job modify index 3: job does not exist"
    log.ok(c.job_register(job=make_job("web", image="v2"), enforce_index=True, job_modify_index=1))
    assert log.store.job_by_id("default", "web").version == 1


def test_a_job_in_an_unknown_namespace_is_refused():
    log = Log()
    result = log.apply(c.job_register(job=make_job("web", namespace="prod")))
    assert result.error == 'job "web" is in nonexistent namespace "prod"'
    assert log.store.jobs(None) == []


def test_deregister_without_purge_stores_a_stopped_version():
    log, _ = _registered()
    result = log.ok(c.job_deregister(namespace="default", job_id="web", evaluation=make_eval("e2"),
                                     submit_time=77))
    job = log.store.job_by_id("default", "web")
    assert (job.stop, job.version, job.submit_time) == (True, 1, 77)
    assert [v.version for v in log.store.job_versions("default", "web")] == [1, 0]
    assert result.response == {"Index": 2, "JobModifyIndex": 2, "EvalID": "e2", "EvalCreateIndex": 2}
    assert set(result.jobs) == {("default", "web")} and [e.id for e in result.evals] == ["e2"]


def test_purge_deletes_the_job_with_its_versions_summary_and_launch():
    periodic = make_job("cron", job_type="batch", periodic=PeriodicConfig(enabled=True, spec="* * * * *"))
    log, _ = _registered(periodic, submit_time=5 * SECOND)
    assert log.store.periodic_launch("default", "cron").launch == 5 * SECOND
    log.ok(c.job_deregister(namespace="default", job_id="cron", purge=True))
    store = log.store
    assert store.job_by_id("default", "cron") is None and store.job_versions("default", "cron") == []
    assert store.job_summary("default", "cron") is None and store.periodic_launch("default", "cron") is None


@pytest.mark.parametrize("purge, message", [
    (True, "job not found"),
    (False, "job \"ghost\" in namespace \"default\" doesn't exist to be deregistered"),
])
def test_deregistering_an_unknown_job_is_refused(purge, message):
    log, _ = _registered()
    before = tables_of(log.store)
    result = log.apply(c.job_deregister(namespace="default", job_id="ghost", purge=purge,
                                        evaluation=make_eval("e2", "ghost")))
    assert result.error == message
    assert tables_of(log.store) == before


def test_stability():
    log, _ = _registered()
    log.ok(c.job_register(job=make_job("web", image="v2")))
    log.ok(c.job_stability(namespace="default", job_id="web", version=0, stable=True))
    assert log.store.job_by_id_and_version("default", "web", 0).stable
    assert not log.store.job_by_id("default", "web").stable
    before = tables_of(log.store)
    result = log.apply(c.job_stability(namespace="default", job_id="web", version=9, stable=True))
    assert "version 9" in result.error and tables_of(log.store) == before


def test_periodic_children_mark_their_parents_launch():
    parent = make_job("cron", job_type="batch", periodic=PeriodicConfig(enabled=True, spec="* * * * *"))
    log, _ = _registered(parent, submit_time=SECOND)
    child = replace(make_job("cron/periodic-1700000000", job_type="batch"), parent_id="cron")
    log.ok(c.job_register(job=child, evaluation=make_eval("e1", "cron/periodic-1700000000"),
                          submit_time=1700000002 * SECOND))
    launch = log.store.periodic_launch("default", "cron")
    assert (launch.launch, launch.modify_index) == (1700000000 * SECOND, 2)
    assert log.store.job_summary("default", "cron").children.pending == 1
    # A registration again does not move the first launch of the parent.
    log.ok(c.job_register(job=replace(parent, priority=70), submit_time=9 * SECOND))
    assert log.store.periodic_launch("default", "cron").launch == 1700000000 * SECOND


def test_parameterized_jobs_record_no_launch_and_their_children_none_either():
    parent = make_job("batchy", job_type="batch", parameterized_job=ParameterizedJobConfig())
    log, _ = _registered(parent, submit_time=SECOND)
    child = replace(make_job("batchy/dispatch-1-abc", job_type="batch"), parent_id="batchy", dispatched=True)
    log.ok(c.job_register(job=child, submit_time=SECOND))
    assert log.store.periodic_launches() == []
    assert log.store.job_summary("default", "batchy").children.pending == 1


def test_periodic_launch_command():
    log = Log()
    log.ok(c.periodic_launch(namespace="default", job_id="cron", launch=10))
    log.ok(c.periodic_launch(namespace="default", job_id="cron", launch=20))
    launch = log.store.periodic_launch("default", "cron")
    assert (launch.launch, launch.create_index, launch.modify_index) == (20, 1, 2)
