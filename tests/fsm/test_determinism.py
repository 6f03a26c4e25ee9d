"""Determinism: one log gives equal stores and results everywhere; plans via Raft equal in-process ones."""

from dataclasses import replace

from builders import make_job, make_node
from fsm_helpers import RaftHarness, tables_of
from state_builders import make_eval

from orchestrator.fsm import FSM
from orchestrator.fsm import commands as c
from orchestrator.state import StateStore
from orchestrator.structs import DesiredTransition, DrainSpec, DrainStrategy, NodeEvent, TaskState
from orchestrator.testing.harness import Harness

SECOND = 1_000_000_000


def _busy_log() -> RaftHarness:
    """Every command family, refusals included, with scheduling in between."""
    h = RaftHarness(seed=4)
    for i in range(5):
        h.log.ok(c.node_register(node=make_node(i, cpu=1500), update_time=i * SECOND))
    h.register_and_schedule(make_job("web", count=5, cpu=400))
    h.register_and_schedule(make_job("sys", job_type="system", cpu=100))
    h.register_and_schedule(make_job("big", count=10, cpu=1000))
    web = h.store.allocs_by_job("default", "web")
    h.log.ok(c.alloc_client_update(allocs=[replace(a, client_status="running",
                                                   task_states={"t": TaskState(state="running")}) for a in web],
                                   update_time=3 * SECOND))
    h.log.ok(c.alloc_client_update(allocs=[replace(web[0], client_status="failed")],
                                   evals=[make_eval("r1", "web", triggered_by="alloc-failure")]))
    h.process(h.store.eval_by_id("r1"))
    h.log.apply(c.job_register(job=make_job("web"), enforce_index=True, job_modify_index=0))  # refused
    h.log.ok(c.node_drain_update(node_id=make_node(1).id, drain_strategy=DrainStrategy(DrainSpec(deadline=-1)),
                                 updated_at=4 * SECOND, node_event=NodeEvent(message="drain")))
    on_drained = [a.id for a in h.store.allocs_by_node(make_node(1).id) if not a.terminal()]
    h.log.ok(c.alloc_desired_transition(allocs={i: DesiredTransition(migrate=True) for i in on_drained},
                                        evals=[make_eval("m1", "web", triggered_by="node-drain")]))
    h.process(h.store.eval_by_id("m1"))
    h.log.ok(c.node_status_update(node_id=make_node(2).id, status="down", updated_at=5 * SECOND))
    h.log.apply(c.node_status_update(node_id="ghost", status="down", updated_at=5 * SECOND))  # refused
    h.log.ok(c.job_deregister(namespace="default", job_id="big", evaluation=make_eval("s1", "big")))
    h.process(h.store.eval_by_id("s1"))
    h.log.ok(c.node_eligibility_update(node_id=make_node(1).id, eligibility="ineligible"))
    h.log.ok(c.eval_delete(evals=["r1"], allocs=[web[0].id]))
    return h


def test_replaying_a_log_gives_equal_stores_and_results():
    h = _busy_log()
    replicas = [FSM(StateStore()) for _ in range(2)]
    results = [[fsm.apply(index, data) for index, data in h.log.entries] for fsm in replicas]
    assert results[0] == results[1]
    assert sum(1 for r in results[0] if r.error) == 2
    assert tables_of(replicas[0].store) == tables_of(replicas[1].store) == tables_of(h.store)


def test_a_follower_restored_midway_ends_equal():
    h = _busy_log()
    half = len(h.log.entries) // 2
    leader, follower = FSM(StateStore()), FSM(StateStore())
    for index, data in h.log.entries[:half]:
        leader.apply(index, data)
    follower.restore(leader.snapshot())
    for index, data in h.log.entries[half:]:
        assert leader.apply(index, data) == follower.apply(index, data)
    assert tables_of(follower.store) == tables_of(leader.store)


def test_plans_through_the_fsm_equal_plans_applied_in_process():
    def run(h: Harness) -> Harness:
        for i in range(8):
            h.store.upsert_node(h.next_index(), make_node(i, cpu=2000))
        for j in range(4):
            h.register_and_schedule(make_job(f"job{j}", count=6, cpu=300))
        h.register_and_schedule(make_job("huge", count=50, cpu=1500))
        h.register_and_schedule(make_job("job1", count=3, memory=256))
        h.register_and_schedule(make_job("sys", job_type="system"))
        return h

    direct, raft = run(Harness(seed=3)), run(RaftHarness(seed=3))
    assert direct.store.blocked_evals() and len(direct.store.allocs()) > 30
    assert tables_of(raft.store) == tables_of(direct.store)
