"""Evaluation commands, garbage collection and the scheduler configuration."""

from builders import make_job, make_node
from fsm_helpers import Log, RaftHarness, tables_of
from state_builders import make_eval

from orchestrator.fsm import commands as c
from orchestrator.state import SCHEDULER_CONFIG


def test_eval_update_returns_the_evaluations_as_stored():
    log = Log()
    log.ok(c.job_register(job=make_job("web")))
    result = log.ok(c.eval_update(evals=[make_eval("e1", "web"), make_eval("b1", "web", status="blocked")]))
    assert [(e.id, e.status, e.create_index) for e in result.evals] == [("e1", "pending", 2), ("b1", "blocked", 2)]
    updated = log.ok(c.eval_update(evals=[make_eval("e1", "web", status="complete",
                                                    queued_allocations={"g": 2})]))
    # The store cancels the job's blocked evaluation: the leader hears of it to stop tracking it.
    assert [(e.id, e.status) for e in updated.evals] == [("e1", "complete"), ("b1", "canceled")]
    assert updated.evals[0].create_index == 2 and updated.evals[0].modify_index == 3
    assert log.store.job_summary("default", "web").summary["g"].queued == 2


def test_eval_delete_collects_evaluations_and_allocations():
    h = RaftHarness(seed=1)
    h.log.ok(c.node_register(node=make_node(1)))
    h.register_and_schedule(make_job("web", count=2, job_type="batch"))
    allocs = h.store.allocs_by_job("default", "web")
    h.log.ok(c.alloc_client_update(allocs=[a.__class__(id=a.id, client_status="complete") for a in allocs]))
    eval_ids = [e.id for e in h.store.evals_by_job("default", "web")]
    result = h.log.ok(c.eval_delete(evals=[*eval_ids, "ghost"], allocs=[a.id for a in allocs]))
    assert h.store.evals() == [] and h.store.allocs() == []
    assert set(result.alloc_nodes) == {make_node(1).id} and not result.unblock_classes  # they were done already
    assert h.store.job_by_id("default", "web").status == "dead"


def test_scheduler_config_with_check_and_set():
    log = Log()
    assert log.store.scheduler_config() is None
    result = log.ok(c.scheduler_config(config={"SchedulerAlgorithm": "spread", "ModifyIndex": 0}, cas=True))
    assert result.response["Updated"] is False and log.store.scheduler_config() is None  # nothing to CAS over
    result = log.ok(c.scheduler_config(config={"SchedulerAlgorithm": "binpack",
                                               "PreemptionConfig": {"SystemSchedulerEnabled": True}}))
    assert result.response["Updated"] is True
    assert log.store.scheduler_config() == {"SchedulerAlgorithm": "binpack",
                                            "PreemptionConfig": {"SystemSchedulerEnabled": True},
                                            "CreateIndex": 2, "ModifyIndex": 2}
    before = tables_of(log.store)
    result = log.ok(c.scheduler_config(config={"SchedulerAlgorithm": "spread", "ModifyIndex": 1}, cas=True))
    assert result.response["Updated"] is False and tables_of(log.store) == before
    log.ok(c.scheduler_config(config={"SchedulerAlgorithm": "spread", "ModifyIndex": 2}, cas=True))
    config = log.store.scheduler_config()
    assert (config["SchedulerAlgorithm"], config["CreateIndex"], config["ModifyIndex"]) == ("spread", 2, 4)
    assert log.store.table_index(SCHEDULER_CONFIG) == 4
    assert log.store.snapshot().scheduler_config() == config
