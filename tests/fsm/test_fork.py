"""StateStore.fork(): a writable copy-on-write copy, isolated both ways, for the leader's optimistic view."""

from dataclasses import replace

from builders import make_job, make_node
from fsm_helpers import RaftHarness, tables_of
from state_builders import make_alloc, make_eval

from orchestrator.fsm import FSM
from orchestrator.fsm import commands as c
from orchestrator.scheduler.plan_apply import evaluate_plan
from orchestrator.state import StateStore
from orchestrator.structs import Plan, PlanResult


def _cluster() -> RaftHarness:
    h = RaftHarness(seed=2)
    for i in range(3):
        h.log.ok(c.node_register(node=make_node(i, cpu=1000)))
    h.register_and_schedule(make_job("web", count=3, cpu=300))
    return h


def _write_to(store: StateStore, index: int) -> None:
    """A write to every kind of table the FSM changes."""
    fsm = FSM(store)
    job = store.job_by_id("default", "web")
    alloc = store.allocs_by_job("default", "web")[0]
    commands = [
        c.job_register(job=make_job("web", count=3, cpu=300, memory=64),
                       evaluation=make_eval("x1", "web", status="blocked")),
        c.apply_plan_results(result=PlanResult(node_update={alloc.node_id: [replace(alloc, desired_status="stop")]}),
                             job=job),
        c.node_register(node=make_node(7)),
        c.periodic_launch(namespace="default", job_id="web", launch=1),
        c.scheduler_config(config={"SchedulerAlgorithm": "spread"}),
    ]
    for offset, data in enumerate(commands):
        assert fsm.apply(index + offset, data).ok


def test_a_fork_starts_equal_and_shares_its_tables():
    h = _cluster()
    fork = h.store.fork()
    assert isinstance(fork, StateStore) and fork is not h.store
    assert tables_of(fork) == tables_of(h.store)
    for name, table in h.store._tables.items():
        assert fork._tables[name].rows is table.rows  # nothing copied: O(number of tables)


def test_writes_to_a_fork_never_reach_the_original():
    h = _cluster()
    before = tables_of(h.store)
    heard = []
    h.store.add_listener(lambda tables, index: heard.append(index))
    fork = h.store.fork()
    _write_to(fork, h.next_index())
    assert tables_of(h.store) == before and heard == []
    assert fork.node_by_id(make_node(7).id) is not None and fork.scheduler_config() is not None
    assert fork.latest_index() > h.store.latest_index()


def test_writes_to_the_original_never_reach_a_fork():
    h = _cluster()
    fork = h.store.fork()
    before = tables_of(fork)
    _write_to(h.store, h.next_index())
    assert tables_of(fork) == before
    assert fork.node_by_id(make_node(7).id) is None


def test_a_fork_has_no_listeners_and_can_be_forked_and_snapshotted():
    h = _cluster()
    heard = []
    h.store.add_listener(lambda tables, index: heard.append(index))
    fork = h.store.fork()
    view = fork.snapshot()
    second = fork.fork()
    fork.upsert_node(h.next_index(), make_node(8))
    second.upsert_node(h.next_index(), make_node(9))
    assert heard == []
    assert view.node_by_id(make_node(8).id) is None and second.node_by_id(make_node(8).id) is None
    assert fork.node_by_id(make_node(9).id) is None and h.store.node_count() == 3


def test_the_optimistic_view_sees_results_still_in_flight():
    """The leader's use: the next plan is checked against a proposed-but-uncommitted result."""
    h = _cluster()
    job = h.store.job_by_id("default", "web")
    node = h.store.nodes()[0]
    allocs_on_node = h.store.allocs_by_node(node.id)
    free = 1000 - sum(a.allocated_resources.totals()[0] for a in allocs_on_node)

    def plan_filling(alloc_id: str) -> Plan:
        plan = Plan(eval_id="e", job=job)
        plan.append_alloc(make_alloc(alloc_id, job, node.id, cpu=free))
        return plan

    first = evaluate_plan(h.store, plan_filling("p1"))
    assert first.node_allocation
    optimistic = h.store.fork()
    optimistic.apply_plan_result(h.next_index(), first)
    second = evaluate_plan(optimistic, plan_filling("p2"))
    assert second.rejected_nodes == [node.id]  # the first plan's placement is counted
    assert evaluate_plan(h.store, plan_filling("p2")).node_allocation  # the committed store alone would not
    assert h.store.alloc_by_id("p1") is None
