"""Tests for the plan applier's re-check of optimistic plans against the latest state."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.scheduler.plan_apply import (
    REASON_NODE_INELIGIBLE,
    REASON_NODE_MISSING,
    REASON_NODE_NOT_READY,
    evaluate_node_plan,
    evaluate_plan,
)
from orchestrator.structs import (
    AllocatedPortMapping,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    Allocation,
    Deployment,
    DrainStrategy,
    Node,
    NodeResources,
    Plan,
)


class FakeState:
    """The four read methods the plan applier uses, over plain dicts."""

    def __init__(self, nodes: list[Node] = (), allocs: list[Allocation] = (), index: int = 42) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.allocs = {a.id: a for a in allocs}
        self.index = index

    def node_by_id(self, node_id: str) -> Node | None:
        return self.nodes.get(node_id)

    def allocs_by_node(self, node_id: str) -> list[Allocation]:
        return [a for a in self.allocs.values() if a.node_id == node_id]

    def alloc_by_id(self, alloc_id: str) -> Allocation | None:
        return self.allocs.get(alloc_id)

    def latest_index(self) -> int:
        return self.index


def make_node(node_id: str, cpu: int = 1000, memory_mb: int = 1024, status: str = "ready", **kwargs) -> Node:
    return Node(id=node_id, status=status, node_resources=NodeResources.of(cpu, memory_mb, 10_000), **kwargs)


def make_alloc(alloc_id: str, node_id: str, cpu: int = 100, memory_mb: int = 64,
               ports: tuple[int, ...] = (), **kwargs) -> Allocation:
    resources = AllocatedResources(
        tasks={"t": AllocatedTaskResources(cpu={"CpuShares": cpu}, memory={"MemoryMB": memory_mb})},
        shared=AllocatedSharedResources(
            disk_mb=300, ports=[AllocatedPortMapping(label=f"p{p}", value=p) for p in ports]),
    )
    return Allocation(id=alloc_id, node_id=node_id, allocated_resources=resources, **kwargs)


def plan_of(*placements: Allocation, **kwargs) -> Plan:
    plan = Plan(eval_id="e1", **kwargs)
    for alloc in placements:
        plan.append_alloc(alloc)
    return plan


def test_full_commit():
    state = FakeState([make_node("n1"), make_node("n2")])
    plan = plan_of(make_alloc("a1", "n1"), make_alloc("a2", "n2"), make_alloc("a3", "n2"))
    result = evaluate_plan(state, plan)
    assert result.full_commit(plan) == (True, 3, 3)
    assert [a.id for a in result.node_allocation["n2"]] == ["a2", "a3"]
    assert result.rejected_nodes == []
    assert result.refresh_index == 0


def test_node_filled_after_snapshot_is_rejected_others_commit():
    # Another scheduler's plan landed on n1 after this plan's snapshot was taken.
    state = FakeState([make_node("n1"), make_node("n2")], [make_alloc("other", "n1", cpu=950)], index=77)
    plan = plan_of(make_alloc("a1", "n1"), make_alloc("a2", "n2"))
    result = evaluate_plan(state, plan)
    assert "n1" not in result.node_allocation
    assert [a.id for a in result.node_allocation["n2"]] == ["a2"]
    assert result.rejected_nodes == ["n1"]
    assert result.refresh_index == 77
    assert result.full_commit(plan) == (False, 2, 1)
    assert evaluate_node_plan(state, plan, "n1").reason == "cpu"


def test_port_taken_meanwhile_rejects_node():
    state = FakeState([make_node("n1")], [make_alloc("other", "n1", ports=(8080,))])
    result = evaluate_plan(state, plan_of(make_alloc("a1", "n1", ports=(8080,))))
    assert result.rejected_nodes == ["n1"]
    assert result.node_allocation == {}


def test_missing_node_rejects():
    state = FakeState([make_node("n2")])
    plan = plan_of(make_alloc("a1", "gone"), make_alloc("a2", "n2"))
    result = evaluate_plan(state, plan)
    assert result.rejected_nodes == ["gone"]
    assert list(result.node_allocation) == ["n2"]
    assert evaluate_node_plan(state, plan, "gone").reason == REASON_NODE_MISSING


def test_down_node_rejects():
    state = FakeState([make_node("n1", status="down")])
    plan = plan_of(make_alloc("a1", "n1"))
    result = evaluate_plan(state, plan)
    assert result.rejected_nodes == ["n1"]
    assert evaluate_node_plan(state, plan, "n1").reason == REASON_NODE_NOT_READY


def test_draining_node_rejects_new_placements():
    state = FakeState([make_node("n1", drain_strategy=DrainStrategy())])
    plan = plan_of(make_alloc("a1", "n1"))
    assert evaluate_plan(state, plan).rejected_nodes == ["n1"]
    assert evaluate_node_plan(state, plan, "n1").reason == REASON_NODE_INELIGIBLE


def test_ineligible_node_rejects_new_placements():
    state = FakeState([make_node("n1", scheduling_eligibility="ineligible")])
    assert evaluate_plan(state, plan_of(make_alloc("a1", "n1"))).rejected_nodes == ["n1"]


def test_draining_node_accepts_in_place_updates():
    existing = make_alloc("a1", "n1", cpu=500)
    state = FakeState([make_node("n1", drain_strategy=DrainStrategy())], [existing])
    plan = plan_of(replace(existing, desired_description="in-place update"))
    result = evaluate_plan(state, plan)
    assert result.rejected_nodes == []
    assert result.full_commit(plan) == (True, 1, 1)


def test_draining_node_rejects_mix_of_update_and_new_placement():
    existing = make_alloc("a1", "n1")
    state = FakeState([make_node("n1", drain_strategy=DrainStrategy())], [existing])
    plan = plan_of(replace(existing), make_alloc("a2", "n1"))
    assert evaluate_plan(state, plan).rejected_nodes == ["n1"]


def test_in_place_update_is_not_double_counted():
    existing = make_alloc("a1", "n1", cpu=600)
    state = FakeState([make_node("n1", cpu=1000)], [existing])
    # Counted twice this would need 1200 MHz; the update replaces the old version.
    plan = plan_of(replace(existing, job_id="v2"))
    assert evaluate_plan(state, plan).full_commit(plan) == (True, 1, 1)
    # Growing in place beyond the node is still caught.
    grown = make_alloc("a1", "n1", cpu=1001)
    assert evaluate_plan(state, plan_of(grown)).rejected_nodes == ["n1"]


def test_stops_free_room_for_placement():
    old = make_alloc("old", "n1", cpu=800, ports=(8080,))
    state = FakeState([make_node("n1", cpu=1000)], [old])
    plan = plan_of(make_alloc("new", "n1", cpu=800, ports=(8080,)))
    plan.append_stopped_alloc(old, "alloc is being updated")
    result = evaluate_plan(state, plan)
    assert result.full_commit(plan) == (True, 1, 1)
    assert [a.id for a in result.node_update["n1"]] == ["old"]


def test_without_the_stop_the_same_placement_is_rejected():
    state = FakeState([make_node("n1", cpu=1000)], [make_alloc("old", "n1", cpu=800)])
    assert evaluate_plan(state, plan_of(make_alloc("new", "n1", cpu=800))).rejected_nodes == ["n1"]


def test_stops_are_committed_even_for_gone_or_rejected_nodes():
    gone_alloc = make_alloc("x", "gone")
    full = make_alloc("big", "n1", cpu=1000)
    small = make_alloc("small", "n1", cpu=10)
    state = FakeState([make_node("n1", cpu=1000)], [gone_alloc, full, small])
    plan = plan_of(make_alloc("new", "n1", cpu=500))
    plan.append_stopped_alloc(gone_alloc, "node is gone")
    plan.append_stopped_alloc(small, "stop")
    result = evaluate_plan(state, plan)
    assert result.rejected_nodes == ["n1"]
    assert set(result.node_update) == {"gone", "n1"}


def test_preemption_frees_room():
    low = make_alloc("low", "n1", cpu=900)
    state = FakeState([make_node("n1", cpu=1000)], [low])
    plan = plan_of(make_alloc("high", "n1", cpu=500))
    plan.append_preempted_alloc(low, "high")
    result = evaluate_plan(state, plan)
    assert result.full_commit(plan) == (True, 1, 1)
    assert [a.id for a in result.node_preemptions["n1"]] == ["low"]
    assert result.node_preemptions["n1"][0].desired_status == "evict"


def test_preemptions_not_committed_for_rejected_nodes():
    low = make_alloc("low", "n1", cpu=100)
    state = FakeState([make_node("n1", cpu=1000)], [low, make_alloc("other", "n1", cpu=800)])
    plan = plan_of(make_alloc("high", "n1", cpu=500))
    plan.append_preempted_alloc(low, "high")
    result = evaluate_plan(state, plan)
    assert result.rejected_nodes == ["n1"]
    assert result.node_preemptions == {}


def test_preemption_of_alloc_that_stopped_meanwhile_is_dropped():
    low = make_alloc("low", "n1", cpu=900)
    state = FakeState([make_node("n1", cpu=1000)], [replace(low, client_status="complete")])
    plan = plan_of(make_alloc("high", "n1", cpu=500))
    plan.append_preempted_alloc(low, "high")
    result = evaluate_plan(state, plan)
    assert result.full_commit(plan) == (True, 1, 1)
    assert result.node_preemptions == {}


def test_all_at_once_commits_nothing_when_a_node_is_rejected():
    old = make_alloc("old", "n2")
    state = FakeState([make_node("n1", cpu=100), make_node("n2")], [old], index=9)
    plan = plan_of(make_alloc("a1", "n1", cpu=500), make_alloc("a2", "n2"), all_at_once=True,
                   deployment=Deployment(id="d1"))
    plan.append_stopped_alloc(old, "update")
    result = evaluate_plan(state, plan)
    assert result.node_allocation == {}
    assert result.node_update == {}
    assert result.node_preemptions == {}
    assert result.deployment is None
    assert result.rejected_nodes == ["n1"]
    assert result.refresh_index == 9


def test_all_at_once_commits_everything_when_all_fit():
    state = FakeState([make_node("n1"), make_node("n2")])
    plan = plan_of(make_alloc("a1", "n1"), make_alloc("a2", "n2"), all_at_once=True)
    assert evaluate_plan(state, plan).full_commit(plan) == (True, 2, 2)


def test_deployment_passed_through_on_partial_commit():
    state = FakeState([make_node("n1"), make_node("n2", cpu=10)])
    plan = plan_of(make_alloc("a1", "n1"), make_alloc("a2", "n2"), deployment=Deployment(id="d1"),
                   deployment_updates=[{"DeploymentID": "d0", "Status": "cancelled"}])
    result = evaluate_plan(state, plan)
    assert result.deployment is not None and result.deployment.id == "d1"
    assert result.deployment_updates == plan.deployment_updates


def test_deployment_dropped_when_every_node_rejected():
    state = FakeState([make_node("n1", cpu=10)])
    plan = plan_of(make_alloc("a1", "n1"), deployment=Deployment(id="d1"))
    result = evaluate_plan(state, plan)
    assert result.deployment is None
    assert result.refresh_index == 42


def test_deployment_only_plan_passes_through():
    plan = Plan(eval_id="e1", deployment_updates=[{"DeploymentID": "d1", "Status": "successful"}])
    result = evaluate_plan(FakeState(), plan)
    assert result.deployment_updates == plan.deployment_updates
    assert result.refresh_index == 0


def test_terminal_existing_allocs_do_not_count():
    done = make_alloc("done", "n1", cpu=900, client_status="complete")
    state = FakeState([make_node("n1", cpu=1000)], [done])
    plan = plan_of(make_alloc("a1", "n1", cpu=900))
    assert evaluate_plan(state, plan).full_commit(plan) == (True, 1, 1)


def test_large_plan_commits_every_node():
    nodes = [make_node(f"n{i}") for i in range(1000)]
    existing = [make_alloc(f"e{i}", f"n{i}", cpu=500, ports=(8000,)) for i in range(1000)]
    state = FakeState(nodes, existing)
    by_node: dict[str, list[Allocation]] = {}
    for alloc in existing:
        by_node.setdefault(alloc.node_id, []).append(alloc)
    state.allocs_by_node = lambda node_id: by_node.get(node_id, [])
    plan = plan_of(*(make_alloc(f"a{i}", f"n{i}", cpu=500, ports=(8001,)) for i in range(1000)))
    assert evaluate_plan(state, plan).full_commit(plan) == (True, 1000, 1000)
